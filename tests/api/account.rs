//! DELETE /users/me: deleting one's account.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    deleting_the_account_ends_every_session_and_frees_the_name,
    wrong_password_is_403_and_keeps_the_account,
    missing_password_is_422,
    deleting_the_account_needs_a_session,
);

async fn deleting_the_account_ends_every_session_and_frees_the_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register_ok("alice", PASSWORD).await;
    let login = app.login_raw("alice", PASSWORD, &[]).await.expect(200);
    let login_cookie = login.cookie(DEFAULT_COOKIE);
    let current = login_cookie.value().to_owned();
    let other = app.login_token("alice", PASSWORD).await;
    let bob = app.user_session("bob").await;

    let answer = app.delete_account(&current, PASSWORD).await;
    assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);
    assert!(answer.text.is_empty(), "204 with a body: {:?}", answer.text);
    let cleared = answer.cookie(DEFAULT_COOKIE);
    assert_clearing_cookie(&cleared, DEFAULT_COOKIE);
    assert_same_attributes(&cleared, &login_cookie);

    for token in [&current, &other] {
        let body = app.me_with(token, &[]).await.problem(401);
        assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    }
    // The user row and all its sessions are gone.
    let users = app.users();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].username, "bob");
    let alice_id = alice["id"].as_i64().unwrap();
    let rows = app.sessions();
    assert!(
        rows.iter().all(|s| s.user_id != alice_id),
        "alice's sessions must be deleted: {rows:?}"
    );
    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));

    // The name is free again, and the old password no longer signs anyone in.
    let body = app.login("alice", PASSWORD).await.problem(401);
    assert_eq!(body["detail"], json!(BAD_CREDENTIALS));
    let again = app.register_ok("alice", NEW_PASSWORD).await;
    assert_ne!(again["id"], alice["id"]);
    let token = app.login_token("alice", NEW_PASSWORD).await;
    let list = app.list_sessions(&token, &[]).await.expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

async fn wrong_password_is_403_and_keeps_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let answer = app.delete_account(&token, "not the password at all").await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    assert!(
        answer.set_cookies().is_empty(),
        "a refused deletion clears no cookie: {:?}",
        answer.set_cookies()
    );
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));
    assert_eq!(app.users().len(), 1);
    // It was a failed login for alice from this address.
    let failures = app.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].username_key, "alice");
    assert_eq!(failures[0].ip, "127.0.0.1");
    app.login_token("alice", PASSWORD).await;
}

async fn missing_password_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    for body in [json!({}), json!({ "password": null })] {
        let answer = app
            .call(Method::DELETE, "/users/me", Some(&token), Some(&body), &[])
            .await;
        let problem = answer.problem(422);
        assert_eq!(problem["field"], json!("password"), "{body}: {problem}");
    }
    let answer = app
        .call(
            Method::DELETE,
            "/users/me",
            Some(&token),
            Some(&json!({ "password": 12345678 })),
            &[],
        )
        .await;
    assert_eq!(answer.problem(422)["field"], json!("password"));
    app.me_with(&token, &[]).await.expect(200);
    assert_eq!(app.users().len(), 1);
}

async fn deleting_the_account_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({ "password": PASSWORD });
    let answer = app
        .call(Method::DELETE, "/users/me", None, Some(&body), &[])
        .await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    let token = app.user_session("alice").await;
    app.logout_with(&token).await.expect(200);
    let answer = app.delete_account(&token, PASSWORD).await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    assert_eq!(app.users().len(), 1);
}
