//! The audit trail: `auth_events`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::auth_events;
use super::DbConnection;

/// What happened; stored as text in `auth_events.kind`, read and written as this enum
/// ([`crate::db::column`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum EventKind {
    Register,
    Login,
    LoginFailed,
    LoginThrottled,
    Logout,
    SessionRevoked,
    PasswordChanged,
    FingerprintMismatch,
    SessionExpired,
    AccountDeleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::Logout => "logout",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordChanged => "password_changed",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::SessionExpired => "session_expired",
            Self::AccountDeleted => "account_deleted",
        }
    }

    pub const ALL: [Self; 10] = [
        Self::Register,
        Self::Login,
        Self::LoginFailed,
        Self::LoginThrottled,
        Self::Logout,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::FingerprintMismatch,
        Self::SessionExpired,
        Self::AccountDeleted,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

crate::db::column::text_enum!(EventKind);

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = auth_events)]
pub struct NewEvent {
    pub user_id: Option<i64>,
    pub session_id: Option<String>,
    pub kind: EventKind,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = auth_events)]
pub struct EventRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub session_id: Option<String>,
    /// Read as text: a kind written by a newer version (after a rollback) still lists.
    pub kind: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert_many(conn: &mut DbConnection, events: &[NewEvent]) -> QueryResult<usize> {
    // Multi-row inserts are not supported through MultiConnection; a transaction keeps it one commit.
    super::write_transaction(conn, |conn| {
        for event in events {
            diesel::insert_into(auth_events::table)
                .values(event)
                .execute(conn)?;
        }
        Ok(events.len())
    })
}

/// The user's events, newest first.
pub fn list_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    auth_events::table
        .filter(auth_events::user_id.eq(user_id))
        .order((auth_events::created_at.desc(), auth_events::id.desc()))
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// Deletes up to `batch` events older than `cutoff`.
pub fn delete_older_than(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    // Ids first, then the delete: a bounded batch whatever the table holds.
    let ids: Vec<i64> = auth_events::table
        .filter(auth_events::created_at.lt(cutoff))
        .select(auth_events::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(auth_events::table.filter(auth_events::id.eq_any(ids))).execute(conn)
}
