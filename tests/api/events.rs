//! The audit trail: auth_events and GET /users/me/events.

use std::collections::{BTreeSet, HashMap};

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

backend_tests!(
    every_event_kind_is_recorded,
    events_endpoint_lists_only_my_events_newest_first,
    events_limit_defaults_to_50_and_takes_the_newest,
    events_limit_is_validated,
    events_need_a_session,
    writing_an_event_never_fails_the_request,
    logout_all_records_logout_for_the_current_and_session_revoked_for_the_others,
);

const UA: &str = "EventsTest/1.0";
const EVENT_KEYS: [&str; 6] = ["created_at", "id", "ip", "kind", "session_id", "user_agent"];

#[track_caller]
fn one_event<'a>(events: &'a [EventRow], kind: &str, session_id: Option<&str>) -> &'a EventRow {
    let found: Vec<&EventRow> = events
        .iter()
        .filter(|e| {
            e.kind == kind && (session_id.is_none() || e.session_id.as_deref() == session_id)
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no {kind} event (session {session_id:?}) among {events:#?}"
    );
    found[0]
}

async fn every_event_kind_is_recorded(backend: Backend) {
    let app = spawn_app_with(backend, &[("LOGIN_MAX_FAILURES", "2")]).await;
    let ua = [("user-agent", UA)];

    let alice = app
        .call(
            Method::POST,
            "/register",
            None,
            Some(&credentials("alice", PASSWORD)),
            &ua,
        )
        .await
        .expect(201)
        .json();
    let alice_id = alice["id"].as_i64().unwrap();
    let a1 = app.login_token_with("alice", PASSWORD, &ua).await;
    let a1_id = app.session_for(&a1).id;

    // Failures: a known user with a wrong password, then an unknown user until throttled.
    app.login_raw("alice", "wrong password!", &ua)
        .await
        .problem(401);
    for _ in 0..2 {
        app.login_raw("nobody", "wrong password!", &ua)
            .await
            .problem(401);
    }
    assert_login_throttled(&app.login_raw("nobody", "wrong password!", &ua).await);

    // session_revoked: a1 ends a2.
    let a2 = app.login_token_with("alice", PASSWORD, &ua).await;
    let a2_id = app.session_for(&a2).id;
    let path = format!("/users/me/sessions/{a2_id}");
    let answer = app.call(Method::DELETE, &path, Some(&a1), None, &ua).await;
    assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);

    // fingerprint_mismatch: a3 presented by another client.
    let a3 = app.login_token_with("alice", PASSWORD, &ua).await;
    let a3_id = app.session_for(&a3).id;
    app.me_with(&a3, &[("user-agent", "SomethingElse/2.0")])
        .await
        .problem(401);

    // session_expired: a4 found past its expiry.
    let a4 = app.login_token_with("alice", PASSWORD, &ua).await;
    let a4_id = app.session_for(&a4).id;
    app.set_session_time(&a4, "expires_at", utc_now() - Duration::seconds(5));
    app.me_with(&a4, &ua).await.problem(401);

    // logout
    app.call(Method::POST, "/logout", Some(&a1), None, &ua)
        .await
        .expect(200);

    // password_changed
    let a5 = app.login_token_with("alice", PASSWORD, &ua).await;
    let change = json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
    app.call(
        Method::PUT,
        "/users/me/password",
        Some(&a5),
        Some(&change),
        &ua,
    )
    .await
    .expect(200);

    // account_deleted
    let bob = app.register_ok("bob", PASSWORD).await;
    let bob_token = app.login_token("bob", PASSWORD).await;
    assert_eq!(
        app.delete_account(&bob_token, PASSWORD)
            .await
            .status
            .as_u16(),
        204
    );

    let events = app.events();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "register",
        "login",
        "login_failed",
        "login_throttled",
        "logout",
        "session_revoked",
        "password_changed",
        "fingerprint_mismatch",
        "session_expired",
        "account_deleted",
    ] {
        assert!(kinds.contains(kind), "no {kind} event among {events:#?}");
    }

    let register = one_event(&events, "register", None);
    assert_eq!(register.user_id, Some(alice_id));
    assert_eq!(register.session_id, None);
    assert_eq!(register.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(register.user_agent.as_deref(), Some(UA));
    assert_about_now(register.created_at, "register event created_at");

    let login = one_event(&events, "login", Some(&a1_id));
    assert_eq!(login.user_id, Some(alice_id));
    assert_eq!(login.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(login.user_agent.as_deref(), Some(UA));

    let failed: Vec<&EventRow> = events.iter().filter(|e| e.kind == "login_failed").collect();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    assert_eq!(
        failed
            .iter()
            .filter(|e| e.user_id == Some(alice_id))
            .count(),
        1,
        "the known user's failure names alice: {failed:#?}"
    );
    assert_eq!(
        failed.iter().filter(|e| e.user_id.is_none()).count(),
        2,
        "an unknown user's failure has user_id NULL: {failed:#?}"
    );
    assert!(failed.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));

    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "login_throttled")
            .count(),
        1
    );
    let revoked = one_event(&events, "session_revoked", Some(&a2_id));
    assert_eq!(revoked.user_id, Some(alice_id));
    let mismatch = one_event(&events, "fingerprint_mismatch", Some(&a3_id));
    assert_eq!(mismatch.user_id, Some(alice_id));
    let expired = one_event(&events, "session_expired", Some(&a4_id));
    assert_eq!(expired.user_id, Some(alice_id));
    let logout = one_event(&events, "logout", Some(&a1_id));
    assert_eq!(logout.user_id, Some(alice_id));
    let changed = one_event(&events, "password_changed", None);
    assert_eq!(changed.user_id, Some(alice_id));
    let deleted = one_event(&events, "account_deleted", None);
    assert_eq!(deleted.user_id, bob["id"].as_i64());

    // The password change ended a3 (still active until then); that is a session_revoked too.
    one_event(&events, "session_revoked", Some(&a3_id));

    // No event carries a secret.
    for e in &events {
        for value in [&e.session_id, &e.ip, &e.user_agent].into_iter().flatten() {
            for secret in [&a1, &a2, &a3, &a4, &a5] {
                assert!(!value.contains(secret.as_str()), "{e:?}");
            }
            assert!(!value.contains(PASSWORD), "{e:?}");
        }
    }
}

async fn events_endpoint_lists_only_my_events_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register_ok("alice", PASSWORD).await;
    let alice_id = alice["id"].as_i64().unwrap();
    app.login_raw("alice", "wrong password!", &[])
        .await
        .problem(401);
    let token = app
        .login_token_with("alice", PASSWORD, &[("user-agent", UA)])
        .await;
    let other = app.login_token("alice", PASSWORD).await;
    app.logout_with(&other).await.expect(200);
    let bob = app.user_session("bob").await;
    app.logout_with(&bob).await.expect(200);

    let answer = app
        .call(
            Method::GET,
            "/users/me/events",
            Some(&token),
            None,
            &[("user-agent", UA)],
        )
        .await
        .expect(200);
    let list = answer.json();
    let list = list.as_array().expect("an array");

    let rows: HashMap<i64, EventRow> = app
        .events()
        .into_iter()
        .filter(|e| e.user_id == Some(alice_id))
        .map(|e| (e.id, e))
        .collect();
    assert_eq!(list.len(), rows.len(), "all of alice's events: {list:?}");
    let mut previous: Option<chrono::NaiveDateTime> = None;
    for item in list {
        assert_eq!(keys_of(item), EVENT_KEYS, "{item}");
        let id = item["id"].as_i64().expect("integer id");
        let row = rows
            .get(&id)
            .unwrap_or_else(|| panic!("{item} is not one of alice's events"));
        assert_eq!(item["kind"], json!(row.kind));
        assert_eq!(item["session_id"], json!(row.session_id));
        assert_eq!(item["ip"], json!(row.ip));
        assert_eq!(item["user_agent"], json!(row.user_agent));
        assert_rfc3339_z(&item["created_at"], "created_at");
        assert_eq!(
            item["created_at"],
            json!(row
                .created_at
                .and_utc()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string())
        );
        if let Some(previous) = previous {
            assert!(row.created_at <= previous, "not newest first: {list:?}");
        }
        previous = Some(row.created_at);
    }
    let kinds: Vec<&str> = list.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["register", "login_failed", "login", "logout"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    assert_eq!(kinds.last(), Some(&"register"), "{kinds:?}");
    assert!(list.iter().any(|e| e["user_agent"] == json!(UA)));
    assert!(list.iter().any(|e| e["session_id"] == Value::Null));
}

async fn events_limit_defaults_to_50_and_takes_the_newest(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    let alice_id = app.session_for(&token).user_id;
    // 70 older events, inserted directly, a minute apart.
    let mut db = app.db();
    let now = utc_now();
    for i in 0..70 {
        db.execute(
            "INSERT INTO auth_events (user_id, session_id, kind, ip, user_agent, created_at) \
             VALUES (?, NULL, 'login', '192.0.2.1', NULL, ?)",
            &[Arg::Int(alice_id), time(now - Duration::minutes(100 - i))],
        );
    }
    let total = db.count(
        "SELECT COUNT(*) AS n FROM auth_events WHERE user_id = ?",
        &[Arg::Int(alice_id)],
    );
    assert!(total > 70);

    let all = app
        .list_events(&token, Some("limit=200"))
        .await
        .expect(200)
        .json();
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len() as i64, total);
    let default = app.list_events(&token, None).await.expect(200).json();
    let default = default.as_array().unwrap().clone();
    assert_eq!(default.len(), 50);
    assert_eq!(default[..], all[..50], "the default page is the 50 newest");
    // The newest are the real ones (register, login), not the inserted older ones.
    assert_ne!(default[0]["ip"], json!("192.0.2.1"));
    let five = app
        .list_events(&token, Some("limit=5"))
        .await
        .expect(200)
        .json();
    assert_eq!(five.as_array().unwrap()[..], all[..5]);
    let one = app
        .list_events(&token, Some("limit=1"))
        .await
        .expect(200)
        .json();
    assert_eq!(one.as_array().unwrap()[..], all[..1]);
}

async fn events_limit_is_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    for query in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=99999999999999999999",
    ] {
        let answer = app.list_events(&token, Some(query)).await;
        let body = answer.problem(422);
        assert_eq!(body["field"], json!("limit"), "{query}: {body}");
    }
    app.list_events(&token, Some("limit=200")).await.expect(200);
    app.list_events(&token, Some("limit=1")).await.expect(200);
}

async fn events_need_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/users/me/events").await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
    let token = app.user_session("alice").await;
    app.logout_with(&token).await.expect(200);
    let answer = app.list_events(&token, None).await;
    assert_eq!(answer.problem(401)["detail"], json!(NOT_AUTHENTICATED));
}

async fn writing_an_event_never_fails_the_request(backend: Backend) {
    // The register limit reads events; with it off, every request below only writes them.
    let app = spawn_app_with(
        backend,
        &[
            ("REGISTER_MAX_PER_IP", "0"),
            ("FRESH_SESSION_SECONDS", "600"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    app.db().execute("DROP TABLE auth_events", &[]);

    app.register_ok("bob", PASSWORD).await;
    let a = app.login_token("alice", PASSWORD).await;
    let b = app.login_token("alice", PASSWORD).await;
    let c = app.login_token("alice", PASSWORD).await;
    app.login("alice", "wrong password!").await.problem(401);
    app.login("nobody", "wrong password!").await.problem(401);
    app.me_with(&a, &[]).await.expect(200);
    app.me_with(&c, &[("user-agent", "Other/1")])
        .await
        .problem(401);
    let b_id = app.session_for(&b).id;
    assert_eq!(
        app.revoke_session(&a, &b_id, None).await.status.as_u16(),
        204
    );
    app.revoke_others(&a, None).await.expect(200);
    let changed = app
        .change_password(&a, PASSWORD, NEW_PASSWORD)
        .await
        .expect(200);
    let a = changed.cookie(DEFAULT_COOKIE).value().to_owned();
    app.me_with(&a, &[]).await.expect(200);
    app.logout_with(&a).await.expect(200);
    let d = app.login_token("alice", NEW_PASSWORD).await;
    app.logout_all(&d).await.expect(200);
    let bob = app.login_token("bob", PASSWORD).await;
    assert_eq!(
        app.delete_account(&bob, PASSWORD).await.status.as_u16(),
        204
    );
}

async fn logout_all_records_logout_for_the_current_and_session_revoked_for_the_others(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let current = app.login_token("alice", PASSWORD).await;
    let others = [
        app.login_token("alice", PASSWORD).await,
        app.login_token("alice", PASSWORD).await,
    ];
    app.logout_all(&current).await.expect(200);

    let events = app.events();
    let current_id = app.session_for(&current).id;
    let ended: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.kind == "logout" || e.kind == "session_revoked")
        .map(|e| (e.kind.as_str(), e.session_id.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(ended.len(), 3, "{ended:?}");
    assert!(
        ended.contains(&("logout", current_id.as_str())),
        "{ended:?}"
    );
    for other in &others {
        let id = app.session_for(other).id;
        assert!(
            ended.contains(&("session_revoked", id.as_str())),
            "{ended:?}"
        );
    }
}
