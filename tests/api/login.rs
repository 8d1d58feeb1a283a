//! POST /login.

use reqwest::header::COOKIE;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    login_returns_200_with_the_user_a_cookie_and_no_store,
    login_username_is_case_insensitive,
    login_with_wrong_password_is_401,
    login_with_unknown_user_is_401,
    wrong_password_and_unknown_user_answer_identically,
    login_with_missing_field_is_422_naming_it,
    login_with_non_string_field_is_422_naming_it,
    login_with_overlong_or_odd_input_is_401_not_500,
    each_login_creates_a_new_session,
    login_carrying_a_live_cookie_ends_the_old_session,
    login_carrying_a_dead_cookie_still_succeeds,
    login_after_logout_works,
);

async fn login_returns_200_with_the_user_a_cookie_and_no_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("alice", PASSWORD).await;
    let answer = app.login("alice", PASSWORD).await.expect(200);
    let user = answer.json();
    assert_user_json(&user, "alice");
    assert_eq!(user, registered, "login returns the registered user");
    answer.assert_no_store();
    let cookie = answer.cookie(DEFAULT_COOKIE);
    assert!(
        is_base64url_43(cookie.value()),
        "token must be 43 base64url chars: {cookie}"
    );
    // The cookie store now authenticates /users/me.
    let me = app.me().await.expect(200);
    assert_eq!(me.json(), registered);
}

async fn login_username_is_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("alice", PASSWORD).await;
    for spelling in ["ALICE", "Alice", "aLiCe"] {
        let answer = app.login(spelling, PASSWORD).await.expect(200);
        let user = answer.json();
        assert_eq!(user["id"], registered["id"]);
        assert_eq!(user["username"], json!("alice"));
        assert!(answer.has_cookie(DEFAULT_COOKIE));
    }
}

async fn login_with_wrong_password_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let answer = app.login("alice", "not the password").await;
    let body = answer.problem(401);
    assert_eq!(body["detail"], json!(BAD_CREDENTIALS));
    assert!(!answer.has_cookie(DEFAULT_COOKIE), "no cookie on failure");
    // Case matters for passwords.
    app.login("alice", &PASSWORD.to_uppercase())
        .await
        .problem(401);
    assert!(
        app.sessions().is_empty(),
        "a failed login creates no session"
    );
}

async fn login_with_unknown_user_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let answer = app.login("mallory", PASSWORD).await;
    let body = answer.problem(401);
    assert_eq!(body["detail"], json!(BAD_CREDENTIALS));
    assert!(!answer.has_cookie(DEFAULT_COOKIE), "no cookie on failure");
    assert!(app.sessions().is_empty());
}

async fn wrong_password_and_unknown_user_answer_identically(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let wrong_password = app.login("alice", "not the password").await.expect(401);
    let unknown_user = app.login("mallory", "not the password").await.expect(401);
    assert_eq!(wrong_password.json(), unknown_user.json());
    assert_eq!(
        wrong_password.header("content-type"),
        unknown_user.header("content-type")
    );
    assert_eq!(
        wrong_password.set_cookies().len(),
        unknown_user.set_cookies().len()
    );
}

async fn login_with_missing_field_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let body = app
        .post_json("/login", &json!({ "password": PASSWORD }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("username"), "{body}");
    let body = app
        .post_json("/login", &json!({ "username": "alice" }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("password"), "{body}");
}

async fn login_with_non_string_field_is_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let body = app
        .post_json("/login", &json!({ "username": 7, "password": PASSWORD }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("username"), "{body}");
    let body = app
        .post_json("/login", &json!({ "username": "alice", "password": null }))
        .await
        .problem(422);
    assert_eq!(body["field"], json!("password"), "{body}");
    let body = app
        .post_json(
            "/login",
            &json!({ "username": "alice", "password": [PASSWORD] }),
        )
        .await
        .problem(422);
    assert_eq!(body["field"], json!("password"), "{body}");
}

async fn login_with_overlong_or_odd_input_is_401_not_500(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let long_name = "a".repeat(5000);
    let long_password = "p".repeat(5000);
    for (username, password) in [
        (long_name.as_str(), PASSWORD),
        ("alice", long_password.as_str()),
        ("ålice ✓", PASSWORD),
        ("", ""),
        ("alice", ""),
        ("alice'; DROP TABLE users; --", PASSWORD),
        ("%", PASSWORD),
        ("_____", PASSWORD),
    ] {
        let answer = app.login(username, password).await;
        let status = answer.status.as_u16();
        assert!(
            status == 401 || status == 422,
            "login({username:.20?}, {password:.20?}) gave {status}: {}",
            answer.text
        );
        assert_problem_shape(&answer);
    }
    // LIKE-style wildcards must not match anyone.
    assert!(app.sessions().is_empty());
    app.login("alice", PASSWORD).await.expect(200);
}

async fn each_login_creates_a_new_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let first = app.login_token("alice", PASSWORD).await;
    let second = app.login_token("alice", PASSWORD).await;
    assert_ne!(first, second);
    app.me_with(&first, &[]).await.expect(200);
    app.me_with(&second, &[]).await.expect(200);
    let sessions = app.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions.iter().all(|s| s.status == "active"),
        "{sessions:?}"
    );
}

async fn login_carrying_a_live_cookie_ends_the_old_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let old = app.login_token("alice", PASSWORD).await;
    let old_cookie = app.cookie_header(&old);
    let answer = app
        .login_raw("alice", PASSWORD, &[(COOKIE.as_str(), old_cookie.as_str())])
        .await
        .expect(200);
    let new = answer.cookie(DEFAULT_COOKIE).value().to_owned();
    assert!(!new.is_empty());
    assert_ne!(new, old, "login must issue a new token");

    let refused = app.me_with(&old, &[]).await;
    let body = refused.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    assert_eq!(app.session_for(&old).status, "inactive");

    app.me_with(&new, &[]).await.expect(200);
    assert_eq!(app.session_for(&new).status, "active");

    // The same through the cookie store: the second login replaces the first.
    app.login("alice", PASSWORD).await.expect(200);
    let store_first = app
        .sessions()
        .into_iter()
        .filter(|s| s.status == "active")
        .count();
    app.login("alice", PASSWORD).await.expect(200);
    let store_second = app
        .sessions()
        .into_iter()
        .filter(|s| s.status == "active")
        .count();
    assert_eq!(
        store_first, store_second,
        "a login sending its live cookie must end that session"
    );
    app.me().await.expect(200);
}

async fn login_carrying_a_dead_cookie_still_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let old = app.login_token("alice", PASSWORD).await;
    app.logout_with(&old).await.expect(200);
    for cookie in [
        app.cookie_header(&old),
        app.cookie_header("definitely-not-a-token"),
    ] {
        let answer = app
            .login_raw("alice", PASSWORD, &[(COOKIE.as_str(), cookie.as_str())])
            .await
            .expect(200);
        let new = answer.cookie(DEFAULT_COOKIE).value().to_owned();
        app.me_with(&new, &[]).await.expect(200);
    }
}

async fn login_after_logout_works(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    app.login("alice", PASSWORD).await.expect(200);
    app.logout().await.expect(200);
    app.me().await.expect(401);
    app.login("alice", PASSWORD).await.expect(200);
    app.me().await.expect(200);
}
