//! Where the news that a user's sessions changed comes from: triggers on `sessions` and `users`
//! (migration 000004) send the user id with PostgreSQL's NOTIFY, or append it to SQLite's
//! `session_invalidations` log. These are the queries that read it; what to do with it is
//! [`crate::auth::sync`]'s business.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{ConnectionError, PgConnection};

use super::connection::with_params;
use super::schema::session_invalidations;
use super::DbConnection;

/// The NOTIFY channel the PostgreSQL triggers send on.
pub const CHANNEL: &str = "tessera_sessions";

/// A dedicated PostgreSQL connection that listens on [`CHANNEL`]. TCP keepalives and a user
/// timeout make a silently dead server show up as an error within seconds rather than never.
pub fn listen(url: &str, connect_timeout: Duration) -> Result<PgConnection, ConnectionError> {
    let url = with_params(
        url,
        &[
            (
                "connect_timeout",
                connect_timeout.as_secs().max(1).to_string(),
            ),
            ("keepalives", "1".into()),
            ("keepalives_idle", "5".into()),
            ("keepalives_interval", "2".into()),
            ("keepalives_count", "2".into()),
            ("tcp_user_timeout", "5000".into()),
            ("application_name", "tessera-session-sync".into()),
        ],
    );
    let mut conn = PgConnection::establish(&url)?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The payloads (user ids, as text) of every notification received so far; does not wait. An
/// error means the connection is gone.
pub fn received(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    conn.notifications_iter()
        .map(|n| n.map(|n| n.payload))
        .collect()
}

/// A round trip on the listening connection, to find out that it still works.
pub fn ping(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// SQLite: the newest sequence number in the log (0 when empty).
pub fn latest(conn: &mut DbConnection) -> QueryResult<i64> {
    session_invalidations::table
        .select(diesel::dsl::max(session_invalidations::seq))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}

/// SQLite: `(seq, user_id)` of the log entries after `seq`, oldest first, at most `limit`.
pub fn after(conn: &mut DbConnection, seq: i64, limit: i64) -> QueryResult<Vec<(i64, i64)>> {
    session_invalidations::table
        .filter(session_invalidations::seq.gt(seq))
        .order(session_invalidations::seq.asc())
        .select((session_invalidations::seq, session_invalidations::user_id))
        .limit(limit)
        .load(conn)
}

/// SQLite: deletes log entries written before `unix_seconds`; the purge keeps the log short.
pub fn delete_before(conn: &mut DbConnection, unix_seconds: i64) -> QueryResult<usize> {
    diesel::delete(
        session_invalidations::table.filter(session_invalidations::created_at.lt(unix_seconds)),
    )
    .execute(conn)
}
