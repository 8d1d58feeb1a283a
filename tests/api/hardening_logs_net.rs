//! Security review, issue 10: client addresses behind a dual-stack bind (item 8).
//!
//! With `BIND_ADDR=[::]:PORT` an IPv4 peer arrives as `::ffff:a.b.c.d`; it must still match an
//! IPv4 entry of `TRUSTED_PROXIES`, and be stored as the plain IPv4 address.

use reqwest::Method;

use crate::helpers::{spawn_app_with, Backend, PASSWORD};

backend_tests!(
    dual_stack_bind_trusts_an_ipv4_proxy_and_stores_the_forwarded_client,
    dual_stack_bind_stores_an_ipv4_peer_as_ipv4,
);

const FORWARDED: &str = "203.0.113.7";

async fn dual_stack_bind_trusts_an_ipv4_proxy_and_stores_the_forwarded_client(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("BIND_ADDR", "[::]:0"), ("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    let via_proxy = [("x-forwarded-for", FORWARDED)];
    app.call(
        Method::POST,
        "/register",
        None,
        Some(&crate::helpers::credentials("alice", PASSWORD)),
        &via_proxy,
    )
    .await
    .expect(201);
    let token = app.login_token_with("alice", PASSWORD, &via_proxy).await;

    assert_eq!(app.session_for(&token).ip.as_deref(), Some(FORWARDED));
    let listed = app.list_sessions(&token, &via_proxy).await.expect(200);
    assert_eq!(listed.json()[0]["ip"], FORWARDED, "{listed:?}");
    let events = app.events();
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(event.ip.as_deref(), Some(FORWARDED), "{events:#?}");
    }
}

async fn dual_stack_bind_stores_an_ipv4_peer_as_ipv4(backend: Backend) {
    let app = spawn_app_with(backend, &[("BIND_ADDR", "[::]:0")]).await;
    let forged = [("x-forwarded-for", FORWARDED)];
    app.call(
        Method::POST,
        "/register",
        None,
        Some(&crate::helpers::credentials("bob", PASSWORD)),
        &forged,
    )
    .await
    .expect(201);
    app.login_raw("bob", "not the password at all", &forged)
        .await
        .expect(401);
    let token = app.login_token_with("bob", PASSWORD, &forged).await;

    assert_eq!(app.session_for(&token).ip.as_deref(), Some("127.0.0.1"));
    let listed = app.list_sessions(&token, &[]).await.expect(200);
    assert_eq!(listed.json()[0]["ip"], "127.0.0.1", "{listed:?}");
    for event in app.events() {
        assert_eq!(event.ip.as_deref(), Some("127.0.0.1"));
    }
    for failure in app.failures() {
        assert_eq!(failure.ip, "127.0.0.1");
    }
}
