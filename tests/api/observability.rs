//! Operating the real binary: graceful shutdown on SIGTERM under load, logs that never carry a
//! secret, `/metrics`, `--version`, and the operator commands.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{http_client, sha256_hex, PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A tessera process on a free loopback port with a fresh SQLite file.
struct Process {
    child: Option<Child>,
    base: String,
    dir: TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", dir.join("tessera.db"))
        .env("ARGON2_MAX_CONCURRENCY", "1")
        // Many servers at once: not the default fixed metrics port.
        .env("METRICS_BIND_ADDR", "127.0.0.1:0")
        .current_dir(dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

impl Process {
    async fn start(vars: &[(&str, &str)]) -> Process {
        let dir = TempDir::new().expect("temp dir");
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut all = vec![("BIND_ADDR", bind.as_str())];
        all.extend_from_slice(vars);
        let child = command(dir.path(), &all)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log file"))
            .spawn()
            .expect("tessera starts");
        let process = Process {
            child: Some(child),
            base: format!("http://{bind}"),
            dir,
        };
        let client = http_client(false);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if client
                .get(format!("{}/health", process.base))
                .send()
                .await
                .is_ok()
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tessera did not answer /health: {}", process.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to end by itself; its exit code.
    async fn wait(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("tessera did not exit within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn register(client: &reqwest::Client, base: &str, name: &str) {
    let response = client
        .post(format!("{base}/register"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
}

async fn login(client: &reqwest::Client, base: &str, name: &str) -> reqwest::Response {
    client
        .post(format!("{base}/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("login answered")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish_then_exits_cleanly() {
    let mut server = Process::start(&[]).await;
    let client = http_client(false);
    register(&client, &server.base, "alice").await;

    // One argon2 at a time: twelve logins queue up and are still in flight at the signal.
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let (client, base) = (http_client(false), server.base.clone());
            tokio::spawn(async move { login(&client, &base, "alice").await.status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    server.signal("TERM");

    for handle in logins {
        assert_eq!(
            handle.await.expect("task"),
            200,
            "an in-flight login was cut off"
        );
    }
    assert_eq!(server.wait(Duration::from_secs(40)).await, Some(0));
    assert!(server.log().contains("SIGTERM"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_carries_a_password_token_or_hash() {
    for format in ["text", "json"] {
        let mut server = Process::start(&[("RUST_LOG", "debug"), ("LOG_FORMAT", format)]).await;
        let client = http_client(false);
        register(&client, &server.base, "alice").await;
        let response = login(&client, &server.base, "alice").await;
        assert_eq!(response.status(), 200);
        let token = response
            .cookies()
            .find(|c| c.name() == "access_token")
            .map(|c| c.value().to_owned())
            .expect("a session cookie");
        let cookie = format!("access_token={token}");
        let me = client
            .get(format!("{}/users/me", server.base))
            .header("Cookie", &cookie)
            .send()
            .await;
        assert_eq!(me.expect("me").status(), 200);
        let wrong = client
            .post(format!("{}/login", server.base))
            .json(&json!({"username": "alice", "password": "not-the-password-123"}))
            .send()
            .await
            .expect("login");
        assert_eq!(wrong.status(), 401);
        let change = client
            .put(format!("{}/users/me/password", server.base))
            .header("Cookie", &cookie)
            .json(&json!({"current_password": PASSWORD, "new_password": "brand new secret 42"}))
            .send()
            .await
            .expect("password change");
        assert_eq!(change.status(), 200);
        let logout = client
            .post(format!("{}/logout", server.base))
            .header("Cookie", &cookie)
            .send()
            .await;
        assert_eq!(logout.expect("logout").status(), 200);
        // Secrets where the server does not expect them: in the query string, and in headers it
        // does not read; plus a client address forged by a peer that is no trusted proxy.
        let in_query = client
            .get(format!(
                "{}/users/me?access_token=Qu3ryTokenSecret",
                server.base
            ))
            .send()
            .await;
        assert_eq!(in_query.expect("me").status(), 401);
        let not_found = client
            .get(format!(
                "{}/nowhere?password=Qu3ryPasswordSecret&x=1",
                server.base
            ))
            .send()
            .await;
        assert_eq!(not_found.expect("404").status(), 404);
        let in_headers = client
            .get(format!("{}/users/me", server.base))
            .header("X-Api-Key", "H3aderApiKeySecret")
            .header("Authorization", "Bearer H3aderBearerSecret")
            .header("Proxy-Authorization", "Basic H3aderProxySecret")
            .header("X-Forwarded-For", FORGED_IP)
            .header("Forwarded", "for=198.51.100.67;host=forged-host.example")
            .header("X-Forwarded-Host", "forged-host.example")
            .send()
            .await;
        assert_eq!(in_headers.expect("me").status(), 401);

        server.signal("TERM");
        server.wait(Duration::from_secs(40)).await;
        let log = server.log();
        assert!(
            log.contains("/login"),
            "the {format} log has request lines: {log}"
        );
        for secret in [
            PASSWORD,
            "not-the-password-123",
            "brand new secret 42",
            &token,
            &sha256_hex(&token),
            "$argon2id$",
            "Qu3ryTokenSecret",
            "Qu3ryPasswordSecret",
            "access_token=",
            "password=",
            "H3aderApiKeySecret",
            "H3aderBearerSecret",
            "H3aderProxySecret",
        ] {
            assert!(
                !log.contains(secret),
                "the {format} log contains a secret ({secret:.12}...): {log}"
            );
        }
        for forged in [FORGED_IP, "198.51.100.67", "forged-host.example"] {
            assert!(
                !log.contains(forged),
                "the {format} log believes a forged client address: {log}"
            );
        }
        let lines: Vec<&str> = log.lines().filter(|l| is_request_line(l)).collect();
        for (path, status) in [("/users/me", "401"), ("/nowhere", "404"), ("/login", "401")] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(path) && l.contains(status) && from_loopback(l)),
                "the {format} log has no {status} line for {path} from 127.0.0.1: {log}"
            );
        }
        // Nothing in this flow is the server's fault: 401 and 404 are no warnings.
        for line in log.lines() {
            let level = level_of(line);
            assert!(
                !matches!(level.as_deref(), Some("WARN" | "ERROR")),
                "a {format} line at {level:?}: {line}"
            );
        }
    }
}

const FORGED_IP: &str = "198.51.100.66";

/// The one line `log_request` writes per request (text or JSON).
fn is_request_line(line: &str) -> bool {
    line.contains("\"message\":\"request\"") || line.contains(": request method=")
}

/// Whether the line's root span names 127.0.0.1 as the client.
fn from_loopback(line: &str) -> bool {
    line.contains("http.client_ip=127.0.0.1 ") || line.contains("\"http.client_ip\":\"127.0.0.1\"")
}

/// The level of a log line, text (`<time> <LEVEL> ...`) or JSON (`"level":"..."`).
fn level_of(line: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(json) => json["level"].as_str().map(str::to_owned),
        Err(_) => line.split_whitespace().nth(1).map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_logins_and_sessions_in_prometheus_format() {
    let server = Process::start(&[("METRICS_BIND_ADDR", "public")]).await;
    let client = http_client(false);
    register(&client, &server.base, "alice").await;
    assert_eq!(login(&client, &server.base, "alice").await.status(), 200);
    let bad = client
        .post(format!("{}/login", server.base))
        .json(&json!({"username": "alice", "password": "wrong password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(bad.status(), 401);

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = metrics.text().await.expect("body");
    for line in [
        "tessera_logins_total{outcome=\"succeeded\"} 1",
        "tessera_logins_total{outcome=\"failed\"} 1",
        "tessera_sessions_total{event=\"created\"} 1",
        "tessera_active_sessions 1",
        "tessera_http_requests_total{method=\"POST\",route=\"/login\",status=\"401\"} 1",
        "tessera_argon2_queue_depth 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing `{line}` in:\n{body}"
        );
    }
    assert!(body.contains("tessera_http_request_duration_seconds_bucket"));
    assert!(body.contains("tessera_db_pool_connections{state=\"idle\"}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_move_to_their_own_address_or_be_turned_off() {
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = Process::start(&[("METRICS_BIND_ADDR", metrics_addr.as_str())]).await;
    let client = http_client(false);
    let public = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("public");
    assert_eq!(public.status(), 404);
    let private = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("private");
    assert_eq!(private.status(), 200);

    let off = Process::start(&[("METRICS_ENABLED", "false")]).await;
    let response = client
        .get(format!("{}/metrics", off.base))
        .send()
        .await
        .expect("off");
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id() {
    let server = Process::start(&[]).await;
    let client = http_client(false);
    let a = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("health");
    let b = client
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .expect("404");
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (a, b) = (id(&a).expect("an id"), id(&b).expect("an id on errors too"));
    assert_ne!(a, b);
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("tessera {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("commit "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_manage_users_and_sessions() {
    let dir = TempDir::new().expect("dir");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = command(dir.path(), &[])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().expect("ends");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    assert_eq!(run(&["migrate"], None).0, Some(0));
    let (code, out) = run(&["user", "create", "carol"], Some(&format!("{PASSWORD}\n")));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        run(&["user", "create", "Carol"], Some(&format!("{PASSWORD}\n"))).0,
        Some(4)
    );
    assert_eq!(run(&["user", "create", "dave"], Some("short\n")).0, Some(4));

    // The created user logs in through a server on the same database.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = command(dir.path(), &[("BIND_ADDR", bind.as_str())])
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let base = format!("http://{bind}");
    let client = http_client(false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = login(&client, &base, "carol").await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .cookies()
        .find(|c| c.name() == "access_token")
        .map(|c| format!("access_token={}", c.value()))
        .expect("cookie");
    let me = |cookie: String| {
        let client = client.clone();
        let url = format!("{base}/users/me");
        async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .expect("me")
                .status()
        }
    };
    assert_eq!(me(cookie.clone()).await, 200);

    let (code, out) = run(&["sessions", "revoke", "--user", "carol"], None);
    assert_eq!((code, out.trim()), (Some(0), "revoked 1 sessions"));
    assert_eq!(me(cookie).await, 401);

    let second = login(&client, &base, "carol").await;
    let cookie = second
        .cookies()
        .find(|c| c.name() == "access_token")
        .map(|c| format!("access_token={}", c.value()))
        .expect("cookie");
    assert_eq!(run(&["user", "disable", "carol"], None).0, Some(0));
    assert_eq!(me(cookie).await, 401, "disabling ends the sessions");
    assert_eq!(
        login(&client, &base, "carol").await.status(),
        401,
        "a disabled user cannot log in"
    );
    assert_eq!(run(&["user", "enable", "carol"], None).0, Some(0));
    assert_eq!(login(&client, &base, "carol").await.status(), 200);
    assert_eq!(run(&["user", "disable", "nobody"], None).0, Some(4));

    let (code, out) = run(&["sessions", "revoke", "--all"], None);
    assert_eq!((code, out.trim()), (Some(0), "revoked 1 sessions"));
    let (code, out) = run(&["check-config"], None);
    assert_eq!(code, Some(0));
    assert!(
        out.lines().any(|l| l == "COOKIE_NAME=access_token"),
        "{out}"
    );
    let (code, out) = run(&["purge"], None);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("purged: "), "{out}");
    let _ = child.kill();
    let _ = child.wait();
}
