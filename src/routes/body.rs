//! `JsonBody<T>`: the JSON request body extractor, with our statuses instead of actix's:
//! 415 unless `Content-Type` is JSON, 413 over [`MAX_BODY_BYTES`], 400 for malformed JSON, and 422
//! naming the field whose value has the wrong type.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, MAX_BODY_BYTES};

/// A request body parsed as JSON into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = check_headers(req);
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::BadRequest(format!("The request body could not be read: {e}."))
                })?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ApiError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(JsonBody)
        })
    }
}

fn check_headers(req: &HttpRequest) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_content_type);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "The request body is empty; send a JSON object.".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "body",
            "The request body must be a JSON object.",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        if field.contains("password") {
            // serde's message quotes the offending value, which must not be echoed or logged.
            return ApiError::validation(&field, format!("{field} must be a string."));
        }
        ApiError::validation(&field, format!("{field}: {}.", e.inner()))
    })
}

/// A body extraction whose value is dropped: only whether, and how, it fails.
pub type BodyCheck = Pin<Box<dyn Future<Output = Result<(), ApiError>>>>;

impl super::Endpoint {
    /// Runs the body extractor of this endpoint's handler ([`JsonBody`] or [`OptionalJsonBody`]
    /// of its body type) on `req` and `payload`, dropping the value; `None` when the handler takes
    /// no JSON body. It exists for the fuzz targets in `fuzz/`, which cannot name the handlers'
    /// body types; a test checks it against the request bodies of the OpenAPI document.
    pub fn check_json_body(&self, req: &HttpRequest, payload: &mut Payload) -> Option<BodyCheck> {
        fn dropped<E: 'static>(
            extraction: impl Future<Output = Result<E, ApiError>> + 'static,
        ) -> BodyCheck {
            Box::pin(async move { extraction.await.map(drop) })
        }
        use super::{account, auth, sessions};
        use actix_web::http::Method;
        let check = match (&self.method, self.path) {
            (&Method::POST, "/register" | "/users") => {
                dropped(JsonBody::<auth::Registration>::from_request(req, payload))
            }
            (&Method::POST, "/login") => {
                dropped(JsonBody::<auth::Credentials>::from_request(req, payload))
            }
            (&Method::PUT, "/users/me/password") => dropped(
                JsonBody::<account::PasswordChange>::from_request(req, payload),
            ),
            (&Method::DELETE, "/users/me") => dropped(
                JsonBody::<account::AccountDeletion>::from_request(req, payload),
            ),
            (&Method::DELETE, "/users/me/sessions" | "/users/me/sessions/{id}") => dropped(
                OptionalJsonBody::<sessions::Reauth>::from_request(req, payload),
            ),
            _ => return None,
        };
        Some(check)
    }
}

/// A required field: `null` or absent is a 422 naming it.
pub fn require<T>(field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::validation(field, format!("{field} is required.")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Creds {
        #[allow(dead_code)]
        username: Option<String>,
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Creds>(b"{bad"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(parse::<Creds>(b""), Err(ApiError::BadRequest(_))));
    }

    #[derive(Debug, Deserialize)]
    struct Secret {
        #[allow(dead_code)]
        password: Option<String>,
    }

    #[test]
    fn a_mistyped_password_is_never_quoted() {
        match parse::<Secret>(br#"{"password": 987654321}"#) {
            Err(ApiError::Validation { field, message }) => {
                assert_eq!(field, "password");
                assert!(!message.contains("987654321"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// `Endpoint::check_json_body` knows the body of exactly the endpoints documented with one.
    #[test]
    fn json_body_checks_match_the_documented_request_bodies() {
        let settings = crate::config::Settings::from_lookup(|_| None).unwrap();
        let doc = crate::openapi::document(&settings);
        for endpoint in super::super::ROUTES {
            let item = &doc.paths.paths[endpoint.path];
            let operation = match endpoint.method.as_str() {
                "GET" => &item.get,
                "POST" => &item.post,
                "PUT" => &item.put,
                "DELETE" => &item.delete,
                other => panic!("no operation for {other}"),
            };
            let documented = operation
                .as_ref()
                .is_some_and(|op| op.request_body.is_some());
            let (req, mut payload) = actix_web::test::TestRequest::default().to_http_parts();
            let checked = endpoint.check_json_body(&req, &mut payload).is_some();
            assert_eq!(
                checked, documented,
                "{} {}: body check {checked}, documented body {documented}",
                endpoint.method, endpoint.path
            );
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        match parse::<Creds>(br#"{"username": 5}"#) {
            Err(ApiError::Validation { field, .. }) => assert_eq!(field, "username"),
            other => panic!("{other:?}"),
        }
        match parse::<Creds>(b"[1]") {
            Err(ApiError::Validation { field, .. }) => assert_eq!(field, "body"),
            other => panic!("{other:?}"),
        }
    }
}

/// A JSON body that may be absent: a request with no body gives `None`, one with a body must
/// be valid JSON like [`JsonBody`].
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !has_body(req.head()) {
            return Box::pin(async { Ok(Self(None)) });
        }
        let body = JsonBody::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|JsonBody(value)| Self(Some(value))) })
    }
}

/// Whether the request announces a body (a non-zero `Content-Length`, or chunked transfer).
pub fn has_body(req: &actix_web::dev::RequestHead) -> bool {
    let headers = &req.headers;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > 0)
}

/// Whether a `Content-Type` value is JSON (`application/json` or `application/*+json`).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
