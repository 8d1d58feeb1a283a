//! What every handler shares: the pool, the password hasher, the cookie settings. Also the one way
//! handlers reach the database: on a blocking thread, never on an actix worker.

use actix_web::web;
use diesel::QueryResult;

use std::sync::Arc;

use crate::auth::cache::SessionCache;
use crate::auth::cookie::SessionCookies;
use crate::auth::password::PasswordHasher;
use crate::config::{FingerprintMode, SessionSettings, Settings};
use crate::db::breaker::Breaker;
use crate::db::events::{self, NewEvent};
use crate::db::{DbConnection, DbError, DbPool};

pub struct AppState {
    pool: DbPool,
    /// Open while the database is unreachable: [`AppState::db`] answers at once instead of
    /// waiting for a connection (see [`crate::db::breaker`]).
    pub breaker: Breaker,
    pub settings: Settings,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub login_locks: crate::throttle::PairLocks,
    pub hasher: PasswordHasher,
    pub cookies: SessionCookies,
    pub sessions: SessionSettings,
    pub fingerprint: FingerprintMode,
    /// Verified sessions; see [`crate::auth::cache`]. Shared with the thread that evicts what
    /// other instances revoke ([`crate::auth::sync`]).
    pub session_cache: Arc<SessionCache>,
}

impl AppState {
    pub fn new(pool: DbPool, breaker: Breaker, settings: &Settings) -> Self {
        Self {
            pool,
            breaker,
            settings: settings.clone(),
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new()),
            login_locks: crate::throttle::PairLocks::new(),
            hasher: PasswordHasher::new(settings.argon2_max_concurrency, settings.argon2_max_queue),
            cookies: SessionCookies::new(settings.cookie.clone()),
            sessions: settings.session,
            fingerprint: settings.fingerprint,
            session_cache: Arc::new(SessionCache::new(settings.session_cache_size)),
        }
    }

    /// Call after ending any of the user's sessions: this instance stops trusting its copies at
    /// once (other instances hear of it through the database).
    pub fn forget_sessions_of(&self, user_id: i64) {
        self.session_cache.forget_users(&[user_id]);
    }

    /// Call after ending the session with this token hash.
    pub fn forget_session_token(&self, token_hash: &str) {
        self.session_cache.forget_token(token_hash);
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Writes audit events; a failure is logged and never fails the request that caused them.
    pub async fn record(&self, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        for event in &events {
            self.metrics.observe(event.kind);
        }
        if let Err(error) = self
            .db(move |conn| events::insert_many(conn, &events))
            .await
        {
            tracing::warn!(%error, "could not write audit events");
        }
    }

    /// Runs `query` with a pooled connection on actix's blocking thread pool; [`DbError::Down`]
    /// at once while the circuit breaker is open.
    pub async fn db<T, F>(&self, query: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.breaker.is_open() {
            return Err(DbError::Down);
        }
        let pool = self.pool.clone();
        let breaker = self.breaker.clone();
        let timeout = self.settings.db_connect_timeout;
        web::block(move || {
            let mut conn = breaker.checkout(&pool, timeout)?;
            query(&mut conn).map_err(|error| {
                breaker.observe_query_error(&error);
                DbError::Query(error)
            })
        })
        .await
        .map_err(|_| DbError::Blocking)?
    }
}
