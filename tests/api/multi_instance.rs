//! Two servers on one database: revocations reach both (PostgreSQL, or two processes on one
//! SQLite file), and throttle counts are shared (PostgreSQL).

use serde_json::json;

use crate::helpers::*;

backend_tests!(two_servers_agree_on_revocations);

postgres_tests!(
    two_servers_add_up_failures_for_a_pair,
    two_servers_add_up_failures_for_an_ip,
    two_servers_share_the_register_limit,
    right_password_logins_on_two_servers_at_once_are_not_throttled,
);

const WRONG: &str = "definitely not the password";

async fn two_servers_agree_on_revocations(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_second_app(&a, &[]).await;
    a.register_ok("alice", PASSWORD).await;

    // A session made on one server works on the other.
    let t1 = a.login_token("alice", PASSWORD).await;
    let t2 = b.login_token("alice", PASSWORD).await;
    b.me_with(&t1, &[]).await.expect(200);
    a.me_with(&t2, &[]).await.expect(200);

    // Logout on A: refused on B (at once on A; on B as soon as it hears of it).
    a.logout_with(&t1).await.expect(200);
    assert_refused_soon(&b, &t1).await;
    let body = b.me_with(&t1, &[]).await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));

    // Revoked by id on B: refused on A.
    let t3 = a.login_token("alice", PASSWORD).await;
    let t3_id = a.session_for(&t3).id;
    let answer = b.revoke_session(&t2, &t3_id, None).await;
    assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);
    assert_refused_soon(&a, &t3).await;

    // Listing on either server shows the same sessions.
    let t4 = a.login_token("alice", PASSWORD).await;
    let on_a = a.list_sessions(&t2, &[]).await.expect(200).json();
    let on_b = b.list_sessions(&t2, &[]).await.expect(200).json();
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.as_array().unwrap().len(), 2, "{on_a}");

    // Password change on B: every old cookie is refused on A; the new one works on A.
    let changed = b
        .change_password(&t2, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    let fresh = changed.cookie(DEFAULT_COOKIE).value().to_owned();
    for old in [&t2, &t4] {
        assert_refused_soon(&a, old).await;
    }
    a.me_with(&fresh, &[]).await.expect(200);

    // Logout of everything on A: refused on B.
    let t5 = b.login_token("alice", NEW_PASSWORD).await;
    let answer = a.logout_all(&fresh).await.expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 2 }));
    assert_refused_soon(&b, &fresh).await;
    assert_refused_soon(&b, &t5).await;
}

async fn two_servers_add_up_failures_for_a_pair(backend: Backend) {
    let limits = [("LOGIN_MAX_FAILURES", "4")];
    let a = spawn_app_with(backend, &limits).await;
    let b = spawn_second_app(&a, &limits).await;
    a.register_ok("alice", PASSWORD).await;
    for server in [&a, &b, &a, &b] {
        server.login_raw("alice", WRONG, &[]).await.problem(401);
    }
    // Two failures on each: the pair is locked on both.
    assert_login_throttled(&a.login_raw("alice", PASSWORD, &[]).await);
    assert_login_throttled(&b.login_raw("alice", PASSWORD, &[]).await);
    assert_eq!(a.failures().len(), 4);
}

async fn two_servers_add_up_failures_for_an_ip(backend: Backend) {
    let limits = [
        ("LOGIN_MAX_FAILURES", "0"),
        ("LOGIN_MAX_FAILURES_PER_IP", "3"),
    ];
    let a = spawn_app_with(backend, &limits).await;
    let b = spawn_second_app(&a, &limits).await;
    a.register_ok("alice", PASSWORD).await;
    a.login_raw("ghost1", WRONG, &[]).await.problem(401);
    b.login_raw("ghost2", WRONG, &[]).await.problem(401);
    b.login_raw("ghost3", WRONG, &[]).await.problem(401);
    assert_login_throttled(&a.login_raw("alice", PASSWORD, &[]).await);
    assert_login_throttled(&b.login_raw("alice", PASSWORD, &[]).await);
}

async fn two_servers_share_the_register_limit(backend: Backend) {
    let limits = [("REGISTER_MAX_PER_IP", "2")];
    let a = spawn_app_with(backend, &limits).await;
    let b = spawn_second_app(&a, &limits).await;
    a.register_ok("user1", PASSWORD).await;
    b.register_ok("user2", PASSWORD).await;
    for server in [&a, &b] {
        let answer = server.register("user3", PASSWORD).await;
        answer.problem(429);
        retry_after(&answer);
    }
    assert_eq!(a.users().len(), 2);
}

async fn login_on(app: &TestApp, password: &'static str) -> u16 {
    let response = app
        .raw
        .post(app.url("/login"))
        .json(&credentials("alice", password))
        .send()
        .await
        .expect("login request failed");
    Answer::read(response).await.status.as_u16()
}

async fn right_password_logins_on_two_servers_at_once_are_not_throttled(backend: Backend) {
    // Only checked wrong passwords are failures: with one failure and LOGIN_MAX_FAILURES=2,
    // right-password logins arriving at both servers at once must all get in.
    let limits = [("LOGIN_MAX_FAILURES", "2"), ("MAX_SESSIONS_PER_USER", "0")];
    let a = spawn_app_with(backend, &limits).await;
    let b = spawn_second_app(&a, &limits).await;
    a.register_ok("alice", PASSWORD).await;
    for round in 0..5 {
        assert_eq!(login_on(&a, WRONG).await, 401, "round {round}");
        let (on_a, on_b, on_a2, on_b2) = tokio::join!(
            login_on(&a, PASSWORD),
            login_on(&b, PASSWORD),
            login_on(&a, PASSWORD),
            login_on(&b, PASSWORD),
        );
        assert_eq!(
            [on_a, on_b, on_a2, on_b2],
            [200; 4],
            "round {round}: one failure, then right passwords on A and B at once"
        );
    }
}
