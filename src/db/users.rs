//! Queries on the `users` table.

use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::DbConnection;

/// A user as stored.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
}

impl fmt::Debug for UserRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A user without the password hash: what a verified session carries, and all most handlers need.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub created_at: NaiveDateTime,
}

impl From<&UserRow> for Account {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            created_at: user.created_at,
        }
    }
}

/// A user to insert; `username_key` is the lower-cased name that must be unique.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub username_key: &'a str,
    pub password_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// The enabled user whose lower-cased name is `key`, if any: a disabled user cannot log in and
/// looks, to a login, exactly like an unknown one.
pub fn find_by_key(conn: &mut DbConnection, key: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username_key.eq(key))
        .filter(users::disabled_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Whether a user with this lower-cased name exists.
pub fn key_exists(conn: &mut DbConnection, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table.filter(users::username_key.eq(key)),
    ))
    .get_result(conn)
}

/// Inserts the user; a taken name fails with a unique violation.
pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<UserRow> {
    diesel::insert_into(users::table)
        .values(user)
        .returning((
            users::id,
            users::username,
            users::password_hash,
            users::created_at,
        ))
        .get_result(conn)
}

/// Replaces the user's password hash and, in the same transaction, ends every session of theirs
/// (reason `password_change`); returns the ids of the ended sessions.
pub fn change_password(
    conn: &mut DbConnection,
    id: i64,
    password_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    super::write_transaction(conn, |conn| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set(users::password_hash.eq(password_hash))
            .execute(conn)?;
        super::sessions::revoke_all_for_user(
            conn,
            id,
            None,
            super::sessions::RevokeReason::PasswordChange,
            now,
        )
    })
}

/// Deletes the user; their sessions go with them (ON DELETE CASCADE).
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    super::write_transaction(conn, |conn| {
        diesel::delete(
            super::schema::sessions::table.filter(super::schema::sessions::user_id.eq(id)),
        )
        .execute(conn)?;
        diesel::delete(users::table.filter(users::id.eq(id))).execute(conn)
    })
}

/// The user's current password hash, if the user still exists.
pub fn password_hash_of(conn: &mut DbConnection, id: i64) -> QueryResult<Option<String>> {
    users::table
        .filter(users::id.eq(id))
        .select(users::password_hash)
        .first(conn)
        .optional()
}

/// Disables (`Some(now)`) or enables (`None`) the user named by `key`; a disabled user's sessions
/// all end (reason `revoked_by_admin`). Returns whether the user exists.
pub fn set_disabled(
    conn: &mut DbConnection,
    key: &str,
    disabled_at: Option<NaiveDateTime>,
) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        let id: Option<i64> = users::table
            .filter(users::username_key.eq(key))
            .select(users::id)
            .first(conn)
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        diesel::update(users::table.filter(users::id.eq(id)))
            .set(users::disabled_at.eq(disabled_at))
            .execute(conn)?;
        if let Some(now) = disabled_at {
            super::sessions::revoke_all_for_user(
                conn,
                id,
                None,
                super::sessions::RevokeReason::RevokedByAdmin,
                now,
            )?;
        }
        Ok(true)
    })
}
