//! Argon2id hashing and verification, off the actix workers and bounded in number.
//!
//! Each computation takes ~19 MiB and a core for tens of milliseconds; without a bound, a flood of
//! logins would take memory and every blocking thread. They run on a pool of `max_concurrency`
//! threads of their own; the rest wait in its queue, holding no memory beyond their request.
//! The queue is bounded too (`ARGON2_MAX_QUEUE`): a request takes a [`Slot`] before it waits for
//! anything else (a throttle turn, the database), and when none is free it is answered 503 with
//! `Retry-After` at once, so a flood cannot make every other login wait behind it.
//! The pool's threads run at a lower CPU priority (nice +10), so that during a login flood the
//! actix workers still get the cores they need to answer everything else promptly, while an idle
//! machine gives argon2 all of its time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::domain::Password;
use crate::error::ApiError;

/// How much lower than the rest of the server the argon2 threads run (a `nice` increment).
const ARGON2_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords with Argon2id at the crate's defaults (OWASP: m=19456 KiB, t=2, p=1).
pub struct PasswordHasher {
    /// The pool's queue; dropping it (with the hasher) ends the pool's threads.
    jobs: Mutex<mpsc::Sender<Job>>,
    threads: usize,
    /// A real hash of a random password, verified against when the username is unknown so that
    /// "no such user" costs the same as "wrong password".
    dummy_hash: Arc<str>,
    /// One permit per place in the queue (waiting or running): `max_queue` of them.
    slots: Arc<Semaphore>,
    max_queue: usize,
}

/// A place in the argon2 queue, held from before the request waits for anything until its
/// computation ends. Taken with [`PasswordHasher::reserve`].
#[must_use = "a slot is spent by hash or verify"]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl PasswordHasher {
    /// `max_concurrency` threads; at most `max_queue` computations waiting or running.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        let random = SaltString::generate(&mut OsRng);
        let dummy_hash = hash_blocking(random.as_str()).unwrap_or_default();
        let threads = max_concurrency.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || worker(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start an argon2 thread");
            }
        }
        Self {
            jobs: Mutex::new(sender),
            threads,
            dummy_hash: dummy_hash.into(),
            slots: Arc::new(Semaphore::new(max_queue.max(1))),
            max_queue: max_queue.max(1),
        }
    }

    /// A place in the queue, or [`ApiError::Busy`] (503, `Retry-After`) when it is full. Never
    /// waits.
    pub fn reserve(&self) -> Result<Slot, ApiError> {
        Arc::clone(&self.slots)
            .try_acquire_owned()
            .map(|permit| Slot { _permit: permit })
            .map_err(|_| ApiError::Busy)
    }

    /// Whether a [`Self::reserve`] now would succeed; lets a request give up before it takes
    /// any lock.
    pub fn has_room(&self) -> bool {
        self.slots.available_permits() > 0
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, slot: Slot, password: Password) -> Result<String, ApiError> {
        self.run(slot, move || {
            hash_blocking(password.expose())
                .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user) the same work is
    /// done against a dummy hash and the answer is `false`.
    pub async fn verify(
        &self,
        slot: Slot,
        stored: Option<String>,
        password: Password,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(slot, move || match PasswordHash::new(&hash) {
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

    /// How many computations can run at once.
    pub fn concurrency(&self) -> usize {
        self.threads
    }

    /// How many places of the queue are taken: computations waiting or running, and requests
    /// about to submit theirs (the argon2 queue depth).
    pub fn in_flight(&self) -> usize {
        self.max_queue - self.slots.available_permits()
    }

    async fn run<T, F>(&self, slot: Slot, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        // The job runs to its end even if the client goes away meanwhile; its answer is dropped.
        let job: Job = Box::new(move || {
            let answer = work();
            drop(slot);
            let _ = done.send(answer);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| ApiError::Internal("the argon2 pool has stopped".into()))?;
        result
            .await
            .map_err(|_| ApiError::Internal("an argon2 computation failed".into()))
    }
}

/// One pool thread: lowers its own priority, then runs jobs until the queue is dropped.
fn worker(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        // A panicking job loses its own answer (its caller gets an error), not the thread.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an argon2 computation panicked");
        }
    }
}

/// On Linux the nice value belongs to the thread, so this lowers only the calling thread, by
/// [`ARGON2_NICENESS`] below whatever the process runs at (19 is the floor).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority/setpriority have no memory-safety preconditions; `who = 0` is the
        // calling thread. getpriority's -1 is also a valid nice value; an error there only means
        // starting from -1.
        let rc = unsafe {
            let current = libc::getpriority(libc::PRIO_PROCESS, 0);
            libc::setpriority(libc::PRIO_PROCESS, 0, (current + ARGON2_NICENESS).min(19))
        };
        if rc != 0 {
            tracing::debug!("cannot lower the argon2 thread's priority");
        }
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
        let hasher = PasswordHasher::new(2, 8);
        let hash = hasher
            .hash(hasher.reserve().unwrap(), pw("correct horse"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher
            .verify(
                hasher.reserve().unwrap(),
                Some(hash.clone()),
                pw("correct horse")
            )
            .await
            .unwrap());
        assert!(!hasher
            .verify(hasher.reserve().unwrap(), Some(hash), pw("wrong horse"))
            .await
            .unwrap());
    }

    #[actix_web::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1, 1);
        let slot = hasher.reserve().unwrap();
        assert!(!hasher.verify(slot, None, pw("anything")).await.unwrap());
        assert_eq!(hasher.in_flight(), 0);
    }

    #[actix_web::test]
    async fn computations_beyond_the_pool_wait_their_turn() {
        let hasher = Arc::new(PasswordHasher::new(2, 6));
        assert_eq!(hasher.concurrency(), 2);
        let hash = hasher
            .hash(hasher.reserve().unwrap(), pw("correct horse"))
            .await
            .unwrap();
        let checks: Vec<_> = (0..6)
            .map(|i| {
                let (hasher, hash) = (Arc::clone(&hasher), hash.clone());
                let offered = if i % 2 == 0 { "correct horse" } else { "wrong" };
                let slot = hasher.reserve().unwrap();
                actix_web::rt::spawn(
                    async move { hasher.verify(slot, Some(hash), pw(offered)).await },
                )
            })
            .collect();
        for (i, check) in checks.into_iter().enumerate() {
            assert_eq!(check.await.unwrap().unwrap(), i % 2 == 0);
        }
        assert_eq!(hasher.in_flight(), 0);
    }

    /// Issue 10, item 4: the queue had no bound.
    #[actix_web::test]
    async fn a_full_queue_refuses_at_once_and_frees_its_places() {
        let hasher = Arc::new(PasswordHasher::new(1, 3));
        let slots: Vec<Slot> = (0..3).map(|_| hasher.reserve().unwrap()).collect();
        assert!(!hasher.has_room());
        assert!(matches!(hasher.reserve(), Err(ApiError::Busy)));
        let running: Vec<_> = slots
            .into_iter()
            .map(|slot| {
                let hasher = Arc::clone(&hasher);
                actix_web::rt::spawn(async move { hasher.hash(slot, pw("some password")).await })
            })
            .collect();
        for job in running {
            assert!(job.await.unwrap().is_ok());
        }
        assert!(hasher.has_room());
        assert!(hasher.reserve().is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pool_threads_run_at_a_lower_priority() {
        let hasher = PasswordHasher::new(1, 1);
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            // SAFETY: getpriority has no preconditions; errno is not consulted for this value.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            let _ = tx.send(nice);
        });
        hasher.jobs.lock().unwrap().send(job).unwrap();
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let theirs = rx.recv().unwrap();
        assert!(
            theirs > ours || theirs == 19,
            "pool nice {theirs}, caller {ours}"
        );
    }
}
