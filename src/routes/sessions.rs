//! `/users/me/sessions`: a user's devices, and revoking them.

use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::OptionalJsonBody;
use super::views::rfc3339;
use super::views::Revoked;
use crate::audit::event;
use crate::auth::client::ClientInfo;
use crate::auth::CurrentSession;
use crate::db::events::{EventKind, NewEvent};
use crate::db::sessions::{self, RevokeReason, SessionRow};
use crate::db::{self, users};
use crate::domain::Password;
use crate::error::{no_store, ApiError};
use crate::openapi::{
    BadRequest, LoginThrottled, PayloadTooLarge, Problem, ReauthRequired, Unauthorized,
    Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;
use crate::throttle;

/// A session as its owner sees it. Times are RFC 3339, UTC, whole seconds, `Z`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "9f1c2b8e-3a4d-4e5f-8a6b-7c8d9e0f1a2b", "created_at": "2026-11-22T03:00:00Z",
    "last_seen_at": "2026-11-22T03:05:00Z", "expires_at": "2026-11-29T03:05:00Z",
    "user_agent": "Mozilla/5.0", "ip": "127.0.0.1", "current": true}))]
pub struct SessionView {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// As sent at login, cut to 256 characters.
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Whether this is the session of the request.
    pub current: bool,
}

impl SessionView {
    fn new(row: SessionRow, current_id: &str) -> Self {
        Self {
            current: row.id == current_id,
            id: row.id,
            created_at: rfc3339(row.created_at),
            last_seen_at: rfc3339(row.last_seen_at),
            expires_at: rfc3339(row.expires_at),
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}

/// `{"password": ...}`, optional proof of a fresh authentication.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"password": "correct horse battery staple"}))]
pub struct Reauth {
    /// My password; needed unless the current session is younger than `FRESH_SESSION_SECONDS`.
    /// `null` is the same as leaving it out.
    password: Option<String>,
}

/// `GET /users/me/sessions`: my usable sessions, newest first.
#[utoipa::path(
    get,
    path = "/users/me/sessions",
    operation_id = "list_sessions",
    tag = "session",
    summary = "My sessions",
    description = "My active sessions, newest first.",
    responses(
        (status = 200, description = "My active sessions, newest first.", body = Vec<SessionView>,
            headers(
                ("Set-Cookie" = String, description = "Sent when the session was renewed"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn list(
    current: CurrentSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let user_id = current.user.id;
    let rows = state
        .db(move |conn| sessions::list_active_for_user(conn, user_id, db::now()))
        .await?;
    let views: Vec<SessionView> = rows
        .into_iter()
        .map(|row| SessionView::new(row, &current.session.id))
        .collect();
    Ok(HttpResponse::Ok().insert_header(no_store()).json(views))
}

/// `DELETE /users/me/sessions/{id}`: 204; 404 for an id that is not one of my active sessions.
#[utoipa::path(
    delete,
    path = "/users/me/sessions/{id}",
    operation_id = "revoke_session",
    tag = "session",
    summary = "End one of my sessions",
    description = "Ends one of my sessions. Ending the current one needs nothing more and clears the \
        cookie; ending another needs a fresh session (younger than `FRESH_SESSION_SECONDS`) or my \
        password in the optional body (checked like a login: throttled, a wrong one counts as a failure).",
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            description = "The session's `id`, as listed by `GET /users/me/sessions`."),
    ),
    request_body(content = Option<Reauth>, description = "Optional; only read when the body is not empty."),
    responses(
        (status = 204, description = "Ended.",
            headers(
                ("Set-Cookie" = String, description = "The session cookie, emptied, when the current session \
                    was ended; or renewed"),
                ("Cache-Control" = String, description = "`no-store` whenever `Set-Cookie` is sent"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = ReauthRequired),
        (status = 404, description = "`Session not found.`: not one of my active sessions (unknown, someone \
            else's, or already ended).", body = Problem),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = LoginThrottled),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn revoke_one(
    current: CurrentSession,
    state: web::Data<AppState>,
    client: ClientInfo,
    path: web::Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Reauth>,
) -> Result<HttpResponse, ApiError> {
    let target = path.into_inner();
    let is_current = target == current.session.id;
    if !is_current {
        require_fresh(&state, &current, body.and_then(|b| b.password), &client).await?;
    }
    let user_id = current.user.id;
    let id = target.clone();
    // Session ids are UUIDs; anything else is unknown (and may not even be storable text, such as
    // a NUL byte for PostgreSQL), so it is not looked up.
    let revoked = Uuid::parse_str(&target).is_ok()
        && state
            .db(move |conn| {
                sessions::revoke_for_user(
                    conn,
                    user_id,
                    &id,
                    RevokeReason::RevokedByUser,
                    db::now(),
                )
            })
            .await?;
    if !revoked {
        return Err(ApiError::SessionNotFound);
    }
    state.forget_sessions_of(user_id);
    state
        .record(vec![event(
            EventKind::SessionRevoked,
            Some(user_id),
            Some(&target),
            &client,
        )])
        .await;
    let mut response = HttpResponse::NoContent();
    if is_current {
        // A response that carries a cookie is never stored by a cache.
        response.insert_header(no_store());
        response.append_header(state.cookies.clear());
    }
    Ok(response.finish())
}

/// `DELETE /users/me/sessions`: ends all my other sessions -> `{"revoked": n}`.
#[utoipa::path(
    delete,
    path = "/users/me/sessions",
    operation_id = "revoke_other_sessions",
    tag = "session",
    summary = "End my other sessions",
    description = "Ends every session of mine except the current one. Needs a fresh session (younger \
        than `FRESH_SESSION_SECONDS`) or my password in the optional body (checked like a login: \
        throttled, a wrong one counts as a failure).",
    request_body(content = Option<Reauth>, description = "Optional; only read when the body is not empty."),
    responses(
        (status = 200, description = "How many sessions were ended.", body = Revoked,
            headers(
                ("Set-Cookie" = String, description = "Sent when the session was renewed"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = ReauthRequired),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = LoginThrottled),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn revoke_others(
    current: CurrentSession,
    state: web::Data<AppState>,
    client: ClientInfo,
    OptionalJsonBody(body): OptionalJsonBody<Reauth>,
) -> Result<HttpResponse, ApiError> {
    require_fresh(&state, &current, body.and_then(|b| b.password), &client).await?;
    let (user_id, keep) = (current.user.id, current.session.id.clone());
    let ended = state
        .db(move |conn| {
            sessions::revoke_all_for_user(
                conn,
                user_id,
                Some(&keep),
                RevokeReason::RevokedByUser,
                db::now(),
            )
        })
        .await?;
    state.forget_sessions_of(user_id);
    let events: Vec<NewEvent> = ended
        .iter()
        .map(|id| event(EventKind::SessionRevoked, Some(user_id), Some(id), &client))
        .collect();
    state.record(events).await;
    Ok(HttpResponse::Ok().insert_header(no_store()).json(Revoked {
        revoked: ended.len(),
    }))
}

/// Passes when the current session is younger than `FRESH_SESSION_SECONDS`, or `password` is the
/// user's (checked like a login: throttled, and a wrong one counts as a failure). 403 otherwise.
pub(super) async fn require_fresh(
    state: &AppState,
    current: &CurrentSession,
    password: Option<String>,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let age = db::now() - current.session.created_at;
    if password.is_none() && age < Duration::seconds(state.settings.fresh_session_seconds) {
        return Ok(());
    }
    match password {
        Some(password) => confirm_password(state, current, password, client).await,
        None => Err(ApiError::Forbidden(
            "Re-authentication required: send your password, or sign in again.".into(),
        )),
    }
}

/// Checks `password` against the current user's, as a login would; a wrong one is 403.
pub(super) async fn confirm_password(
    state: &AppState,
    current: &CurrentSession,
    password: String,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let key = crate::domain::username::key_of(&current.user.username);
    if !state.hasher.has_room() {
        return Err(ApiError::Busy);
    }
    let attempt = throttle::begin_login(state, &key, client).await?;
    let slot = match state.hasher.reserve() {
        Ok(slot) => slot,
        Err(busy) => {
            attempt.abandon(state).await;
            return Err(busy);
        }
    };
    let user_id = current.user.id;
    // Read the hash afresh: the one loaded with the session may predate a password change.
    let stored = state
        .db(move |conn| users::password_hash_of(conn, user_id))
        .await?;
    if state
        .hasher
        .verify(slot, stored, Password::offered(password))
        .await?
    {
        return attempt.succeeded(state).await;
    }
    let locked = attempt.failed(state).await?;
    let mut events = vec![event(
        EventKind::LoginFailed,
        Some(user_id),
        Some(&current.session.id),
        client,
    )];
    if locked {
        events.push(event(
            EventKind::LoginThrottled,
            Some(user_id),
            Some(&current.session.id),
            client,
        ));
    }
    state.record(events).await;
    Err(ApiError::incorrect_password())
}
