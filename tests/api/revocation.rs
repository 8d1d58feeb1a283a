//! Revoking sessions: one, all others, all (/logout/all), the freshness rule, the per-user
//! session limit, and the revoked_reason / revoked_at columns.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    revoking_one_session_leaves_the_others_working,
    someone_elses_session_is_404_and_stays_alive,
    unknown_or_ended_session_is_the_same_404,
    revoking_the_current_session_needs_no_freshness_and_clears_the_cookie,
    stale_session_needs_the_right_password_to_revoke_another,
    backdated_session_is_stale_and_a_young_one_is_fresh,
    revoking_all_others_returns_the_count_and_keeps_the_current,
    revoking_all_others_follows_the_freshness_rule,
    logout_all_ends_every_session_including_the_current,
    session_limit_revokes_the_least_recently_used,
    zero_session_limit_is_no_limit,
    default_session_limit_is_twenty,
    every_revocation_records_its_reason_and_time,
    revocation_endpoints_need_a_session,
    revocations_racing_logins_never_answer_503,
);

#[track_caller]
fn assert_no_content(answer: &Answer) {
    assert_eq!(answer.status.as_u16(), 204, "body {:?}", answer.text);
    assert!(answer.text.is_empty(), "204 with a body: {:?}", answer.text);
}

async fn alice_with_sessions(app: &TestApp, n: usize) -> Vec<String> {
    app.register_ok("alice", PASSWORD).await;
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(app.login_token("alice", PASSWORD).await);
    }
    tokens
}

async fn revoking_one_session_leaves_the_others_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 3).await;
    let target = app.session_for(&tokens[1]).id;

    let answer = app.revoke_session(&tokens[0], &target, None).await;
    assert_no_content(&answer);
    assert!(
        !answer.has_cookie(DEFAULT_COOKIE),
        "revoking another session must not touch the caller's cookie: {:?}",
        answer.set_cookies()
    );

    let body = app.me_with(&tokens[1], &[]).await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    app.me_with(&tokens[0], &[]).await.expect(200);
    app.me_with(&tokens[2], &[]).await.expect(200);
    assert_revoked(&app.session_for(&tokens[1]), "revoked_by_user");
    assert_live(&app.session_for(&tokens[0]));
    assert_live(&app.session_for(&tokens[2]));

    let list = app.list_sessions(&tokens[0], &[]).await.expect(200).json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(!ids.contains(&target.as_str()), "{list}");
}

async fn someone_elses_session_is_404_and_stays_alive(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.user_session("alice").await;
    let bob = app.user_session("bob").await;
    let bob_id = app.session_for(&bob).id;

    let answer = app.revoke_session(&alice, &bob_id, None).await;
    assert_eq!(answer.problem(404)["detail"], json!(SESSION_NOT_FOUND));
    // Even with alice's correct password.
    let answer = app
        .revoke_session(&alice, &bob_id, Some(&json!({ "password": PASSWORD })))
        .await;
    assert_eq!(answer.problem(404)["detail"], json!(SESSION_NOT_FOUND));

    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));
    app.me_with(&alice, &[]).await.expect(200);
}

async fn unknown_or_ended_session_is_the_same_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 2).await;
    let bob = app.user_session("bob").await;
    let bob_id = app.session_for(&bob).id;

    let foreign = app.revoke_session(&tokens[0], &bob_id, None).await;
    let foreign_body = foreign.problem(404);

    let unknown_id = uuid::Uuid::new_v4().to_string();
    let ended_id = app.session_for(&tokens[1]).id;
    app.logout_with(&tokens[1]).await.expect(200);
    for id in [unknown_id.as_str(), "not-a-session-id", ended_id.as_str()] {
        let answer = app.revoke_session(&tokens[0], id, None).await;
        assert_eq!(
            answer.problem(404),
            foreign_body,
            "{id}: an unknown, ended or foreign id must get the same answer"
        );
    }
    assert_eq!(foreign_body["detail"], json!(SESSION_NOT_FOUND));
    // The ended one keeps the reason it ended with.
    assert_revoked(&app.session_by_id(&ended_id), "logout");
}

async fn revoking_the_current_session_needs_no_freshness_and_clears_the_cookie(backend: Backend) {
    // FRESH_SESSION_SECONDS=0: no session is ever fresh.
    let app = spawn_app_with(backend, &[("FRESH_SESSION_SECONDS", "0")]).await;
    let tokens = alice_with_sessions(&app, 2).await;
    let current = app.session_for(&tokens[0]).id;

    let answer = app.revoke_session(&tokens[0], &current, None).await;
    assert_no_content(&answer);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    app.me_with(&tokens[0], &[]).await.problem(401);
    assert_revoked(&app.session_for(&tokens[0]), "revoked_by_user");
    app.me_with(&tokens[1], &[]).await.expect(200);
}

async fn stale_session_needs_the_right_password_to_revoke_another(backend: Backend) {
    let app = spawn_app_with(backend, &[("FRESH_SESSION_SECONDS", "0")]).await;
    let tokens = alice_with_sessions(&app, 2).await;
    let other = app.session_for(&tokens[1]).id;

    let answer = app.revoke_session(&tokens[0], &other, None).await;
    assert_eq!(answer.problem(403)["detail"], json!(REAUTH_REQUIRED));
    app.me_with(&tokens[1], &[]).await.expect(200);

    let wrong = json!({ "password": "not the password at all" });
    let answer = app.revoke_session(&tokens[0], &other, Some(&wrong)).await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    app.me_with(&tokens[1], &[]).await.expect(200);
    assert_live(&app.session_for(&tokens[1]));
    // The wrong password is a failed login for alice from this address.
    let failures = app.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].username_key, "alice");
    assert_eq!(failures[0].ip, "127.0.0.1");

    let right = json!({ "password": PASSWORD });
    let answer = app.revoke_session(&tokens[0], &other, Some(&right)).await;
    assert_no_content(&answer);
    app.me_with(&tokens[1], &[]).await.problem(401);
    app.me_with(&tokens[0], &[]).await.expect(200);
    assert_revoked(&app.session_for(&tokens[1]), "revoked_by_user");
}

async fn backdated_session_is_stale_and_a_young_one_is_fresh(backend: Backend) {
    // The default FRESH_SESSION_SECONDS is 600.
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 3).await;
    // tokens[0] signed in 11 minutes ago: no longer fresh.
    app.age_session(&tokens[0], 660);
    let target = app.session_for(&tokens[2]).id;

    let answer = app.revoke_session(&tokens[0], &target, None).await;
    assert_eq!(answer.problem(403)["detail"], json!(REAUTH_REQUIRED));
    app.me_with(&tokens[2], &[]).await.expect(200);
    let answer = app.revoke_others(&tokens[0], None).await;
    assert_eq!(answer.problem(403)["detail"], json!(REAUTH_REQUIRED));
    app.me_with(&tokens[2], &[]).await.expect(200);

    // A session signed in 9 minutes ago is still fresh: no password needed.
    app.age_session(&tokens[1], 540);
    assert_no_content(&app.revoke_session(&tokens[1], &target, None).await);
    app.me_with(&tokens[2], &[]).await.problem(401);
    // And the stale one may still end itself.
    let own = app.session_for(&tokens[0]).id;
    assert_no_content(&app.revoke_session(&tokens[0], &own, None).await);
    app.me_with(&tokens[0], &[]).await.problem(401);
    app.me_with(&tokens[1], &[]).await.expect(200);
}

async fn revoking_all_others_returns_the_count_and_keeps_the_current(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 4).await;
    let bob = app.user_session("bob").await;

    let answer = app.revoke_others(&tokens[0], None).await.expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 3 }));
    assert!(
        !answer.has_cookie(DEFAULT_COOKIE),
        "the current session's cookie is untouched: {:?}",
        answer.set_cookies()
    );
    app.me_with(&tokens[0], &[]).await.expect(200);
    assert_live(&app.session_for(&tokens[0]));
    for token in &tokens[1..] {
        app.me_with(token, &[]).await.problem(401);
        assert_revoked(&app.session_for(token), "revoked_by_user");
    }
    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));

    // Nothing left to revoke.
    let answer = app.revoke_others(&tokens[0], None).await.expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 0 }));
    app.me_with(&tokens[0], &[]).await.expect(200);
}

async fn revoking_all_others_follows_the_freshness_rule(backend: Backend) {
    let app = spawn_app_with(backend, &[("FRESH_SESSION_SECONDS", "0")]).await;
    let tokens = alice_with_sessions(&app, 3).await;

    let answer = app.revoke_others(&tokens[0], None).await;
    assert_eq!(answer.problem(403)["detail"], json!(REAUTH_REQUIRED));
    let wrong = json!({ "password": "not the password at all" });
    let answer = app.revoke_others(&tokens[0], Some(&wrong)).await;
    assert_eq!(answer.problem(403)["detail"], json!(INCORRECT_PASSWORD));
    for token in &tokens {
        app.me_with(token, &[]).await.expect(200);
    }

    let right = json!({ "password": PASSWORD });
    let answer = app
        .revoke_others(&tokens[0], Some(&right))
        .await
        .expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 2 }));
    app.me_with(&tokens[0], &[]).await.expect(200);
    app.me_with(&tokens[1], &[]).await.problem(401);
    app.me_with(&tokens[2], &[]).await.problem(401);
}

async fn logout_all_ends_every_session_including_the_current(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 3).await;
    let bob = app.user_session("bob").await;

    let answer = app.logout_all(&tokens[1]).await.expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 3 }));
    let cleared = answer.cookie(DEFAULT_COOKIE);
    assert_clearing_cookie(&cleared, DEFAULT_COOKIE);
    for token in &tokens {
        let body = app.me_with(token, &[]).await.problem(401);
        assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
        assert_revoked(&app.session_for(token), "logout_all");
    }
    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));

    // Its cookie is dead now: a second call is 401.
    app.logout_all(&tokens[1]).await.problem(401);
    // The cookie-store client sees its cookie cleared.
    app.login("alice", PASSWORD).await.expect(200);
    app.me().await.expect(200);
    let answer = Answer::send(app.client.post(app.url("/logout/all")))
        .await
        .expect(200);
    assert_eq!(answer.json(), json!({ "revoked": 1 }));
    app.me().await.problem(401);
}

async fn session_limit_revokes_the_least_recently_used(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_SESSIONS_PER_USER", "3")]).await;
    let tokens = alice_with_sessions(&app, 3).await;
    let bob = app.user_session("bob").await;
    let now = utc_now();
    // Oldest created is the most recently used; the second is the least recently used.
    for (token, created_min, seen_sec) in [
        (&tokens[0], 180, 10),
        (&tokens[1], 120, 300),
        (&tokens[2], 60, 200),
    ] {
        app.set_session_time(token, "created_at", now - Duration::minutes(created_min));
        app.set_session_time(token, "last_seen_at", now - Duration::seconds(seen_sec));
    }

    let fourth = app.login_token("alice", PASSWORD).await;
    app.me_with(&tokens[1], &[]).await.problem(401);
    assert_revoked(&app.session_for(&tokens[1]), "session_limit");
    for token in [&tokens[0], &tokens[2], &fourth] {
        app.me_with(token, &[]).await.expect(200);
    }
    let active = app
        .sessions()
        .into_iter()
        .filter(|s| s.status == "active" && s.user_id == app.session_for(&fourth).user_id)
        .count();
    assert_eq!(active, 3);

    // Next in line: tokens[2] (seen 200 s ago); tokens[0] was seen 10 s ago, and the others
    // were just used.
    app.set_session_time(&tokens[0], "last_seen_at", now - Duration::seconds(10));
    app.set_session_time(&tokens[2], "last_seen_at", now - Duration::seconds(200));
    app.set_session_time(&fourth, "last_seen_at", now);
    let fifth = app.login_token("alice", PASSWORD).await;
    assert_revoked(&app.session_for(&tokens[2]), "session_limit");
    app.me_with(&tokens[2], &[]).await.problem(401);
    for token in [&tokens[0], &fourth, &fifth] {
        app.me_with(token, &[]).await.expect(200);
    }
    // Other users are not counted.
    app.me_with(&bob, &[]).await.expect(200);
    assert_live(&app.session_for(&bob));

    // The revocations are in the audit trail.
    let revoked: Vec<String> = app
        .events()
        .into_iter()
        .filter(|e| e.kind == "session_revoked")
        .filter_map(|e| e.session_id)
        .collect();
    for token in [&tokens[1], &tokens[2]] {
        let id = app.session_for(token).id;
        assert!(revoked.contains(&id), "no session_revoked for {id}");
    }
}

async fn zero_session_limit_is_no_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_SESSIONS_PER_USER", "0")]).await;
    let tokens = alice_with_sessions(&app, 24).await;
    for token in &tokens {
        assert_live(&app.session_for(token));
    }
    app.me_with(&tokens[0], &[]).await.expect(200);
}

async fn default_session_limit_is_twenty(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = alice_with_sessions(&app, 21).await;
    let rows = app.sessions();
    let active = rows.iter().filter(|s| s.status == "active").count();
    assert_eq!(active, 20, "{rows:?}");
    let limited: Vec<_> = rows
        .iter()
        .filter(|s| s.revoked_reason.as_deref() == Some("session_limit"))
        .collect();
    assert_eq!(limited.len(), 1, "{rows:?}");
    app.me_with(&tokens[20], &[]).await.expect(200);
}

async fn every_revocation_records_its_reason_and_time(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_SESSIONS_PER_USER", "3")]).await;
    app.register_ok("alice", PASSWORD).await;

    // logout
    let t = app.login_token("alice", PASSWORD).await;
    app.logout_with(&t).await.expect(200);
    assert_revoked(&app.session_for(&t), "logout");

    // a login carrying a live cookie replaces that session: logout
    let t = app.login_token("alice", PASSWORD).await;
    let cookie = app.cookie_header(&t);
    let replacement = app
        .login_raw("alice", PASSWORD, &[("cookie", &cookie)])
        .await
        .expect(200)
        .cookie(DEFAULT_COOKIE)
        .value()
        .to_owned();
    assert_revoked(&app.session_for(&t), "logout");

    // revoked_by_user, one by id and the others in bulk
    let a = app.login_token("alice", PASSWORD).await;
    let id = app.session_for(&replacement).id;
    assert_no_content(&app.revoke_session(&a, &id, None).await);
    assert_revoked(&app.session_for(&replacement), "revoked_by_user");
    let b = app.login_token("alice", PASSWORD).await;
    app.revoke_others(&b, None).await.expect(200);
    assert_revoked(&app.session_for(&a), "revoked_by_user");

    // logout_all (b is the current one)
    let c = app.login_token("alice", PASSWORD).await;
    app.logout_all(&b).await.expect(200);
    assert_revoked(&app.session_for(&b), "logout_all");
    assert_revoked(&app.session_for(&c), "logout_all");

    // password_change, the current session included
    let d = app.login_token("alice", PASSWORD).await;
    let e = app.login_token("alice", PASSWORD).await;
    let changed = app.change_password(&d, PASSWORD, NEW_PASSWORD).await;
    changed.expect(200);
    assert_revoked(&app.session_for(&d), "password_change");
    assert_revoked(&app.session_for(&e), "password_change");

    // session_limit: three live, a fourth login ends the least recently used
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(app.login_token("alice", NEW_PASSWORD).await);
    }
    let rows = app.sessions();
    let active: Vec<_> = rows.iter().filter(|s| s.status == "active").collect();
    assert_eq!(active.len(), 3, "{rows:?}");
    let oldest = utc_now() - Duration::hours(1);
    for row in &active {
        app.db().execute(
            "UPDATE sessions SET last_seen_at = ? WHERE id = ?",
            &[time(oldest), text(&row.id)],
        );
    }
    app.set_session_time(&live[1], "last_seen_at", oldest - Duration::minutes(5));
    app.login_token("alice", NEW_PASSWORD).await;
    assert_revoked(&app.session_for(&live[1]), "session_limit");

    // Every ended session has a reason and a time; no live one has either.
    for row in app.sessions() {
        if row.status == "active" {
            assert_live(&row);
        } else {
            assert!(
                row.revoked_reason.is_some() && row.revoked_at.is_some(),
                "{row:?}"
            );
        }
    }
}

async fn revocation_endpoints_need_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let id = app.session_for(&token).id;
    let dead = "A".repeat(43);
    for cookie in [None, Some(dead.as_str())] {
        for (method, path) in [
            (Method::DELETE, format!("/users/me/sessions/{id}")),
            (Method::DELETE, "/users/me/sessions".to_owned()),
            (Method::POST, "/logout/all".to_owned()),
        ] {
            let answer = app.call(method.clone(), &path, cookie, None, &[]).await;
            let body = answer.problem(401);
            assert_eq!(body["detail"], json!(NOT_AUTHENTICATED), "{method} {path}");
        }
    }
    app.me_with(&token, &[]).await.expect(200);
    assert_live(&app.session_for(&token));
}

/// Revoking all sessions reads, then writes, in one transaction. On SQLite a deferred transaction
/// cannot upgrade its read to a write once another connection has committed, and answered 503 at
/// once ("database is locked") under concurrent logins; it must wait its turn instead.
async fn revocations_racing_logins_never_answer_503(backend: Backend) {
    let app = spawn_app_with(backend, &[("MAX_SESSIONS_PER_USER", "0")]).await;
    app.register_ok("alice", PASSWORD).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (base, client) = (app.address.clone(), http_client(false));
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..8 {
                let login = client
                    .post(format!("{base}/login"))
                    .json(&credentials("alice", PASSWORD))
                    .send()
                    .await
                    .expect("login");
                statuses.push(login.status().as_u16());
                let cookie = set_cookies(login.headers())
                    .into_iter()
                    .find(|c| c.name() == DEFAULT_COOKIE)
                    .map(|c| format!("{DEFAULT_COOKIE}={}", c.value()));
                let Some(cookie) = cookie else { continue };
                let others = client
                    .delete(format!("{base}/users/me/sessions"))
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .expect("revoke others");
                statuses.push(others.status().as_u16());
                let all = client
                    .post(format!("{base}/logout/all"))
                    .header("Cookie", &cookie)
                    .send()
                    .await
                    .expect("logout all");
                statuses.push(all.status().as_u16());
            }
            statuses
        });
    }
    let mut seen = Vec::new();
    while let Some(done) = tasks.join_next().await {
        seen.extend(done.expect("task"));
    }
    assert_eq!(seen.len(), 16 * 8 * 3, "{seen:?}");
    assert!(
        seen.iter().all(|s| [200, 401].contains(s)),
        "only 200 (or 401 for a session another request just ended): {seen:?}"
    );
    assert!(seen.iter().filter(|s| **s == 200).count() >= 16 * 8);
}
