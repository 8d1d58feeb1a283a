//! JSON shapes of responses, kept apart from the database rows they are made from.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::db::users::UserRow;

/// A user as clients see it: `{"id", "username", "created_at"}` with an RFC 3339 UTC time.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub created_at: String,
}

impl From<&UserRow> for UserView {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            created_at: user
                .created_at
                .and_utc()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}
