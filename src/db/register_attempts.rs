//! Registrations per client address, the memory of the registration throttle: counted before
//! the password is hashed, so a parallel burst is counted while it is still in flight.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use super::schema::register_attempts;
use super::DbConnection;

/// Registrations from `ip_key` since `since` (done, or pending since `pending_since`), except
/// `exclude`, and the oldest of them.
pub fn count(
    conn: &mut DbConnection,
    ip_key: &str,
    since: NaiveDateTime,
    pending_since: NaiveDateTime,
    exclude: Option<i64>,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    register_attempts::table
        .filter(register_attempts::ip_key.eq(ip_key))
        .filter(register_attempts::created_at.gt(since))
        .filter(
            register_attempts::done
                .eq(true)
                .or(register_attempts::created_at.gt(pending_since)),
        )
        // Row ids start at 1.
        .filter(register_attempts::id.ne(exclude.unwrap_or(0)))
        .select((count_star(), min(register_attempts::created_at)))
        .first(conn)
}

/// Records a registration as pending; returns its id.
pub fn record(conn: &mut DbConnection, ip_key: &str, now: NaiveDateTime) -> QueryResult<i64> {
    diesel::insert_into(register_attempts::table)
        .values((
            register_attempts::ip_key.eq(ip_key),
            register_attempts::created_at.eq(now),
            register_attempts::done.eq(false),
        ))
        .returning(register_attempts::id)
        .get_result(conn)
}

/// The account was created: the registration counts for the whole window.
pub fn complete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(register_attempts::table.filter(register_attempts::id.eq(id)))
        .set(register_attempts::done.eq(true))
        .execute(conn)
}

/// The registration was refused or failed: it does not count.
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(register_attempts::table.filter(register_attempts::id.eq(id))).execute(conn)
}

/// Deletes up to `batch` rows older than `cutoff`.
pub fn delete_older_than(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    let ids: Vec<i64> = register_attempts::table
        .filter(register_attempts::created_at.lt(cutoff))
        .select(register_attempts::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(register_attempts::table.filter(register_attempts::id.eq_any(ids))).execute(conn)
}
