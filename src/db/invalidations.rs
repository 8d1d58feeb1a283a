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

/// A dedicated PostgreSQL connection that listens on [`CHANNEL`] and on `heartbeat_channel` (its
/// own, see [`heartbeat`]). TCP keepalives and a user timeout make a silently dead server show
/// up as an error within seconds rather than never. Errors are scrubbed of the URL's password.
pub fn listen(
    url: &str,
    connect_timeout: Duration,
    heartbeat_channel: &str,
) -> Result<PgConnection, ConnectionError> {
    let secrets = crate::redact::secrets_of(url);
    let scrub = |error: ConnectionError| match error {
        ConnectionError::BadConnection(message) => {
            ConnectionError::BadConnection(crate::redact::scrub(&message, &secrets))
        }
        ConnectionError::InvalidConnectionUrl(message) => {
            ConnectionError::InvalidConnectionUrl(crate::redact::scrub(&message, &secrets))
        }
        other => other,
    };
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
    let mut conn = PgConnection::establish(&url).map_err(scrub)?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {heartbeat_channel}"))
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A notification received on the listening connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub channel: String,
    pub payload: String,
}

/// Every notification received so far; does not wait. An error means the connection is gone.
pub fn received(conn: &mut PgConnection) -> QueryResult<Vec<Received>> {
    conn.notifications_iter()
        .map(|n| {
            n.map(|n| Received {
                channel: n.channel,
                payload: n.payload,
            })
        })
        .collect()
}

/// Sends `payload` on `channel` from the listening connection itself. The listener must hear it
/// back: a round trip alone proves nothing, since behind a pooler in transaction mode (PgBouncer)
/// queries still work while LISTEN silently does not. Notifications arrive in commit order, so
/// once this one is back, every notification committed before it has been read.
pub fn heartbeat(conn: &mut PgConnection, channel: &str, payload: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(channel)
        .bind::<diesel::sql_types::Text, _>(payload)
        .execute(conn)
        .map(|_| ())
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
