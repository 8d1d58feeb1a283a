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

/// What became of a recorded attempt, stored as a number in `login_failures.cleared`: a failure
/// that counts, one forgiven by a later success (still counted per IP), or an attempt whose
/// password is being checked right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Integer)]
pub enum Outcome {
    Failed,
    Forgiven,
    Pending,
}

impl Outcome {
    pub const ALL: [Self; 3] = [Self::Failed, Self::Forgiven, Self::Pending];

    /// The stored number (0, 1, 2: the values of earlier versions).
    pub fn code(self) -> &'static i32 {
        match self {
            Self::Failed => &0,
            Self::Forgiven => &1,
            Self::Pending => &2,
        }
    }
}

crate::db::column::integer_enum!(Outcome);

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
            login_failures::cleared.eq(Outcome::Pending),
        ))
        .returning(login_failures::id)
        .get_result(conn)
}

/// The pending attempt `id` failed: it now counts for the pair and the IP.
pub fn confirm(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::update(login_failures::table.filter(login_failures::id.eq(id)))
        .set(login_failures::cleared.eq(Outcome::Failed))
        .execute(conn)
}

/// Removes one recorded attempt (it succeeded, or was refused before being tried).
pub fn delete(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::id.eq(id))).execute(conn)
}

/// What the throttle needs to know about a (username, IP) pair and its IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// The pair's failures; those forgiven by a success do not count.
    pub pair: FailureCount,
    /// Every failure from the IP, forgiven or not (zero when `whole_ip` was false).
    pub ip: FailureCount,
    /// Attempts from the IP whose password is being checked right now, recorded since
    /// `pending_since` (older ones belong to a process that died mid-check).
    pub ip_pending: i64,
}

/// `(username_key, cleared, count, oldest, newest)` of one group of rows.
type Group = (
    String,
    Outcome,
    i64,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// The pair's and the IP's rows since `since`, except the row `exclude`, counted in **one**
/// query (grouped by username and state, so a few rows come back). With `whole_ip` false only the
/// pair's rows are read (the per-IP limit is off).
pub fn tally(
    conn: &mut DbConnection,
    username_key: &str,
    ip: &str,
    since: NaiveDateTime,
    pending_since: NaiveDateTime,
    whole_ip: bool,
    exclude: Option<i64>,
) -> QueryResult<Tally> {
    let rows = login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::created_at.gt(since))
        .filter(
            login_failures::cleared
                .ne(Outcome::Pending)
                .or(login_failures::created_at.gt(pending_since)),
        )
        .filter(
            login_failures::username_key
                .eq(username_key)
                .or(whole_ip.into_sql::<diesel::sql_types::Bool>()),
        )
        // Row ids start at 1.
        .filter(login_failures::id.ne(exclude.unwrap_or(0)));
    let groups: Vec<Group> = rows
        .group_by((login_failures::username_key, login_failures::cleared))
        .select((
            login_failures::username_key,
            login_failures::cleared,
            count_star(),
            min(login_failures::created_at),
            max(login_failures::created_at),
        ))
        .load(conn)?;
    let mut tally = Tally::default();
    for (key, cleared, count, oldest, newest) in groups {
        let group = FailureCount {
            count,
            oldest,
            newest,
        };
        if cleared == Outcome::Pending {
            tally.ip_pending += count;
            continue;
        }
        if cleared == Outcome::Failed && key == username_key {
            tally.pair = tally.pair.merge(group);
        }
        if whole_ip {
            tally.ip = tally.ip.merge(group);
        }
    }
    Ok(tally)
}

impl FailureCount {
    fn merge(self, other: Self) -> Self {
        let pick =
            |a: Option<NaiveDateTime>, b: Option<NaiveDateTime>, f: fn(_, _) -> _| match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            };
        Self {
            count: self.count + other.count,
            oldest: pick(self.oldest, other.oldest, std::cmp::min),
            newest: pick(self.newest, other.newest, std::cmp::max),
        }
    }
}

/// A successful login forgives the pair's failures.
pub fn clear_pair(conn: &mut DbConnection, username_key: &str, ip: &str) -> QueryResult<usize> {
    diesel::update(
        login_failures::table
            .filter(login_failures::username_key.eq(username_key))
            .filter(login_failures::ip.eq(ip))
            .filter(login_failures::cleared.eq(Outcome::Failed)),
    )
    .set(login_failures::cleared.eq(Outcome::Forgiven))
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
