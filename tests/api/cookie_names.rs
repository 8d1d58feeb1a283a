//! Issue 10, item 1: the session cookie is found by its exact name only, and when a request
//! carries several cookies of that name (browsers send one per matching path and domain), each
//! is tried and a bad one never costs the good one.

use reqwest::Method;

use crate::helpers::*;

backend_tests!(
    look_alike_names_are_not_the_session_cookie,
    a_bad_duplicate_does_not_hide_or_clear_the_good_one,
    only_duplicates_that_all_fail_are_refused_and_cleared,
    logout_ends_every_duplicate,
    login_replaces_every_duplicate,
);

/// `GET /users/me` with a raw `Cookie` header.
async fn me_with_cookie_header(app: &TestApp, cookie: &str) -> Answer {
    app.send_raw(Method::GET, "/users/me", &[("Cookie", cookie)])
        .await
}

const GARBAGE: &str = "not-a-token";

async fn look_alike_names_are_not_the_session_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    // Each spoofed name carries a valid token: it must still not be read as the session cookie.
    for name in [
        "access%5Ftoken",
        "%61ccess_token",
        "access_token%20",
        "\u{a0}access_token",
        "\u{2000}access_token",
        "access_token\u{3000}",
        "Access_Token",
    ] {
        let answer = me_with_cookie_header(&app, &format!("{name}={token}")).await;
        let body = answer.problem(401);
        assert_eq!(body["detail"], NOT_AUTHENTICATED, "{name:?}");
        assert!(
            !answer.has_cookie("access_token"),
            "{name:?} made the server clear the real cookie"
        );
        // And a look-alike carrying garbage, sent first, neither hides nor clears the real one.
        let answer =
            me_with_cookie_header(&app, &format!("{name}={GARBAGE}; access_token={token}")).await;
        assert_user_json(&answer.expect(200).json(), "alice");
    }
    let answer = me_with_cookie_header(&app, &format!("access_token={token}")).await;
    assert_user_json(&answer.expect(200).json(), "alice");
}

async fn a_bad_duplicate_does_not_hide_or_clear_the_good_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let other = app.user_session("bob").await;
    app.logout_with(&other).await.expect(200);
    for bad in [GARBAGE, other.as_str()] {
        for header in [
            format!("access_token={bad}; access_token={token}"),
            format!("access_token={token}; access_token={bad}"),
            format!("access_token=\"{bad}\"; other=1; access_token=\"{token}\""),
        ] {
            let answer = me_with_cookie_header(&app, &header).await.expect(200);
            assert_user_json(&answer.json(), "alice");
            assert!(
                !answer.has_cookie("access_token"),
                "{header}: the good cookie was cleared"
            );
        }
    }
    assert_live(&app.session_for(&token));
}

async fn only_duplicates_that_all_fail_are_refused_and_cleared(backend: Backend) {
    let app = spawn_app(backend).await;
    let ended = app.user_session("alice").await;
    app.logout_with(&ended).await.expect(200);
    let answer = me_with_cookie_header(
        &app,
        &format!("access_token={GARBAGE}; access_token={ended}"),
    )
    .await;
    answer.problem(401);
    assert_clearing_cookie(&answer.cookie("access_token"), "access_token");
}

async fn logout_ends_every_duplicate(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.user_session("alice").await;
    let second = app.login_token("alice", PASSWORD).await;
    let answer = app
        .send_raw(
            Method::POST,
            "/logout",
            &[(
                "Cookie",
                &format!("access_token={GARBAGE}; access_token={first}; access_token={second}"),
            )],
        )
        .await
        .expect(200);
    assert_clearing_cookie(&answer.cookie("access_token"), "access_token");
    assert_revoked(&app.session_for(&first), "logout");
    assert_revoked(&app.session_for(&second), "logout");
}

async fn login_replaces_every_duplicate(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.user_session("alice").await;
    let second = app.login_token("alice", PASSWORD).await;
    let cookie = format!("access_token={first}; access_token={second}");
    let new = app
        .login_token_with("alice", PASSWORD, &[("Cookie", &cookie)])
        .await;
    assert_revoked(&app.session_for(&first), "logout");
    assert_revoked(&app.session_for(&second), "logout");
    app.me_with(&new, &[]).await.expect(200);
}
