//! Argon2id hashing and verification, off the actix workers and bounded in number.
//!
//! Each computation takes ~19 MiB and a core for tens of milliseconds; without a bound, a flood of
//! logins would take memory and every blocking thread. A semaphore lets `max_concurrency` run at
//! once; the rest wait asynchronously, holding no memory beyond their request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::web;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::ApiError;

/// Hashes and verifies passwords with Argon2id at the crate's defaults (OWASP: m=19456 KiB, t=2, p=1).
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the username is unknown so that
    /// "no such user" costs the same as "wrong password".
    dummy_hash: Arc<str>,
    /// Computations waiting for a permit or running.
    in_flight: Arc<AtomicUsize>,
}

impl PasswordHasher {
    pub fn new(max_concurrency: usize) -> Self {
        let random = SaltString::generate(&mut OsRng);
        let dummy_hash = hash_blocking(random.as_str()).unwrap_or_default();
        Self {
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            dummy_hash: dummy_hash.into(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.run(move || {
            hash_blocking(password.expose())
                .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user) the same work is
    /// done against a dummy hash and the answer is `false`.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: Password,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move || match PasswordHash::new(&hash) {
                Ok(parsed) => Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok(),
                Err(error) => {
                    tracing::error!(%error, "stored password hash cannot be parsed");
                    false
                }
            })
            .await?;
        Ok(known && matches)
    }

    /// Permits not taken right now.
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// How many computations are waiting for a permit or running (the argon2 queue depth).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let queued = InFlight::enter(&self.in_flight);
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("argon2 semaphore closed".into()))?;
        // The permit moves into the blocking task, so it is held until the work ends even if the
        // client goes away meanwhile.
        web::block(move || {
            let result = work();
            drop(permit);
            drop(queued);
            result
        })
        .await
        .map_err(|_| ApiError::Internal("argon2 worker thread failed".into()))
    }
}

/// Counts one computation from the moment it queues until its work ends (or it is abandoned).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Hashes on the calling thread; for the command line, which has no event loop to protect.
pub fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::offered(s.to_owned())
    }

    #[actix_web::test]
    async fn hashes_verify_only_with_the_right_password() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher
            .verify(Some(hash.clone()), pw("correct horse"))
            .await
            .unwrap());
        assert!(!hasher.verify(Some(hash), pw("wrong horse")).await.unwrap());
    }

    #[actix_web::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1);
        assert!(!hasher.verify(None, pw("anything")).await.unwrap());
        assert_eq!(hasher.available_permits(), 1);
    }
}
