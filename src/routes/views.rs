//! JSON shapes of responses, kept apart from the database rows they are made from. Each derives
//! `ToSchema`, so the OpenAPI document (`GET /openapi.json`) describes exactly what is sent.

use chrono::SecondsFormat;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::users::Account;

/// A user as clients see it: `{"id", "username", "created_at"}` with an RFC 3339 UTC time.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "username": "alice", "created_at": "2026-11-22T03:00:00Z"}))]
pub struct UserView {
    pub id: i64,
    /// As registered (usernames are unique regardless of case).
    pub username: String,
    /// RFC 3339, UTC, whole seconds, `Z`.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A stored UTC time as clients see it: RFC 3339, whole seconds, `Z`.
pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<&Account> for UserView {
    fn from(user: &Account) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            created_at: rfc3339(user.created_at),
        }
    }
}

/// `{"revoked": n}`: how many sessions were ended.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"revoked": 2}))]
pub struct Revoked {
    #[schema(minimum = 0)]
    pub revoked: usize,
}

/// `{"message": "Successfully logged out."}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "Successfully logged out."}))]
pub struct LoggedOut {
    pub message: &'static str,
}

impl LoggedOut {
    pub const DONE: Self = Self {
        message: "Successfully logged out.",
    };
}
