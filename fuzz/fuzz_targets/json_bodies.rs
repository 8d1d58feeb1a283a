//! Fuzz target `json_bodies`: the JSON body of every endpoint that takes one, as the server reads
//! and validates it.
//!
//! Input: byte 0 picks the endpoint (among those of `tessera::routes::ROUTES` whose handler takes
//! a JSON body), byte 1 the request headers, the rest is the body. The body goes through the
//! handler's own extractor with its own body type (`Endpoint::check_json_body`: `Content-Type`,
//! size limit, JSON, field types), then, when that accepts it, through the checks the handler
//! makes before anything touches the database (`require`d fields, `Username::parse`,
//! `Password::parse`, the login lookup key). Checks:
//!
//! - nothing panics, and every refusal is a client error: 400, 413, 415 or 422 from the extractor,
//!   422 from validation; none is a 500;
//! - 415 exactly when a body is sent without a JSON `Content-Type`, 413 when it announces more
//!   than `MAX_BODY_BYTES`;
//! - an accepted username and password obey the README's rules (3-64 of `A-Za-z0-9_.-@`; 8-256
//!   characters), and a refused one breaks them.
//!
//! Byte 1: bits 0-2 pick the `Content-Type` ([`CONTENT_TYPES`]); bit 3 announces a
//! `Content-Length` over the limit.
#![no_main]

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use actix_web::http::Method;
use actix_web::test::TestRequest;
use actix_web::ResponseError;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tessera::domain::{username, Password, Username};
use tessera::error::{ApiError, MAX_BODY_BYTES};
use tessera::routes::{Endpoint, ROUTES};

/// `Content-Type` values, and whether the server takes each as JSON.
const CONTENT_TYPES: [(Option<&str>, bool); 8] = [
    (Some("application/json"), true),
    (Some("application/json; charset=utf-8"), true),
    (Some("application/merge-patch+json"), true),
    (Some("Application/JSON"), true),
    (None, false),
    (Some("text/plain"), false),
    (Some("application/jsonp"), false),
    (Some("application/x-www-form-urlencoded"), false),
];

/// The endpoints whose handler reads a JSON body, and whether that body is optional (a request
/// without one is accepted).
fn body_endpoints() -> &'static [(&'static Endpoint, bool)] {
    static ENDPOINTS: OnceLock<Vec<(&'static Endpoint, bool)>> = OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        ROUTES
            .iter()
            .filter_map(|endpoint| {
                let (req, mut payload) = TestRequest::default().to_http_parts();
                let check = endpoint.check_json_body(&req, &mut payload)?;
                Some((endpoint, now(check).is_ok()))
            })
            .collect()
    })
}

/// Runs a future that cannot wait: the whole body is already in memory.
fn now<T>(mut future: Pin<Box<dyn Future<Output = T>>>) -> T {
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("reading an in-memory body waited"),
    }
}

/// A field as the handler's `Option<String>` field holds it.
fn field(body: Option<&Map<String, Value>>, name: &str) -> Option<String> {
    match body?.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("the extractor accepted {name} = {other}, which is not a string"),
    }
}

/// `routes::body::require`: a missing field is a 422 naming it.
fn require(name: &str, value: Option<String>) -> Result<String, ApiError> {
    value.ok_or_else(|| ApiError::validation(name, format!("{name} is required.")))
}

fn check_username(raw: &str, parsed: &Result<Username, String>) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@');
    let valid = (3..=64).contains(&raw.chars().count()) && raw.chars().all(allowed);
    match parsed {
        Ok(name) => {
            assert!(valid, "accepted username {raw:?}");
            assert_eq!(name.as_str(), raw);
            assert_eq!(name.key(), raw.to_ascii_lowercase());
        }
        Err(message) => assert!(!valid && !message.is_empty(), "refused username {raw:?}"),
    }
}

fn check_password(raw: &str, parsed: &Result<Password, String>) {
    let valid = (8..=256).contains(&raw.chars().count());
    match parsed {
        Ok(password) => {
            assert!(
                valid,
                "accepted a password of {} chars",
                raw.chars().count()
            );
            assert_eq!(password.expose(), raw);
            let debug = format!("{password:?}");
            assert!(debug.contains(raw) == "Password([redacted])".contains(raw));
        }
        Err(message) => assert!(!valid && !message.is_empty()),
    }
}

/// What the handler of `endpoint` does with the body before it reaches throttling or the
/// database (the first lines of the handlers in `src/routes/{auth,account,sessions}.rs`).
fn validate(endpoint: &Endpoint, body: Option<&Map<String, Value>>) -> Result<(), ApiError> {
    match (&endpoint.method, endpoint.path) {
        (&Method::POST, "/register" | "/users") => {
            let raw = require("username", field(body, "username"))?;
            let parsed = Username::parse(&raw);
            check_username(&raw, &parsed);
            parsed.map_err(|m| ApiError::validation("username", m))?;
            let raw = require("password", field(body, "password"))?;
            let parsed = Password::parse(raw.clone());
            check_password(&raw, &parsed);
            parsed.map_err(|m| ApiError::validation("password", m))?;
        }
        (&Method::POST, "/login") => {
            let name = require("username", field(body, "username"))?;
            let offered = require("password", field(body, "password"))?;
            assert_eq!(Password::offered(offered.clone()).expose(), offered);
            let key = username::key_of(&name).replace('\0', "\u{FFFD}");
            assert!(!key.contains('\0'));
            assert_eq!(username::key_of(&key), key, "the lookup key is not stable");
            if let Ok(valid) = Username::parse(&name) {
                assert_eq!(
                    valid.key(),
                    key,
                    "login and registration disagree on the key"
                );
            }
        }
        (&Method::PUT, "/users/me/password") => {
            require("current_password", field(body, "current_password"))?;
            let raw = require("new_password", field(body, "new_password"))?;
            let parsed = Password::parse(raw.clone());
            check_password(&raw, &parsed);
            parsed.map_err(|m| {
                ApiError::validation("new_password", m.replacen("password", "new_password", 1))
            })?;
        }
        (&Method::DELETE, "/users/me") => {
            require("password", field(body, "password"))?;
        }
        (&Method::DELETE, "/users/me/sessions" | "/users/me/sessions/{id}") => {
            // The password is optional; it is only ever compared.
            let _ = field(body, "password");
        }
        (method, path) => panic!("{method} {path} takes a JSON body: add its checks here"),
    }
    Ok(())
}

fn check_refusal(err: &ApiError, allowed: &[u16]) {
    let status = err.status_code();
    assert!(
        allowed.contains(&status.as_u16()),
        "{err:?} answered {status}"
    );
    assert_eq!(err.error_response().status(), status);
}

fuzz_target!(|data: &[u8]| {
    let [selector, flags, body @ ..] = data else {
        return;
    };
    let endpoints = body_endpoints();
    let (endpoint, optional) = endpoints[usize::from(*selector) % endpoints.len()];
    let (content_type, is_json) = CONTENT_TYPES[usize::from(flags & 7)];
    let too_long = flags & 8 != 0;

    let mut req = TestRequest::default()
        .method(endpoint.method.clone())
        .uri(endpoint.path)
        .set_payload(body.to_vec());
    if let Some(content_type) = content_type {
        req = req.insert_header(("content-type", content_type));
    }
    if too_long {
        req = req.insert_header(("content-length", (MAX_BODY_BYTES + 1).to_string()));
    }
    let (req, mut payload) = req.to_http_parts();
    let check = endpoint
        .check_json_body(&req, &mut payload)
        .expect("a body endpoint");

    let sends_body = !body.is_empty() || too_long;
    let reads_body = sends_body || !optional;
    match now(check) {
        Err(err) => {
            check_refusal(&err, &[400, 413, 415, 422]);
            let status = err.status_code().as_u16();
            assert_eq!(status == 415, reads_body && !is_json, "{err:?}");
            if is_json && (too_long || body.len() > MAX_BODY_BYTES) {
                assert_eq!(status, 413, "{err:?}");
            }
        }
        Ok(()) => {
            assert!(
                is_json || !reads_body,
                "a body without a JSON Content-Type was read"
            );
            assert!(
                sends_body || optional,
                "a required body was missing and accepted"
            );
            assert!(!too_long && body.len() <= MAX_BODY_BYTES);
            let parsed: Option<Map<String, Value>> = if sends_body {
                match serde_json::from_slice(body) {
                    Ok(Value::Object(map)) => Some(map),
                    other => {
                        panic!("the extractor accepted a body that is not an object: {other:?}")
                    }
                }
            } else {
                None
            };
            if let Err(err) = validate(endpoint, parsed.as_ref()) {
                check_refusal(&err, &[422]);
            }
        }
    }
});
