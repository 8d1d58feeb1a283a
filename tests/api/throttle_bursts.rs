//! Issue 10, items 2 to 5: the throttles hold against parallel bursts, IPv6 address hopping
//! and floods; the argon2 queue is bounded; refusals are cheap and do not flood the audit trail.

use chrono::Duration;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

backend_tests!(
    a_parallel_burst_of_usernames_checks_at_most_the_ip_limit,
    right_passwords_arriving_together_are_still_never_refused,
    a_parallel_burst_of_registrations_stops_at_the_limit,
    registrations_are_limited_per_ipv6_64,
    a_full_argon2_queue_answers_503_with_retry_after,
    a_429_writes_nothing_and_the_lock_is_one_event,
);

const WRONG: &str = "definitely not the password";

/// Sends every `(method, path, body, x-forwarded-for)` at once; returns the answers.
async fn burst(app: &TestApp, requests: Vec<(&'static str, Value, Option<String>)>) -> Vec<Answer> {
    let mut tasks = tokio::task::JoinSet::new();
    for (path, body, forwarded) in requests {
        let client = app.raw.clone();
        let url = app.url(path);
        tasks.spawn(async move {
            let mut request = client.post(url).json(&body);
            if let Some(ip) = forwarded {
                request = request.header("x-forwarded-for", ip);
            }
            Answer::send(request).await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("request task panicked"));
    }
    answers
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status.as_u16()).collect()
}

async fn a_parallel_burst_of_usernames_checks_at_most_the_ip_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES_PER_IP", "5"),
            ("ARGON2_MAX_CONCURRENCY", "1"),
        ],
    )
    .await;
    let logins = (0..12)
        .map(|i| ("/login", credentials(&format!("user{i}"), WRONG), None))
        .collect();
    let answers = burst(&app, logins).await;
    let checked = answers.iter().filter(|a| a.status == 401).count();
    for answer in answers.iter().filter(|a| a.status != 401) {
        assert_login_throttled(answer);
    }
    assert!(
        (1..=5).contains(&checked),
        "12 parallel logins from one IP with LOGIN_MAX_FAILURES_PER_IP=5 checked {checked} passwords: {:?}",
        statuses(&answers)
    );
    assert_eq!(app.failures().len(), checked, "{:?}", app.failures());
    let failed = app
        .events()
        .into_iter()
        .filter(|e| e.kind == "login_failed")
        .count();
    assert_eq!(failed, checked);
    assert_login_throttled(&app.login_raw("someone-else", WRONG, &[]).await);
}

async fn right_passwords_arriving_together_are_still_never_refused(backend: Backend) {
    // The IP limit counts checks in flight, but right passwords beyond it wait their turn
    // instead of being refused: twelve users behind one NAT, limit 3.
    let app = spawn_app_with(
        backend,
        &[
            ("LOGIN_MAX_FAILURES_PER_IP", "3"),
            ("ARGON2_MAX_CONCURRENCY", "1"),
        ],
    )
    .await;
    for i in 0..12 {
        app.register_ok(&format!("user{i}"), PASSWORD).await;
    }
    let logins = (0..12)
        .map(|i| ("/login", credentials(&format!("user{i}"), PASSWORD), None))
        .collect();
    let answers = burst(&app, logins).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        statuses(&answers)
    );
    assert!(app.failures().is_empty(), "{:?}", app.failures());
}

async fn a_parallel_burst_of_registrations_stops_at_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("REGISTER_MAX_PER_IP", "3")]).await;
    let registrations = (0..8)
        .map(|i| {
            (
                "/register",
                credentials(&format!("user{i}"), PASSWORD),
                None,
            )
        })
        .collect();
    let answers = burst(&app, registrations).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.problem(429);
        retry_after(answer);
    }
    assert_eq!(
        created,
        3,
        "8 parallel registrations with REGISTER_MAX_PER_IP=3: {:?}",
        statuses(&answers)
    );
    assert_eq!(app.users().len(), 3);
}

async fn registrations_are_limited_per_ipv6_64(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("REGISTER_MAX_PER_IP", "3"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let mut created = 0;
    for host in 1..=5 {
        for n in 0..3 {
            let ip = format!("2001:db8:1:2::{host:x}");
            let answer = app
                .call(
                    Method::POST,
                    "/register",
                    None,
                    Some(&credentials(&format!("user{host}x{n}"), PASSWORD)),
                    &[("x-forwarded-for", &ip)],
                )
                .await;
            match answer.status.as_u16() {
                201 => created += 1,
                429 => {
                    answer.problem(429);
                }
                other => panic!("{other}: {}", answer.text),
            }
        }
    }
    assert_eq!(
        created, 3,
        "five addresses of one /64 registered {created} users"
    );
    // Another /64 is another client.
    app.call(
        Method::POST,
        "/register",
        None,
        Some(&credentials("elsewhere", PASSWORD)),
        &[("x-forwarded-for", "2001:db8:1:3::1")],
    )
    .await
    .expect(201);
}

async fn a_full_argon2_queue_answers_503_with_retry_after(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("ARGON2_MAX_CONCURRENCY", "1"),
            ("ARGON2_MAX_QUEUE", "2"),
            ("LOGIN_MAX_FAILURES_PER_IP", "0"),
            ("REGISTER_MAX_PER_IP", "0"),
        ],
    )
    .await;
    for i in 0..16 {
        app.register_ok(&format!("user{i}"), PASSWORD).await;
    }
    let logins = (0..16)
        .map(|i| ("/login", credentials(&format!("user{i}"), PASSWORD), None))
        .collect();
    let answers = burst(&app, logins).await;
    let busy: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(
        answers
            .iter()
            .all(|a| [200, 503].contains(&a.status.as_u16())),
        "{:?}",
        statuses(&answers)
    );
    assert!(
        !busy.is_empty(),
        "16 parallel logins with ARGON2_MAX_QUEUE=2 were all queued: {:?}",
        statuses(&answers)
    );
    for answer in busy {
        let body = answer.problem(503);
        assert_eq!(retry_after(answer), 1);
        assert!(
            !body["detail"].as_str().unwrap_or("").contains("database"),
            "{body}"
        );
        assert!(answer.set_cookies().is_empty());
    }
    // Nothing was left behind: the queue is free again and no attempt stays pending.
    app.login_token("user0", PASSWORD).await;
    assert!(app.failures().is_empty(), "{:?}", app.failures());
}

async fn a_429_writes_nothing_and_the_lock_is_one_event(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "2")]).await;
    let token = app.user_session("alice").await;
    for _ in 0..2 {
        app.login_raw("alice", WRONG, &[]).await.problem(401);
    }
    let events_before = app.events().len();
    let last_failure = app.failures().iter().map(|f| f.id).max().unwrap();
    for _ in 0..60 {
        assert_login_throttled(&app.login_raw("alice", PASSWORD, &[]).await);
    }
    // The lock is one `login_throttled` event, written when it began; refusals write nothing.
    let events = app.events();
    assert_eq!(events.len(), events_before, "refusals wrote events");
    let throttled: Vec<&EventRow> = events
        .iter()
        .filter(|e| e.kind == "login_throttled")
        .collect();
    assert_eq!(throttled.len(), 1, "{throttled:#?}");
    // The owner's own history is still in view.
    let mine = app.list_events(&token, None).await.expect(200).json();
    let kinds: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"login"), "{kinds:?}");
    assert!(kinds.contains(&"register"), "{kinds:?}");

    // No row was written and removed for any refusal: the next failure takes the next id.
    let mut db = app.db();
    for row in db.failures() {
        db.execute(
            "UPDATE login_failures SET created_at = ? WHERE id = ?",
            &[
                time(row.created_at - Duration::seconds(3600)),
                Arg::Int(row.id),
            ],
        );
    }
    app.login_raw("alice", WRONG, &[]).await.problem(401);
    let next = app.failures().iter().map(|f| f.id).max().unwrap();
    assert_eq!(next, last_failure + 1, "refused attempts wrote rows");
}
