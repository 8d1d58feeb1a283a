//! POST /logout.

use reqwest::header::COOKIE;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    logout_returns_200_with_message_and_clears_the_cookie,
    logout_marks_the_session_inactive,
    old_cookie_is_refused_after_logout,
    logout_without_cookie_is_401,
    logout_with_unknown_cookie_is_200_and_clears_it,
    logout_twice_is_200_both_times,
    logout_ends_only_its_own_session,
    logout_with_a_non_json_body_is_415,
);

async fn logout_returns_200_with_message_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let login = app.login("alice", PASSWORD).await.expect(200);
    let login_cookie = login.cookie(DEFAULT_COOKIE);

    let answer = app.logout().await.expect(200);
    assert_eq!(
        answer.json(),
        json!({ "message": "Successfully logged out." })
    );
    let cleared = answer.cookie(DEFAULT_COOKIE);
    assert_clearing_cookie(&cleared, DEFAULT_COOKIE);
    assert_same_attributes(&cleared, &login_cookie);
    answer.assert_no_store();
}

async fn logout_marks_the_session_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    assert_eq!(app.session_for(&token).status, "active");
    app.logout_with(&token).await.expect(200);
    assert_eq!(app.session_for(&token).status, "inactive");
}

async fn old_cookie_is_refused_after_logout(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let login = app.login("alice", PASSWORD).await.expect(200);
    let token = login.cookie(DEFAULT_COOKIE).value().to_owned();
    app.me().await.expect(200);

    app.logout().await.expect(200);

    // The cookie store dropped the cookie (Max-Age=0).
    let body = app.me().await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));

    // A client that kept a copy of the old token is refused too, and told to drop it.
    let answer = app.me_with(&token, &[]).await;
    let body = answer.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    assert_eq!(app.session_for(&token).status, "inactive");
}

async fn logout_without_cookie_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = app.logout().await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    // A cookie of another name is not the session cookie.
    let answer = app
        .raw
        .post(app.url("/logout"))
        .header(COOKIE, "session=abc; other_token=def")
        .send()
        .await
        .expect("request failed");
    let body = Answer::read(answer).await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
}

async fn logout_with_unknown_cookie_is_200_and_clears_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let unknown = "A".repeat(43);
    let answer = app.logout_with(&unknown).await.expect(200);
    assert_eq!(
        answer.json(),
        json!({ "message": "Successfully logged out." })
    );
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    // Garbage that cannot even be a token is handled the same way.
    let answer = app.logout_with("%%%not-base64%%%").await.expect(200);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
}

async fn logout_twice_is_200_both_times(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let first = app.logout_with(&token).await.expect(200);
    assert_clearing_cookie(&first.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    let second = app.logout_with(&token).await.expect(200);
    assert_eq!(
        second.json(),
        json!({ "message": "Successfully logged out." })
    );
    assert_clearing_cookie(&second.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    assert_eq!(app.session_for(&token).status, "inactive");
}

async fn logout_ends_only_its_own_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    let alice_one = app.login_token("alice", PASSWORD).await;
    let alice_two = app.login_token("alice", PASSWORD).await;
    let bob = app.login_token("bob", PASSWORD).await;

    app.logout_with(&alice_one).await.expect(200);

    app.me_with(&alice_one, &[]).await.expect(401);
    let me = app.me_with(&alice_two, &[]).await.expect(200).json();
    assert_eq!(me["username"], json!("alice"));
    let me = app.me_with(&bob, &[]).await.expect(200).json();
    assert_eq!(me["username"], json!("bob"));
    assert_eq!(app.session_for(&alice_one).status, "inactive");
    assert_eq!(app.session_for(&alice_two).status, "active");
    assert_eq!(app.session_for(&bob).status, "active");
}

async fn logout_with_a_non_json_body_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    // design-v3: every body must be JSON, so an HTML form can never reach /logout.
    let answer = Answer::send(
        app.raw
            .post(app.url("/logout"))
            .header(COOKIE, app.cookie_header(&token))
            .header("content-type", "text/plain")
            .body("bye"),
    )
    .await;
    answer.problem(415);
    assert!(
        answer.set_cookies().is_empty(),
        "{:?}",
        answer.set_cookies()
    );
    assert_eq!(app.session_for(&token).status, "active");
    // A JSON body is accepted (and ignored).
    let answer = Answer::send(
        app.raw
            .post(app.url("/logout"))
            .header(COOKIE, app.cookie_header(&token))
            .json(&json!({ "anything": true })),
    )
    .await
    .expect(200);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    assert_eq!(app.session_for(&token).status, "inactive");
}
