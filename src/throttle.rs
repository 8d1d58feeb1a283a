//! Login and registration throttling, counted in the database so every instance agrees.
//!
//! A (username, client IP) pair with `LOGIN_MAX_FAILURES` failures in the window is locked until
//! its last failure plus a lockout that doubles with each further failure (capped); an IP with
//! `LOGIN_MAX_FAILURES_PER_IP` failures is refused for every username until the oldest of them
//! leaves the window. While locked, the password is not even checked, so the answer is no oracle,
//! and the refusal costs one read and no write.
//!
//! Attempts whose password is being checked count against the IP limit too: an IP may have at
//! most `limit - failures` checks in flight, so a parallel burst checks at most `limit` passwords.
//! Attempts beyond that wait (without a place in the argon2 queue) for one in flight to end, then
//! look again; right passwords are therefore never refused for arriving together.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDateTime};
use tokio::sync::Notify;

use crate::auth::client::ClientInfo;
use crate::config::ThrottleSettings;
use crate::db::breaker::Breaker;
use crate::db::login_failures::{self, FailureCount, Tally};
use crate::db::register_attempts;
use crate::db::{DbConnection, DbPool};
use crate::error::ApiError;
use crate::state::AppState;
use diesel::QueryResult;

/// A pending attempt older than this belongs to a process that died mid-check: it stops
/// counting. No password check takes this long (the argon2 queue is bounded).
pub const PENDING_SECONDS: i64 = 30;
/// How long an attempt waits for the IP's checks in flight before it is refused (429).
const ADMISSION_WAIT: StdDuration = StdDuration::from_secs(10);
/// How often a waiting attempt looks again when no attempt of this instance ends (the ones in
/// flight may be another instance's).
const ADMISSION_POLL: StdDuration = StdDuration::from_millis(250);
/// Attempts of one IP (stripe) that may wait at once; beyond, they are refused at once.
const MAX_WAITERS: usize = 64;

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked by failures: 429 with this `Retry-After`.
    Locked(i64),
    /// The IP has as many checks in flight as it has failures left: wait for one to end.
    Crowded,
}

/// Whether the pair or the IP is locked now, or the IP's checks in flight use up its limit.
pub fn refusal(t: Tally, s: ThrottleSettings, now: NaiveDateTime) -> Option<Refusal> {
    if let Some(retry_after) = login_retry_after(t.pair, t.ip, s, now) {
        return Some(Refusal::Locked(retry_after));
    }
    let crowded =
        s.login_max_failures_per_ip > 0 && t.ip.count + t.ip_pending >= s.login_max_failures_per_ip;
    crowded.then_some(Refusal::Crowded)
}

/// Seconds until the pair or the IP may try again, if either is locked now.
pub fn login_retry_after(
    pair: FailureCount,
    ip: FailureCount,
    s: ThrottleSettings,
    now: NaiveDateTime,
) -> Option<i64> {
    let mut until: Option<NaiveDateTime> = None;
    if s.login_max_failures > 0 && pair.count >= s.login_max_failures {
        if let Some(last) = pair.newest {
            let doublings = (pair.count - s.login_max_failures).min(40) as u32;
            let lockout = s
                .lockout_seconds
                .saturating_mul(2_i64.saturating_pow(doublings))
                .min(s.lockout_max_seconds);
            until = until.max(Some(last + Duration::seconds(lockout)));
        }
    }
    if s.login_max_failures_per_ip > 0 && ip.count >= s.login_max_failures_per_ip {
        if let Some(oldest) = ip.oldest {
            until = until.max(Some(oldest + Duration::seconds(s.login_window_seconds)));
        }
    }
    until
        .filter(|until| *until > now)
        .map(|until| seconds_ceil(until - now))
}

fn seconds_ceil(d: Duration) -> i64 {
    let whole = d.num_seconds();
    let rest = d - Duration::seconds(whole);
    (whole + i64::from(rest > Duration::zero())).max(1)
}

/// A password check in progress, already counted as a failure until it is known to be fine.
#[derive(Debug)]
#[must_use = "a login attempt must end as succeeded or failed"]
pub struct Attempt {
    /// `None` when throttling is off: nothing was recorded.
    id: Option<i64>,
    username_key: String,
    ip: String,
    /// Held until the attempt ends, so this instance checks one password per pair at a time.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Wakes this IP's waiting attempts when this one ends.
    gate: Option<Arc<Gate>>,
    /// Removes the pending row if the attempt is dropped without an outcome (a database error
    /// or a cancelled request in between), so it does not hold the IP's limit for
    /// [`PENDING_SECONDS`].
    leftover: Leftover,
}

/// Deletes one row by id.
type DeleteRow = fn(&mut DbConnection, i64) -> QueryResult<usize>;

/// A row to delete if its owner is dropped before it decides the row's fate.
#[derive(Default)]
struct Leftover(Option<(DbPool, Breaker, i64, DeleteRow)>);

impl std::fmt::Debug for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leftover")
    }
}

impl Leftover {
    fn new(state: &AppState, id: i64, delete: DeleteRow) -> Self {
        Self(Some((
            state.pool().clone(),
            state.breaker.clone(),
            id,
            delete,
        )))
    }

    /// The row's fate is decided: nothing to clean up.
    fn settle(&mut self) {
        self.0 = None;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let Some((pool, breaker, id, delete)) = self.0.take() else {
            return;
        };
        // With the database down the row cannot be removed; it stops counting by itself.
        if breaker.is_open() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || {
                if let Ok(mut conn) = pool.get() {
                    let _ = delete(&mut conn, id);
                }
            });
        }
    }
}

/// Striped locks over (username, IP) pairs: attempts for one pair take turns on this instance,
/// so each sees the outcome of the one before it and a parallel burst cannot outrun the count.
/// Unrelated pairs rarely share a stripe, and then only wait for each other briefly. Beside
/// them, one [`Gate`] per IP stripe, where attempts wait for the IP's checks in flight.
pub struct PairLocks {
    pairs: Vec<Arc<tokio::sync::Mutex<()>>>,
    gates: Vec<Arc<Gate>>,
    /// Registrations from one address are counted one at a time on this instance, so that of
    /// two racing ones neither counts the other's row before knowing whether it stays.
    registrations: Vec<Arc<tokio::sync::Mutex<()>>>,
}

/// Where the attempts of an IP (stripe) wait for its checks in flight to end.
#[derive(Debug, Default)]
pub struct Gate {
    ended: Notify,
    waiting: AtomicUsize,
}

impl PairLocks {
    const STRIPES: usize = 256;

    pub fn new() -> Self {
        Self {
            pairs: (0..Self::STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
            gates: (0..Self::STRIPES)
                .map(|_| Arc::new(Gate::default()))
                .collect(),
            registrations: (0..Self::STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    fn stripe(key: impl Hash) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % Self::STRIPES as u64) as usize
    }

    async fn turn(&self, username_key: &str, ip: &str) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.pairs[Self::stripe((username_key, ip))])
            .lock_owned()
            .await
    }

    async fn registration_turn(&self, ip_key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.registrations[Self::stripe(ip_key)])
            .lock_owned()
            .await
    }

    fn gate(&self, ip: &str) -> Arc<Gate> {
        Arc::clone(&self.gates[Self::stripe(ip)])
    }
}

impl Default for PairLocks {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a waiting attempt for as long as it waits.
struct Waiting<'a>(&'a Gate);

impl<'a> Waiting<'a> {
    fn enter(gate: &'a Gate) -> Option<Self> {
        let before = gate.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Self(gate);
        (before < MAX_WAITERS).then_some(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

fn throttled(client: &ClientInfo, retry_after: i64) -> ApiError {
    tracing::info!(ip = %client.ip, retry_after, "login throttled");
    ApiError::TooManyRequests {
        retry_after,
        detail: format!("Too many failed login attempts; try again in {retry_after} seconds."),
    }
}

/// Starts a password check for `username_key` from `client`. A locked pair or IP is refused
/// (429) after one read, writing nothing. Otherwise the attempt waits for the pair's turn on
/// this instance (so it sees the outcome of the one before), and for the IP to have a check to
/// spare, then is recorded as pending; the returned [`Attempt`] must end as succeeded or failed.
/// Across N instances a burst can overshoot a limit by at most N-1 attempts.
pub async fn begin_login(
    state: &AppState,
    username_key: &str,
    client: &ClientInfo,
) -> Result<Attempt, ApiError> {
    let s = state.settings.throttle;
    let (key, ip) = (username_key.to_owned(), client.throttle_key());
    if s.login_max_failures == 0 && s.login_max_failures_per_ip == 0 {
        return Ok(Attempt {
            id: None,
            username_key: key,
            ip,
            _turn: None,
            gate: None,
            leftover: Leftover::default(),
        });
    }
    let whole_ip = s.login_max_failures_per_ip > 0;
    let read = || {
        let (k, i) = (key.clone(), ip.clone());
        move |conn: &mut crate::db::DbConnection| {
            let now = crate::db::now();
            let since = now - Duration::seconds(s.login_window_seconds);
            let pending_since = now - Duration::seconds(PENDING_SECONDS);
            let tally = login_failures::tally(conn, &k, &i, since, pending_since, whole_ip, None)?;
            Ok((tally, now))
        }
    };
    // The common case under attack: locked. One read, no lock taken, nothing written.
    let (tally, now) = state.db(read()).await?;
    if let Some(Refusal::Locked(retry_after)) = refusal(tally, s, now) {
        return Err(throttled(client, retry_after));
    }

    let turn = state.login_locks.turn(&key, &ip).await;
    let gate = state.login_locks.gate(&ip);
    let started = Instant::now();
    loop {
        // Created before the read: an attempt ending after it wakes this one.
        let ended = gate.ended.notified();
        let (tally, now) = state.db(read()).await?;
        match refusal(tally, s, now) {
            Some(Refusal::Locked(retry_after)) => return Err(throttled(client, retry_after)),
            Some(Refusal::Crowded) => {
                wait_for_room(&gate, ended, started, client).await?;
                continue;
            }
            None => drop(ended),
        }
        // Record, then count again without it: of two attempts racing here, the later sees
        // the earlier, so no more than the limit get through.
        let (k, i, recount) = (key.clone(), ip.clone(), read());
        let (id, tally, now) = state
            .db(move |conn| {
                let id = login_failures::record(conn, &k, &i, crate::db::now())?;
                let (tally, now) = recount(conn)?;
                Ok((id, tally, now))
            })
            .await?;
        let tally = Tally {
            ip_pending: tally.ip_pending - 1,
            ..tally
        };
        match refusal(tally, s, now) {
            None => {
                return Ok(Attempt {
                    id: Some(id),
                    username_key: key,
                    ip,
                    _turn: Some(turn),
                    gate: Some(gate),
                    leftover: Leftover::new(state, id, login_failures::delete),
                })
            }
            Some(refused) => {
                state
                    .db(move |conn| login_failures::delete(conn, id))
                    .await?;
                gate.ended.notify_waiters();
                if let Refusal::Locked(retry_after) = refused {
                    return Err(throttled(client, retry_after));
                }
                let ended = gate.ended.notified();
                wait_for_room(&gate, ended, started, client).await?;
            }
        }
    }
}

/// Waits until an attempt of this IP ends (or [`ADMISSION_POLL`] passes); refuses with 429 when
/// too many wait already or the wait has lasted [`ADMISSION_WAIT`].
async fn wait_for_room(
    gate: &Gate,
    ended: tokio::sync::futures::Notified<'_>,
    started: Instant,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let Some(_waiting) = Waiting::enter(gate) else {
        return Err(throttled(client, 1));
    };
    if started.elapsed() >= ADMISSION_WAIT {
        return Err(throttled(client, 1));
    }
    let _ = tokio::time::timeout(ADMISSION_POLL, ended).await;
    Ok(())
}

impl Attempt {
    /// The password was right: this attempt is no failure, and the pair's failures are forgiven.
    pub async fn succeeded(mut self, state: &AppState) -> Result<(), ApiError> {
        self.leftover.settle();
        let Some(id) = self.id else {
            return Ok(());
        };
        let (key, ip) = (self.username_key.clone(), self.ip.clone());
        let result = state
            .db(move |conn| {
                login_failures::delete(conn, id)?;
                login_failures::clear_pair(conn, &key, &ip)
            })
            .await;
        self.release();
        result?;
        Ok(())
    }

    /// The password was wrong: the pending row becomes a failure. Returns whether this failure
    /// locked the pair or the IP, so that the caller records one `login_throttled` event per
    /// lock (not one per refused request).
    pub async fn failed(mut self, state: &AppState) -> Result<bool, ApiError> {
        self.leftover.settle();
        let Some(id) = self.id else {
            return Ok(false);
        };
        let s = state.settings.throttle;
        let whole_ip = s.login_max_failures_per_ip > 0;
        let (key, ip) = (self.username_key.clone(), self.ip.clone());
        let result = state
            .db(move |conn| {
                login_failures::confirm(conn, id)?;
                let now = crate::db::now();
                let since = now - Duration::seconds(s.login_window_seconds);
                let tally = login_failures::tally(conn, &key, &ip, since, now, whole_ip, None)?;
                let before =
                    login_failures::tally(conn, &key, &ip, since, now, whole_ip, Some(id))?;
                Ok(login_retry_after(tally.pair, tally.ip, s, now).is_some()
                    && login_retry_after(before.pair, before.ip, s, now).is_none())
            })
            .await;
        self.release();
        Ok(result?)
    }

    /// The password was never checked (no place in the argon2 queue): the attempt is removed,
    /// counting for nothing.
    pub async fn abandon(mut self, state: &AppState) {
        self.leftover.settle();
        if let Some(id) = self.id {
            if let Err(error) = state.db(move |conn| login_failures::delete(conn, id)).await {
                tracing::warn!(%error, "could not remove an abandoned login attempt");
            }
        }
        self.release();
    }

    /// Ends the turn and wakes the IP's waiting attempts.
    fn release(self) {
        if let Some(gate) = &self.gate {
            gate.ended.notify_waiters();
        }
    }
}

/// A registration counted against its address before the password is hashed; end it with
/// [`Registration::completed`] or [`Registration::abandoned`].
#[derive(Debug)]
#[must_use = "a registration must end as completed or abandoned"]
pub struct Registration(Option<i64>, Leftover);

/// Counts a registration from `client` (its /64 for IPv6) before any hashing, pending ones
/// included, and refuses with 429 when the address has registered `REGISTER_MAX_PER_IP` times
/// in the window. A refusal costs one read.
pub async fn begin_register(
    state: &AppState,
    client: &ClientInfo,
) -> Result<Registration, ApiError> {
    let s = state.settings.throttle;
    if s.register_max_per_ip == 0 {
        return Ok(Registration(None, Leftover::default()));
    }
    let key = client.throttle_key();
    let count = move |conn: &mut crate::db::DbConnection, exclude: Option<i64>| {
        let now = crate::db::now();
        let since = now - Duration::seconds(s.register_window_seconds);
        let pending_since = now - Duration::seconds(PENDING_SECONDS);
        register_attempts::count(conn, &key, since, pending_since, exclude).map(|c| (c, now))
    };
    let refuse = |(count, oldest): (i64, Option<NaiveDateTime>), now: NaiveDateTime| {
        if count < s.register_max_per_ip {
            return None;
        }
        // Only pending ones fill the window: they end in a moment.
        let retry_after = oldest.map_or(1, |oldest| {
            seconds_ceil(oldest + Duration::seconds(s.register_window_seconds) - now)
        });
        Some(ApiError::TooManyRequests {
            retry_after,
            detail: format!(
                "Too many registrations from this address; try again in {retry_after} seconds."
            ),
        })
    };
    let pre = count.clone();
    let _turn = state
        .login_locks
        .registration_turn(&client.throttle_key())
        .await;
    let (counted, now) = state.db(move |conn| pre(conn, None)).await?;
    if let Some(refused) = refuse(counted, now) {
        return Err(refused);
    }
    let key = client.throttle_key();
    let (id, counted, now) = state
        .db(move |conn| {
            let id = register_attempts::record(conn, &key, crate::db::now())?;
            let (counted, now) = count(conn, Some(id))?;
            Ok((id, counted, now))
        })
        .await?;
    if let Some(refused) = refuse(counted, now) {
        state
            .db(move |conn| register_attempts::delete(conn, id))
            .await?;
        return Err(refused);
    }
    Ok(Registration(
        Some(id),
        Leftover::new(state, id, register_attempts::delete),
    ))
}

impl Registration {
    /// The account exists: the registration counts for the whole window.
    pub async fn completed(mut self, state: &AppState) -> Result<(), ApiError> {
        self.1.settle();
        if let Some(id) = self.0 {
            state
                .db(move |conn| register_attempts::complete(conn, id))
                .await?;
        }
        Ok(())
    }

    /// No account was created (the name was taken, the hash failed): it does not count.
    pub async fn abandoned(mut self, state: &AppState) {
        self.1.settle();
        if let Some(id) = self.0 {
            if let Err(error) = state
                .db(move |conn| register_attempts::delete(conn, id))
                .await
            {
                tracing::warn!(%error, "could not remove an abandoned registration count");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ThrottleSettings = ThrottleSettings {
        login_max_failures: 5,
        login_window_seconds: 900,
        lockout_seconds: 60,
        lockout_max_seconds: 900,
        login_max_failures_per_ip: 50,
        register_max_per_ip: 20,
        register_window_seconds: 3600,
    };

    fn at(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0)
            .unwrap()
            .naive_utc()
    }

    fn fc(count: i64, oldest: i64, newest: i64) -> FailureCount {
        FailureCount {
            count,
            oldest: Some(at(oldest)),
            newest: Some(at(newest)),
        }
    }

    #[test]
    fn below_the_threshold_nothing_is_locked() {
        assert_eq!(
            login_retry_after(fc(4, 0, 10), fc(4, 0, 10), S, at(11)),
            None
        );
    }

    #[test]
    fn the_pair_lockout_doubles_and_is_capped() {
        assert_eq!(
            login_retry_after(fc(5, 0, 10), fc(5, 0, 10), S, at(10)),
            Some(60)
        );
        assert_eq!(
            login_retry_after(fc(6, 0, 10), fc(6, 0, 10), S, at(10)),
            Some(120)
        );
        assert_eq!(
            login_retry_after(fc(7, 0, 10), fc(7, 0, 10), S, at(10)),
            Some(240)
        );
        assert_eq!(
            login_retry_after(fc(30, 0, 10), fc(30, 0, 10), S, at(10)),
            Some(900)
        );
        assert_eq!(
            login_retry_after(fc(5, 0, 10), fc(5, 0, 10), S, at(70)),
            None
        );
    }

    #[test]
    fn the_ip_lock_lasts_until_the_oldest_failure_leaves_the_window() {
        assert_eq!(
            login_retry_after(fc(0, 0, 0), fc(50, 100, 200), S, at(300)),
            Some(700)
        );
    }

    /// Issue 10, item 2: checks in flight did not count against the IP limit.
    #[test]
    fn checks_in_flight_fill_the_ip_limit_without_locking_it() {
        let s = ThrottleSettings {
            login_max_failures_per_ip: 5,
            ..S
        };
        let tally = |failures: i64, pending: i64| Tally {
            pair: FailureCount::default(),
            ip: fc(failures, 0, 10),
            ip_pending: pending,
        };
        assert_eq!(refusal(tally(0, 4), s, at(11)), None);
        assert_eq!(refusal(tally(0, 5), s, at(11)), Some(Refusal::Crowded));
        assert_eq!(refusal(tally(3, 2), s, at(11)), Some(Refusal::Crowded));
        assert_eq!(refusal(tally(5, 0), s, at(11)), Some(Refusal::Locked(889)));
        let off = ThrottleSettings {
            login_max_failures_per_ip: 0,
            ..s
        };
        assert_eq!(refusal(tally(0, 50), off, at(11)), None);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let off = ThrottleSettings {
            login_max_failures: 0,
            login_max_failures_per_ip: 0,
            ..S
        };
        assert_eq!(
            login_retry_after(fc(99, 0, 10), fc(99, 0, 10), off, at(10)),
            None
        );
    }
}
