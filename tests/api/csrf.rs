//! Cross-site request refusal (Origin / Sec-Fetch-Site) and JSON-only bodies.

use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

backend_tests!(
    foreign_origin_is_refused_before_any_work,
    foreign_origin_is_refused_on_every_unsafe_method,
    cross_site_fetch_metadata_without_origin_is_refused,
    safe_methods_are_not_checked,
    allowed_origin_is_accepted,
    own_origin_is_accepted,
    public_origin_is_the_own_origin_when_set,
    header_less_clients_are_unaffected,
    form_encoded_logout_is_415,
    non_json_bodies_are_415_on_every_endpoint,
    chunked_non_json_body_is_415_and_an_empty_one_needs_no_json,
);

const EVIL: &str = "https://evil.example";

#[track_caller]
fn assert_refused_origin(answer: &Answer, origin: &str) {
    let body = answer.problem(403);
    assert_eq!(
        body["detail"],
        json!(format!(
            "Cross-site request refused: origin {origin} is not allowed."
        ))
    );
    assert!(
        answer.set_cookies().is_empty(),
        "a refused request sets no cookie: {:?}",
        answer.set_cookies()
    );
}

async fn foreign_origin_is_refused_before_any_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let origin = [("origin", EVIL)];
    // No user is created.
    let answer = app
        .call(
            Method::POST,
            "/register",
            None,
            Some(&credentials("alice", PASSWORD)),
            &origin,
        )
        .await;
    assert_refused_origin(&answer, EVIL);
    assert!(app.users().is_empty());

    app.register_ok("alice", PASSWORD).await;
    // No session is started, no failure counted.
    let answer = app.login_raw("alice", PASSWORD, &origin).await;
    assert_refused_origin(&answer, EVIL);
    let answer = app.login_raw("alice", "wrong password here", &origin).await;
    assert_refused_origin(&answer, EVIL);
    assert!(app.sessions().is_empty());
    assert!(app.failures().is_empty());

    // Checked before the body is read: a non-JSON or malformed body is still 403.
    assert_refused_origin(
        &Answer::send(
            app.raw
                .post(app.url("/login"))
                .header("origin", EVIL)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("username=alice&password=x"),
        )
        .await,
        EVIL,
    );
    assert_refused_origin(
        &Answer::send(
            app.raw
                .post(app.url("/login"))
                .header("origin", EVIL)
                .header(CONTENT_TYPE, "application/json")
                .body("{not json"),
        )
        .await,
        EVIL,
    );
    // Even an oversized body.
    let response = app
        .raw
        .post(app.url("/login"))
        .header("origin", EVIL)
        .header(CONTENT_TYPE, "application/json")
        .body(vec![b' '; 40_000])
        .send()
        .await
        .expect("request failed");
    assert_refused_origin(&Answer::read(response).await, EVIL);
}

async fn foreign_origin_is_refused_on_every_unsafe_method(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let other = app.login_token("alice", PASSWORD).await;
    let other_id = app.session_for(&other).id;
    let origin = [("origin", EVIL)];
    let password = json!({ "password": PASSWORD });
    let change = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    for (method, path, body) in [
        (Method::POST, "/logout".to_owned(), None),
        (Method::POST, "/logout/all".to_owned(), None),
        (
            Method::DELETE,
            format!("/users/me/sessions/{other_id}"),
            None,
        ),
        (Method::DELETE, "/users/me/sessions".to_owned(), None),
        (Method::PUT, "/users/me/password".to_owned(), Some(&change)),
        (Method::DELETE, "/users/me".to_owned(), Some(&password)),
        (Method::PATCH, "/users/me".to_owned(), None),
    ] {
        let answer = app
            .call(method.clone(), &path, Some(&token), body, &origin)
            .await;
        assert_eq!(
            answer.status.as_u16(),
            403,
            "{method} {path}: {}",
            answer.text
        );
        assert_refused_origin(&answer, EVIL);
    }
    // Nothing happened.
    for t in [&token, &other] {
        app.me_with(t, &[]).await.expect(200);
        assert_live(&app.session_for(t));
    }
    app.login_token("alice", PASSWORD).await;
    // Near misses of the service's own origin are foreign too.
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    for near in [
        format!("http://localhost:{port}"),
        "http://127.0.0.1:1".to_owned(),
        "http://127.0.0.1".to_owned(),
        "null".to_owned(),
    ] {
        let answer = app
            .call(
                Method::POST,
                "/logout/all",
                Some(&token),
                None,
                &[("origin", &near)],
            )
            .await;
        assert_eq!(
            answer.status.as_u16(),
            403,
            "Origin {near}: {}",
            answer.text
        );
        assert_refused_origin(&answer, &near);
    }
    app.me_with(&token, &[]).await.expect(200);
}

async fn cross_site_fetch_metadata_without_origin_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let cross = [("sec-fetch-site", "cross-site")];
    let answer = app.login_raw("alice", PASSWORD, &cross).await;
    answer.problem(403);
    assert!(answer.set_cookies().is_empty());
    assert!(app.sessions().is_empty());
    let answer = app
        .call(
            Method::POST,
            "/register",
            None,
            Some(&credentials("bob", PASSWORD)),
            &cross,
        )
        .await;
    answer.problem(403);
    assert_eq!(app.users().len(), 1);

    let token = app.login_token("alice", PASSWORD).await;
    for (method, path) in [
        (Method::POST, "/logout"),
        (Method::POST, "/logout/all"),
        (Method::DELETE, "/users/me/sessions"),
    ] {
        let answer = app
            .call(method.clone(), path, Some(&token), None, &cross)
            .await;
        assert_eq!(
            answer.status.as_u16(),
            403,
            "{method} {path}: {}",
            answer.text
        );
        assert_problem_shape(&answer);
    }
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));

    // The other Sec-Fetch-Site values are not cross-site.
    for value in ["same-origin", "same-site", "none"] {
        app.login_token_with("alice", PASSWORD, &[("sec-fetch-site", value)])
            .await;
    }
}

async fn safe_methods_are_not_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    for headers in [[("origin", EVIL)], [("sec-fetch-site", "cross-site")]] {
        app.me_with(&token, &headers).await.expect(200);
        app.list_sessions(&token, &headers).await.expect(200);
        app.call(Method::GET, "/health", None, None, &headers)
            .await
            .expect(200);
    }
}

async fn allowed_origin_is_accepted(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[(
            "ALLOWED_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let headers = [("origin", origin)];
        let token = app.login_token_with("alice", PASSWORD, &headers).await;
        let answer = app
            .call(Method::POST, "/logout", Some(&token), None, &headers)
            .await
            .expect(200);
        assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
        assert_revoked(&app.session_for(&token), "logout");
    }
    // Exact match only.
    let near = "https://app.example.com:8443";
    assert_refused_origin(
        &app.login_raw("alice", PASSWORD, &[("origin", near)]).await,
        near,
    );
}

async fn own_origin_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let own = app.address.clone(); // http://127.0.0.1:<port>
    let headers = [("origin", own.as_str())];
    let answer = app
        .call(
            Method::POST,
            "/register",
            None,
            Some(&credentials("alice", PASSWORD)),
            &headers,
        )
        .await;
    answer.expect(201);
    let token = app.login_token_with("alice", PASSWORD, &headers).await;
    let both = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    let change = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    app.call(
        Method::PUT,
        "/users/me/password",
        Some(&token),
        Some(&change),
        &both,
    )
    .await
    .expect(200);
    let token = app.login_token_with("alice", NEW_PASSWORD, &both).await;
    let other = app.login_token("alice", NEW_PASSWORD).await;
    let other_id = app.session_for(&other).id;
    let path = format!("/users/me/sessions/{other_id}");
    let answer = app
        .call(Method::DELETE, &path, Some(&token), None, &headers)
        .await;
    assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);
    app.call(Method::POST, "/logout", Some(&token), None, &both)
        .await
        .expect(200);
}

async fn public_origin_is_the_own_origin_when_set(backend: Backend) {
    let app = spawn_app_with(backend, &[("PUBLIC_ORIGIN", "https://auth.example.com")]).await;
    app.register_ok("alice", PASSWORD).await;
    let token = app
        .login_token_with("alice", PASSWORD, &[("origin", "https://auth.example.com")])
        .await;
    app.me_with(&token, &[]).await.expect(200);
    assert_refused_origin(
        &app.login_raw("alice", PASSWORD, &[("origin", EVIL)]).await,
        EVIL,
    );
}

async fn header_less_clients_are_unaffected(backend: Backend) {
    // Neither Origin nor Sec-Fetch-Site: every endpoint works as usual.
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let a = app.login_token("alice", PASSWORD).await;
    let b = app.login_token("alice", PASSWORD).await;
    let b_id = app.session_for(&b).id;
    assert_eq!(
        app.revoke_session(&a, &b_id, None).await.status.as_u16(),
        204
    );
    app.revoke_others(&a, None).await.expect(200);
    let answer = app
        .change_password(&a, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    let a = answer.cookie(DEFAULT_COOKIE).value().to_owned();
    app.logout_all(&a).await.expect(200);
    let c = app.login_token("alice", NEW_PASSWORD).await;
    app.logout_with(&c).await.expect(200);
    let d = app.login_token("alice", NEW_PASSWORD).await;
    assert_eq!(
        app.delete_account(&d, NEW_PASSWORD).await.status.as_u16(),
        204
    );
}

async fn form_encoded_logout_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", "a=b"),
        ("text/plain", "bye"),
        ("multipart/form-data; boundary=x", "--x--\r\n"),
    ] {
        let answer = Answer::send(
            app.raw
                .post(app.url("/logout"))
                .header(COOKIE, app.cookie_header(&token))
                .header(CONTENT_TYPE, content_type)
                .body(body),
        )
        .await;
        answer.problem(415);
        assert!(
            answer.set_cookies().is_empty(),
            "{content_type}: {:?}",
            answer.set_cookies()
        );
    }
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));
    // A JSON body, or none, is fine.
    let other = app.login_token("alice", PASSWORD).await;
    app.call(Method::POST, "/logout", Some(&other), Some(&json!({})), &[])
        .await
        .expect(200);
    app.logout_with(&token).await.expect(200);
    assert_revoked(&app.session_for(&token), "logout");
}

async fn non_json_bodies_are_415_on_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let other = app.login_token("alice", PASSWORD).await;
    let other_id = app.session_for(&other).id;
    for (method, path) in [
        (Method::POST, "/logout/all".to_owned()),
        (Method::DELETE, format!("/users/me/sessions/{other_id}")),
        (Method::DELETE, "/users/me/sessions".to_owned()),
        (Method::PUT, "/users/me/password".to_owned()),
        (Method::DELETE, "/users/me".to_owned()),
        (Method::POST, "/register".to_owned()),
        (Method::POST, "/login".to_owned()),
    ] {
        let answer = Answer::send(
            app.raw
                .request(method.clone(), app.url(&path))
                .header(COOKIE, app.cookie_header(&token))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("password={PASSWORD}")),
        )
        .await;
        assert_eq!(
            answer.status.as_u16(),
            415,
            "{method} {path}: {}",
            answer.text
        );
        assert_problem_shape(&answer);
    }
    for t in [&token, &other] {
        app.me_with(t, &[]).await.expect(200);
    }
    assert_eq!(app.users().len(), 1);
}

/// Sends a raw HTTP/1.1 request and returns the status code.
async fn raw_status(app: &TestApp, request: String) -> u16 {
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connecting to the server");
    stream
        .write_all(request.replace("{host}", &host).as_bytes())
        .await
        .expect("writing the request");
    let mut response = Vec::new();
    let mut buffer = [0_u8; 4096];
    // Read until the status line is complete (Connection: close ends the stream anyway).
    while !response.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut buffer)
            .await
            .expect("reading the response");
        assert!(n > 0, "connection closed before a status line");
        response.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    status
        .parse()
        .unwrap_or_else(|e| panic!("status {status:?}: {e}"))
}

async fn chunked_non_json_body_is_415_and_an_empty_one_needs_no_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let cookie = app.cookie_header(&token);
    let chunked = format!(
        "POST /logout HTTP/1.1\r\nHost: {{host}}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n3\r\na=b\r\n0\r\n\r\n"
    );
    assert_eq!(raw_status(&app, chunked).await, 415);
    assert_live(&app.session_for(&token));
    let chunked_json = format!(
        "POST /logout HTTP/1.1\r\nHost: {{host}}\r\nCookie: {cookie}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
    );
    assert_eq!(raw_status(&app, chunked_json).await, 200);
    assert_revoked(&app.session_for(&token), "logout");

    // A body-less request needs no Content-Type, whatever it says.
    let other = app.login_token("alice", PASSWORD).await;
    Answer::send(
        app.raw
            .post(app.url("/logout"))
            .header(COOKIE, app.cookie_header(&other))
            .header(CONTENT_TYPE, "text/plain")
            .header("content-length", "0"),
    )
    .await
    .expect(200);
    assert_revoked(&app.session_for(&other), "logout");
}
