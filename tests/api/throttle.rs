//! Login throttling by (username, client IP) pair and by IP, the client IP through
//! TRUSTED_PROXIES / X-Forwarded-For, and the per-IP registration limit.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    pair_is_locked_after_max_failures_even_for_the_right_password,
    lockout_backs_off_exponentially_up_to_the_cap,
    success_resets_the_pair_count_but_not_the_ip_count,
    ip_is_locked_for_every_username,
    zero_turns_the_pair_limit_off,
    zero_turns_the_ip_limit_off,
    wrong_passwords_on_account_endpoints_count_and_are_throttled,
    forwarded_for_is_ignored_from_an_untrusted_peer,
    forwarded_for_is_honoured_from_a_trusted_peer,
    register_is_limited_per_ip_with_retry_after,
    register_limit_defaults_to_twenty,
    zero_turns_the_register_limit_off,
    register_limit_follows_the_forwarded_client_ip,
    concurrent_right_password_logins_are_never_throttled,
    a_parallel_burst_of_failures_locks_the_pair,
);

const WRONG: &str = "definitely not the password";

async fn fail_login(app: &TestApp, username: &str, headers: &[(&str, &str)]) {
    let body = app.login_raw(username, WRONG, headers).await.problem(401);
    assert_eq!(body["detail"], json!(BAD_CREDENTIALS), "{username}");
}

/// Moves every recorded login failure `seconds` into the past (direct SQL).
fn age_failures(app: &TestApp, seconds: i64) {
    let mut db = app.db();
    for row in db.failures() {
        db.execute(
            "UPDATE login_failures SET created_at = ? WHERE id = ?",
            &[
                time(row.created_at - Duration::seconds(seconds)),
                Arg::Int(row.id),
            ],
        );
    }
}

#[track_caller]
fn assert_between(value: i64, low: i64, high: i64, what: &str) {
    assert!(
        (low..=high).contains(&value),
        "{what}: expected {low}..={high}, got {value}"
    );
}

async fn pair_is_locked_after_max_failures_even_for_the_right_password(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "3")]).await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    for _ in 0..3 {
        fail_login(&app, "alice", &[]).await;
    }
    assert_eq!(app.failures().len(), 3);

    // The fourth attempt is refused without checking the password.
    let seconds = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(seconds, 30, 60, "first lockout (LOGIN_LOCKOUT_SECONDS=60)");
    let seconds = assert_login_throttled(&app.login_raw("alice", WRONG, &[]).await);
    assert_between(seconds, 30, 60, "still the first lockout");
    // The username is matched case-insensitively.
    assert_login_throttled(&app.login_raw("ALICE", PASSWORD, &[]).await);
    // Throttled attempts are not new failures, and no session was started.
    assert_eq!(app.failures().len(), 3, "{:?}", app.failures());
    assert!(app.sessions().is_empty(), "{:?}", app.sessions());

    // Another username from the same address is not locked.
    app.login_token("bob", PASSWORD).await;
    // Unknown usernames are counted too.
    for _ in 0..3 {
        fail_login(&app, "ghost", &[]).await;
    }
    assert_login_throttled(&app.login_raw("ghost", PASSWORD, &[]).await);
    let rows = app.failures();
    assert!(
        rows.iter()
            .all(|f| f.ip == "127.0.0.1" && ["alice", "ghost"].contains(&f.username_key.as_str())),
        "{rows:?}"
    );
}

async fn lockout_backs_off_exponentially_up_to_the_cap(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "2"),
            ("LOGIN_LOCKOUT_SECONDS", "100"),
            ("LOGIN_LOCKOUT_MAX_SECONDS", "300"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    fail_login(&app, "alice", &[]).await;
    fail_login(&app, "alice", &[]).await;
    let first = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(first, 80, 100, "lockout after 2 failures (100 s)");

    // Let the lockout pass (by moving the failures back), fail once more: it doubles.
    age_failures(&app, first + 1);
    fail_login(&app, "alice", &[]).await;
    let second = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(second, 180, 200, "lockout after 3 failures (200 s)");

    age_failures(&app, second + 1);
    fail_login(&app, "alice", &[]).await;
    let third = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(
        third,
        280,
        300,
        "lockout after 4 failures (400 s, capped at 300)",
    );

    age_failures(&app, third + 1);
    fail_login(&app, "alice", &[]).await;
    let fourth = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(fourth, 280, 300, "lockout after 5 failures (capped at 300)");
    assert!(first < second && second < third, "{first} {second} {third}");

    // Once the lockout has passed, the right password gets in.
    age_failures(&app, fourth + 1);
    app.login_token("alice", PASSWORD).await;
}

async fn success_resets_the_pair_count_but_not_the_ip_count(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", "5"),
        ],
    )
    .await;
    for name in ["alice", "bob", "carol"] {
        app.register_ok(name, PASSWORD).await;
    }
    fail_login(&app, "alice", &[]).await;
    fail_login(&app, "alice", &[]).await;
    app.login_token("alice", PASSWORD).await;
    // The failures are kept (they still count for the IP) but cleared for the pair.
    let rows = app.failures();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|f| f.cleared == 1), "{rows:?}");
    // Without the reset this would be the 3rd and 4th failure: the 4th attempt would be 429.
    fail_login(&app, "alice", &[]).await;
    fail_login(&app, "alice", &[]).await;
    app.login_token("alice", PASSWORD).await;

    // The IP has 4 failures; a fifth (another user) reaches the per-IP limit.
    fail_login(&app, "bob", &[]).await;
    let seconds = assert_login_throttled(&app.login_raw("carol", PASSWORD, &[]).await);
    assert_between(
        seconds,
        600,
        900,
        "per-IP lock lasts until the oldest failure leaves",
    );
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
}

async fn ip_is_locked_for_every_username(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "0"),
            ("LOGIN_MAX_FAILURES_PER_IP", "3"),
            ("LOGIN_WINDOW_SECONDS", "120"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    for name in ["ghost1", "ghost2", "alice"] {
        fail_login(&app, name, &[]).await;
    }
    let seconds = assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_between(
        seconds,
        60,
        120,
        "until the oldest failure leaves the 120 s window",
    );
    assert_login_throttled(&app.login_raw("bob", PASSWORD, &[]).await);
    assert_login_throttled(&app.login_raw("somebody-new", WRONG, &[]).await);
    assert_eq!(app.failures().len(), 3);

    // When the oldest failure leaves the window, the IP is free again.
    let oldest = app.failures()[0].clone();
    app.db().execute(
        "UPDATE login_failures SET created_at = ? WHERE id = ?",
        &[
            time(utc_now() - Duration::seconds(121)),
            Arg::Int(oldest.id),
        ],
    );
    app.login_token("bob", PASSWORD).await;
}

async fn zero_turns_the_pair_limit_off(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "0")]).await;
    app.register_ok("alice", PASSWORD).await;
    for _ in 0..8 {
        fail_login(&app, "alice", &[]).await;
    }
    app.login_token("alice", PASSWORD).await;
}

async fn zero_turns_the_ip_limit_off(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", "0"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    for i in 0..6 {
        let name = format!("ghost{i}");
        fail_login(&app, &name, &[]).await;
        fail_login(&app, &name, &[]).await;
    }
    // 12 failures from this address, none locking it.
    app.login_token("alice", PASSWORD).await;
    // The pair limit is still on.
    fail_login(&app, "ghost0", &[]).await;
    assert_login_throttled(&app.login_raw("ghost0", WRONG, &[]).await);
}

async fn wrong_passwords_on_account_endpoints_count_and_are_throttled(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("LOGIN_MAX_FAILURES", "2"), ("FRESH_SESSION_SECONDS", "0")],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    let current = app.login_token("alice", PASSWORD).await;
    let other = app.login_token("alice", PASSWORD).await;
    let other_id = app.session_for(&other).id;

    let wrong = json!({ "password": WRONG });
    let answer = app.revoke_session(&current, &other_id, Some(&wrong)).await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    let answer = app.delete_account(&current, WRONG).await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    assert_eq!(app.failures().len(), 2, "{:?}", app.failures());

    // Locked: every password check answers 429, right password or not.
    let right = json!({ "password": PASSWORD });
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    assert_login_throttled(&app.revoke_session(&current, &other_id, Some(&right)).await);
    assert_login_throttled(&app.revoke_others(&current, Some(&right)).await);
    assert_login_throttled(&app.delete_account(&current, PASSWORD).await);
    assert_login_throttled(&app.change_password(&current, PASSWORD, NEW_PASSWORD).await);
    // Nothing happened.
    app.me_with(&other, &[]).await.expect(200);
    app.me_with(&current, &[]).await.expect(200);
    assert_eq!(app.users().len(), 1);
    assert_eq!(app.failures().len(), 2);
}

async fn forwarded_for_is_ignored_from_an_untrusted_peer(backend: Backend) {
    for trusted in ["", "10.0.0.0/8, 192.168.0.1"] {
        let app = spawn_app_with(
            backend,
            &[("LOGIN_MAX_FAILURES", "2"), ("TRUSTED_PROXIES", trusted)],
        )
        .await;
        app.register_ok("alice", PASSWORD).await;
        fail_login(&app, "alice", &[("x-forwarded-for", "203.0.113.1")]).await;
        fail_login(&app, "alice", &[("x-forwarded-for", "203.0.113.2")]).await;
        // Claiming yet another address does not escape the lock: the peer is the client.
        let answer = app
            .login_raw("alice", PASSWORD, &[("x-forwarded-for", "203.0.113.3")])
            .await;
        assert_login_throttled(&answer);
        let failures = app.failures();
        assert!(
            failures.iter().all(|f| f.ip == "127.0.0.1"),
            "TRUSTED_PROXIES={trusted:?}: {failures:?}"
        );

        // Sessions and events record the peer too.
        app.register_ok("bob", PASSWORD).await;
        let bob = app
            .login_token_with("bob", PASSWORD, &[("x-forwarded-for", "203.0.113.4")])
            .await;
        let row = app.session_for(&bob);
        assert_eq!(row.ip.as_deref(), Some("127.0.0.1"), "{row:?}");
        let events = app.events();
        assert!(
            events.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")),
            "{events:?}"
        );
    }
}

async fn forwarded_for_is_honoured_from_a_trusted_peer(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "2"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    let client_a = [("x-forwarded-for", "203.0.113.1")];
    fail_login(&app, "alice", &client_a).await;
    fail_login(&app, "alice", &client_a).await;
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &client_a).await);
    let failures = app.failures();
    assert!(
        failures.iter().all(|f| f.ip == "203.0.113.1"),
        "{failures:?}"
    );

    // A client prepending a forged address is still 203.0.113.1 (read right to left).
    let forged = [("x-forwarded-for", "198.51.100.66, 203.0.113.1")];
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &forged).await);
    // Trusted hops on the right are skipped.
    let via_two = [("x-forwarded-for", "203.0.113.1, 127.0.0.1")];
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &via_two).await);

    // Another client behind the proxy has its own count.
    let client_b = [("x-forwarded-for", "203.0.113.2")];
    let token = app.login_token_with("alice", PASSWORD, &client_b).await;
    let row = app.session_for(&token);
    assert_eq!(row.ip.as_deref(), Some("203.0.113.2"), "{row:?}");
    let list = app.list_sessions(&token, &[]).await.expect(200).json();
    assert_eq!(list[0]["ip"], json!("203.0.113.2"), "{list}");
    fail_login(&app, "alice", &client_b).await;
    fail_login(&app, "alice", &client_b).await;
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &client_b).await);
    // A third client, and the proxy itself (no header), are not locked.
    app.login_token_with("alice", PASSWORD, &[("x-forwarded-for", "203.0.113.3")])
        .await;
    let direct = app.login_token("alice", PASSWORD).await;
    assert_eq!(app.session_for(&direct).ip.as_deref(), Some("127.0.0.1"));
    // An unparsable entry stops the walk: the last good address is the client.
    let garbage = [("x-forwarded-for", "203.0.113.1, not-an-ip")];
    let token = app.login_token_with("alice", PASSWORD, &garbage).await;
    assert_eq!(app.session_for(&token).ip.as_deref(), Some("127.0.0.1"));
}

async fn register_is_limited_per_ip_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, &[("REGISTER_MAX_PER_IP", "3")]).await;
    app.register_ok("user1", PASSWORD).await;
    app.register_ok("user2", PASSWORD).await;
    // Refused registrations do not count.
    app.register("user1", PASSWORD).await.problem(409);
    app.register("x", PASSWORD).await.problem(422);
    app.register_ok("user3", PASSWORD).await;

    let answer = app.register("user4", PASSWORD).await;
    let body = answer.problem(429);
    let seconds = retry_after(&answer);
    assert_between(seconds, 3000, 3600, "REGISTER_WINDOW_SECONDS=3600");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(app.users().len(), 3);
    let answer = app
        .call(
            Method::POST,
            "/users",
            None,
            Some(&credentials("user5", PASSWORD)),
            &[],
        )
        .await;
    answer.problem(429);
    retry_after(&answer);
    // Logging in is not registering.
    app.login_token("user1", PASSWORD).await;
}

async fn register_limit_defaults_to_twenty(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..20 {
        app.register_ok(&format!("user{i}"), PASSWORD).await;
    }
    let answer = app.register("user20", PASSWORD).await;
    answer.problem(429);
    assert_between(retry_after(&answer), 3000, 3600, "default window 3600 s");
}

async fn zero_turns_the_register_limit_off(backend: Backend) {
    let app = spawn_app_with(backend, &[("REGISTER_MAX_PER_IP", "0")]).await;
    for i in 0..22 {
        app.register_ok(&format!("user{i}"), PASSWORD).await;
    }
}

async fn register_limit_follows_the_forwarded_client_ip(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("REGISTER_MAX_PER_IP", "1"),
            ("REGISTER_WINDOW_SECONDS", "600"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let register = |name: &'static str, ip: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/register",
                None,
                Some(&credentials(name, PASSWORD)),
                &[("x-forwarded-for", ip)],
            )
            .await
        }
    };
    register("user1", "198.51.100.1").await.expect(201);
    let answer = register("user2", "198.51.100.1").await;
    answer.problem(429);
    assert_between(
        retry_after(&answer),
        500,
        600,
        "REGISTER_WINDOW_SECONDS=600",
    );
    register("user2", "198.51.100.2").await.expect(201);
}

/// Logs in `count` times at once; returns every answer.
async fn parallel_logins(app: &TestApp, logins: Vec<(String, String)>) -> Vec<Answer> {
    let mut tasks = tokio::task::JoinSet::new();
    for (username, password) in logins {
        let client = app.raw.clone();
        let url = app.url("/login");
        tasks.spawn(async move {
            let response = client
                .post(url)
                .json(&credentials(&username, &password))
                .send()
                .await
                .expect("login request failed");
            Answer::read(response).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("login task panicked"));
    }
    answers
}

async fn concurrent_right_password_logins_are_never_throttled(backend: Backend) {
    // Only failures count (design-v3: "a failure = wrong password or unknown username"):
    // a burst of correct logins is no reason to lock anyone out.
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", "5"),
            ("MAX_SESSIONS_PER_USER", "0"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    let answers = parallel_logins(
        &app,
        (0..12)
            .map(|_| ("alice".to_owned(), PASSWORD.to_owned()))
            .collect(),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "12 parallel logins of one user with the right password: {statuses:?}"
    );

    // Many users behind one address (one NAT) signing in at once.
    let names: Vec<String> = (0..12).map(|i| format!("user{i}")).collect();
    for name in &names {
        app.register_ok(name, PASSWORD).await;
    }
    let answers = parallel_logins(
        &app,
        names
            .iter()
            .map(|n| (n.clone(), PASSWORD.to_owned()))
            .collect(),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "12 parallel logins of different users from one IP: {statuses:?}"
    );
    assert!(
        app.failures().iter().all(|f| f.cleared == 1),
        "{:?}",
        app.failures()
    );
}

async fn a_parallel_burst_of_failures_locks_the_pair(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "3")]).await;
    app.register_ok("alice", PASSWORD).await;
    let answers = parallel_logins(
        &app,
        (0..10)
            .map(|_| ("alice".to_owned(), WRONG.to_owned()))
            .collect(),
    )
    .await;
    let mut checked = 0;
    for answer in &answers {
        match answer.status.as_u16() {
            401 => {
                assert_eq!(answer.problem(401)["detail"], json!(BAD_CREDENTIALS));
                checked += 1;
            }
            429 => {
                assert_login_throttled(answer);
            }
            other => panic!("a wrong password got {other}: {}", answer.text),
        }
    }
    // A 429 needs LOGIN_MAX_FAILURES failures first, and only checked passwords are failures:
    // however the burst interleaves, at least 3 of the 10 were checked (401).
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(
        checked >= 3,
        "429 answered before 3 wrong passwords were checked: {statuses:?}"
    );
    // Exactly the checked ones are failures; the pair is locked.
    assert_eq!(app.failures().len(), checked, "{statuses:?}");
    assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
}
