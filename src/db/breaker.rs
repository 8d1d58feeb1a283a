//! The database circuit breaker: once a connection to the database cannot be opened, requests get
//! their 503 at once instead of each waiting `DB_CONNECT_TIMEOUT_SECONDS` for the pool, while one
//! background probe retries.
//!
//! - **Tripped** ([`Breaker::trip`]) by connection-level failures only: the pool failing to open a
//!   new connection (reported by r2d2's error handler, see `super::pool`), or a statement failing
//!   because its connection was closed or lost ([`is_connection_lost`]). Not by SQLite's "database
//!   is locked" or PostgreSQL's "too many clients": those are load, not an outage.
//! - **While open**, [`Breaker::checkout`] (the one way request paths and the background purge take
//!   a pooled connection) answers [`DbError::Down`] at once, which is a 503 with `Retry-After`.
//!   A request already waiting for a connection when the breaker trips gives up within
//!   [`CHECKOUT_SLICE`].
//! - **One probe** (a plain thread, never a request or a blocking-pool thread) opens a fresh
//!   connection every [`PROBE_EVERY`] with a short connect timeout and closes the breaker when one
//!   answers, so the service serves again well within a second of the database's return.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::ConnectionError;

use super::connection::ConnectionManager;
use super::pool::{DbError, DbPool, PooledConnection};
use crate::config::DatabaseTarget;

/// How often the probe tries a fresh connection while the breaker is open.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The probe's connect timeout (libpq counts whole seconds, so 1 s is the least).
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a request waiting for a pooled connection checks whether the breaker has tripped.
pub const CHECKOUT_SLICE: Duration = Duration::from_millis(50);

/// Shared by the application state, the pool's error handler, the purge and the probe.
#[derive(Clone)]
pub struct Breaker(Arc<Inner>);

struct Inner {
    open: AtomicBool,
    probing: AtomicBool,
    trips: AtomicU64,
    /// What the probe connects to.
    target: DatabaseTarget,
}

impl Breaker {
    /// A closed breaker for this database.
    pub fn new(target: DatabaseTarget) -> Self {
        Self(Arc::new(Inner {
            open: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            trips: AtomicU64::new(0),
            target,
        }))
    }

    /// Whether the database is considered down (requests are answered 503 at once).
    pub fn is_open(&self) -> bool {
        self.0.open.load(Ordering::Acquire)
    }

    /// How many times the breaker has opened since start-up.
    pub fn trips(&self) -> u64 {
        self.0.trips.load(Ordering::Relaxed)
    }

    /// The database cannot be reached: open the breaker (if it is not already) and start the probe.
    pub fn trip(&self, cause: &dyn std::fmt::Display) {
        if self.0.open.swap(true, Ordering::AcqRel) {
            return;
        }
        self.0.trips.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %cause,
            "database unreachable: answering 503 at once until a probe connects again"
        );
        if self
            .0
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let weak = Arc::downgrade(&self.0);
        let spawned = std::thread::Builder::new()
            .name("tessera-db-probe".into())
            .spawn(move || probe(weak));
        if let Err(error) = spawned {
            // Without a probe nothing would close the breaker: stay closed rather than down.
            tracing::error!(%error, "cannot start the database probe");
            self.0.probing.store(false, Ordering::Release);
            self.0.open.store(false, Ordering::Release);
        }
    }

    /// Trips the breaker when a pool connection could not be opened; other connection errors
    /// (a failed health check of an idle connection, SQLite's set-up statements hitting a lock)
    /// are not an outage by themselves.
    pub fn observe_connect_error(&self, error: &ConnectionError) {
        if let ConnectionError::BadConnection(message) = error {
            if !is_load(message) {
                self.trip(error);
            }
        }
    }

    /// Trips the breaker when a statement failed because its connection was lost.
    pub fn observe_query_error(&self, error: &DieselError) {
        if is_connection_lost(error) {
            self.trip(error);
        }
    }

    /// A pooled connection, waiting at most `timeout` for one; [`DbError::Down`] at once while the
    /// breaker is open, and as soon as it opens while waiting.
    pub fn checkout(&self, pool: &DbPool, timeout: Duration) -> Result<PooledConnection, DbError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_open() {
                return Err(DbError::Down);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match pool.get_timeout(left.min(CHECKOUT_SLICE)) {
                Ok(conn) => return Ok(conn),
                Err(error) if Instant::now() >= deadline => {
                    return Err(if self.is_open() {
                        DbError::Down
                    } else {
                        DbError::Pool(error)
                    })
                }
                Err(_) => {}
            }
        }
    }

    fn close(&self, down_for: Duration) {
        if self.0.open.swap(false, Ordering::AcqRel) {
            tracing::info!(
                down_for_ms = down_for.as_millis() as u64,
                "database reachable again: serving requests"
            );
        }
    }
}

/// Tries a fresh connection every [`PROBE_EVERY`] until one answers, then closes the breaker.
/// Ends early when the application (the last [`Breaker`]) is gone.
fn probe(weak: Weak<Inner>) {
    let started = Instant::now();
    let manager = match weak.upgrade() {
        Some(inner) => ConnectionManager::new(inner.target.clone(), PROBE_CONNECT_TIMEOUT),
        None => return,
    };
    loop {
        std::thread::sleep(PROBE_EVERY);
        if weak.strong_count() == 0 {
            return;
        }
        let answered = manager
            .establish()
            .map_err(|e| e.to_string())
            .and_then(|mut conn| ping(&mut conn).map_err(|e| e.to_string()));
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let breaker = Breaker(inner);
        match answered {
            Ok(()) => {
                // Cleared before closing: a trip right after this starts a new probe.
                breaker.0.probing.store(false, Ordering::Release);
                breaker.close(started.elapsed());
                return;
            }
            Err(error) => tracing::debug!(%error, "database probe: still unreachable"),
        }
    }
}

fn ping(conn: &mut super::DbConnection) -> diesel::QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// A failure that says the database is busy rather than gone.
fn is_load(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "database is locked",
        "database table is locked",
        "too many clients",
        "remaining connection slots are reserved",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Whether a statement failed because its connection to the database was closed or lost (the
/// server stopped, restarted or went away), as opposed to the statement or a lock.
pub fn is_connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message().to_ascii_lowercase();
            !is_load(&message)
                && [
                    "terminating connection",
                    "server closed the connection",
                    "connection to server",
                    "no connection to the server",
                    "the database system is shutting down",
                    "the database system is starting up",
                ]
                .iter()
                .any(|needle| message.contains(needle))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(message: &str) -> DieselError {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    #[test]
    fn lost_connections_trip_and_locks_do_not() {
        for message in [
            "terminating connection due to administrator command",
            "server closed the connection unexpectedly",
            "the database system is shutting down",
        ] {
            assert!(is_connection_lost(&unknown(message)), "{message}");
        }
        assert!(is_connection_lost(&DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("closed".to_owned())
        )));
        for message in [
            "database is locked",
            "database table is locked",
            "sorry, too many clients already",
            "duplicate key value violates unique constraint",
        ] {
            assert!(!is_connection_lost(&unknown(message)), "{message}");
        }
        assert!(!is_connection_lost(&DieselError::NotFound));
    }

    #[test]
    fn only_failures_to_open_a_connection_trip() {
        let breaker = Breaker::new(DatabaseTarget::Sqlite("unused.db".into()));
        breaker.observe_connect_error(&ConnectionError::CouldntSetupConfiguration(unknown(
            "database is locked",
        )));
        breaker.observe_connect_error(&ConnectionError::BadConnection(
            "FATAL: sorry, too many clients already".into(),
        ));
        breaker.observe_query_error(&unknown("database is locked"));
        assert!(!breaker.is_open());
        assert_eq!(breaker.trips(), 0);
    }

    #[test]
    fn a_failed_connect_trips_and_the_probe_closes_it_once_the_database_answers() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let breaker = Breaker::new(DatabaseTarget::Sqlite(dir.path().join("probe.db")));
        breaker.observe_connect_error(&ConnectionError::BadConnection("connection refused".into()));
        assert!(breaker.is_open());
        breaker.trip(&"again");
        assert_eq!(breaker.trips(), 1, "an open breaker does not trip again");
        let started = Instant::now();
        while breaker.is_open() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the probe did not close the breaker"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            started.elapsed() >= PROBE_EVERY / 2,
            "{:?}",
            started.elapsed()
        );
        breaker.observe_query_error(&unknown("server closed the connection unexpectedly"));
        assert!(breaker.is_open());
        assert_eq!(breaker.trips(), 2);
    }
}
