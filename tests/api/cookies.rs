//! The session cookie's attributes, parsed with the `cookie` crate, under the
//! default and non-default configurations.

use std::time::Duration;

use cookie::SameSite;
use reqwest::header::COOKIE;

use crate::helpers::*;

backend_tests!(
    default_login_cookie_has_the_contract_attributes,
    max_age_follows_the_session_ttl,
    samesite_none_config_sends_samesite_none_and_secure,
    samesite_strict_config_is_case_insensitive,
    cookie_domain_config_sets_domain_on_every_cookie,
    httponly_false_config_omits_httponly,
    secure_false_config_omits_secure,
    host_prefixed_cookie_name_works_end_to_end,
    custom_cookie_name_ignores_the_default_name,
    clearing_cookies_mirror_the_login_cookie,
    renewed_cookie_mirrors_the_login_cookie,
    register_response_is_not_cacheable,
    logout_response_is_not_cacheable,
    refused_cookie_401_is_not_cacheable,
);

async fn login_cookie(app: &TestApp) -> cookie::Cookie<'static> {
    app.register_ok("alice", PASSWORD).await;
    let answer = app.login_raw("alice", PASSWORD, &[]).await.expect(200);
    answer.cookie(&app.cookie_name)
}

async fn default_login_cookie_has_the_contract_attributes(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.name(), "access_token");
    assert!(is_base64url_43(cookie.value()), "{cookie}");
    assert_eq!(cookie.path(), Some("/"), "{cookie}");
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(cookie.secure(), Some(true), "{cookie}");
    assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{cookie}");
    assert_eq!(cookie.domain(), None, "{cookie}");
    let max_age = max_age_secs(&cookie);
    assert!(
        (604_799..=604_800).contains(&max_age),
        "Max-Age should be the default TTL 604800, got {max_age}"
    );
}

async fn max_age_follows_the_session_ttl(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("SESSION_TTL_SECONDS", "3600"),
            ("SESSION_MAX_LIFETIME_SECONDS", "3600"),
        ],
    )
    .await;
    let cookie = login_cookie(&app).await;
    let max_age = max_age_secs(&cookie);
    assert!(
        (3599..=3600).contains(&max_age),
        "Max-Age should be 3600, got {max_age}"
    );
    let row = app.session_for(cookie.value());
    let lifetime = (row.expires_at - row.created_at).num_seconds();
    assert!((3599..=3600).contains(&lifetime), "{row:?}");
}

async fn samesite_none_config_sends_samesite_none_and_secure(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("COOKIE_SAMESITE", "none"), ("COOKIE_SECURE", "true")],
    )
    .await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.same_site(), Some(SameSite::None), "{cookie}");
    assert_eq!(cookie.secure(), Some(true), "{cookie}");
    let cleared = app.logout_with(cookie.value()).await.expect(200);
    let cleared = cleared.cookie(&app.cookie_name);
    assert_clearing_cookie(&cleared, &app.cookie_name);
    assert_same_attributes(&cleared, &cookie);
}

async fn samesite_strict_config_is_case_insensitive(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_SAMESITE", "STRICT")]).await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.same_site(), Some(SameSite::Strict), "{cookie}");
    // The cookie store still sends it (same site).
    app.login("alice", PASSWORD).await.expect(200);
    app.me().await.expect(200);
}

async fn cookie_domain_config_sets_domain_on_every_cookie(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_DOMAIN", "example.test")]).await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.domain(), Some("example.test"), "{cookie}");
    let token = cookie.value().to_owned();
    app.me_with(&token, &[]).await.expect(200);

    let refused = app.me_with("A".repeat(43).as_str(), &[]).await.expect(401);
    let refused = refused.cookie(&app.cookie_name);
    assert_clearing_cookie(&refused, &app.cookie_name);
    assert_eq!(refused.domain(), Some("example.test"), "{refused}");

    let logout = app.logout_with(&token).await.expect(200);
    let cleared = logout.cookie(&app.cookie_name);
    assert_clearing_cookie(&cleared, &app.cookie_name);
    assert_eq!(cleared.domain(), Some("example.test"), "{cleared}");
}

async fn httponly_false_config_omits_httponly(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_HTTPONLY", "false")]).await;
    let cookie = login_cookie(&app).await;
    assert_ne!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(cookie.secure(), Some(true), "{cookie}");
    let cleared = app.logout_with(cookie.value()).await.expect(200);
    let cleared = cleared.cookie(&app.cookie_name);
    assert_ne!(cleared.http_only(), Some(true), "{cleared}");
}

async fn secure_false_config_omits_secure(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_SECURE", "false")]).await;
    let cookie = login_cookie(&app).await;
    assert_ne!(cookie.secure(), Some(true), "{cookie}");
    assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{cookie}");
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    let cleared = app.logout_with(cookie.value()).await.expect(200);
    let cleared = cleared.cookie(&app.cookie_name);
    assert_ne!(cleared.secure(), Some(true), "{cleared}");
    // A plain-http cookie store round trip.
    app.login("alice", PASSWORD).await.expect(200);
    app.me().await.expect(200);
}

async fn host_prefixed_cookie_name_works_end_to_end(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_NAME", "__Host-access_token")]).await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.name(), "__Host-access_token");
    assert_eq!(cookie.secure(), Some(true), "{cookie}");
    assert_eq!(cookie.path(), Some("/"), "{cookie}");
    assert_eq!(cookie.domain(), None, "{cookie}");
    app.me_with(cookie.value(), &[]).await.expect(200);
    // The cookie store round trip.
    app.login("alice", PASSWORD).await.expect(200);
    app.me().await.expect(200);
    let logout = app.logout().await.expect(200);
    assert_clearing_cookie(&logout.cookie("__Host-access_token"), "__Host-access_token");
    app.me().await.expect(401);
}

async fn custom_cookie_name_ignores_the_default_name(backend: Backend) {
    let app = spawn_app_with(backend, &[("COOKIE_NAME", "tessera_sid")]).await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.name(), "tessera_sid");
    let token = cookie.value().to_owned();
    app.me_with(&token, &[]).await.expect(200);
    let answer = app
        .send_raw(
            reqwest::Method::GET,
            "/users/me",
            &[("cookie", format!("access_token={token}").as_str())],
        )
        .await;
    answer.problem(401);
    // Among other cookies, the right one is found.
    let header = format!("theme=dark; tessera_sid={token}; access_token=junk");
    let answer = app
        .send_raw(
            reqwest::Method::GET,
            "/users/me",
            &[(COOKIE.as_str(), header.as_str())],
        )
        .await;
    answer.expect(200);
}

async fn clearing_cookies_mirror_the_login_cookie(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("COOKIE_SAMESITE", "strict"),
            ("COOKIE_HTTPONLY", "false"),
            ("COOKIE_DOMAIN", "example.test"),
            ("COOKIE_NAME", "sid"),
        ],
    )
    .await;
    let cookie = login_cookie(&app).await;
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.domain(), Some("example.test"));

    let refused = app.me_with("not-a-session", &[]).await.expect(401);
    let refused = refused.cookie("sid");
    assert_clearing_cookie(&refused, "sid");
    assert_same_attributes(&refused, &cookie);

    let logout = app.logout_with(cookie.value()).await.expect(200);
    let cleared = logout.cookie("sid");
    assert_clearing_cookie(&cleared, "sid");
    assert_same_attributes(&cleared, &cookie);

    // The logged-out token, refused, is cleared the same way.
    let dead = app.me_with(cookie.value(), &[]).await.expect(401);
    let dead = dead.cookie("sid");
    assert_clearing_cookie(&dead, "sid");
    assert_same_attributes(&dead, &cookie);
}

async fn renewed_cookie_mirrors_the_login_cookie(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            ("SESSION_TTL_SECONDS", "4"),
            ("COOKIE_SAMESITE", "none"),
            ("COOKIE_DOMAIN", "example.test"),
        ],
    )
    .await;
    let cookie = login_cookie(&app).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let answer = app.me_with(cookie.value(), &[]).await.expect(200);
    let renewed = answer.cookie(&app.cookie_name);
    assert_eq!(renewed.value(), cookie.value());
    assert_same_attributes(&renewed, &cookie);
    let max_age = max_age_secs(&renewed);
    assert!((3..=4).contains(&max_age), "renewed Max-Age {max_age}");
}

async fn register_response_is_not_cacheable(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.register("alice", PASSWORD).await.expect(201);
    answer.assert_no_store();
}

async fn logout_response_is_not_cacheable(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    app.logout_with(&token).await.expect(200).assert_no_store();
}

async fn refused_cookie_401_is_not_cacheable(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.me_with(&"A".repeat(43), &[]).await.expect(401);
    assert!(answer.has_cookie(DEFAULT_COOKIE));
    answer.assert_no_store();
}

/// Booleans accept true/false/1/0/yes/no/on/off in any case.
#[tokio::test(flavor = "multi_thread")]
async fn boolean_spellings_are_understood() {
    for (value, expected) in [
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("On", true),
        ("False", false),
        ("0", false),
        ("NO", false),
        ("off", false),
    ] {
        let app = spawn_app_with(Backend::Sqlite, &[("COOKIE_HTTPONLY", value)]).await;
        let cookie = login_cookie(&app).await;
        assert_eq!(
            cookie.http_only().unwrap_or(false),
            expected,
            "COOKIE_HTTPONLY={value}: {cookie}"
        );
    }
}
