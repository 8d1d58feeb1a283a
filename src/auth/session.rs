//! The `CurrentSession` extractor: a handler that takes one cannot run without a verified session.
//!
//! cookie -> token shape check -> SHA-256 -> one indexed query for the session and its user ->
//! refuse (401, clearing the cookie) when there is no row, the row is not active, the fingerprint
//! differs, or it has expired (an active row past `expires_at` is marked `expired` on the spot).
//! Verification writes only when it must: `last_seen_at` at most once a minute, and `expires_at`
//! when less than half the TTL is left (sliding renewal, capped by the max lifetime). A renewed
//! expiry re-sends the cookie through [`resend_renewed_cookie`].

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use chrono::{Duration, NaiveDateTime};

use crate::audit::event;
use crate::auth::cache::CachedSession;
use crate::auth::client::ClientInfo;
use crate::auth::cookie::SetCookie;
use crate::config::{FingerprintMode, SessionSettings};
use crate::db::events::EventKind;
use crate::db::sessions::{self, SessionRow};
use crate::db::users::Account;
use crate::db::{self};
use crate::domain::{client_fingerprint, SessionToken};
use crate::error::ApiError;
use crate::state::AppState;

/// `last_seen_at` is written at most this often per session.
const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;

/// The verified session of the request and its user.
#[derive(Debug)]
pub struct CurrentSession {
    pub user: Account,
    pub session: SessionRow,
}

/// What verification decided about a stored session.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not usable: no longer active.
    Refuse,
    /// Active, but presented by a different client than the one that logged in.
    Mismatch,
    /// Active but past its expiry: mark it `expired` and refuse.
    Expire,
    /// Usable; write `last_seen_at` when `touch`, and the new expiry when `renew_until` is set.
    Accept {
        touch: bool,
        renew_until: Option<NaiveDateTime>,
    },
}

/// The pure decision, so the rules can be tested without a database.
pub fn judge(
    row: &SessionRow,
    fingerprint: &str,
    mode: FingerprintMode,
    lifetimes: SessionSettings,
    now: NaiveDateTime,
) -> Verdict {
    if !row.is_active() {
        return Verdict::Refuse;
    }
    if mode != FingerprintMode::Off && row.client_fingerprint != fingerprint {
        return Verdict::Mismatch;
    }
    if row.expires_at <= now {
        return Verdict::Expire;
    }
    let ttl = Duration::seconds(lifetimes.ttl_seconds);
    let renew_until = (row.expires_at - now < ttl / 2)
        .then(|| expiry_for(row.created_at, now, lifetimes))
        .filter(|new_expiry| *new_expiry > row.expires_at);
    let touch = renew_until.is_some()
        || now - row.last_seen_at >= Duration::seconds(LAST_SEEN_RESOLUTION_SECONDS);
    Verdict::Accept { touch, renew_until }
}

/// `min(now + TTL, created_at + max lifetime)`.
pub fn expiry_for(
    created_at: NaiveDateTime,
    now: NaiveDateTime,
    lifetimes: SessionSettings,
) -> NaiveDateTime {
    let idle = now + Duration::seconds(lifetimes.ttl_seconds);
    let absolute = created_at + Duration::seconds(lifetimes.max_lifetime_seconds);
    idle.min(absolute)
}

/// Whole seconds from `now` until `expires_at`, for a cookie's `Max-Age`.
pub fn seconds_until(expires_at: NaiveDateTime, now: NaiveDateTime) -> i64 {
    (expires_at - now).num_seconds().max(0)
}

/// A renewed cookie waiting to be added to the response.
#[derive(Clone)]
struct RenewedCookie(SetCookie);

impl FromRequest for CurrentSession {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { verify(&req).await })
    }
}

/// Tries each value the request carries under the session cookie's name (browsers send
/// duplicates for other paths and domains) and accepts the first that verifies. Only when none
/// does is the request refused, clearing the cookie: a bad duplicate never costs a good session.
async fn verify(req: &HttpRequest) -> Result<CurrentSession, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))?;
    let candidates = state.cookies.candidates(req);
    if candidates.is_empty() {
        return Err(ApiError::NotAuthenticated { clear_cookie: None });
    }
    for raw in &candidates {
        let Some(token) = SessionToken::parse(raw) else {
            continue;
        };
        if let Some(current) = verify_token(req, state, token).await? {
            return Ok(current);
        }
    }
    Err(ApiError::NotAuthenticated {
        clear_cookie: Some(Box::new(state.cookies.clear())),
    })
}

/// The session `token` names, if it is usable now; `None` when it is refused. A cached copy
/// answers when it can ([`from_cache`]); otherwise the database decides and records
/// ([`judge_stored`]), the audit trail hears of it through [`AppState::record`], and the outcome
/// is applied here ([`accept`]).
async fn verify_token(
    req: &HttpRequest,
    state: &AppState,
    token: SessionToken,
) -> Result<Option<CurrentSession>, ApiError> {
    let token_hash = token.hash();
    let fingerprint = client_fingerprint(state.fingerprint, req.headers());
    let cached = match from_cache(state, &token_hash, &fingerprint) {
        Cached::Answer(current) => return Ok(Some(*current)),
        Cached::Stale => true,
        Cached::Absent => false,
    };
    let ticket = state.session_cache.ticket();
    let Some(judged) = judge_stored(state, token_hash.clone(), fingerprint).await? else {
        return Ok(forget_stale(state, &token_hash, cached));
    };
    let client = ClientInfo::of(req, &state.settings.trusted_proxies);
    let audit = |kind| {
        event(
            kind,
            Some(judged.session.user_id),
            Some(&judged.session.id),
            &client,
        )
    };
    match judged.verdict {
        Verdict::Expire => state.record(vec![audit(EventKind::SessionExpired)]).await,
        Verdict::Mismatch => {
            state
                .record(vec![audit(EventKind::FingerprintMismatch)])
                .await
        }
        _ => {}
    }
    match judged.verdict {
        Verdict::Accept { .. } => Ok(Some(accept(req, state, &token, ticket, judged))),
        Verdict::Mismatch => Ok(None),
        Verdict::Refuse | Verdict::Expire => Ok(forget_stale(state, &token_hash, cached)),
    }
}

/// What the cache could say about a token.
enum Cached {
    /// A copy that needs no write answers the request.
    Answer(Box<CurrentSession>),
    /// A copy exists, but the database must decide (a write is due, or it is past expiry).
    Stale,
    Absent,
}

/// The common case: a copy of an active row, nothing to write.
fn from_cache(state: &AppState, token_hash: &str, fingerprint: &str) -> Cached {
    let cache = &state.session_cache;
    let Some(hit) = cache.get(token_hash) else {
        if cache.is_live() {
            state.metrics.session_cache(false);
        }
        return Cached::Absent;
    };
    let verdict = judge(
        &hit.session,
        fingerprint,
        state.fingerprint,
        state.sessions,
        db::now(),
    );
    if verdict == QUIET {
        state.metrics.session_cache(true);
        return Cached::Answer(Box::new(CurrentSession {
            user: hit.user.clone(),
            session: hit.session.clone(),
        }));
    }
    state.metrics.session_cache(false);
    Cached::Stale
}

/// A stored session and what was decided about it, at `now`.
struct Judged {
    verdict: Verdict,
    session: SessionRow,
    user: Account,
    now: NaiveDateTime,
}

/// Reads the session and its user, judges them, and writes what the verdict calls for (marking
/// it expired, or touching and renewing it); `None` when no usable user has such a session.
async fn judge_stored(
    state: &AppState,
    token_hash: String,
    fingerprint: String,
) -> Result<Option<Judged>, ApiError> {
    let (mode, lifetimes) = (state.fingerprint, state.sessions);
    let judged = state
        .db(move |conn| {
            let Some((session, user)) = sessions::find_with_user(conn, &token_hash)? else {
                return Ok(None);
            };
            let now = db::now();
            let verdict = judge(&session, &fingerprint, mode, lifetimes, now);
            match &verdict {
                Verdict::Expire => {
                    sessions::mark_expired(conn, &session.id)?;
                }
                Verdict::Accept {
                    touch: true,
                    renew_until,
                } => {
                    sessions::touch(conn, &session.id, now, *renew_until)?;
                }
                _ => {}
            }
            Ok(Some(Judged {
                verdict,
                session,
                user,
                now,
            }))
        })
        .await?;
    Ok(judged)
}

/// An accepted session: the copy is brought up to date with what was written, stored in the
/// cache, and a renewed expiry queues the cookie for the response.
fn accept(
    req: &HttpRequest,
    state: &AppState,
    token: &SessionToken,
    ticket: crate::auth::cache::Ticket,
    judged: Judged,
) -> CurrentSession {
    let Judged {
        verdict,
        mut session,
        user,
        now,
    } = judged;
    if let Verdict::Accept { touch, renew_until } = verdict {
        if touch {
            session.last_seen_at = now;
        }
        if let Some(expires_at) = renew_until {
            session.expires_at = expires_at;
            let cookie = state.cookies.issue(token, seconds_until(expires_at, now));
            req.extensions_mut().insert(RenewedCookie(cookie));
        }
    }
    let current = CachedSession { session, user };
    state
        .session_cache
        .insert(ticket, &token.hash(), current.clone());
    CurrentSession {
        user: current.user,
        session: current.session,
    }
}

/// Refuses; a cached copy the database no longer backs (only possible past its expiry) goes.
fn forget_stale(state: &AppState, token_hash: &str, cached: bool) -> Option<CurrentSession> {
    if cached {
        state.session_cache.forget_token(token_hash);
    }
    None
}

/// The verdict that needs no write: a cached copy can answer it.
const QUIET: Verdict = Verdict::Accept {
    touch: false,
    renew_until: None,
};

/// Middleware: adds the cookie of a session renewed during this request to a successful response,
/// unless the handler already set that cookie itself (a logout clearing it, say).
pub async fn resend_renewed_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let renewed = res.request().extensions_mut().remove::<RenewedCookie>();
    if let Some(RenewedCookie(cookie)) = renewed {
        let already_set = res.response().cookies().any(|c| c.name() == cookie.name());
        if res.status().is_success() && !already_set {
            if let Ok(value) = cookie.header_value() {
                res.headers_mut().append(header::SET_COOKIE, value);
                // A response that carries a cookie is never stored by a cache.
                res.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store"),
                );
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIMES: SessionSettings = SessionSettings {
        ttl_seconds: 100,
        max_lifetime_seconds: 300,
    };

    fn at(seconds: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0)
            .unwrap()
            .naive_utc()
    }

    fn row(status: &str, created: i64, expires: i64, last_seen: i64) -> SessionRow {
        SessionRow {
            id: "id".into(),
            user_id: 1,
            status: crate::db::sessions::SessionStatus::parse(status).unwrap(),
            client_fingerprint: "fp".into(),
            user_agent: None,
            ip: None,
            created_at: at(created),
            expires_at: at(expires),
            last_seen_at: at(last_seen),
        }
    }

    fn judge_at(r: &SessionRow, fp: &str, now: i64) -> Verdict {
        judge(r, fp, FingerprintMode::Full, LIFETIMES, at(now))
    }

    #[test]
    fn inactive_expired_or_foreign_sessions_are_refused() {
        assert_eq!(
            judge_at(&row("inactive", 0, 100, 0), "fp", 10),
            Verdict::Refuse
        );
        assert_eq!(
            judge_at(&row("expired", 0, 100, 0), "fp", 10),
            Verdict::Refuse
        );
        assert_eq!(
            judge_at(&row("active", 0, 100, 0), "other", 10),
            Verdict::Mismatch
        );
        let off = judge(
            &row("active", 0, 100, 0),
            "other",
            FingerprintMode::Off,
            LIFETIMES,
            at(10),
        );
        assert!(matches!(off, Verdict::Accept { .. }));
    }

    #[test]
    fn an_active_session_past_expiry_is_expired() {
        assert_eq!(
            judge_at(&row("active", 0, 100, 0), "fp", 100),
            Verdict::Expire
        );
    }

    #[test]
    fn fresh_use_writes_nothing() {
        let verdict = judge_at(&row("active", 0, 100, 0), "fp", 30);
        assert_eq!(
            verdict,
            Verdict::Accept {
                touch: false,
                renew_until: None
            }
        );
    }

    #[test]
    fn last_seen_is_written_once_a_minute() {
        let verdict = judge_at(&row("active", 0, 100, -10), "fp", 50);
        assert_eq!(
            verdict,
            Verdict::Accept {
                touch: true,
                renew_until: None
            }
        );
    }

    #[test]
    fn less_than_half_the_ttl_left_renews() {
        let verdict = judge_at(&row("active", 0, 100, 40), "fp", 51);
        assert_eq!(
            verdict,
            Verdict::Accept {
                touch: true,
                renew_until: Some(at(151))
            }
        );
    }

    #[test]
    fn renewal_never_passes_the_max_lifetime() {
        let verdict = judge_at(&row("active", 0, 290, 250), "fp", 260);
        assert_eq!(
            verdict,
            Verdict::Accept {
                touch: true,
                renew_until: Some(at(300))
            }
        );
        // At the cap already: nothing to extend.
        let verdict = judge_at(&row("active", 0, 300, 290), "fp", 295);
        assert_eq!(
            verdict,
            Verdict::Accept {
                touch: false,
                renew_until: None
            }
        );
    }
}
