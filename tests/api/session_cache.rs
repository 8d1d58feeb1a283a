//! The in-memory session cache: repeat requests are answered from memory, and whatever ends a
//! session anywhere (this instance, another instance, the CLI, an operator's SQL) is refused
//! everywhere within `PROPAGATION`. PostgreSQL delivers the news by LISTEN/NOTIFY, SQLite through
//! a trigger-fed log that every instance polls.

use std::time::Duration;

use crate::helpers::*;

backend_tests!(
    repeat_requests_are_answered_from_memory,
    revocations_on_one_instance_reach_the_other_soon,
    an_operators_sql_reaches_a_running_server,
    deleting_an_account_reaches_the_other_instance,
    a_zero_size_cache_reads_the_database_every_time,
);

postgres_tests!(losing_the_listener_turns_the_cache_off_until_it_is_back);

/// `tessera_session_cache_lookups_total{result="hit"}` as the server reports it.
async fn cache_hits(app: &TestApp) -> u64 {
    let metrics = app.metrics().await.expect(200).text;
    metrics
        .lines()
        .find(|l| l.starts_with("tessera_session_cache_lookups_total{result=\"hit\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no cache hit counter in:\n{metrics}"))
}

/// Waits (bounded) until the instance's cache is serving: a hit is counted for `token`.
async fn wait_until_cached(app: &TestApp, token: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = cache_hits(app).await;
        app.me_with(token, &[]).await.expect(200);
        if cache_hits(app).await > before {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session cache never served {token:.8}…"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn repeat_requests_are_answered_from_memory(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let token = app.login_token("alice", PASSWORD).await;
    wait_until_cached(&app, &token).await;
    let before = cache_hits(&app).await;
    for _ in 0..5 {
        let me = app.me_with(&token, &[]).await.expect(200).json();
        assert_user_json(&me, "alice");
    }
    assert_eq!(cache_hits(&app).await, before + 5);

    // A cached session is still judged on every use: another client's fingerprint is refused.
    app.me_with(&token, &[("User-Agent", "someone else")])
        .await
        .problem(401);
    app.me_with(&token, &[]).await.expect(200);

    // Ending it on this instance is seen by the very next request.
    app.logout_with(&token).await.expect(200);
    app.me_with(&token, &[]).await.problem(401);
}

async fn revocations_on_one_instance_reach_the_other_soon(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_second_app(&a, &[]).await;
    a.register_ok("alice", PASSWORD).await;

    // Logout.
    let t1 = a.login_token("alice", PASSWORD).await;
    wait_until_cached(&b, &t1).await;
    a.logout_with(&t1).await.expect(200);
    a.me_with(&t1, &[]).await.problem(401);
    assert_refused_soon(&b, &t1).await;

    // Revocation by id, done on B, for a session cached on A.
    let (t2, t3) = (
        a.login_token("alice", PASSWORD).await,
        a.login_token("alice", PASSWORD).await,
    );
    wait_until_cached(&a, &t3).await;
    let t3_id = a.session_for(&t3).id;
    b.revoke_session(&t2, &t3_id, None).await.expect(204);
    assert_refused_soon(&a, &t3).await;
    a.me_with(&t2, &[]).await.expect(200);

    // Password change on A: every other session of hers, cached on B, is refused there.
    wait_until_cached(&b, &t2).await;
    let changed = a
        .change_password(&t2, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    assert_refused_soon(&b, &t2).await;
    let fresh = changed.cookie(DEFAULT_COOKIE).value().to_owned();
    b.me_with(&fresh, &[]).await.expect(200);

    // Logout everywhere on B, for sessions cached on A.
    wait_until_cached(&a, &fresh).await;
    b.logout_all(&fresh).await.expect(200);
    assert_refused_soon(&a, &fresh).await;
}

async fn an_operators_sql_reaches_a_running_server(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    let alice = app.login_token("alice", PASSWORD).await;
    let bob = app.login_token("bob", PASSWORD).await;
    wait_until_cached(&app, &alice).await;
    wait_until_cached(&app, &bob).await;

    // Ending a session behind the server's back.
    app.db().execute(
        "UPDATE sessions SET status = 'inactive' WHERE token_hash = $1",
        &[text(&sha256_hex(&alice))],
    );
    assert_refused_soon(&app, &alice).await;

    // Disabling the user without touching the sessions table.
    app.db().execute(
        "UPDATE users SET disabled_at = $1 WHERE username = 'bob'",
        &[time(utc_now())],
    );
    assert_refused_soon(&app, &bob).await;
}

async fn deleting_an_account_reaches_the_other_instance(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_second_app(&a, &[]).await;
    a.register_ok("alice", PASSWORD).await;
    let t1 = a.login_token("alice", PASSWORD).await;
    let t2 = a.login_token("alice", PASSWORD).await;
    wait_until_cached(&b, &t2).await;
    a.delete_account(&t1, PASSWORD).await.expect(204);
    assert_refused_soon(&b, &t2).await;
}

async fn a_zero_size_cache_reads_the_database_every_time(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_CACHE_SIZE", "0")]).await;
    app.register_ok("alice", PASSWORD).await;
    let token = app.login_token("alice", PASSWORD).await;
    for _ in 0..3 {
        app.me_with(&token, &[]).await.expect(200);
    }
    assert_eq!(cache_hits(&app).await, 0);
    // With nothing cached, a change behind the server's back is seen by the very next request.
    app.db().execute(
        "UPDATE sessions SET status = 'inactive' WHERE token_hash = $1",
        &[text(&sha256_hex(&token))],
    );
    app.me_with(&token, &[]).await.problem(401);
}

async fn losing_the_listener_turns_the_cache_off_until_it_is_back(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let t1 = app.login_token("alice", PASSWORD).await;
    let t2 = app.login_token("alice", PASSWORD).await;
    wait_until_cached(&app, &t1).await;
    wait_until_cached(&app, &t2).await;

    // Cut the listening connection, as a restart or a network fault would.
    let terminated = app.db().count(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'tessera-session-sync'",
        &[],
    );
    assert_eq!(terminated, 1, "one listening connection per instance");

    // Whatever happens while it is down is still seen: the cache is off, the database answers.
    tokio::time::sleep(Duration::from_millis(50)).await;
    app.db().execute(
        "UPDATE sessions SET status = 'inactive' WHERE token_hash = $1",
        &[text(&sha256_hex(&t1))],
    );
    app.me_with(&t1, &[]).await.problem(401);

    // It reconnects by itself and serves from memory again.
    wait_until_cached(&app, &t2).await;
    let listeners = app.db().count(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'tessera-session-sync'",
        &[],
    );
    assert_eq!(listeners, 1);
}
