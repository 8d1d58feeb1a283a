//! Persistence: one connection type over PostgreSQL and SQLite, the pool, embedded migrations and
//! the queries. Nothing here knows about HTTP; functions return diesel results.

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

/// The current UTC time at the precision both backends store (microseconds), so a value read back
/// equals the value written.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}
