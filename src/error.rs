//! Every failure a client can see, and its one JSON shape.
//!
//! Each error answers with `Content-Type: application/json` and an RFC 9457-style body:
//! `{"type": "about:blank", "title": "<HTTP reason>", "status": <code>, "detail": "<what went wrong>"}`,
//! plus `"field"` on a 422 naming the offending field. Server-side causes (500) are logged here and
//! answered opaquely; a database that does not answer is a 503.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;

use crate::auth::cookie::SetCookie;
use crate::db::DbError;

/// Largest JSON request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No session, or the one presented was refused; `clear_cookie` removes a refused cookie.
    #[error("Not authenticated.")]
    NotAuthenticated {
        clear_cookie: Option<Box<SetCookie>>,
    },
    #[error("Incorrect username or password.")]
    InvalidCredentials,
    #[error("Not found.")]
    NotFound,
    #[error("Method not allowed; this path accepts {allow}.")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    Forbidden(String),
    #[error("Session not found.")]
    SessionNotFound,
    #[error("{detail}")]
    TooManyRequests { retry_after: i64, detail: String },
    #[error("Username already taken.")]
    UsernameTaken,
    #[error("Request body is larger than {MAX_BODY_BYTES} bytes.")]
    PayloadTooLarge,
    #[error("Content-Type must be application/json.")]
    UnsupportedMediaType,
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("The database is not answering; try again shortly.")]
    Unavailable,
    /// Too many password computations are queued already (`ARGON2_MAX_QUEUE`).
    #[error("The server is busy; try again in a moment.")]
    Busy,
    #[error("Internal server error.")]
    Internal(String),
}

impl ApiError {
    /// A wrong password given to confirm a sensitive action.
    pub fn incorrect_password() -> Self {
        Self::Forbidden("Incorrect password.".into())
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The error a bare status stands for, used to give actix's own error responses our shape.
    fn for_status(status: StatusCode) -> Option<Self> {
        Some(match status {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            _ => return None,
        })
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated { .. } | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut body = problem(status, &self.to_string());
        let mut response = HttpResponse::build(status);
        match self {
            Self::Validation { field, .. } => body["field"] = json!(field),
            Self::NotAuthenticated {
                clear_cookie: Some(cookie),
            } => {
                response.append_header((**cookie).clone());
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            Self::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::Busy => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            _ => {}
        }
        response.insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]));
        response.json(body)
    }
}

/// The JSON body shared by every error.
pub fn problem(status: StatusCode, detail: &str) -> serde_json::Value {
    json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    })
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        if matches!(err, DbError::Down) {
            // Logged once when the breaker opened, not once per refused request.
            tracing::debug!(error = %err, "database unavailable");
            Self::Unavailable
        } else if is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::Unavailable
        } else {
            Self::Internal(err.to_string())
        }
    }
}

/// Whether the database is away (down, restarting, locked) rather than the query being wrong.
fn is_unavailable(err: &DbError) -> bool {
    match err {
        DbError::Pool(_) | DbError::Down => true,
        DbError::Blocking => false,
        DbError::Query(DieselError::DatabaseError(kind, info)) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => true,
            DatabaseErrorKind::Unknown => {
                let message = info.message().to_ascii_lowercase();
                [
                    "database is locked",
                    "database table is locked",
                    "terminating connection",
                    "server closed the connection",
                    "connection",
                    "the database system is",
                    "too many clients",
                ]
                .iter()
                .any(|needle| message.contains(needle))
            }
            _ => false,
        },
        DbError::Query(_) => false,
    }
}

/// Gives the error responses actix produces itself (unknown route, wrong method, refused CORS
/// preflight, ...) the JSON shape of [`ApiError`]; responses that already carry JSON pass untouched.
pub fn json_error_handler<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (req, original) = res.into_parts();
    let detail = match ApiError::for_status(status) {
        Some(err) => err.to_string(),
        None if status == StatusCode::BAD_REQUEST && is_preflight(&req) => {
            "CORS preflight refused: the origin, method or request headers are not allowed."
                .to_owned()
        }
        None if status == StatusCode::METHOD_NOT_ALLOWED => "Method not allowed.".to_owned(),
        None => format!("{}.", status.canonical_reason().unwrap_or("Error")),
    };
    let mut replacement = HttpResponse::build(status).json(problem(status, &detail));
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, replacement).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

fn is_preflight(req: &actix_web::HttpRequest) -> bool {
    req.method() == actix_web::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// `Cache-Control: no-store`, for every response that carries a user or a cookie.
pub fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}
