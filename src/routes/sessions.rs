//! `/users/me/sessions`: a user's devices, and revoking them.

use actix_web::{web, HttpResponse};
use chrono::{Duration, SecondsFormat};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::OptionalJsonBody;
use crate::audit::event;
use crate::auth::client::ClientInfo;
use crate::auth::CurrentSession;
use crate::db::events::{EventKind, NewEvent};
use crate::db::sessions::{self, RevokeReason, SessionRow};
use crate::db::{self, users};
use crate::domain::Password;
use crate::error::{no_store, ApiError};
use crate::state::AppState;
use crate::throttle;

/// A session as its owner sees it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
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
#[derive(Deserialize)]
pub struct Reauth {
    password: Option<String>,
}

/// `GET /users/me/sessions`: my usable sessions, newest first.
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
    let revoked = state
        .db(move |conn| {
            sessions::revoke_for_user(conn, user_id, &id, RevokeReason::RevokedByUser, db::now())
        })
        .await?;
    if !revoked {
        return Err(ApiError::SessionNotFound);
    }
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
        response.append_header(state.cookies.clear());
    }
    Ok(response.finish())
}

/// `DELETE /users/me/sessions`: ends all my other sessions -> `{"revoked": n}`.
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
    let events: Vec<NewEvent> = ended
        .iter()
        .map(|id| event(EventKind::SessionRevoked, Some(user_id), Some(id), &client))
        .collect();
    state.record(events).await;
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .json(json!({"revoked": ended.len()})))
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
    let attempt = throttle::begin_login(state, &key, client).await?;
    let user_id = current.user.id;
    // Read the hash afresh: the one loaded with the session may predate a password change.
    let stored = state
        .db(move |conn| users::password_hash_of(conn, user_id))
        .await?;
    if state
        .hasher
        .verify(stored, Password::offered(password))
        .await?
    {
        return attempt.succeeded(state).await;
    }
    attempt.failed(state).await?;
    state
        .record(vec![event(
            EventKind::LoginFailed,
            Some(user_id),
            Some(&current.session.id),
            client,
        )])
        .await;
    Err(ApiError::incorrect_password())
}
