//! Error responses (always JSON with a `detail`) and trailing-slash paths.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    unknown_path_is_404_json,
    wrong_method_is_405_json_with_allow,
    malformed_json_is_400,
    empty_json_body_is_400,
    json_that_is_not_an_object_is_a_4xx_json_error,
    body_over_16_kib_is_413,
    body_of_exactly_16_kib_is_not_413,
    text_plain_body_is_415,
    missing_content_type_is_415,
    json_content_type_with_charset_is_accepted,
    paths_answer_with_a_trailing_slash,
    trailing_slash_on_unknown_path_is_404,
);

async fn unknown_path_is_404_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::POST, "/nope"),
        (Method::GET, "/"),
        (Method::GET, "/users/me/extra"),
        (Method::GET, "/users/1"),
        (Method::DELETE, "/register/x"),
    ] {
        let answer = app.send_raw(method.clone(), path, &[]).await;
        let body = answer.problem(404);
        assert_eq!(body["detail"], json!("Not found."), "{method} {path}");
    }
}

async fn wrong_method_is_405_json_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path, allowed) in [
        (Method::GET, "/login", "POST"),
        (Method::GET, "/register", "POST"),
        (Method::PUT, "/users", "POST"),
        (Method::GET, "/logout", "POST"),
        (Method::POST, "/users/me", "GET"),
        (Method::PATCH, "/users/me", "DELETE"),
        (Method::GET, "/logout/all", "POST"),
        (Method::GET, "/users/me/password", "PUT"),
        (Method::POST, "/users/me/sessions", "DELETE"),
        (Method::POST, "/users/me/events", "GET"),
        (Method::GET, "/users/me/sessions/some-id", "DELETE"),
        (Method::POST, "/health", "GET"),
        (Method::GET, "/login/", "POST"),
        (Method::POST, "/users/me/", "GET"),
    ] {
        let answer = app.send_raw(method.clone(), path, &[]).await;
        answer.problem(405);
        let allow = answer
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
        assert!(
            allow
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case(allowed)),
            "{method} {path}: Allow is {allow:?}, expected it to list {allowed}"
        );
    }
}

async fn malformed_json_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/register", "/users", "/login"] {
        let answer = app
            .post_raw(path, Some("application/json"), b"{bad json".to_vec())
            .await;
        answer.problem(400);
        let answer = app
            .post_raw(
                path,
                Some("application/json"),
                br#"{"username": "alice", "password": "12345678""#.to_vec(),
            )
            .await;
        answer.problem(400);
    }
    assert!(app.users().is_empty());
}

async fn empty_json_body_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post_raw("/login", Some("application/json"), Vec::new())
        .await
        .problem(400);
    app.post_raw("/register", Some("application/json"), Vec::new())
        .await
        .problem(400);
}

async fn json_that_is_not_an_object_is_a_4xx_json_error(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [&b"[]"[..], b"\"alice\"", b"42", b"null"] {
        let answer = app
            .post_raw("/register", Some("application/json"), body.to_vec())
            .await;
        let status = answer.status.as_u16();
        assert!(
            status == 400 || status == 422,
            "body {:?} gave {status}: {}",
            String::from_utf8_lossy(body),
            answer.text
        );
        assert_problem_shape(&answer);
    }
}

fn register_body_of_len(len: usize) -> Vec<u8> {
    let prefix = r#"{"username":"alice","password":""#;
    let suffix = r#""}"#;
    let filler = len - prefix.len() - suffix.len();
    let body = format!("{prefix}{}{suffix}", "p".repeat(filler));
    assert_eq!(body.len(), len);
    body.into_bytes()
}

async fn body_over_16_kib_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/register", "/login"] {
        let answer = app
            .post_raw(path, Some("application/json"), register_body_of_len(16_385))
            .await;
        answer.problem(413);
        let answer = app
            .post_raw(
                path,
                Some("application/json"),
                register_body_of_len(100_000),
            )
            .await;
        answer.problem(413);
    }
    assert!(app.users().is_empty());
}

async fn body_of_exactly_16_kib_is_not_413(backend: Backend) {
    let app = spawn_app(backend).await;
    // 16384 bytes is within the limit: it is read and the password is too long.
    let answer = app
        .post_raw(
            "/register",
            Some("application/json"),
            register_body_of_len(16_384),
        )
        .await;
    let body = answer.problem(422);
    assert_eq!(body["field"], json!("password"));
}

async fn text_plain_body_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let payload = serde_json::to_vec(&credentials("alice", PASSWORD)).unwrap();
    for path in ["/register", "/users", "/login"] {
        app.post_raw(path, Some("text/plain"), payload.clone())
            .await
            .problem(415);
        app.post_raw(
            path,
            Some("application/x-www-form-urlencoded"),
            b"username=alice&password=12345678".to_vec(),
        )
        .await
        .problem(415);
    }
    assert!(app.users().is_empty());
}

async fn missing_content_type_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let payload = serde_json::to_vec(&credentials("alice", PASSWORD)).unwrap();
    app.post_raw("/register", None, payload.clone())
        .await
        .problem(415);
    app.post_raw("/login", None, payload).await.problem(415);
}

async fn json_content_type_with_charset_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let payload = serde_json::to_vec(&credentials("alice", PASSWORD)).unwrap();
    app.post_raw(
        "/register",
        Some("application/json; charset=utf-8"),
        payload.clone(),
    )
    .await
    .expect(201);
    app.post_raw("/login", Some("application/json; charset=utf-8"), payload)
        .await
        .expect(200);
}

async fn paths_answer_with_a_trailing_slash(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .post_json("/register/", &credentials("alice", PASSWORD))
        .await
        .expect(201);
    assert_user_json(&answer.json(), "alice");
    let answer = app
        .post_json("/users/", &credentials("bob", PASSWORD))
        .await
        .expect(201);
    assert_user_json(&answer.json(), "bob");

    let login = app
        .post_json("/login/", &credentials("alice", PASSWORD))
        .await
        .expect(200);
    assert!(login.has_cookie(DEFAULT_COOKIE));
    login.assert_no_store();
    let me = app.get("/users/me/").await.expect(200);
    assert_user_json(&me.json(), "alice");
    let health = app.get("/health/").await.expect(200);
    assert_eq!(health.json(), json!({ "status": "ok", "database": "ok" }));

    let logout = Answer::send(app.client.post(app.url("/logout/")))
        .await
        .expect(200);
    assert_eq!(
        logout.json(),
        json!({ "message": "Successfully logged out." })
    );
    app.get("/users/me/").await.problem(401);
    // Errors are the same with the slash.
    app.post_raw("/login/", Some("application/json"), b"{bad".to_vec())
        .await
        .problem(400);
    app.post_json("/login/", &credentials("alice", "wrong password"))
        .await
        .problem(401);
}

async fn trailing_slash_on_unknown_path_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = app.get("/nope/").await.problem(404);
    assert_eq!(body["detail"], json!("Not found."));
    // No redirect either way.
    let answer = app.get("/health/").await;
    assert_eq!(answer.status.as_u16(), 200);
}
