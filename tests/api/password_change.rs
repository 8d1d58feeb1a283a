//! PUT /users/me/password.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    password_change_ends_every_old_session_and_issues_a_new_cookie,
    old_password_stops_working_and_the_new_one_works,
    wrong_current_password_is_403_and_changes_nothing,
    weak_new_password_is_422_and_changes_nothing,
    missing_fields_are_422_naming_them,
    wrong_current_password_counts_as_a_failed_login,
    password_change_needs_a_session,
);

async fn password_change_ends_every_old_session_and_issues_a_new_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let login = app.login_raw("alice", PASSWORD, &[]).await.expect(200);
    let login_cookie = login.cookie(DEFAULT_COOKIE);
    let current = login_cookie.value().to_owned();
    let other = app.login_token("alice", PASSWORD).await;
    let stolen = app.login_token("alice", PASSWORD).await;
    let bob = app.user_session("bob").await;

    let answer = app
        .change_password(&current, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    assert_user_json(&answer.json(), "alice");
    answer.assert_no_store();
    let cookie = answer.cookie(DEFAULT_COOKIE);
    assert_same_attributes(&cookie, &login_cookie);
    let fresh = cookie.value().to_owned();
    assert!(is_base64url_43(&fresh), "new token {fresh:?}");
    assert!(max_age_secs(&cookie) > 0, "{cookie}");
    for old in [&current, &other, &stolen] {
        assert_ne!(&fresh, old, "the token must be new");
    }

    // Every old cookie is dead, the current one's included; the new one works.
    for old in [&current, &other, &stolen] {
        let body = app.me_with(old, &[]).await.problem(401);
        assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
        assert_revoked(&app.session_for(old), "password_change");
    }
    let me = app.me_with(&fresh, &[]).await.expect(200).json();
    assert_eq!(me["username"], json!("alice"));
    let row = app.session_for(&fresh);
    assert_live(&row);
    let list = app.list_sessions(&fresh, &[]).await.expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], json!(row.id));
    assert_eq!(list[0]["current"], json!(true));

    // Bob is not affected.
    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));
}

async fn old_password_stops_working_and_the_new_one_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    app.change_password(&token, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    let body = app.login("alice", PASSWORD).await.problem(401);
    assert_eq!(body["detail"], json!(BAD_CREDENTIALS));
    let token = app.login_token("alice", NEW_PASSWORD).await;
    app.me_with(&token, &[]).await.expect(200);
    let hash = &app.users()[0].password_hash;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

async fn wrong_current_password_is_403_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let other = app.login_token("alice", PASSWORD).await;
    let hash_before = app.users()[0].password_hash.clone();

    let answer = app
        .change_password(&token, "not the password at all", NEW_PASSWORD)
        .await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    assert!(
        answer.set_cookies().is_empty(),
        "a refused change sets no cookie: {:?}",
        answer.set_cookies()
    );
    assert_eq!(app.users()[0].password_hash, hash_before);
    for t in [&token, &other] {
        app.me_with(t, &[]).await.expect(200);
        assert_live(&app.session_for(t));
    }
    app.login_token("alice", PASSWORD).await;
    app.login("alice", NEW_PASSWORD).await.problem(401);
}

async fn weak_new_password_is_422_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let hash_before = app.users()[0].password_hash.clone();
    let too_long = "p".repeat(257);
    for weak in ["short", "1234567", too_long.as_str(), ""] {
        let answer = app.change_password(&token, PASSWORD, weak).await;
        let body = answer.problem(422);
        assert_eq!(
            body["field"],
            json!("new_password"),
            "new password of {} chars: {body}",
            weak.chars().count()
        );
    }
    // Also with a wrong current password: nothing changes either way.
    let answer = app
        .change_password(&token, "wrong password!", "short")
        .await;
    assert!(
        matches!(answer.status.as_u16(), 403 | 422),
        "got {} {}",
        answer.status,
        answer.text
    );
    assert_eq!(app.users()[0].password_hash, hash_before);
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));
    app.login_token("alice", PASSWORD).await;
}

async fn missing_fields_are_422_naming_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let body = put(&app, &token, json!({ "current_password": PASSWORD }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("new_password"), "{body}");
    let body = put(&app, &token, json!({ "new_password": NEW_PASSWORD }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("current_password"), "{body}");
    let body = put(&app, &token, json!({})).await.problem(422);
    assert!(
        body["field"] == json!("current_password") || body["field"] == json!("new_password"),
        "{body}"
    );
    let body = put(
        &app,
        &token,
        json!({ "current_password": PASSWORD, "new_password": 12345678 }),
    )
    .await
    .problem(422);
    assert_eq!(body["field"], json!("new_password"), "{body}");
    app.me_with(&token, &[]).await.expect(200);
    app.login_token("alice", PASSWORD).await;
}

async fn put(app: &TestApp, token: &str, body: serde_json::Value) -> Answer {
    app.call(
        Method::PUT,
        "/users/me/password",
        Some(token),
        Some(&body),
        &[],
    )
    .await
}

async fn wrong_current_password_counts_as_a_failed_login(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "2")]).await;
    let token = app.user_session("alice").await;
    for _ in 0..2 {
        let answer = app
            .change_password(&token, "not the password at all", NEW_PASSWORD)
            .await;
        assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    }
    // The pair (alice, 127.0.0.1) is locked now: even the right password is refused...
    assert_login_throttled(&app.change_password(&token, PASSWORD, NEW_PASSWORD).await);
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    // ...and nothing changed.
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));
    app.login("alice", NEW_PASSWORD).await.problem(429);
    // Another user from the same address is not locked.
    app.user_session("bob").await;
}

async fn password_change_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    let answer = app
        .call(Method::PUT, "/users/me/password", None, Some(&body), &[])
        .await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    let token = app.user_session("alice").await;
    app.logout_with(&token).await.expect(200);
    let answer = app.change_password(&token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    app.login_token("alice", PASSWORD).await;
}
