//! Queries on the `sessions` table. A session is found only by the SHA-256 of its token; the token
//! itself never reaches the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{sessions, users};
use super::users::UserRow;
use super::DbConnection;

/// The lifecycle states stored in `sessions.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Inactive,
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Expired => "expired",
        }
    }
}

/// A session as stored (without its token hash, which callers already have).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub status: String,
    pub client_fingerprint: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

impl SessionRow {
    pub fn is_active(&self) -> bool {
        self.status == SessionStatus::Active.as_str()
    }
}

/// A session to insert.
#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub token_hash: &'a str,
    pub status: &'a str,
    pub client_fingerprint: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

/// The session with this token hash and its user, in one indexed query.
pub fn find_with_user(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// Inserts `new`, and in the same transaction ends the active session whose token hash is
/// `replaces` (the cookie the login request carried), if any.
pub fn create_replacing(
    conn: &mut DbConnection,
    new: &NewSession<'_>,
    replaces: Option<&str>,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        if let Some(old_hash) = replaces {
            end_by_token_hash(conn, old_hash)?;
        }
        diesel::insert_into(sessions::table)
            .values(new)
            .execute(conn)?;
        Ok(())
    })
}

/// Marks the active session with this token hash inactive; returns how many rows changed (0 or 1).
pub fn end_by_token_hash(conn: &mut DbConnection, token_hash: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::status.eq(SessionStatus::Active.as_str())),
    )
    .set(sessions::status.eq(SessionStatus::Inactive.as_str()))
    .execute(conn)
}

/// Marks an active session expired (it was found past its `expires_at`).
pub fn mark_expired(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::status.eq(SessionStatus::Active.as_str())),
    )
    .set(sessions::status.eq(SessionStatus::Expired.as_str()))
    .execute(conn)
}

/// Records use of an active session, and extends its expiry when `expires_at` is given.
pub fn touch(
    conn: &mut DbConnection,
    id: &str,
    last_seen_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::status.eq(SessionStatus::Active.as_str()));
    match expires_at {
        Some(expires_at) => diesel::update(target)
            .set((
                sessions::last_seen_at.eq(last_seen_at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set(sessions::last_seen_at.eq(last_seen_at))
            .execute(conn),
    }
}
