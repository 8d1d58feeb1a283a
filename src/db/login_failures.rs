//! Failed logins, the shared memory of the throttle: every instance on one database sees the
//! same counts.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;

use super::schema::login_failures;
use super::DbConnection;

/// Failures in a window: how many, and the oldest and newest of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureCount {
    pub count: i64,
    pub oldest: Option<NaiveDateTime>,
    pub newest: Option<NaiveDateTime>,
}

/// `cleared` values: a failure that counts, one forgiven by a later success (still counted per
/// IP), and an attempt whose password is being checked right now.
pub const FAILED: i32 = 0;
pub const FORGIVEN: i32 = 1;
pub const PENDING: i32 = 2;

/// Records an attempt as pending before its password is checked; returns the row id, to be
/// confirmed as a failure or deleted. (A process that dies mid-check leaves it pending, which
/// counts for nothing and is purged with the window.)
pub fn record(
    conn: &mut DbConnection,
    username_key: &str,
    ip: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::username_key.eq(username_key),
            login_failures::ip.eq(ip),
            login_failures::created_at.eq(now),
            login_failures::cleared.eq(PENDING),
        ))
        .returning(login_failures::id)
        .get_result(conn)
}

/// The pending attempt `id` failed: it now counts for the pair and the IP.
pub fn confirm(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(login_failures::table.filter(login_failures::id.eq(id)))
        .set(login_failures::cleared.eq(FAILED))
        .execute(conn)
}

/// Removes one recorded attempt (it succeeded, or was refused before being tried).
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::id.eq(id))).execute(conn)
}

/// Failures for this username from this IP since `since`, except the row `exclude`; failures
/// forgiven by a success and attempts still pending (possibly right) do not count.
pub fn count_for_pair(
    conn: &mut DbConnection,
    username_key: &str,
    ip: &str,
    since: NaiveDateTime,
    exclude: i64,
) -> QueryResult<FailureCount> {
    let rows = recent_from(ip, since, exclude)
        .filter(login_failures::username_key.eq(username_key.to_owned()))
        .filter(login_failures::cleared.eq(FAILED));
    summarize(conn, rows)
}

/// All failures from this IP since `since`, whatever the username, forgiven or not, except
/// `exclude`; attempts still pending do not count (they are not known to be failures).
pub fn count_for_ip(
    conn: &mut DbConnection,
    ip: &str,
    since: NaiveDateTime,
    exclude: i64,
) -> QueryResult<FailureCount> {
    let rows = recent_from(ip, since, exclude).filter(login_failures::cleared.ne(PENDING));
    summarize(conn, rows)
}

type Rows = login_failures::BoxedQuery<'static, crate::db::connection::MultiBackend>;

fn recent_from(ip: &str, since: NaiveDateTime, exclude: i64) -> Rows {
    login_failures::table
        .filter(login_failures::id.ne(exclude))
        .filter(login_failures::ip.eq(ip.to_owned()))
        .filter(login_failures::created_at.gt(since))
        .into_boxed()
}

/// How many rows, and the oldest and newest of them.
fn summarize(conn: &mut DbConnection, rows: Rows) -> QueryResult<FailureCount> {
    let (count, oldest, newest) = rows
        .select((
            count_star(),
            min(login_failures::created_at),
            max(login_failures::created_at),
        ))
        .first::<(i64, Option<NaiveDateTime>, Option<NaiveDateTime>)>(conn)?;
    Ok(FailureCount {
        count,
        oldest,
        newest,
    })
}

/// A successful login forgives the pair's failures.
pub fn clear_pair(conn: &mut DbConnection, username_key: &str, ip: &str) -> QueryResult<usize> {
    diesel::update(
        login_failures::table
            .filter(login_failures::username_key.eq(username_key))
            .filter(login_failures::ip.eq(ip))
            .filter(login_failures::cleared.eq(FAILED)),
    )
    .set(login_failures::cleared.eq(FORGIVEN))
    .execute(conn)
}

/// Deletes up to `batch` failures older than `cutoff`.
pub fn delete_older_than(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    // Ids first, then the delete: a bounded batch whatever the table holds.
    let ids: Vec<i64> = login_failures::table
        .filter(login_failures::created_at.lt(cutoff))
        .select(login_failures::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(login_failures::table.filter(login_failures::id.eq_any(ids))).execute(conn)
}
