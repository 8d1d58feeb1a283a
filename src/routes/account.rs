//! The signed-in user's account: password change, deletion, and their audit trail.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::start_session;
use super::body::{require, JsonBody};
use super::sessions::confirm_password;
use super::views::UserView;
use crate::audit::event;
use crate::auth::client::ClientInfo;
use crate::auth::CurrentSession;
use crate::db::events::{self, EventKind, EventRow};
use crate::db::{self, users};
use crate::domain::Password;
use crate::error::{no_store, ApiError};
use crate::openapi::{
    BadRequest, LoginThrottled, PasswordRefused, PayloadTooLarge, Unauthorized, Unavailable,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;

/// `{"current_password", "new_password"}`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"current_password": "correct horse battery staple", "new_password": "a much better passphrase"}))]
pub struct PasswordChange {
    #[schema(value_type = String, required = true)]
    current_password: Option<String>,
    /// 8-256 characters (Unicode characters, not bytes).
    #[schema(value_type = String, required = true, min_length = 8, max_length = 256)]
    new_password: Option<String>,
}

/// `PUT /users/me/password`: every session of the user ends and a new one replaces the current.
#[utoipa::path(
    put,
    path = "/users/me/password",
    operation_id = "change_password",
    tag = "account",
    summary = "Change my password",
    description = "Checks `current_password` (like a login: throttled, a wrong one counts as a failure), \
        sets the new password, ends every session of the user (this one included) and starts a new \
        session whose cookie is sent back.",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed: the user, and the cookie of the new session.", body = UserView,
            headers(
                ("Set-Cookie" = String, description = "The cookie of the new session"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = PasswordRefused),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = LoginThrottled),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn change_password(
    req: HttpRequest,
    current: CurrentSession,
    state: web::Data<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let current_password = require("current_password", body.current_password)?;
    let new_password =
        Password::parse(require("new_password", body.new_password)?).map_err(|m| {
            ApiError::validation("new_password", m.replacen("password", "new_password", 1))
        })?;
    confirm_password(&state, &current, current_password, &client).await?;

    let slot = state.hasher.reserve()?;
    let new_hash = state.hasher.hash(slot, new_password).await?;
    let user_id = current.user.id;
    let ended = state
        .db(move |conn| users::change_password(conn, user_id, &new_hash, db::now()))
        .await?;
    state.forget_sessions_of(user_id);
    let mut audit = vec![event(
        EventKind::PasswordChanged,
        Some(user_id),
        Some(&current.session.id),
        &client,
    )];
    audit.extend(
        ended
            .iter()
            .map(|id| event(EventKind::SessionRevoked, Some(user_id), Some(id), &client)),
    );
    state.record(audit).await;
    let cookie =
        start_session(&req, &state, &client, user_id, Vec::new(), EventKind::Login).await?;
    tracing::info!(user_id, "password changed");
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .append_header(cookie)
        .json(UserView::from(&current.user)))
}

/// `{"password"}`: the account's password, to confirm its deletion.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"password": "correct horse battery staple"}))]
pub struct AccountDeletion {
    #[schema(value_type = String, required = true)]
    password: Option<String>,
}

/// `DELETE /users/me` `{"password"}`: the account and all its sessions are gone at once.
#[utoipa::path(
    delete,
    path = "/users/me",
    operation_id = "delete_account",
    tag = "account",
    summary = "Delete my account",
    description = "Deletes the user and all its sessions once the password is confirmed (like a login: \
        throttled, a wrong one counts as a failure). The username becomes free again.",
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Deleted; the cookie is cleared.",
            headers(
                ("Set-Cookie" = String, description = "The session cookie, emptied, with `Max-Age=0`"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = PasswordRefused),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = LoginThrottled),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn delete_account(
    current: CurrentSession,
    state: web::Data<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<AccountDeletion>,
) -> Result<HttpResponse, ApiError> {
    let password = require("password", body.password)?;
    confirm_password(&state, &current, password, &client).await?;
    let user_id = current.user.id;
    state.db(move |conn| users::delete(conn, user_id)).await?;
    state.forget_sessions_of(user_id);
    state
        .record(vec![event(
            EventKind::AccountDeleted,
            Some(user_id),
            Some(&current.session.id),
            &client,
        )])
        .await;
    tracing::info!(user_id, "account deleted");
    Ok(HttpResponse::NoContent()
        .insert_header(no_store())
        .append_header(state.cookies.clear())
        .finish())
}

#[derive(Deserialize)]
pub struct EventsQuery {
    limit: Option<String>,
}

/// One entry of my audit trail.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": 7, "kind": "login", "session_id": "9f1c2b8e-3a4d-4e5f-8a6b-7c8d9e0f1a2b",
    "ip": "127.0.0.1", "user_agent": "curl/8.5.0", "created_at": "2026-11-22T03:00:00Z"}))]
pub struct EventView {
    id: i64,
    /// `register`, `login`, `login_failed`, `login_throttled`, `logout`, `session_revoked`,
    /// `password_changed`, `fingerprint_mismatch`, `session_expired`, `account_deleted`, ...
    kind: String,
    /// The session concerned, if any.
    session_id: Option<String>,
    /// The client IP of the request that caused it.
    ip: Option<String>,
    user_agent: Option<String>,
    /// RFC 3339, UTC, whole seconds, `Z`.
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            session_id: row.session_id,
            ip: row.ip,
            user_agent: row.user_agent,
            created_at: super::views::rfc3339(row.created_at),
        }
    }
}

pub const MAX_EVENTS: i64 = 200;

/// `GET /users/me/events?limit=N`: my audit trail, newest first.
#[utoipa::path(
    get,
    path = "/users/me/events",
    operation_id = "list_events",
    tag = "account",
    summary = "My audit trail",
    description = "My events, newest first.",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200,
            description = "How many events, 1 to 200; 50 when absent."),
    ),
    responses(
        (status = 200, description = "My events, newest first.", body = Vec<EventView>,
            headers(
                ("Set-Cookie" = String, description = "Sent when the session was renewed"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn list_events(
    current: CurrentSession,
    state: web::Data<AppState>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.into_inner().limit {
        None => 50,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_EVENTS).contains(n))
            .ok_or_else(|| {
                ApiError::validation(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_EVENTS}."),
                )
            })?,
    };
    let user_id = current.user.id;
    let rows = state
        .db(move |conn| events::list_for_user(conn, user_id, limit))
        .await?;
    let views: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    Ok(HttpResponse::Ok().insert_header(no_store()).json(views))
}
