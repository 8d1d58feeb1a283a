//! GET /users/me and the session extractor: refused tokens, fingerprints,
//! expiry, sliding renewal and the max lifetime cap.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, ACCEPT_LANGUAGE, COOKIE, USER_AGENT};
use serde_json::json;

use crate::helpers::*;

backend_tests!(
    me_returns_the_user_with_no_store,
    me_without_cookie_is_401,
    me_with_tampered_token_is_401_and_clears_the_cookie,
    me_with_unknown_token_is_401_and_clears_the_cookie,
    me_with_empty_or_malformed_cookie_is_401_not_500,
    me_with_different_user_agent_is_401_and_clears_the_cookie,
    me_with_different_accept_language_is_401_by_default,
    me_with_missing_fingerprint_headers_uses_unknown,
    fingerprint_off_accepts_a_changed_user_agent,
    fingerprint_user_agent_ignores_accept_language,
    stored_fingerprint_follows_the_formula,
    non_utf8_headers_are_not_a_500,
    expired_session_is_401_and_marked_expired,
    session_is_renewed_when_less_than_half_its_ttl_is_left,
    session_is_not_renewed_early_in_its_ttl,
    renewal_never_passes_the_max_lifetime,
);

const UA: &str = "TesseraTestBrowser/1.0 (X11; Linux x86_64)";
const AL: &str = "en-GB,en;q=0.8";

async fn me_returns_the_user_with_no_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let registered = app.register_ok("alice", PASSWORD).await;
    app.login("alice", PASSWORD).await.expect(200);
    let answer = app.me().await.expect(200);
    assert_eq!(answer.json(), registered);
    assert_user_json(&answer.json(), "alice");
    answer.assert_no_store();

    // The other user sees themself.
    app.register_ok("bob", PASSWORD).await;
    let bob = app.login_token("bob", PASSWORD).await;
    let me = app.me_with(&bob, &[]).await.expect(200).json();
    assert_eq!(me["username"], json!("bob"));
}

async fn me_without_cookie_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = app.me().await.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
}

fn tampered(token: &str) -> Vec<String> {
    let mut flipped_last = token.to_owned();
    let last = flipped_last.pop().unwrap();
    flipped_last.push(if last == 'A' { 'B' } else { 'A' });
    let mut flipped_first = token.to_owned();
    let first = flipped_first.remove(0);
    flipped_first.insert(0, if first == 'z' { 'y' } else { 'z' });
    vec![
        flipped_last,
        flipped_first,
        format!("{token}A"),
        token[..token.len() - 1].to_owned(),
        token.to_uppercase(),
        sha256_hex(token),
    ]
}

async fn me_with_tampered_token_is_401_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    for bad in tampered(&token) {
        if bad == token {
            continue;
        }
        let answer = app.me_with(&bad, &[]).await;
        let body = answer.problem(401);
        assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
        assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    }
    // The stored hash itself is not a token.
    let hash = app.session_for(&token).token_hash;
    app.me_with(&hash, &[]).await.problem(401);
    // The genuine token is unaffected.
    app.me_with(&token, &[]).await.expect(200);
}

async fn me_with_unknown_token_is_401_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user_session("alice").await;
    for unknown in [
        "A".repeat(43),
        "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9".to_owned(),
        "short".to_owned(),
    ] {
        let answer = app.me_with(&unknown, &[]).await;
        let body = answer.problem(401);
        assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
        assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    }
}

async fn me_with_empty_or_malformed_cookie_is_401_not_500(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user_session("alice").await;
    for header in [
        "access_token=".to_owned(),
        "access_token".to_owned(),
        ";;;".to_owned(),
        "access_token=\"quoted\"".to_owned(),
        "access_token=a; access_token=b".to_owned(),
        format!("access_token={}", "x".repeat(4000)),
        "access_token=%00%ff".to_owned(),
    ] {
        let answer = app
            .send_raw(
                reqwest::Method::GET,
                "/users/me",
                &[("cookie", header.as_str())],
            )
            .await;
        let body = answer.problem(401);
        assert_eq!(
            body["detail"],
            json!(NOT_AUTHENTICATED),
            "cookie {header:.40}"
        );
    }
    let request = app.raw.get(app.url("/users/me")).header(
        COOKIE,
        HeaderValue::from_bytes(b"access_token=\xe9\xff").unwrap(),
    );
    let answer = Answer::send(request).await;
    answer.problem(401);
}

async fn me_with_different_user_agent_is_401_and_clears_the_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let browser = [("user-agent", UA), ("accept-language", AL)];
    let token = app.login_token_with("alice", PASSWORD, &browser).await;
    app.me_with(&token, &browser).await.expect(200);

    let answer = app
        .me_with(
            &token,
            &[("user-agent", "curl/8.5.0"), ("accept-language", AL)],
        )
        .await;
    let body = answer.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    // No User-Agent at all is a different fingerprint too.
    app.me_with(&token, &[("accept-language", AL)])
        .await
        .problem(401);
}

async fn me_with_different_accept_language_is_401_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let browser = [("user-agent", UA), ("accept-language", AL)];
    let token = app.login_token_with("alice", PASSWORD, &browser).await;
    app.me_with(&token, &browser).await.expect(200);

    let answer = app
        .me_with(&token, &[("user-agent", UA), ("accept-language", "fr-FR")])
        .await;
    answer.problem(401);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    app.me_with(&token, &[("user-agent", UA)])
        .await
        .problem(401);
}

async fn me_with_missing_fingerprint_headers_uses_unknown(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    // No User-Agent and no Accept-Language: both count as "unknown".
    let token = app.login_token("alice", PASSWORD).await;
    app.me_with(&token, &[]).await.expect(200);
    assert_eq!(
        app.session_for(&token).client_fingerprint,
        sha256_hex("unknown-unknown")
    );
    // Sending the literal "unknown" yields the same fingerprint, as the formula says.
    app.me_with(
        &token,
        &[("user-agent", "unknown"), ("accept-language", "unknown")],
    )
    .await
    .expect(200);
    app.me_with(&token, &[("user-agent", UA)])
        .await
        .problem(401);
}

async fn fingerprint_off_accepts_a_changed_user_agent(backend: Backend) {
    let app = spawn_app_with(backend, &[("FINGERPRINT", "off")]).await;
    app.register_ok("alice", PASSWORD).await;
    let browser = [("user-agent", UA), ("accept-language", AL)];
    let token = app.login_token_with("alice", PASSWORD, &browser).await;
    app.me_with(
        &token,
        &[("user-agent", "curl/8.5.0"), ("accept-language", "de")],
    )
    .await
    .expect(200);
    app.me_with(&token, &[]).await.expect(200);
}

async fn fingerprint_user_agent_ignores_accept_language(backend: Backend) {
    let app = spawn_app_with(backend, &[("FINGERPRINT", "user-agent")]).await;
    app.register_ok("alice", PASSWORD).await;
    let token = app
        .login_token_with(
            "alice",
            PASSWORD,
            &[("user-agent", UA), ("accept-language", AL)],
        )
        .await;
    app.me_with(&token, &[("user-agent", UA), ("accept-language", "fr-FR")])
        .await
        .expect(200);
    app.me_with(&token, &[("user-agent", UA)]).await.expect(200);
    // The User-Agent is still checked.
    let answer = app
        .me_with(
            &token,
            &[("user-agent", "curl/8.5.0"), ("accept-language", AL)],
        )
        .await;
    answer.problem(401);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    assert_eq!(app.session_for(&token).client_fingerprint, sha256_hex(UA));
}

async fn stored_fingerprint_follows_the_formula(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let both = app
        .login_token_with(
            "alice",
            PASSWORD,
            &[("user-agent", UA), ("accept-language", AL)],
        )
        .await;
    assert_eq!(
        app.session_for(&both).client_fingerprint,
        sha256_hex(&format!("{UA}-{AL}"))
    );
    let ua_only = app
        .login_token_with("alice", PASSWORD, &[("user-agent", UA)])
        .await;
    assert_eq!(
        app.session_for(&ua_only).client_fingerprint,
        sha256_hex(&format!("{UA}-unknown"))
    );
    let al_only = app
        .login_token_with("alice", PASSWORD, &[("accept-language", AL)])
        .await;
    assert_eq!(
        app.session_for(&al_only).client_fingerprint,
        sha256_hex(&format!("unknown-{AL}"))
    );

    let app = spawn_app_with(backend, &[("FINGERPRINT", "user-agent")]).await;
    app.register_ok("alice", PASSWORD).await;
    let none = app.login_token("alice", PASSWORD).await;
    assert_eq!(
        app.session_for(&none).client_fingerprint,
        sha256_hex("unknown")
    );
}

async fn non_utf8_headers_are_not_a_500(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    let odd_agent = HeaderValue::from_bytes(b"Mozilla/5.0 (\xe9t\xe9)").unwrap();
    let login = Answer::send(
        app.raw
            .post(app.url("/login"))
            .header(USER_AGENT, odd_agent.clone())
            .header(
                ACCEPT_LANGUAGE,
                HeaderValue::from_bytes(b"fr-\xff").unwrap(),
            )
            .json(&credentials("alice", PASSWORD)),
    )
    .await
    .expect(200);
    let token = login.cookie(DEFAULT_COOKIE).value().to_owned();
    // The same client, sending the same bytes, is recognised.
    Answer::send(
        app.raw
            .get(app.url("/users/me"))
            .header(COOKIE, app.cookie_header(&token))
            .header(USER_AGENT, odd_agent)
            .header(
                ACCEPT_LANGUAGE,
                HeaderValue::from_bytes(b"fr-\xff").unwrap(),
            ),
    )
    .await
    .expect(200);
    // And a different client is not.
    app.me_with(&token, &[("user-agent", UA)])
        .await
        .problem(401);
}

async fn expired_session_is_401_and_marked_expired(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_TTL_SECONDS", "2")]).await;
    let token = app.user_session("alice").await;
    let row = app.session_for(&token);
    let lifetime = row.expires_at - row.created_at;
    assert!(
        (1900..=2100).contains(&lifetime.num_milliseconds()),
        "expires_at - created_at should be the TTL (2 s), got {lifetime}"
    );

    tokio::time::sleep(Duration::from_millis(3000)).await;

    // The token is sent explicitly: a cookie store would have dropped it by now.
    let answer = app.me_with(&token, &[]).await;
    let body = answer.problem(401);
    assert_eq!(body["detail"], json!(NOT_AUTHENTICATED));
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    assert_eq!(app.session_for(&token).status, "expired");
    // And it stays refused.
    app.me_with(&token, &[]).await.problem(401);
    assert_eq!(app.session_for(&token).status, "expired");
    // Logging out with it is still 200 and clears it.
    let logout = app.logout_with(&token).await.expect(200);
    assert_clearing_cookie(&logout.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    // A new login works.
    let fresh = app.login_token("alice", PASSWORD).await;
    app.me_with(&fresh, &[]).await.expect(200);
}

async fn session_is_renewed_when_less_than_half_its_ttl_is_left(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_TTL_SECONDS", "5")]).await;
    let token = app.user_session("alice").await;
    let before = app.session_for(&token);

    // Less than half of the 5 s TTL is left after 3 s.
    tokio::time::sleep(Duration::from_millis(3000)).await;

    let answer = app.me_with(&token, &[]).await.expect(200);
    let cookie = answer.cookie(DEFAULT_COOKIE);
    assert_eq!(cookie.value(), token, "renewal re-sends the same token");
    let max_age = max_age_secs(&cookie);
    assert!(
        (4..=5).contains(&max_age),
        "renewed Max-Age should be close to the 5 s TTL, got {max_age}"
    );
    answer.assert_no_store();
    let after = app.session_for(&token);
    let moved = after.expires_at - before.expires_at;
    assert!(
        moved.num_milliseconds() >= 2500,
        "expires_at should move by about 3 s, moved {moved} ({} -> {})",
        before.expires_at,
        after.expires_at
    );
    assert_eq!(after.status, "active");
    assert_eq!(after.created_at, before.created_at);

    // Just renewed: the next request does not re-send it.
    let answer = app.me_with(&token, &[]).await.expect(200);
    assert!(
        !answer.has_cookie(DEFAULT_COOKIE),
        "no renewal right after one: {:?}",
        answer.set_cookies()
    );
}

async fn session_is_not_renewed_early_in_its_ttl(backend: Backend) {
    let app = spawn_app_with(backend, &[("SESSION_TTL_SECONDS", "60")]).await;
    let token = app.user_session("alice").await;
    let before = app.session_for(&token);
    for _ in 0..3 {
        let answer = app.me_with(&token, &[]).await.expect(200);
        assert!(
            !answer.has_cookie(DEFAULT_COOKIE),
            "the cookie must not be re-sent early in the TTL: {:?}",
            answer.set_cookies()
        );
    }
    // Ordinary verification never writes: last_seen_at at most once a minute.
    let after = app.session_for(&token);
    assert_eq!(after.expires_at, before.expires_at);
    assert_eq!(after.last_seen_at, before.last_seen_at);
    assert_eq!(after.status, "active");
}

async fn renewal_never_passes_the_max_lifetime(backend: Backend) {
    const TTL: f64 = 2.0;
    const MAX: f64 = 3.0;
    let app = spawn_app_with(
        backend,
        &[
            ("SESSION_TTL_SECONDS", "2"),
            ("SESSION_MAX_LIFETIME_SECONDS", "3"),
        ],
    )
    .await;
    app.register_ok("alice", PASSWORD).await;
    let login_sent = Instant::now();
    let token = app.login_token("alice", PASSWORD).await;
    // Taken after the login answered: the session was created before this.
    let t0 = Instant::now();

    let mut renewals = 0;
    let mut last_ok = 0.0_f64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let sent = t0.elapsed().as_secs_f64();
        if sent > MAX + 0.3 {
            break;
        }
        let answer = app.me_with(&token, &[]).await;
        match answer.status.as_u16() {
            200 => {
                last_ok = last_ok.max(sent);
                if answer.has_cookie(DEFAULT_COOKIE) {
                    renewals += 1;
                    let cookie = answer.cookie(DEFAULT_COOKIE);
                    assert_eq!(cookie.value(), token);
                    let max_age = max_age_secs(&cookie);
                    // What is left of the max lifetime is at most MAX - sent.
                    let left = (MAX - sent).ceil() as i64;
                    assert!(
                        max_age <= left,
                        "re-sent Max-Age {max_age} exceeds what is left of the max lifetime \
                         ({left} s at {sent:.2} s)"
                    );
                    assert!(max_age <= TTL as i64, "Max-Age {max_age} exceeds the TTL");
                }
            }
            401 => {
                let since_login_sent = login_sent.elapsed().as_secs_f64();
                assert!(
                    since_login_sent >= MAX - 0.1,
                    "refused after {since_login_sent:.2} s although used continuously within \
                     the max lifetime: {}",
                    answer.text
                );
                break;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(renewals >= 1, "the session was never renewed");
    assert!(
        last_ok > TTL,
        "continuous use should keep the session past its first TTL (last 200 at {last_ok:.2} s)"
    );

    let wait = Duration::from_secs_f64(MAX + 0.3).saturating_sub(t0.elapsed());
    tokio::time::sleep(wait).await;
    let answer = app.me_with(&token, &[]).await;
    answer.problem(401);
    assert_clearing_cookie(&answer.cookie(DEFAULT_COOKIE), DEFAULT_COOKIE);
    let row = app.session_for(&token);
    assert_eq!(row.status, "expired");
    let span = row.expires_at - row.created_at;
    assert!(
        span.num_milliseconds() <= 3001,
        "expires_at went past created_at + max lifetime: {span}"
    );
}
