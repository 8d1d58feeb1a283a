//! What is stored: the token's hash only, well-formed rows, concurrency, and
//! (PostgreSQL only) a database outage.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

backend_tests!(
    token_is_not_stored_only_its_sha256,
    session_row_is_well_formed,
    password_is_stored_as_an_argon2id_hash,
    username_key_is_lowercase_and_spelling_is_kept,
    fifty_concurrent_logins_yield_fifty_distinct_working_sessions,
);

postgres_tests!(database_outage_is_503_and_the_service_recovers);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn token_is_not_stored_only_its_sha256(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("alice").await;
    assert!(is_base64url_43(&token), "token {token:?}");

    let sessions = app.sessions();
    assert_eq!(sessions.len(), 1);
    let row = &sessions[0];
    assert_eq!(row.token_hash, sha256_hex(&token));
    assert!(is_lower_hex_64(&row.token_hash), "{row:?}");
    for value in [
        &row.id,
        &row.token_hash,
        &row.status,
        &row.client_fingerprint,
    ] {
        assert!(
            !value.contains(&token),
            "token found in a session column: {row:?}"
        );
    }
    for user in app.users() {
        assert!(!user.password_hash.contains(&token));
        assert!(!user.username.contains(&token));
    }

    // A copy of the whole SQLite database (file, WAL, shared memory) has no token in it.
    if let TestDb::Sqlite { path, .. } = &app.db {
        let dir = path.parent().expect("db file has a directory");
        let mut files = 0;
        for entry in std::fs::read_dir(dir).expect("listing the db dir") {
            let entry = entry.expect("dir entry");
            let bytes = std::fs::read(entry.path()).expect("reading a db file");
            files += 1;
            assert!(
                !contains(&bytes, token.as_bytes()),
                "the token is in {}",
                entry.path().display()
            );
            assert!(
                !contains(&bytes, PASSWORD.as_bytes()),
                "the password is in {}",
                entry.path().display()
            );
        }
        assert!(files >= 1);
    }
    // The hash is not a credential.
    app.me_with(&row.token_hash, &[]).await.problem(401);
}

async fn session_row_is_well_formed(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.register_ok("alice", PASSWORD).await;
    let token = app.login_token("alice", PASSWORD).await;
    let row = app.session_for(&token);
    let id = uuid::Uuid::parse_str(&row.id)
        .unwrap_or_else(|e| panic!("session id {:?} is not a UUID: {e}", row.id));
    assert_eq!(id.to_string(), row.id.to_lowercase());
    assert_eq!(Value::from(row.user_id), user["id"]);
    assert_eq!(row.status, "active");
    assert!(is_lower_hex_64(&row.client_fingerprint), "{row:?}");
    // Times are naive UTC.
    let now = chrono::Utc::now().naive_utc();
    let skew = (now - row.created_at).num_seconds().abs();
    assert!(
        skew < 120,
        "created_at {} is not UTC now {now}",
        row.created_at
    );
    let ttl = (row.expires_at - row.created_at).num_seconds();
    assert!(
        (604_799..=604_800).contains(&ttl),
        "expires_at - created_at should be the default TTL, got {ttl} s"
    );
    if let Some(last_seen) = row.last_seen_at {
        assert!((last_seen - row.created_at).num_seconds().abs() < 120);
    }
}

async fn password_is_stored_as_an_argon2id_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("alice", PASSWORD).await;
    app.register_ok("bob", PASSWORD).await;
    let users = app.users();
    assert_eq!(users.len(), 2);
    for user in &users {
        assert!(
            user.password_hash.starts_with("$argon2id$"),
            "not an argon2id PHC string: {:?}",
            user.password_hash
        );
        assert!(
            user.password_hash.contains("m=19456,t=2,p=1"),
            "not OWASP default params: {:?}",
            user.password_hash
        );
        assert!(!user.password_hash.contains(PASSWORD));
    }
    assert_ne!(
        users[0].password_hash, users[1].password_hash,
        "hashes must be salted"
    );
}

async fn username_key_is_lowercase_and_spelling_is_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let json_user = app.register_ok("Alice.Smith", PASSWORD).await;
    let users = app.users();
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(user.username, "Alice.Smith");
    assert_eq!(user.username_key, "alice.smith");
    assert_eq!(json!(user.id), json_user["id"]);
    let created = user.created_at.and_utc().format("%Y-%m-%dT%H:%M:%SZ");
    assert_eq!(json!(created.to_string()), json_user["created_at"]);
}

async fn fifty_concurrent_logins_yield_fifty_distinct_working_sessions(backend: Backend) {
    // 50 sessions of one user: beyond the default MAX_SESSIONS_PER_USER (20); 0 = no limit.
    let app = spawn_app_with(backend, &[("MAX_SESSIONS_PER_USER", "0")]).await;
    let user = app.register_ok("alice", PASSWORD).await;
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let client = app.raw.clone();
        let url = app.url("/login");
        logins.spawn(async move {
            let response = client
                .post(url)
                .json(&credentials("alice", PASSWORD))
                .send()
                .await
                .expect("login request failed");
            Answer::read(response).await
        });
    }
    let mut tokens = Vec::new();
    while let Some(answer) = logins.join_next().await {
        let answer = answer.expect("login task panicked").expect(200);
        tokens.push(answer.cookie(DEFAULT_COOKIE).value().to_owned());
    }
    let distinct: HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 50, "tokens must be distinct");

    let mut checks = tokio::task::JoinSet::new();
    for token in tokens.clone() {
        let client = app.raw.clone();
        let url = app.url("/users/me");
        let cookie = app.cookie_header(&token);
        checks.spawn(async move {
            let response = client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .expect("me request failed");
            Answer::read(response).await
        });
    }
    while let Some(answer) = checks.join_next().await {
        let me = answer.expect("me task panicked").expect(200).json();
        assert_eq!(me, user);
    }

    let sessions = app.sessions();
    assert_eq!(sessions.len(), 50);
    assert!(sessions.iter().all(|s| s.status == "active"));
    let stored: HashSet<String> = sessions.iter().map(|s| s.token_hash.clone()).collect();
    let expected: HashSet<String> = tokens.iter().map(|t| sha256_hex(t)).collect();
    assert_eq!(stored, expected);
    let ids: HashSet<&String> = sessions.iter().map(|s| &s.id).collect();
    assert_eq!(ids.len(), 50);
}

/// A request that must answer (whatever the status) within a bounded time.
async fn bounded(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Answer {
    let mut request = app
        .raw
        .request(method.clone(), app.url(path))
        .timeout(Duration::from_secs(12));
    if let Some(token) = token {
        request = request.header("cookie", app.cookie_header(token));
    }
    if method == Method::POST {
        request = request.json(&credentials("alice", PASSWORD));
    }
    let started = Instant::now();
    let response = request.send().await.unwrap_or_else(|e| {
        panic!(
            "{method} {path} did not answer during the outage ({:.1} s): {e}",
            started.elapsed().as_secs_f64()
        )
    });
    Answer::read(response).await
}

async fn database_outage_is_503_and_the_service_recovers(backend: Backend) {
    let app = spawn_app_with(backend, &[("DB_CONNECT_TIMEOUT_SECONDS", "1")]).await;
    let token = app.user_session("alice").await;
    app.me_with(&token, &[]).await.expect(200);

    let name = app.db.pg_name().to_owned();
    let mut admin = app.db.pg_admin();
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .expect("disallowing connections");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .expect("terminating the app's connections");

    for _ in 0..2 {
        let health = bounded(&app, Method::GET, "/health", None).await;
        assert_eq!(
            health.status.as_u16(),
            503,
            "health during the outage: {}",
            health.text
        );
        assert!(health
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json"));
        let body = health.json();
        assert_eq!(body["status"], json!("error"), "{body}");
        assert_eq!(body["database"], json!("unavailable"), "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );

        bounded(&app, Method::GET, "/users/me", Some(&token))
            .await
            .problem(503);
    }
    bounded(&app, Method::POST, "/login", None)
        .await
        .problem(503);
    bounded(&app, Method::POST, "/register", None)
        .await
        .problem(503);

    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .expect("allowing connections again");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = bounded(&app, Method::GET, "/health", None).await;
        if health.status.as_u16() == 200 {
            assert_eq!(health.json(), json!({ "status": "ok", "database": "ok" }));
            break;
        }
        assert_eq!(health.status.as_u16(), 503, "{}", health.text);
        assert!(
            Instant::now() < deadline,
            "the service did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The session made before the outage still works.
    let me = app.me_with(&token, &[]).await.expect(200).json();
    assert_eq!(me["username"], json!("alice"));
    app.login_token("alice", PASSWORD).await;
}
