//! Login and registration throttling, counted in the database so every instance agrees.
//!
//! A (username, client IP) pair with `LOGIN_MAX_FAILURES` failures in the window is locked until
//! its last failure plus a lockout that doubles with each further failure (capped); an IP with
//! `LOGIN_MAX_FAILURES_PER_IP` failures is refused for every username until the oldest of them
//! leaves the window. While locked, the password is not even checked, so the answer is no oracle.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};

use crate::auth::client::ClientInfo;
use crate::config::ThrottleSettings;
use crate::db::events::{self, EventKind};
use crate::db::login_failures::{self, FailureCount};
use crate::error::ApiError;
use crate::state::AppState;

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
}

/// Striped locks over (username, IP) pairs: attempts for one pair take turns on this instance,
/// so each sees the outcome of the one before it and a parallel burst cannot outrun the count.
/// Unrelated pairs rarely share a stripe, and then only wait for each other briefly.
pub struct PairLocks(Vec<Arc<tokio::sync::Mutex<()>>>);

impl PairLocks {
    const STRIPES: usize = 256;

    pub fn new() -> Self {
        Self(
            (0..Self::STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        )
    }

    async fn turn(&self, username_key: &str, ip: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (username_key, ip).hash(&mut hasher);
        let stripe = (hasher.finish() % Self::STRIPES as u64) as usize;
        Arc::clone(&self.0[stripe]).lock_owned().await
    }
}

impl Default for PairLocks {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts a password check for `username_key` from `client`: waits for the pair's turn on this
/// instance (so each attempt sees the outcome of the one before), records it as pending, counts
/// the failures, and refuses with 429 (recording `login_throttled`) when the pair or the IP is
/// locked. Throttled attempts are not failures: their row is removed. Across N instances a burst
/// can overshoot the pair limit by at most N-1 attempts; legitimate concurrent logins never wait
/// on each other's outcome.
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
        });
    }
    let turn = state.login_locks.turn(&key, &ip).await;
    let (k, i) = (key.clone(), ip.clone());
    let (id, retry_after) = state
        .db(move |conn| {
            let now = crate::db::now();
            let id = login_failures::record(conn, &k, &i, now)?;
            let since = now - Duration::seconds(s.login_window_seconds);
            let pair = login_failures::count_for_pair(conn, &k, &i, since, id)?;
            let per_ip = login_failures::count_for_ip(conn, &i, since, id)?;
            let retry_after = login_retry_after(pair, per_ip, s, now);
            if retry_after.is_some() {
                login_failures::delete(conn, id)?;
            }
            Ok((id, retry_after))
        })
        .await?;
    let Some(retry_after) = retry_after else {
        return Ok(Attempt {
            id: Some(id),
            username_key: key,
            ip,
            _turn: Some(turn),
        });
    };
    drop(turn);
    tracing::info!(ip = %client.ip, retry_after, "login throttled");
    // Attach the event to the account when there is one, so its owner sees the attack.
    let lookup = key.clone();
    let user_id = state
        .db(move |conn| crate::db::users::find_by_key(conn, &lookup))
        .await
        .ok()
        .flatten()
        .map(|user| user.id);
    state
        .record(vec![crate::audit::event(
            EventKind::LoginThrottled,
            user_id,
            None,
            client,
        )])
        .await;
    Err(ApiError::TooManyRequests {
        retry_after,
        detail: format!("Too many failed login attempts; try again in {retry_after} seconds."),
    })
}

impl Attempt {
    /// The password was right: this attempt is no failure, and the pair's failures are forgiven.
    pub async fn succeeded(self, state: &AppState) -> Result<(), ApiError> {
        let Some(id) = self.id else {
            return Ok(());
        };
        state
            .db(move |conn| {
                login_failures::delete(conn, id)?;
                login_failures::clear_pair(conn, &self.username_key, &self.ip)
            })
            .await?;
        Ok(())
    }

    /// The password was wrong: the pending row becomes a failure.
    pub async fn failed(self, state: &AppState) -> Result<(), ApiError> {
        let Some(id) = self.id else {
            return Ok(());
        };
        state
            .db(move |conn| login_failures::confirm(conn, id))
            .await?;
        Ok(())
    }
}

/// Refuses a registration with 429 when this IP has registered too often in the window (counted
/// from the `register` events, which record the full address).
pub async fn check_register(state: &AppState, client: &ClientInfo) -> Result<(), ApiError> {
    let s = state.settings.throttle;
    if s.register_max_per_ip == 0 {
        return Ok(());
    }
    let ip = client.ip.clone();
    let (count, oldest, now) = state
        .db(move |conn| {
            let now = crate::db::now();
            let since = now - Duration::seconds(s.register_window_seconds);
            let (count, oldest) = events::count_from_ip(conn, EventKind::Register, &ip, since)?;
            Ok((count, oldest, now))
        })
        .await?;
    match oldest {
        Some(oldest) if count >= s.register_max_per_ip => {
            let until = oldest + Duration::seconds(s.register_window_seconds);
            let retry_after = seconds_ceil(until - now);
            Err(ApiError::TooManyRequests {
                retry_after,
                detail: format!(
                    "Too many registrations from this address; try again in {retry_after} seconds."
                ),
            })
        }
        _ => Ok(()),
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
