//! Issue 10, items 9 and 11: what the README promises about caching holds for every response
//! that carries a cookie, and a server whose clock disagrees with the database's still hears of
//! every revocation.

use chrono::Duration;
use reqwest::Method;

use crate::helpers::*;

backend_tests!(every_response_that_sets_a_cookie_is_no_store);

async fn every_response_that_sets_a_cookie_is_no_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let current = app.user_session("alice").await;
    let other = app.login_token("alice", PASSWORD).await;
    let other_id = app.session_for(&other).id;

    // Revoking another session while the current one is renewed: a 204 with a cookie.
    app.set_session_time(&current, "expires_at", utc_now() + Duration::seconds(60));
    let path = format!("/users/me/sessions/{other_id}");
    let answer = app
        .call(Method::DELETE, &path, Some(&current), None, &[])
        .await
        .expect(204);
    assert!(answer.has_cookie("access_token"), "{:?}", answer.headers);
    answer.assert_no_store();

    // Ending the current session: a 204 clearing the cookie.
    let current_id = app.session_for(&current).id;
    let path = format!("/users/me/sessions/{current_id}");
    let answer = app
        .call(Method::DELETE, &path, Some(&current), None, &[])
        .await
        .expect(204);
    assert_clearing_cookie(&answer.cookie("access_token"), "access_token");
    answer.assert_no_store();

    // Deleting the account: a 204 clearing the cookie.
    let token = app.login_token("alice", PASSWORD).await;
    let answer = app.delete_account(&token, PASSWORD).await.expect(204);
    assert_clearing_cookie(&answer.cookie("access_token"), "access_token");
    answer.assert_no_store();
}

backend_tests!(a_server_whose_clock_is_off_by_a_minute_still_hears_revocations);

/// A `tessera` process of its own (the clock offset is per process), on `db`.
struct SkewedServer {
    _child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl SkewedServer {
    async fn start(db: &TestDb, offset_seconds: i64, overrides: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db.app_url())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKERS", "1")
            .env("DB_POOL_SIZE", "2")
            .env("ARGON2_MAX_CONCURRENCY", "1")
            .env("METRICS_ENABLED", "false")
            .env("PURGE_INTERVAL_SECONDS", "0")
            .env(
                "TESSERA_TEST_CLOCK_OFFSET_SECONDS",
                offset_seconds.to_string(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for (name, value) in overrides {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawning tessera");
        let url = format!("http://127.0.0.1:{port}");
        let client = http_client(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("polling tessera") {
                panic!("tessera exited ({status}) instead of serving");
            }
            let health = client.get(format!("{url}/health")).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "tessera never served");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Self {
            _child: child,
            url,
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Answer {
        Answer::send(
            http_client(false)
                .post(format!("{}{path}", self.url))
                .json(body),
        )
        .await
    }

    async fn me(&self, token: &str) -> Answer {
        Answer::send(
            http_client(false)
                .get(format!("{}/users/me", self.url))
                .header("Cookie", format!("access_token={token}")),
        )
        .await
    }
}

async fn a_server_whose_clock_is_off_by_a_minute_still_hears_revocations(backend: Backend) {
    let db = TestDb::create(backend);
    for (n, offset) in [-60_i64, 60].into_iter().enumerate() {
        // Sessions live 40 s by the server's clock: with its clock a minute behind, every
        // session it issues is already past `expires_at` by the database's clock.
        let server = SkewedServer::start(&db, offset, &[("SESSION_TTL_SECONDS", "40")]).await;
        let name = format!("user{n}");
        server
            .post("/register", &credentials(&name, PASSWORD))
            .await
            .expect(201);
        let login = server
            .post("/login", &credentials(&name, PASSWORD))
            .await
            .expect(200);
        let token = login.cookie("access_token").value().to_owned();
        let row = db
            .connect()
            .sessions()
            .into_iter()
            .find(|row| row.token_hash == sha256_hex(&token))
            .expect("the session row");
        let skew = (row.created_at - utc_now()).num_seconds();
        assert!(
            (offset - 5..=offset + 5).contains(&skew),
            "the server's clock is not shifted by {offset} s (created_at {})",
            row.created_at
        );
        // Verified once from the database, then answered from the cache.
        server.me(&token).await.expect(200);
        server.me(&token).await.expect(200);

        // Revoked behind the server's back, as another instance or an operator would.
        let changed = db.connect().execute(
            "UPDATE sessions SET status = 'inactive', revoked_reason = 'logout' WHERE token_hash = ?",
            &[text(&sha256_hex(&token))],
        );
        assert_eq!(changed, 1);
        let started = std::time::Instant::now();
        loop {
            let answer = server.me(&token).await;
            if answer.status == 401 {
                break;
            }
            answer.expect(200);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "clock offset {offset} s: a revoked session was still accepted after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(server);
    }
}
