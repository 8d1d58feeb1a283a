//! The signed-in user's account: password change, deletion, and their audit trail.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

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
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `PUT /users/me/password`: every session of the user ends and a new one replaces the current.
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

    let new_hash = state.hasher.hash(new_password).await?;
    let user_id = current.user.id;
    let ended = state
        .db(move |conn| users::change_password(conn, user_id, &new_hash, db::now()))
        .await?;
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
        start_session(&req, &state, &client, &current.user, None, EventKind::Login).await?;
    tracing::info!(user_id, "password changed");
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .append_header(cookie)
        .json(UserView::from(&current.user)))
}

#[derive(Deserialize)]
pub struct AccountDeletion {
    password: Option<String>,
}

/// `DELETE /users/me` `{"password"}`: the account and all its sessions are gone at once.
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
        .append_header(state.cookies.clear())
        .finish())
}

#[derive(Deserialize)]
pub struct EventsQuery {
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct EventView {
    id: i64,
    kind: String,
    session_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
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
            created_at: row
                .created_at
                .and_utc()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

pub const MAX_EVENTS: i64 = 200;

/// `GET /users/me/events?limit=N`: my audit trail, newest first.
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
