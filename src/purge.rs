//! Retention: marks overdue sessions expired, then deletes ended sessions, old events and old
//! login failures, in bounded batches (each statement touches at most `PURGE_BATCH_SIZE` rows and
//! commits on its own, so no lock is held long enough to stall logins). Two purgers at once only
//! share the work: a row already gone is simply not deleted twice.

use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime};
use diesel::QueryResult;

use crate::config::Settings;
use crate::db::breaker::Breaker;
use crate::db::pool::StartupDbError;
use crate::db::sessions::Ended;
use crate::db::{
    self, events, invalidations, login_failures, migrations, register_attempts, sessions,
    DbConnection, DbPool,
};

/// How long SQLite's session invalidation log keeps an entry.
const INVALIDATION_LOG_SECONDS: i64 = 3600;

/// What one purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub expired: usize,
    pub sessions_deleted: usize,
    pub events_deleted: usize,
    pub failures_deleted: usize,
    /// Registration throttle rows past `REGISTER_WINDOW_SECONDS` (not in the printed line, whose
    /// format scripts parse).
    pub registrations_deleted: usize,
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "purged: {} sessions expired, {} sessions deleted, {} events deleted, {} login failures deleted",
            self.expired, self.sessions_deleted, self.events_deleted, self.failures_deleted
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("database error: DATABASE_URL ({target}): {source}")]
    Connect {
        target: String,
        source: StartupDbError,
    },
    #[error("purge failed: {0}")]
    Query(#[from] diesel::result::Error),
}

/// One purge on a connection of its own (the `tessera purge` command); applies pending
/// migrations first so it works on a database no server has opened yet.
pub fn run(settings: &Settings) -> Result<PurgeReport, PurgeError> {
    let mut conn =
        migrations::connect_migrated(settings).map_err(|source| PurgeError::Connect {
            target: settings.database.redacted(),
            source,
        })?;
    Ok(purge(&mut conn, settings)?)
}

/// Every step of the purge, batch after batch, until nothing is left to do.
pub fn purge(conn: &mut DbConnection, settings: &Settings) -> QueryResult<PurgeReport> {
    let batch = settings.retention.batch_size;
    let now = db::now();
    let session_cutoff = now - Duration::days(settings.retention.session_retention_days);
    let event_cutoff = now - Duration::days(settings.retention.event_retention_days);
    let failure_cutoff = now - Duration::seconds(settings.throttle.login_window_seconds);
    let register_cutoff = now - Duration::seconds(settings.throttle.register_window_seconds);
    if matches!(conn, DbConnection::Sqlite(_)) {
        // Every instance reads the log within milliseconds; an hour is plenty.
        let log_cutoff = now.and_utc().timestamp() - INVALIDATION_LOG_SECONDS;
        invalidations::delete_before(conn, log_cutoff)?;
    }
    Ok(PurgeReport {
        expired: expire_all(conn, now, batch)?,
        sessions_deleted: delete_all_ended(conn, session_cutoff, batch)?,
        events_deleted: in_batches(batch, || {
            events::delete_older_than(conn, event_cutoff, batch)
        })?,
        failures_deleted: in_batches(batch, || {
            login_failures::delete_older_than(conn, failure_cutoff, batch)
        })?,
        registrations_deleted: in_batches(batch, || {
            register_attempts::delete_older_than(conn, register_cutoff, batch)
        })?,
    })
}

/// Every overdue active session marked `expired`, batch after batch, oldest expiry first.
fn expire_all(conn: &mut DbConnection, now: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    by_expiry(|from| sessions::expire_overdue(conn, now, from, batch))
}

/// Every session that ended before `cutoff` deleted, batch after batch: the logged-out and
/// revoked ones first, then the expired ones, each kind in expiry order.
fn delete_all_ended(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    let mut total = 0;
    for kind in [Ended::Inactive, Ended::Expired] {
        total += by_expiry(|from| sessions::delete_ended_before(conn, kind, cutoff, from, batch))?;
    }
    Ok(total)
}

/// Runs `step` from the start of the expiry order, then from wherever it says the next batch
/// starts, until it says nothing is left; returns the rows it changed in all.
fn by_expiry(
    mut step: impl FnMut(Option<NaiveDateTime>) -> QueryResult<(usize, Option<NaiveDateTime>)>,
) -> QueryResult<usize> {
    let (mut total, mut from) = (0, None);
    loop {
        let (changed, next) = step(from)?;
        total += changed;
        match next {
            Some(next) => from = Some(next),
            None => return Ok(total),
        }
    }
}

fn in_batches(batch: i64, mut step: impl FnMut() -> QueryResult<usize>) -> QueryResult<usize> {
    let mut total = 0;
    loop {
        let done = step()?;
        total += done;
        if (done as i64) < batch {
            return Ok(total);
        }
    }
}

/// The background purge of `tessera serve`: every `PURGE_INTERVAL_SECONDS`, on a blocking thread;
/// skipped while the database is unreachable (the circuit breaker is open).
pub fn spawn_background(
    pool: DbPool,
    breaker: Breaker,
    settings: Settings,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let every = settings.retention.purge_interval_seconds;
    if every == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(StdDuration::from_secs(every));
        loop {
            ticker.tick().await;
            if breaker.is_open() {
                tracing::info!("purge skipped: the database is unreachable");
                continue;
            }
            let (pool, breaker, settings) = (pool.clone(), breaker.clone(), settings.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                let timeout = settings.db_connect_timeout;
                let mut conn = breaker
                    .checkout(&pool, timeout)
                    .map_err(|e| e.to_string())?;
                purge(&mut conn, &settings).map_err(|error| {
                    breaker.observe_query_error(&error);
                    error.to_string()
                })
            })
            .await;
            match outcome {
                Ok(Ok(report)) => {
                    metrics.expired(report.expired);
                    tracing::info!(%report, "purge finished");
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "purge failed; will retry at the next interval")
                }
                Err(error) => tracing::warn!(%error, "purge task failed"),
            }
        }
    });
}
