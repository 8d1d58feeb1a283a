//! The connection pool, built once at start-up, and the error type of everything that uses it.

use std::time::Duration;

use diesel::ConnectionError;

use super::breaker::Breaker;
use super::connection::{ConnectionManager, DbConnection};
use crate::config::Settings;

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// A failure to reach the database or to run a statement on it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection became free or could be opened within the pool's timeout.
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// The blocking thread that ran the query panicked or was shut down.
    #[error("the database worker thread failed")]
    Blocking,
    /// The circuit breaker is open: a connection could not be opened lately, and a probe has not
    /// reached the database since (see `super::breaker`).
    #[error("the database is unreachable (circuit breaker open)")]
    Down,
}

/// r2d2's own wait (it waits this long only in `Pool::get`, which nothing calls: requests take
/// connections through `Breaker::checkout`, which waits `DB_CONNECT_TIMEOUT_SECONDS` in slices).
/// r2d2 also retries a failed connection attempt after a back-off capped at half of it, so this
/// keeps the pool refilling within 250 ms of the database's return.
const POOL_WAIT: Duration = Duration::from_millis(500);

/// Sends r2d2's background connection errors to our logs instead of the `log` crate, and to the
/// circuit breaker.
struct TracingErrorHandler(Breaker);

impl std::fmt::Debug for TracingErrorHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TracingErrorHandler")
    }
}

impl r2d2::HandleError<ConnectionError> for TracingErrorHandler {
    fn handle_error(&self, error: ConnectionError) {
        if !self.0.is_open() {
            tracing::warn!(%error, "database connection failed");
        }
        self.0.observe_connect_error(&error);
    }
}

/// Opens one connection first so a bad `DATABASE_URL` fails start-up at once with the driver's own
/// message, hands it to `prepare` (migrations), then builds the pool around the same manager;
/// connections it fails to open trip `breaker`.
pub fn build_pool<F>(
    settings: &Settings,
    breaker: &Breaker,
    prepare: F,
) -> Result<DbPool, StartupDbError>
where
    F: FnOnce(&mut DbConnection) -> Result<(), StartupDbError>,
{
    let manager = ConnectionManager::new(settings.database.clone(), settings.db_connect_timeout);
    let mut first = manager.establish().map_err(StartupDbError::Connect)?;
    prepare(&mut first)?;
    drop(first);
    Ok(r2d2::Pool::builder()
        .max_size(settings.db_pool_size)
        .min_idle(Some(settings.db_pool_size.min(2)))
        .connection_timeout(POOL_WAIT)
        .error_handler(Box::new(TracingErrorHandler(breaker.clone())))
        .build_unchecked(manager))
}

/// Why the database could not be prepared at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartupDbError {
    #[error("cannot connect: {0}")]
    Connect(ConnectionError),
    #[error("cannot apply migrations: {0}")]
    Migrate(String),
}
