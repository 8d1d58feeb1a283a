//! GET /users/me/sessions: a user's devices.

use chrono::Duration;
use reqwest::header::{HeaderValue, COOKIE, USER_AGENT};
use serde_json::{json, Value};

use crate::helpers::*;

backend_tests!(
    listing_shows_my_sessions_newest_first_with_the_right_current,
    listing_leaves_out_ended_sessions_and_other_users,
    user_agent_is_kept_as_sent_cut_to_256_chars,
    session_without_user_agent_lists_null_and_the_peer_ip,
    listing_needs_a_live_session,
);

const SESSION_KEYS: [&str; 7] = [
    "created_at",
    "current",
    "expires_at",
    "id",
    "ip",
    "last_seen_at",
    "user_agent",
];

fn seconds(t: chrono::NaiveDateTime) -> Value {
    json!(t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[track_caller]
fn items(answer: &Answer) -> Vec<Value> {
    answer
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("the session list is not an array: {}", answer.text))
        .clone()
}

async fn listing_shows_my_sessions_newest_first_with_the_right_current(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let agents = ["Agent/1 (first)", "Agent/2 (second)", "Agent/3 (third)"];
    let mut tokens = Vec::new();
    for agent in agents {
        tokens.push(
            app.login_token_with("alice", PASSWORD, &[("user-agent", agent)])
                .await,
        );
    }
    // Distinct creation times, the first login oldest (direct SQL, no sleeping).
    for (i, token) in tokens.iter().enumerate() {
        let created = utc_now() - Duration::minutes(30 - 10 * i as i64);
        app.set_session_time(token, "created_at", created);
    }

    for (me, token) in tokens.iter().enumerate() {
        let answer = app
            .list_sessions(token, &[("user-agent", agents[me])])
            .await
            .expect(200);
        let list = items(&answer);
        assert_eq!(list.len(), 3, "{}", answer.text);
        // Newest first.
        let expected: Vec<(usize, SessionRow)> = (0..3)
            .rev()
            .map(|i| (i, app.session_for(&tokens[i])))
            .collect();
        let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
        let expected_ids: Vec<&str> = expected.iter().map(|(_, row)| row.id.as_str()).collect();
        assert_eq!(ids, expected_ids, "order of {}", answer.text);
        for (item, (i, row)) in list.iter().zip(&expected) {
            assert_eq!(keys_of(item), SESSION_KEYS, "keys of {item}");
            assert_eq!(
                item["current"],
                json!(*i == me),
                "current of {item} (request made with session {me})"
            );
            assert_eq!(item["user_agent"], json!(agents[*i]), "{item}");
            assert_eq!(item["ip"], json!("127.0.0.1"), "{item}");
            for field in ["created_at", "last_seen_at", "expires_at"] {
                assert_rfc3339_z(&item[field], field);
            }
            assert_eq!(item["created_at"], seconds(row.created_at), "{item}");
            assert_eq!(item["expires_at"], seconds(row.expires_at), "{item}");
            let last_seen = row.last_seen_at.expect("last_seen_at is set");
            assert_eq!(item["last_seen_at"], seconds(last_seen), "{item}");
        }
    }
}

async fn listing_leaves_out_ended_sessions_and_other_users(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    let kept = app.login_token("alice", PASSWORD).await;
    let logged_out = app.login_token("alice", PASSWORD).await;
    let expired = app.login_token("alice", PASSWORD).await;
    let bob = app.login_token("bob", PASSWORD).await;

    app.logout_with(&logged_out).await.expect(200);
    app.db().execute(
        "UPDATE sessions SET status = 'expired' WHERE token_hash = ?",
        &[text(&sha256_hex(&expired))],
    );

    let list = items(&app.list_sessions(&kept, &[]).await.expect(200));
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], json!(app.session_for(&kept).id));
    assert_eq!(list[0]["current"], json!(true));

    let list = items(&app.list_sessions(&bob, &[]).await.expect(200));
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], json!(app.session_for(&bob).id));
}

async fn user_agent_is_kept_as_sent_cut_to_256_chars(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;

    let long_agent = format!("Mozilla/5.0 {}", "x".repeat(400));
    let token = app
        .login_token_with("alice", PASSWORD, &[("user-agent", &long_agent)])
        .await;
    let list = items(
        &app.list_sessions(&token, &[("user-agent", &long_agent)])
            .await
            .expect(200),
    );
    let cut: String = long_agent.chars().take(256).collect();
    assert_eq!(list[0]["user_agent"], json!(cut));
    assert_eq!(app.session_for(&token).user_agent.as_deref(), Some(&*cut));
    // The fingerprint still covers the whole header: the session works with it.
    app.me_with(&token, &[("user-agent", &long_agent)])
        .await
        .expect(200);

    // Characters, not bytes: 300 two-byte characters are cut to 256 characters.
    let wide_agent = "é".repeat(300);
    let wide = HeaderValue::from_bytes(wide_agent.as_bytes()).unwrap();
    let login = Answer::send(
        app.raw
            .post(app.url("/login"))
            .header(USER_AGENT, wide.clone())
            .json(&credentials("alice", PASSWORD)),
    )
    .await
    .expect(200);
    let wide_token = login.cookie(DEFAULT_COOKIE).value().to_owned();
    let list = items(
        &Answer::send(
            app.raw
                .get(app.url("/users/me/sessions"))
                .header(COOKIE, app.cookie_header(&wide_token))
                .header(USER_AGENT, wide),
        )
        .await
        .expect(200),
    );
    let mine = list
        .iter()
        .find(|s| s["current"] == json!(true))
        .expect("a current session");
    assert_eq!(mine["user_agent"], json!("é".repeat(256)));
}

async fn session_without_user_agent_lists_null_and_the_peer_ip(backend: Backend) {
    let app = spawn_app(backend).await;
    // The raw client sends no User-Agent.
    let token = app.user_session("alice").await;
    let list = items(&app.list_sessions(&token, &[]).await.expect(200));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["user_agent"], Value::Null);
    assert_eq!(list[0]["ip"], json!("127.0.0.1"));
    assert_eq!(list[0]["current"], json!(true));
    let row = app.session_for(&token);
    assert_eq!(row.user_agent, None);
    assert_eq!(row.ip.as_deref(), Some("127.0.0.1"));
    assert_live(&row);
}

async fn listing_needs_a_live_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/users/me/sessions").await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    let token = app.user_session("alice").await;
    app.logout_with(&token).await.expect(200);
    let answer = app.list_sessions(&token, &[]).await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
}
