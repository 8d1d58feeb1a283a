//! Persistence: one connection type over PostgreSQL and SQLite, the pool, embedded migrations and
//! the queries. Nothing here knows about HTTP; functions return diesel results.

pub mod breaker;
pub mod column;
pub mod connection;
pub mod events;
pub mod invalidations;
pub mod login_failures;
pub mod migrations;
pub mod pool;
pub mod register_attempts;
pub mod schema;
pub mod sessions;
pub mod users;

pub use connection::DbConnection;
pub use pool::{DbError, DbPool};

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::{Connection, QueryResult};

/// Seconds added to this process's clock; 0 except in tests of clock skew
/// ([`set_clock_offset`]).
static CLOCK_OFFSET_SECONDS: AtomicI64 = AtomicI64::new(0);

/// The variable that shifts the clock of a `tessera` process, for tests that run a server whose
/// clock disagrees with the database's (`tests/api/edges.rs`). Not a setting: it is read by the
/// binary only, and announced with a warning at start-up.
pub const CLOCK_OFFSET_VAR: &str = "TESSERA_TEST_CLOCK_OFFSET_SECONDS";

/// Shifts [`now`] by `seconds` for the whole process.
pub fn set_clock_offset(seconds: i64) {
    CLOCK_OFFSET_SECONDS.store(seconds, Ordering::Relaxed);
}

/// The current UTC time at the precision both backends store (microseconds), so a value read back
/// equals the value written. It is this host's clock: expiry, throttle windows and audit times
/// are all judged by it, and nothing compares it with the database server's clock.
pub fn now() -> NaiveDateTime {
    let offset = CLOCK_OFFSET_SECONDS.load(Ordering::Relaxed);
    (Utc::now().naive_utc() + chrono::Duration::seconds(offset)).trunc_subsecs(6)
}

/// A transaction that writes. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`): a
/// deferred transaction that reads first cannot upgrade to a write once another connection has
/// committed, and fails at once with "database is locked" instead of waiting out `busy_timeout`.
/// On PostgreSQL, and nested inside another transaction (a savepoint), it is a plain transaction.
pub fn write_transaction<T, F>(conn: &mut DbConnection, work: F) -> QueryResult<T>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<T>,
{
    let immediate = match conn {
        DbConnection::Sqlite(sqlite) => {
            let outermost = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
                .transaction_depth()?
                .is_none();
            if outermost {
                AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
            }
            outermost
        }
        DbConnection::Postgres(_) => false,
    };
    if !immediate {
        return conn.transaction(work);
    }
    type Manager = <DbConnection as Connection>::TransactionManager;
    // As diesel's own `transaction` does (a failed COMMIT is rolled back by the manager itself).
    match work(conn) {
        Ok(value) => Manager::commit_transaction(conn).map(|()| value),
        Err(error) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback),
        },
    }
}
