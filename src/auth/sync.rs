//! Keeps the session cache ([`crate::auth::cache`]) honest across instances: a thread of its own
//! hears which users' sessions changed anywhere and evicts them here.
//!
//! * PostgreSQL: a dedicated connection LISTENs on the triggers' channel and is read every
//!   [`PG_POLL`]; a notification is delivered at commit, so another instance's logout is refused
//!   here within milliseconds.
//! * SQLite: the triggers' log table is read every [`SQLITE_POLL`] (other processes on the same
//!   file, the CLI).
//!
//! Whenever the channel is down (connection lost, a query failed) the cache is switched off and
//! emptied, so requests fall back to the database rather than trust copies that may have missed a
//! revocation; it comes back on, empty, once listening again. While up, the channel renews the
//! cache's lease ([`LEASE`]) each time it proves it has read everything: on PostgreSQL, a NOTIFY
//! the listener sends itself on a channel of its own every [`HEARTBEAT`] and must hear back (a
//! plain round trip would still succeed behind a pooler in transaction mode, where LISTEN
//! silently stops working; `SESSION_SYNC_DATABASE_URL` points the listener at a direct
//! connection); on SQLite, every poll of the log. The thread holds only a weak
//! reference and ends when the server that owns the cache is gone.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::auth::cache::SessionCache;
use crate::config::{DatabaseTarget, Settings};
use crate::db::connection::ConnectionManager;
use crate::db::invalidations;

/// How often the PostgreSQL listener reads what has arrived.
pub const PG_POLL: Duration = Duration::from_millis(10);
/// How often the SQLite log is read.
pub const SQLITE_POLL: Duration = Duration::from_millis(20);
/// Within this time of a commit that ends sessions, every running instance refuses them.
pub const PROPAGATION: Duration = Duration::from_millis(100);

/// For commands that end sessions from outside a server: returning only once running instances
/// have had [`PROPAGATION`] to hear of it means a script that revokes and then checks sees the
/// revocation everywhere.
pub fn await_propagation() {
    thread::sleep(PROPAGATION);
}

/// How often the listening connection sends itself a heartbeat NOTIFY.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// A heartbeat not heard back within this is a deaf listener: the cache goes off.
const ECHO_TIMEOUT: Duration = Duration::from_millis(750);
/// How long the cache may answer after the channel last proved it works: a hung connection or a
/// stalled thread turns it off after this, before any timeout fires.
const LEASE: Duration = Duration::from_secs(1);
/// Waits between reconnection attempts, doubling up to the last.
const RETRY: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// Log entries read per SQLite poll.
const BATCH: i64 = 10_000;

/// Starts the thread that feeds `cache`; does nothing when caching is off.
pub fn spawn(cache: &Arc<SessionCache>, settings: &Settings) -> std::io::Result<()> {
    if !cache.enabled() {
        return Ok(());
    }
    let cache = Arc::downgrade(cache);
    let target = settings.database.clone();
    let sync_url = match &settings.session_sync {
        Some(DatabaseTarget::Postgres(url)) => Some(url.clone()),
        _ => None,
    };
    let timeout = settings.db_connect_timeout;
    thread::Builder::new()
        .name("session-sync".into())
        .spawn(move || match target {
            DatabaseTarget::Postgres(url) => {
                let url = sync_url.unwrap_or(url);
                let mut deafness = Deafness::default();
                run(&cache, || {
                    listen_postgres(&cache, &url, timeout, &mut deafness)
                })
            }
            DatabaseTarget::Sqlite(_) => {
                let manager = ConnectionManager::new(target, timeout);
                run(&cache, || poll_sqlite(&cache, &manager))
            }
        })
        .map(|_| ())
}

/// Why a listening spell ended.
enum Stop {
    /// The cache is gone: the server stopped.
    Gone,
    /// The channel failed (`live`: after it had been working); try again.
    Lost { live: bool, error: String },
}

/// Runs listening spells until the cache is gone, with the cache off between them.
fn run(cache: &Weak<SessionCache>, mut spell: impl FnMut() -> Stop) {
    let mut attempt = 0usize;
    loop {
        match spell() {
            Stop::Gone => return,
            Stop::Lost { live, error } => {
                let Some(cache) = cache.upgrade() else { return };
                cache.set_live(false);
                if live {
                    tracing::warn!(%error, "session cache off until revocations can be heard again");
                    attempt = 0;
                } else {
                    tracing::debug!(%error, "session cache: reconnecting");
                }
            }
        }
        thread::sleep(RETRY[attempt.min(RETRY.len() - 1)]);
        attempt += 1;
        if cache.strong_count() == 0 {
            return;
        }
    }
}

/// Switches the cache on at the start of a spell.
fn go_live(cache: &Weak<SessionCache>) -> Option<Stop> {
    match cache.upgrade() {
        Some(cache) => {
            cache.set_live(true);
            tracing::debug!("session cache on: hearing revocations");
            None
        }
        None => Some(Stop::Gone),
    }
}

fn lost(live: bool, error: impl ToString) -> Stop {
    Stop::Lost {
        live,
        error: error.to_string(),
    }
}

/// Whether the PostgreSQL listener is known to be deaf: its heartbeats do not come back. Kept
/// across reconnections so the warning is written once per spell of deafness, not per attempt.
#[derive(Default)]
struct Deafness {
    warned: bool,
}

fn listen_postgres(
    cache: &Weak<SessionCache>,
    url: &str,
    timeout: Duration,
    deafness: &mut Deafness,
) -> Stop {
    let channel = heartbeat_channel();
    let mut conn = match invalidations::listen(url, timeout, &channel) {
        Ok(conn) => conn,
        Err(e) => return lost(false, e),
    };
    if let Some(stop) = go_live(cache) {
        return stop;
    }
    // The heartbeat awaiting its echo: its number and when it was sent.
    let mut awaiting: Option<(u64, Instant)> = None;
    let mut sent: u64 = 0;
    let mut last_sent: Option<Instant> = None;
    let mut heard = false;
    loop {
        thread::sleep(PG_POLL);
        let Some(cache) = cache.upgrade() else {
            return Stop::Gone;
        };
        match evict_notified(&mut conn, &cache, &channel) {
            Err(e) => return lost(heard, e),
            Ok(echoes) => {
                if let Some((number, _)) = awaiting {
                    if echoes.contains(&number) {
                        // Everything committed before the heartbeat has been read.
                        cache.renew(LEASE);
                        awaiting = None;
                        heard = true;
                        if deafness.warned {
                            tracing::info!("session cache on: heartbeats are heard again");
                            deafness.warned = false;
                        }
                    }
                }
            }
        }
        if let Some((_, at)) = awaiting {
            if at.elapsed() >= ECHO_TIMEOUT {
                if !deafness.warned {
                    tracing::warn!(
                        timeout_ms = ECHO_TIMEOUT.as_millis() as u64,
                        "session cache off: the listening connection does not receive its own \
                         NOTIFY, so revocations made elsewhere cannot be heard (a connection \
                         pooler in transaction mode?); point SESSION_SYNC_DATABASE_URL at a direct \
                         PostgreSQL connection"
                    );
                    deafness.warned = true;
                }
                return lost(false, "a heartbeat NOTIFY did not come back");
            }
        }
        if awaiting.is_none() && last_sent.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
            sent += 1;
            if let Err(e) = invalidations::heartbeat(&mut conn, &channel, &sent.to_string()) {
                return lost(heard, e);
            }
            let now = Instant::now();
            awaiting = Some((sent, now));
            last_sent = Some(now);
        }
    }
}

/// A channel name of this listener's own, so its heartbeats never wake another instance.
fn heartbeat_channel() -> String {
    format!("tessera_heartbeat_{:016x}", rand::random::<u64>())
}

/// Evicts the users named by every notification received so far on the triggers' channel
/// (user ids as text); returns the numbers of the heartbeats received on `heartbeat_channel`.
fn evict_notified(
    conn: &mut diesel::PgConnection,
    cache: &SessionCache,
    heartbeat_channel: &str,
) -> diesel::QueryResult<Vec<u64>> {
    let mut echoes = Vec::new();
    let mut user_ids = Vec::new();
    for notification in invalidations::received(conn)? {
        if notification.channel == heartbeat_channel {
            if let Ok(number) = notification.payload.parse() {
                echoes.push(number);
            }
        } else {
            user_ids.push(notification.payload.parse::<i64>().ok());
        }
    }
    if !user_ids.is_empty() {
        forget(cache, user_ids.into_iter());
    }
    Ok(echoes)
}

fn poll_sqlite(cache: &Weak<SessionCache>, manager: &ConnectionManager) -> Stop {
    let mut conn = match manager.establish() {
        Ok(conn) => conn,
        Err(e) => return lost(false, e),
    };
    let mut seen = match invalidations::latest(&mut conn) {
        Ok(seq) => seq,
        Err(e) => return lost(false, e),
    };
    if let Some(stop) = go_live(cache) {
        return stop;
    }
    loop {
        thread::sleep(SQLITE_POLL);
        let Some(cache) = cache.upgrade() else {
            return Stop::Gone;
        };
        let entries = match invalidations::after(&mut conn, seen, BATCH) {
            Ok(entries) => entries,
            Err(e) => return lost(true, e),
        };
        let Some(&(newest, _)) = entries.last() else {
            cache.renew(LEASE);
            continue;
        };
        // Numbers are never reused and commits are serial, so a hole means entries were deleted
        // before this instance read them: anything may have changed.
        if entries[0].0 != seen + 1 {
            cache.clear();
        } else {
            forget(&cache, entries.iter().map(|&(_, user_id)| Some(user_id)));
        }
        seen = newest;
        if entries.len() < BATCH as usize {
            cache.renew(LEASE);
        }
    }
}

/// Evicts the named users; anything unreadable empties the whole cache.
fn forget(cache: &SessionCache, user_ids: impl Iterator<Item = Option<i64>>) {
    let ids: Option<Vec<i64>> = user_ids.collect();
    match ids {
        Some(ids) => cache.forget_users(&ids),
        None => cache.clear(),
    }
}
