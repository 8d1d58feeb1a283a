//! Shared machinery: a real server per test on port 0, a fresh database per test
//! (SQLite file in a temp dir, or a PostgreSQL database created for the test and
//! dropped afterwards), HTTP clients, cookie parsing and direct database reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDateTime;
use cookie::Cookie;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Generates, for each `async fn name(backend: Backend)` in the current module,
/// a module `name` with two tests: `name::sqlite` and `name::postgres`.
/// The PostgreSQL variant returns early (with a note) only when
/// `TEST_DATABASE_URL` is unset; when it is set, every failure is a failure.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if $crate::helpers::postgres_enabled(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// Like `backend_tests!`, for tests that only make sense on PostgreSQL.
macro_rules! postgres_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if $crate::helpers::postgres_enabled(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const DEFAULT_COOKIE: &str = "access_token";
pub const NOT_AUTHENTICATED: &str = "Not authenticated.";
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `TEST_DATABASE_URL`, when set and not blank.
pub fn test_database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub fn postgres_enabled(test: &str) -> bool {
    if test_database_url().is_some() {
        true
    } else {
        eprintln!(
            "note: TEST_DATABASE_URL is not set, the PostgreSQL variant of {test} did not run"
        );
        false
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn is_lower_hex_64(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_base64url_43(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

mod answer;
mod app;
mod db;

pub use answer::*;
pub use app::*;
pub use db::*;

/// Asserts the user JSON shape: exactly id (integer), username, created_at
/// (RFC 3339 UTC, whole seconds, `Z`).
#[track_caller]
pub fn assert_user_json(user: &Value, username: &str) {
    let object = user
        .as_object()
        .unwrap_or_else(|| panic!("user is not an object: {user}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "id", "username"],
        "user keys of {user}"
    );
    assert!(user["id"].is_i64(), "id must be an integer: {user}");
    assert_eq!(user["username"], json!(username), "username of {user}");
    let created = user["created_at"]
        .as_str()
        .unwrap_or_else(|| panic!("created_at is not a string: {user}"));
    assert!(
        created.len() == 20 && created.ends_with('Z'),
        "created_at must look like 2026-11-22T03:00:00Z, got {created:?}"
    );
    let parsed = chrono::DateTime::parse_from_rfc3339(created)
        .unwrap_or_else(|e| panic!("created_at {created:?} is not RFC 3339: {e}"));
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(
        age.num_seconds().abs() < 600,
        "created_at {created} is not about now"
    );
}

// ---------------------------------------------------------------------------
// Session management (issue 3)

pub const NEW_PASSWORD: &str = "a much better passphrase";
pub const INCORRECT_PASSWORD: &str = "Incorrect password.";
pub const REAUTH_REQUIRED: &str =
    "Re-authentication required: send your password, or sign in again.";
pub const SESSION_NOT_FOUND: &str = "Session not found.";

/// The `Retry-After` of an answer, in whole seconds (>= 1).
#[track_caller]
pub fn retry_after(answer: &Answer) -> i64 {
    let value = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", answer.headers));
    let seconds: i64 = value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {value:?} is not whole seconds: {e}"));
    assert!(seconds >= 1, "Retry-After must be >= 1, got {seconds}");
    seconds
}

/// A 429 of the login throttle: the error shape, `Retry-After`, the contract's detail naming
/// the same number of seconds, and no session cookie. Returns `Retry-After`.
#[track_caller]
pub fn assert_login_throttled(answer: &Answer) -> i64 {
    let body = answer.problem(429);
    let seconds = retry_after(answer);
    assert_eq!(
        body["detail"],
        json!(format!(
            "Too many failed login attempts; try again in {seconds} seconds."
        )),
        "429 detail"
    );
    assert!(
        answer.set_cookies().iter().all(|c| c.value().is_empty()),
        "a throttled answer must not start a session: {:?}",
        answer.set_cookies()
    );
    seconds
}

/// `status = inactive`, `revoked_reason = reason`, `revoked_at` about now.
#[track_caller]
pub fn assert_revoked(row: &SessionRow, reason: &str) {
    assert_eq!(row.status, "inactive", "{row:?}");
    assert_eq!(
        row.revoked_reason.as_deref(),
        Some(reason),
        "revoked_reason of {row:?}"
    );
    let at = row
        .revoked_at
        .unwrap_or_else(|| panic!("revoked_at is not set: {row:?}"));
    assert_about_now(at, "revoked_at");
}

/// Still usable: `active`, never revoked.
#[track_caller]
pub fn assert_live(row: &SessionRow) {
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.revoked_reason, None, "{row:?}");
    assert_eq!(row.revoked_at, None, "{row:?}");
}

/// A string field that is RFC 3339 UTC with whole seconds and `Z`.
#[track_caller]
pub fn assert_rfc3339_z(value: &Value, what: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        text.len() == 20 && text.ends_with('Z'),
        "{what} must look like 2026-11-22T03:00:00Z, got {text:?}"
    );
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} {text:?} is not RFC 3339: {e}"))
}

/// The sorted keys of a JSON object.
#[track_caller]
pub fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}
