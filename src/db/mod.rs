//! Persistence: one connection type over PostgreSQL and SQLite, the pool, embedded migrations and
//! the queries. Nothing here knows about HTTP; functions return diesel results.

pub mod breaker;
pub mod connection;
pub mod events;
pub mod invalidations;
pub mod login_failures;
pub mod migrations;
pub mod pool;
pub mod schema;
pub mod sessions;
pub mod users;

pub use connection::DbConnection;
pub use pool::{DbError, DbPool};

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::{Connection, QueryResult};

/// The current UTC time at the precision both backends store (microseconds), so a value read back
/// equals the value written.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
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
