//! Registration, login and logout.

use actix_web::{web, HttpRequest, HttpResponse};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::body::{require, JsonBody};
use super::views::UserView;
use crate::auth::session::{expiry_for, seconds_until};
use crate::db::sessions::{self, NewSession, SessionStatus};
use crate::db::users::{self, NewUser};
use crate::db::{self, DbError};
use crate::domain::{client_fingerprint, username, Password, SessionToken, Username};
use crate::error::{no_store, ApiError};
use crate::state::AppState;

/// `{"username", "password"}`; fields are optional here so that a missing one is a 422 naming it.
#[derive(Deserialize)]
pub struct Credentials {
    username: Option<String>,
    password: Option<String>,
}

/// `POST /register` (and `POST /users`): creates a user; no session.
pub async fn register(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let username = Username::parse(&require("username", body.username)?)
        .map_err(|m| ApiError::validation("username", m))?;
    let password = Password::parse(require("password", body.password)?)
        .map_err(|m| ApiError::validation("password", m))?;

    let key = username.key();
    let lookup_key = key.clone();
    if state
        .db(move |conn| users::key_exists(conn, &lookup_key))
        .await?
    {
        return Err(ApiError::UsernameTaken);
    }
    let password_hash = state.hasher.hash(password).await?;
    let user = state
        .db(move |conn| {
            users::insert(
                conn,
                &NewUser {
                    username: username.as_str(),
                    username_key: &key,
                    password_hash: &password_hash,
                    created_at: db::now(),
                },
            )
        })
        .await
        .map_err(|err| match err {
            // Another request registered the same name between the check and the insert.
            DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                ApiError::UsernameTaken
            }
            other => other.into(),
        })?;
    tracing::info!(user_id = user.id, "user registered");
    Ok(HttpResponse::Created()
        .insert_header(no_store())
        .json(UserView::from(&user)))
}

/// `POST /login`: verifies the password and starts a new session, ending the one the request's
/// cookie names, if any.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let name = require("username", body.username)?;
    let password = Password::offered(require("password", body.password)?);

    let key = username::key_of(&name);
    let user = state.db(move |conn| users::find_by_key(conn, &key)).await?;
    let verified = state
        .hasher
        .verify(user.as_ref().map(|u| u.password_hash.clone()), password)
        .await?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            tracing::info!("login failed");
            return Err(ApiError::InvalidCredentials);
        }
    };

    let token = SessionToken::generate();
    let token_hash = token.hash();
    let replaces = state
        .cookies
        .read(&req)
        .and_then(|raw| SessionToken::parse(&raw))
        .map(|old| old.hash());
    let fingerprint = client_fingerprint(state.fingerprint, req.headers());
    let now = db::now();
    let expires_at = expiry_for(now, now, state.sessions);
    let session_id = Uuid::new_v4().to_string();
    let user_id = user.id;
    state
        .db(move |conn| {
            sessions::create_replacing(
                conn,
                &NewSession {
                    id: &session_id,
                    user_id,
                    token_hash: &token_hash,
                    status: SessionStatus::Active.as_str(),
                    client_fingerprint: &fingerprint,
                    created_at: now,
                    expires_at,
                    last_seen_at: now,
                },
                replaces.as_deref(),
            )
        })
        .await?;
    tracing::info!(user_id, "login succeeded");
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .cookie(state.cookies.issue(&token, seconds_until(expires_at, now)))
        .json(UserView::from(&user)))
}

/// `POST /logout`: ends the session the cookie names and clears the cookie. Idempotent: a cookie
/// naming an unknown or already-ended session is still answered 200 and cleared.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(raw) = state.cookies.read(&req) else {
        return Err(ApiError::NotAuthenticated { clear_cookie: None });
    };
    if let Some(token) = SessionToken::parse(&raw) {
        let token_hash = token.hash();
        state
            .db(move |conn| sessions::end_by_token_hash(conn, &token_hash))
            .await?;
    }
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .cookie(state.cookies.clear())
        .json(json!({"message": "Successfully logged out."})))
}
