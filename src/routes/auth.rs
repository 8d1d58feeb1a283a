//! Registration, login and logout.

use crate::auth::cookie::SetCookie;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::{require, JsonBody};
use super::views::{LoggedOut, Revoked, UserView};
use crate::audit::event;
use crate::auth::client::ClientInfo;
use crate::auth::session::{expiry_for, seconds_until};
use crate::auth::CurrentSession;
use crate::db::events::{EventKind, NewEvent};
use crate::db::sessions::{self, NewSession, RevokeReason, SessionStatus};
use crate::db::users::{self, Account, NewUser};
use crate::db::{self, DbError};
use crate::domain::{client_fingerprint, username, Password, SessionToken, Username};
use crate::error::{no_store, ApiError};
use crate::openapi::{
    BadRequest, CrossSiteRefused, LoginThrottled, PayloadTooLarge, Problem, RegistrationsThrottled,
    Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;
use crate::throttle;

/// `{"username", "password"}` of a new account. Fields are optional here so that a missing one is
/// a 422 naming it; the schema shows what is accepted.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery staple"}))]
pub struct Registration {
    /// 3-64 ASCII letters, digits and `_ . - @`; unique regardless of case.
    #[schema(value_type = String, required = true, min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9_.@-]+$")]
    username: Option<String>,
    /// 8-256 characters (Unicode characters, not bytes).
    #[schema(value_type = String, required = true, min_length = 8, max_length = 256)]
    password: Option<String>,
}

/// `{"username", "password"}` to sign in with. The username is matched regardless of case.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery staple"}))]
pub struct Credentials {
    #[schema(value_type = String, required = true)]
    username: Option<String>,
    #[schema(value_type = String, required = true)]
    password: Option<String>,
}

/// The documentation of `POST /register` and its alias `POST /users`: one annotated handler per path.
macro_rules! registration_endpoint {
    ($(#[$doc:meta])* $name:ident, $path:tt, $operation_id:tt) => {
        $(#[$doc])*
        #[utoipa::path(
            post,
            path = $path,
            operation_id = $operation_id,
            tag = "account",
            summary = "Create a user",
            description = "Creates a user. No session is started: sign in with `POST /login`.",
            request_body = Registration,
            responses(
                (status = 201, description = "The user was created.", body = UserView,
                    headers(("Cache-Control" = String, description = "`no-store`"))),
                (status = 400, response = BadRequest),
                (status = 403, response = CrossSiteRefused),
                (status = 409, description = "`Username already taken.` (compared regardless of case)", body = Problem),
                (status = 413, response = PayloadTooLarge),
                (status = 415, response = UnsupportedMediaType),
                (status = 422, response = Unprocessable),
                (status = 429, response = RegistrationsThrottled),
                (status = 503, response = Unavailable),
            ),
            security(()),
        )]
        pub async fn $name(
            state: web::Data<AppState>,
            client: ClientInfo,
            body: JsonBody<Registration>,
        ) -> Result<HttpResponse, ApiError> {
            register(state, client, body).await
        }
    };
}

registration_endpoint!(
    /// `POST /register`.
    register_user,
    "/register",
    "register"
);
registration_endpoint!(
    /// `POST /users`: the same as `POST /register`.
    create_user,
    "/users",
    "create_user"
);

/// Creates a user; no session.
async fn register(
    state: web::Data<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Registration>,
) -> Result<HttpResponse, ApiError> {
    let username = Username::parse(&require("username", body.username)?)
        .map_err(|m| ApiError::validation("username", m))?;
    let password = Password::parse(require("password", body.password)?)
        .map_err(|m| ApiError::validation("password", m))?;
    if !state.hasher.has_room() {
        return Err(ApiError::Busy);
    }
    let counted = throttle::begin_register(&state, &client).await?;
    match create_account(&state, username, password).await {
        Ok(user) => {
            counted.completed(&state).await?;
            tracing::info!(user_id = user.id, "user registered");
            state
                .record(vec![event(
                    EventKind::Register,
                    Some(user.id),
                    None,
                    &client,
                )])
                .await;
            Ok(HttpResponse::Created()
                .insert_header(no_store())
                .json(UserView::from(&Account::from(&user))))
        }
        Err(error) => {
            counted.abandoned(&state).await;
            Err(error)
        }
    }
}

/// Hashes the password and inserts the user; 409 when the name is taken.
async fn create_account(
    state: &AppState,
    username: Username,
    password: Password,
) -> Result<users::UserRow, ApiError> {
    let key = username.key();
    let lookup_key = key.clone();
    if state
        .db(move |conn| users::key_exists(conn, &lookup_key))
        .await?
    {
        return Err(ApiError::UsernameTaken);
    }
    let slot = state.hasher.reserve()?;
    let password_hash = state.hasher.hash(slot, password).await?;
    state
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
        })
}

/// `POST /login`: verifies the password and starts a new session, ending the one the request's
/// cookie names, if any.
#[utoipa::path(
    post,
    path = "/login",
    operation_id = "login",
    tag = "session",
    summary = "Sign in",
    description = "Verifies the password and starts a session carried by the session cookie. A live \
        session cookie sent with the request is ended and replaced. Failures are throttled per \
        (username, client IP) and per client IP.",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in: the user, and the new session cookie.", body = UserView,
            headers(
                ("Set-Cookie" = String, description = "The session cookie: `HttpOnly`, `Path=/`, `Max-Age`, \
                    `SameSite`, `Secure` and `Domain` as configured"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 400, response = BadRequest),
        (status = 401, description = "`Incorrect username or password.` (the same for an unknown user)", body = Problem),
        (status = 403, response = CrossSiteRefused),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = LoginThrottled),
        (status = 503, response = Unavailable),
    ),
    security((), ("session_cookie" = [])),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ClientInfo,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let name = require("username", body.username)?;
    let password = Password::offered(require("password", body.password)?);
    // PostgreSQL text cannot hold NUL. No username contains one, so such a name must simply find
    // no user (and count as a failure) like any other unknown name.
    let key = username::key_of(&name).replace('\0', "\u{FFFD}");
    // A full argon2 queue is answered at once, before any lock or database work.
    if !state.hasher.has_room() {
        return Err(ApiError::Busy);
    }
    let attempt = throttle::begin_login(&state, &key, &client).await?;
    let slot = match state.hasher.reserve() {
        Ok(slot) => slot,
        Err(busy) => {
            attempt.abandon(&state).await;
            return Err(busy);
        }
    };

    let lookup_key = key.clone();
    let user = state
        .db(move |conn| users::find_by_key(conn, &lookup_key))
        .await?;
    let verified = state
        .hasher
        .verify(
            slot,
            user.as_ref().map(|u| u.password_hash.clone()),
            password,
        )
        .await?;
    let user = match user {
        Some(user) if verified => user,
        user => {
            tracing::info!(ip = %client.ip, "login failed");
            let locked = attempt.failed(&state).await?;
            let user_id = user.map(|u| u.id);
            let mut events = vec![event(EventKind::LoginFailed, user_id, None, &client)];
            if locked {
                events.push(event(EventKind::LoginThrottled, user_id, None, &client));
            }
            state.record(events).await;
            return Err(ApiError::InvalidCredentials);
        }
    };
    attempt.succeeded(&state).await?;

    let replaces: Vec<String> = state
        .cookies
        .candidates(&req)
        .iter()
        .filter_map(|raw| SessionToken::parse(raw))
        .map(|old| old.hash())
        .collect();
    let cookie = start_session(&req, &state, &client, user.id, replaces, EventKind::Login).await?;
    tracing::info!(user_id = user.id, "login succeeded");
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .append_header(cookie)
        .json(UserView::from(&Account::from(&user))))
}

/// Creates a session for `user` (ending those whose token hashes are in `replaces`, and any beyond
/// the per-user limit), records the events, and returns the cookie that carries it.
pub(super) async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    client: &ClientInfo,
    user_id: i64,
    replaces: Vec<String>,
    kind: EventKind,
) -> Result<SetCookie, ApiError> {
    let token = SessionToken::generate();
    let token_hash = token.hash();
    let fingerprint = client_fingerprint(state.fingerprint, req.headers());
    let now = db::now();
    let expires_at = expiry_for(now, now, state.sessions);
    let session_id = Uuid::new_v4().to_string();
    let max_active = state.settings.max_sessions_per_user;
    let replaced_hashes = replaces.clone();
    let (id, agent, ip) = (
        session_id.clone(),
        client.user_agent.clone(),
        client.ip.clone(),
    );
    let created = state
        .db(move |conn| {
            sessions::create_replacing(
                conn,
                &NewSession {
                    id: &id,
                    user_id,
                    token_hash: &token_hash,
                    status: SessionStatus::Active,
                    client_fingerprint: &fingerprint,
                    created_at: now,
                    expires_at,
                    last_seen_at: now,
                    user_agent: agent.as_deref(),
                    ip: Some(&ip),
                },
                &replaces,
                max_active,
            )
        })
        .await?;
    if !created.replaced.is_empty() {
        for hash in &replaced_hashes {
            state.forget_session_token(hash);
        }
    }
    if !created.over_limit.is_empty() {
        state.forget_sessions_of(user_id);
    }
    let mut events = vec![event(kind, Some(user_id), Some(&session_id), client)];
    events.extend(
        created
            .replaced
            .iter()
            .map(|id| event(EventKind::Logout, Some(user_id), Some(id), client)),
    );
    events.extend(
        created
            .over_limit
            .iter()
            .map(|id| event(EventKind::SessionRevoked, Some(user_id), Some(id), client)),
    );
    state.record(events).await;
    Ok(state.cookies.issue(&token, seconds_until(expires_at, now)))
}

/// `POST /logout`: ends the session the cookie names and clears the cookie. Idempotent: a cookie
/// naming an unknown or already-ended session is still answered 200 and cleared.
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "logout",
    tag = "session",
    summary = "Sign out",
    description = "Ends the session the cookie names and clears the cookie. Idempotent: a cookie naming \
        an unknown or already ended session is answered 200 too. Takes no body.",
    responses(
        (status = 200, description = "Signed out; the cookie is cleared.", body = LoggedOut,
            headers(
                ("Set-Cookie" = String, description = "The session cookie, emptied, with `Max-Age=0`"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 401, description = "`Not authenticated.`: no session cookie was sent.", body = Problem),
        (status = 403, response = CrossSiteRefused),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let candidates = state.cookies.candidates(&req);
    if candidates.is_empty() {
        return Err(ApiError::NotAuthenticated { clear_cookie: None });
    }
    // Every value sent under the cookie's name (duplicates for other paths or domains) is ended:
    // the browser forgets them all with the cookie.
    for token in candidates.iter().filter_map(|raw| SessionToken::parse(raw)) {
        let token_hash = token.hash();
        let lookup = token_hash.clone();
        let ended = state
            .db(move |conn| {
                sessions::end_by_token_hash(conn, &lookup, RevokeReason::Logout, db::now())
            })
            .await?;
        state.forget_session_token(&token_hash);
        if let Some((session_id, user_id)) = ended {
            state
                .record(vec![event(
                    EventKind::Logout,
                    Some(user_id),
                    Some(&session_id),
                    &client,
                )])
                .await;
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .append_header(state.cookies.clear())
        .json(LoggedOut::DONE))
}

/// `POST /logout/all`: ends every session of the user, this one included.
#[utoipa::path(
    post,
    path = "/logout/all",
    operation_id = "logout_all",
    tag = "session",
    summary = "Sign out everywhere",
    description = "Ends every session of the user, this one included, and clears the cookie. Takes no body.",
    responses(
        (status = 200, description = "The number of sessions ended, this one included.", body = Revoked,
            headers(
                ("Set-Cookie" = String, description = "The session cookie, emptied, with `Max-Age=0`"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 401, response = Unauthorized),
        (status = 403, response = CrossSiteRefused),
        (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn logout_all(
    current: CurrentSession,
    state: web::Data<AppState>,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let user_id = current.user.id;
    let ended = state
        .db(move |conn| {
            sessions::revoke_all_for_user(conn, user_id, None, RevokeReason::LogoutAll, db::now())
        })
        .await?;
    state.forget_sessions_of(user_id);
    let events: Vec<NewEvent> = ended
        .iter()
        .map(|id| {
            let kind = if *id == current.session.id {
                EventKind::Logout
            } else {
                EventKind::SessionRevoked
            };
            event(kind, Some(user_id), Some(id), &client)
        })
        .collect();
    state.record(events).await;
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .append_header(state.cookies.clear())
        .json(Revoked {
            revoked: ended.len(),
        }))
}
