//! CORS: preflights from allowed and refused origins.

use reqwest::Method;

use crate::helpers::*;

const ORIGINS: &str =
    "http://app.example.test, https://admin.example.test:8443;http://localhost:3000";

backend_tests!(
    preflight_from_allowed_origin_is_echoed_with_credentials,
    preflight_from_every_listed_origin_is_allowed,
    preflight_advertises_methods_header_and_max_age,
    preflight_from_refused_origin_has_no_allow_origin,
    origin_matching_is_exact,
    preflight_is_refused_when_no_origins_are_configured,
    simple_get_from_allowed_origin_gets_allow_origin,
    error_answer_to_allowed_origin_gets_allow_origin,
    simple_get_from_refused_origin_gets_no_allow_origin,
    login_from_allowed_origin_gets_allow_origin_and_cookie,
);

async fn preflight(app: &TestApp, path: &str, origin: &str) -> Answer {
    app.send_raw(
        Method::OPTIONS,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
    )
    .await
}

#[track_caller]
fn assert_allowed(answer: &Answer, origin: &str) {
    assert!(
        answer.status.is_success(),
        "preflight from {origin} got {}: {}",
        answer.status,
        answer.text
    );
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(origin),
        "{:?}",
        answer.headers
    );
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        Some("true"),
        "{:?}",
        answer.headers
    );
}

#[track_caller]
fn assert_refused(answer: &Answer, origin: &str) {
    assert!(
        answer.header("access-control-allow-origin").is_none(),
        "origin {origin} must get no Access-Control-Allow-Origin: {:?}",
        answer.headers
    );
}

fn lists(header: Option<&str>, item: &str) -> bool {
    header
        .unwrap_or("")
        .split(',')
        .any(|part| part.trim().eq_ignore_ascii_case(item))
}

async fn preflight_from_allowed_origin_is_echoed_with_credentials(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    for path in ["/login", "/register", "/logout", "/users/me", "/login/"] {
        let answer = preflight(&app, path, "http://app.example.test").await;
        assert_allowed(&answer, "http://app.example.test");
    }
}

async fn preflight_from_every_listed_origin_is_allowed(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    for origin in [
        "http://app.example.test",
        "https://admin.example.test:8443",
        "http://localhost:3000",
    ] {
        let answer = preflight(&app, "/login", origin).await;
        assert_allowed(&answer, origin);
    }
}

async fn preflight_advertises_methods_header_and_max_age(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    let answer = preflight(&app, "/login", "http://app.example.test").await;
    assert_allowed(&answer, "http://app.example.test");
    let methods = answer.header("access-control-allow-methods");
    for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(lists(methods, method), "{method} missing from {methods:?}");
    }
    let headers = answer.header("access-control-allow-headers");
    assert!(lists(headers, "content-type"), "{headers:?}");
    assert_eq!(answer.header("access-control-max-age"), Some("3600"));
}

async fn preflight_from_refused_origin_has_no_allow_origin(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    let answer = preflight(&app, "/login", "http://evil.example.test").await;
    assert_refused(&answer, "http://evil.example.test");
    // A refused preflight is a 400 JSON error.
    answer.problem(400);
}

async fn origin_matching_is_exact(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    for origin in [
        "https://app.example.test",
        "http://app.example.test:8080",
        "http://app.example.test.evil.test",
        "http://evilapp.example.test",
        "https://admin.example.test",
        "http://localhost:3001",
        "http://localhost",
        "null",
    ] {
        let answer = preflight(&app, "/login", origin).await;
        assert_refused(&answer, origin);
    }
}

async fn preflight_is_refused_when_no_origins_are_configured(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = preflight(&app, "/login", "http://app.example.test").await;
    assert_refused(&answer, "http://app.example.test");
    let answer = app
        .send_raw(
            Method::GET,
            "/health",
            &[("origin", "http://app.example.test")],
        )
        .await;
    assert_refused(&answer, "http://app.example.test");
}

async fn simple_get_from_allowed_origin_gets_allow_origin(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    let answer = app
        .send_raw(
            Method::GET,
            "/health",
            &[("origin", "https://admin.example.test:8443")],
        )
        .await
        .expect(200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://admin.example.test:8443")
    );
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        Some("true")
    );
}

async fn error_answer_to_allowed_origin_gets_allow_origin(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    // So that the page can read the JSON error.
    let answer = app
        .send_raw(
            Method::GET,
            "/users/me",
            &[("origin", "http://app.example.test")],
        )
        .await;
    answer.problem(401);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://app.example.test")
    );
}

async fn simple_get_from_refused_origin_gets_no_allow_origin(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    let answer = app
        .send_raw(
            Method::GET,
            "/health",
            &[("origin", "http://evil.example.test")],
        )
        .await;
    assert_refused(&answer, "http://evil.example.test");
    assert!(
        answer.status.as_u16() < 500,
        "{}: {}",
        answer.status,
        answer.text
    );
}

async fn login_from_allowed_origin_gets_allow_origin_and_cookie(backend: Backend) {
    let app = spawn_app_with(backend, &[("ALLOWED_ORIGINS", ORIGINS)]).await;
    app.register_ok("alice", PASSWORD).await;
    let answer = app
        .login_raw("alice", PASSWORD, &[("origin", "http://localhost:3000")])
        .await
        .expect(200);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(answer.has_cookie(DEFAULT_COOKIE));
}
