//! Start-up: the real binary with a clean environment, run in an empty temp dir
//! (so no `.env` is read unless a test writes one).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::helpers::{base_settings, http_client, test_database_url};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
/// Generous: a correctness bound, not a speed test.
const EXIT_LIMIT: Duration = Duration::from_secs(20);

struct Run {
    code: Option<i32>,
    stderr: String,
}

fn env_for(dir: &Path, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let db = dir.join("tessera.db");
    let mut vars: BTreeMap<String, String> = base_settings(db.to_str().expect("utf-8 path"))
        .into_iter()
        .collect();
    vars.insert("WORKERS".into(), "1".into());
    vars.insert("DB_POOL_SIZE".into(), "2".into());
    vars.insert("ARGON2_MAX_CONCURRENCY".into(), "1".into());
    for (name, value) in overrides {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    vars
}

fn command(dir: &Path, vars: &BTreeMap<String, String>) -> Command {
    let mut command = Command::new(TESSERA);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs tessera to its exit; fails if it is still running after EXIT_LIMIT.
async fn run_to_exit(dir: &Path, vars: &BTreeMap<String, String>) -> Run {
    let child = command(dir, vars).spawn().expect("spawning tessera");
    let started = Instant::now();
    match tokio::time::timeout(EXIT_LIMIT, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("waiting for tessera");
            Run {
                code: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        // Dropping the future kills the child (kill_on_drop).
        Err(_) => panic!(
            "tessera was still running after {:.1} s with {vars:?}; it must exit by itself",
            started.elapsed().as_secs_f64()
        ),
    }
}

/// The one line of stderr (panics if there are zero or several).
#[track_caller]
fn one_line(run: &Run) -> &str {
    let text = run.stderr.trim_end_matches(['\n', '\r']);
    assert!(
        !text.is_empty(),
        "stderr is empty (exit code {:?})",
        run.code
    );
    assert!(
        !text.contains('\n'),
        "stderr must be one line, got:\n{}",
        run.stderr
    );
    text
}

async fn assert_config_error(overrides: &[(&str, &str)], variables: &[&str]) {
    let dir = TempDir::new().unwrap();
    let vars = env_for(dir.path(), overrides);
    let run = run_to_exit(dir.path(), &vars).await;
    assert_eq!(
        run.code,
        Some(2),
        "{overrides:?}: a configuration error exits with code 2; stderr: {}",
        run.stderr
    );
    let line = one_line(&run);
    assert!(
        line.starts_with("tessera: configuration error: "),
        "{overrides:?}: unexpected line {line:?}"
    );
    assert!(
        variables.iter().any(|v| line.contains(v)),
        "{overrides:?}: the line must name one of {variables:?}: {line:?}"
    );
}

#[track_caller]
fn assert_database_error(run: &Run) -> String {
    assert_eq!(
        run.code,
        Some(3),
        "a database error exits with code 3; stderr: {}",
        run.stderr
    );
    let line = one_line(run).to_owned();
    assert!(
        line.starts_with("tessera: database error: "),
        "unexpected line {line:?}"
    );
    assert!(line.contains("DATABASE_URL") || line.to_lowercase().contains("database"));
    line
}

// ---------------------------------------------------------------------------
// Configuration errors (exit 2, one line naming the variable)

#[tokio::test]
async fn samesite_none_without_secure_is_a_config_error() {
    assert_config_error(
        &[("COOKIE_SAMESITE", "none"), ("COOKIE_SECURE", "false")],
        &["COOKIE_SAMESITE", "COOKIE_SECURE"],
    )
    .await;
    assert_config_error(
        &[("COOKIE_SAMESITE", "None"), ("COOKIE_SECURE", "0")],
        &["COOKIE_SAMESITE", "COOKIE_SECURE"],
    )
    .await;
}

#[tokio::test]
async fn wildcard_in_allowed_origins_is_a_config_error() {
    assert_config_error(&[("ALLOWED_ORIGINS", "*")], &["ALLOWED_ORIGINS"]).await;
    assert_config_error(
        &[("ALLOWED_ORIGINS", "http://app.example.test, *")],
        &["ALLOWED_ORIGINS"],
    )
    .await;
}

#[tokio::test]
async fn origin_with_a_path_or_no_scheme_is_a_config_error() {
    for value in [
        "http://app.example.test/app",
        "http://app.example.test?x=1",
        "app.example.test",
    ] {
        assert_config_error(&[("ALLOWED_ORIGINS", value)], &["ALLOWED_ORIGINS"]).await;
    }
}

#[tokio::test]
async fn zero_session_ttl_is_a_config_error() {
    assert_config_error(&[("SESSION_TTL_SECONDS", "0")], &["SESSION_TTL_SECONDS"]).await;
}

#[tokio::test]
async fn non_numeric_session_ttl_is_a_config_error() {
    for value in ["-5", "abc", "1.5"] {
        assert_config_error(&[("SESSION_TTL_SECONDS", value)], &["SESSION_TTL_SECONDS"]).await;
    }
}

#[tokio::test]
async fn max_lifetime_below_ttl_is_a_config_error() {
    assert_config_error(
        &[
            ("SESSION_TTL_SECONDS", "100"),
            ("SESSION_MAX_LIFETIME_SECONDS", "50"),
        ],
        &["SESSION_MAX_LIFETIME_SECONDS", "SESSION_TTL_SECONDS"],
    )
    .await;
}

#[tokio::test]
async fn host_prefixed_name_without_secure_is_a_config_error() {
    assert_config_error(
        &[
            ("COOKIE_NAME", "__Host-access_token"),
            ("COOKIE_SECURE", "false"),
        ],
        &["COOKIE_NAME", "COOKIE_SECURE"],
    )
    .await;
}

#[tokio::test]
async fn host_prefixed_name_with_domain_is_a_config_error() {
    assert_config_error(
        &[
            ("COOKIE_NAME", "__Host-access_token"),
            ("COOKIE_SECURE", "true"),
            ("COOKIE_DOMAIN", "example.test"),
        ],
        &["COOKIE_NAME", "COOKIE_DOMAIN"],
    )
    .await;
}

#[tokio::test]
async fn secure_prefixed_name_without_secure_is_a_config_error() {
    assert_config_error(
        &[
            ("COOKIE_NAME", "__Secure-access_token"),
            ("COOKIE_SECURE", "false"),
        ],
        &["COOKIE_NAME", "COOKIE_SECURE"],
    )
    .await;
}

#[tokio::test]
async fn invalid_cookie_name_is_a_config_error() {
    for value in ["bad name", "a;b", "a=b", "tok\u{e9}n"] {
        assert_config_error(&[("COOKIE_NAME", value)], &["COOKIE_NAME"]).await;
    }
}

#[tokio::test]
async fn empty_database_url_is_a_config_error() {
    assert_config_error(&[("DATABASE_URL", "")], &["DATABASE_URL"]).await;
}

#[tokio::test]
async fn mysql_database_url_is_a_config_error() {
    assert_config_error(&[("DATABASE_URL", "mysql://x")], &["DATABASE_URL"]).await;
}

#[tokio::test]
async fn in_memory_database_url_is_a_config_error() {
    assert_config_error(&[("DATABASE_URL", ":memory:")], &["DATABASE_URL"]).await;
}

#[tokio::test]
async fn bad_booleans_are_config_errors() {
    assert_config_error(&[("COOKIE_SECURE", "maybe")], &["COOKIE_SECURE"]).await;
    assert_config_error(&[("COOKIE_HTTPONLY", "2")], &["COOKIE_HTTPONLY"]).await;
}

#[tokio::test]
async fn unknown_samesite_is_a_config_error() {
    assert_config_error(&[("COOKIE_SAMESITE", "sometimes")], &["COOKIE_SAMESITE"]).await;
}

#[tokio::test]
async fn unknown_fingerprint_mode_is_a_config_error() {
    assert_config_error(&[("FINGERPRINT", "ip")], &["FINGERPRINT"]).await;
}

#[tokio::test]
async fn zero_counts_are_config_errors() {
    for name in [
        "WORKERS",
        "DB_POOL_SIZE",
        "DB_CONNECT_TIMEOUT_SECONDS",
        "ARGON2_MAX_CONCURRENCY",
    ] {
        assert_config_error(&[(name, "0")], &[name]).await;
        assert_config_error(&[(name, "many")], &[name]).await;
    }
}

#[tokio::test]
async fn bad_session_management_settings_are_config_errors() {
    for name in [
        "FRESH_SESSION_SECONDS",
        "MAX_SESSIONS_PER_USER",
        "LOGIN_MAX_FAILURES",
        "LOGIN_WINDOW_SECONDS",
        "LOGIN_LOCKOUT_SECONDS",
        "LOGIN_LOCKOUT_MAX_SECONDS",
        "LOGIN_MAX_FAILURES_PER_IP",
        "REGISTER_MAX_PER_IP",
        "REGISTER_WINDOW_SECONDS",
        "PURGE_INTERVAL_SECONDS",
        "SESSION_RETENTION_DAYS",
        "EVENT_RETENTION_DAYS",
        "PURGE_BATCH_SIZE",
    ] {
        assert_config_error(&[(name, "many")], &[name]).await;
        assert_config_error(&[(name, "-1")], &[name]).await;
    }
    for value in ["10.0.0.0/33", "not-an-address", "10.0.0.0/8, 999.1.1.1"] {
        assert_config_error(&[("TRUSTED_PROXIES", value)], &["TRUSTED_PROXIES"]).await;
    }
    for value in ["https://auth.example.test/path", "auth.example.test", "*"] {
        assert_config_error(&[("PUBLIC_ORIGIN", value)], &["PUBLIC_ORIGIN"]).await;
    }
}

/// Every issue-3 setting is in `.env.example`, commented out, with the default of design-v3.md.
#[test]
fn env_example_lists_every_session_management_setting_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (name, default) in [
        ("FRESH_SESSION_SECONDS", "600"),
        ("MAX_SESSIONS_PER_USER", "20"),
        ("LOGIN_MAX_FAILURES", "5"),
        ("LOGIN_WINDOW_SECONDS", "900"),
        ("LOGIN_LOCKOUT_SECONDS", "60"),
        ("LOGIN_LOCKOUT_MAX_SECONDS", "900"),
        ("LOGIN_MAX_FAILURES_PER_IP", "50"),
        ("REGISTER_MAX_PER_IP", "20"),
        ("REGISTER_WINDOW_SECONDS", "3600"),
        ("TRUSTED_PROXIES", ""),
        ("PUBLIC_ORIGIN", ""),
        ("PURGE_INTERVAL_SECONDS", "3600"),
        ("SESSION_RETENTION_DAYS", "30"),
        ("EVENT_RETENTION_DAYS", "90"),
        ("PURGE_BATCH_SIZE", "1000"),
    ] {
        let expected = format!("# {name}={default}");
        assert!(
            lines.contains(&expected.as_str()),
            ".env.example has no line {expected:?}"
        );
    }
}

#[tokio::test]
async fn invalid_cookie_domain_is_a_config_error() {
    for value in ["https://example.test", "exa mple.test", "example.test/path"] {
        assert_config_error(&[("COOKIE_DOMAIN", value)], &["COOKIE_DOMAIN"]).await;
    }
}

#[tokio::test]
async fn invalid_log_filter_is_a_config_error() {
    assert_config_error(&[("RUST_LOG", "tessera=verbose")], &["RUST_LOG"]).await;
}

#[tokio::test]
async fn bad_bind_addr_is_a_config_error() {
    assert_config_error(&[("BIND_ADDR", "not an address")], &["BIND_ADDR"]).await;
}

#[tokio::test]
async fn dotenv_file_is_read() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join(".env"), "SESSION_TTL_SECONDS=0\n").unwrap();
    let mut vars = env_for(dir.path(), &[]);
    vars.remove("SESSION_TTL_SECONDS");
    let run = run_to_exit(dir.path(), &vars).await;
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert!(one_line(&run).contains("SESSION_TTL_SECONDS"));
}

#[test]
fn settings_error_names_the_variable() {
    let result = tessera::config::Settings::from_lookup(|name: &str| match name {
        "SESSION_TTL_SECONDS" => Some("0".to_owned()),
        _ => None,
    });
    match result {
        Ok(_) => panic!("SESSION_TTL_SECONDS=0 was accepted"),
        Err(e) => assert!(e.to_string().contains("SESSION_TTL_SECONDS"), "{e}"),
    }
}

// ---------------------------------------------------------------------------
// Database errors (exit 3, one line, the real driver error, password hidden)

#[tokio::test]
async fn unreachable_postgres_is_a_database_error() {
    let dir = TempDir::new().unwrap();
    let vars = env_for(
        dir.path(),
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x"),
            ("DB_CONNECT_TIMEOUT_SECONDS", "2"),
        ],
    );
    let run = run_to_exit(dir.path(), &vars).await;
    assert_database_error(&run);
}

#[tokio::test]
async fn database_error_hides_the_password() {
    let dir = TempDir::new().unwrap();
    let vars = env_for(
        dir.path(),
        &[
            (
                "DATABASE_URL",
                "postgresql://postgres:Sup3rSecretPw@127.0.0.1:1/x",
            ),
            ("DB_CONNECT_TIMEOUT_SECONDS", "2"),
        ],
    );
    let run = run_to_exit(dir.path(), &vars).await;
    assert_database_error(&run);
    assert!(
        !run.stderr.contains("Sup3rSecretPw"),
        "the password leaked: {}",
        run.stderr
    );
}

/// Every form of PostgreSQL password libpq accepts (issue 10, item 7).
const PASSWORD_FORMS: [&str; 5] = [
    "postgres://postgres@127.0.0.1:1/x?password=QueryPwSecret",
    "postgres://postgres@127.0.0.1:1/x?sslmode=disable&password=QueryPwSecret",
    "postgresql://postgres@127.0.0.1:1/x?sslpassword=QueryPwSecret",
    "postgres://postgres@127.0.0.1:1/x?pass%77ord=QueryPwSecret",
    "postgres://postgres:QueryPwSecret@127.0.0.1:1/x?password=QueryPwSecret",
];

/// `tessera ARGS` to its exit: code, stdout and stderr.
async fn run_command(
    dir: &Path,
    vars: &BTreeMap<String, String>,
    args: &[&str],
) -> (Option<i32>, String) {
    let mut command = command(dir, vars);
    command.args(args);
    let output = tokio::time::timeout(EXIT_LIMIT, command.output())
        .await
        .expect("tessera exits by itself")
        .expect("tessera runs");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn check_config_hides_every_database_password() {
    let dir = TempDir::new().unwrap();
    for url in PASSWORD_FORMS {
        let vars = env_for(dir.path(), &[("DATABASE_URL", url)]);
        let (code, out) = run_command(dir.path(), &vars, &["check-config"]).await;
        assert_eq!(code, Some(0), "{url}: {out}");
        assert!(
            !out.contains("QueryPwSecret"),
            "{url}: the password leaked: {out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("DATABASE_URL=postgres") && l.contains("***")),
            "{url}: {out}"
        );
    }
}

#[tokio::test]
async fn a_libpq_key_value_string_is_refused_without_repeating_it() {
    let dir = TempDir::new().unwrap();
    for conninfo in [
        "host=127.0.0.1 port=1 user=postgres password=KvPwSecret dbname=x",
        "host=127.0.0.1 port=1 password='Kv KvPwSecret' dbname=x",
        "dbname=x sslpassword=KvPwSecret",
    ] {
        let vars = env_for(dir.path(), &[("DATABASE_URL", conninfo)]);
        for args in [&["check-config"][..], &[]] {
            let (code, out) = run_command(dir.path(), &vars, args).await;
            assert_eq!(code, Some(2), "{args:?}: {out}");
            assert!(out.contains("DATABASE_URL"), "{args:?}: {out}");
            assert!(
                !out.contains("KvPwSecret"),
                "{args:?}: the password leaked: {out}"
            );
        }
    }
}

#[tokio::test]
async fn start_up_failure_hides_every_database_password() {
    let dir = TempDir::new().unwrap();
    let quoted_back = "postgres://postgres@127.0.0.1:1/x?password=QueryPwSecret%zz";
    for url in PASSWORD_FORMS.iter().copied().chain([quoted_back]) {
        let vars = env_for(
            dir.path(),
            &[("DATABASE_URL", url), ("DB_CONNECT_TIMEOUT_SECONDS", "2")],
        );
        for args in [&[][..], &["migrate"]] {
            let (code, out) = run_command(dir.path(), &vars, args).await;
            assert_eq!(code, Some(3), "{url} {args:?}: {out}");
            assert!(out.contains("database error"), "{url} {args:?}: {out}");
            assert!(
                !out.contains("QueryPwSecret"),
                "{url} {args:?}: the password leaked: {out}"
            );
        }
    }
}

#[tokio::test]
async fn missing_postgres_database_reports_does_not_exist() {
    let Some(admin_url) = test_database_url() else {
        eprintln!("note: TEST_DATABASE_URL is not set, missing_postgres_database_reports_does_not_exist did not run");
        return;
    };
    let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!(
        "/tessera_missing_{}",
        uuid::Uuid::new_v4().simple()
    ));
    let dir = TempDir::new().unwrap();
    let vars = env_for(dir.path(), &[("DATABASE_URL", url.as_str())]);
    let run = run_to_exit(dir.path(), &vars).await;
    let line = assert_database_error(&run);
    assert!(
        line.contains("does not exist"),
        "the real driver error should be shown: {line:?}"
    );
}

#[tokio::test]
async fn sqlite_file_in_a_missing_directory_is_a_database_error() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("no/such/dir/tessera.db");
    let vars = env_for(dir.path(), &[("DATABASE_URL", db.to_str().unwrap())]);
    let run = run_to_exit(dir.path(), &vars).await;
    assert_database_error(&run);
}

/// A TCP listener that accepts connections and never answers.
struct BlackHole {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the black hole");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    // Answer nothing, keep the connection open.
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        BlackHole {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn black_hole_postgres_host_is_given_up_by_itself() {
    let hole = BlackHole::start();
    let dir = TempDir::new().unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/x", hole.port);
    let vars = env_for(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("DB_CONNECT_TIMEOUT_SECONDS", "1"),
        ],
    );
    // run_to_exit fails the test if tessera is still running after 20 s.
    let run = run_to_exit(dir.path(), &vars).await;
    assert_ne!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_database_error(&run);
}

// ---------------------------------------------------------------------------
// Valid configurations start

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until /health answers 200 on `port`; panics if tessera exits first.
async fn wait_healthy(child: &mut Child, port: u16) {
    let client = http_client(false);
    let deadline = Instant::now() + EXIT_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("polling tessera") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                pipe.read_to_string(&mut stderr).await.ok();
            }
            panic!("tessera exited ({status}) instead of serving: {stderr}");
        }
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            assert_eq!(response.status().as_u16(), 200);
            return;
        }
        assert!(Instant::now() < deadline, "tessera never served /health");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(mut child: Child) {
    child.kill().await.expect("killing tessera");
}

#[tokio::test]
async fn valid_config_with_port_zero_starts() {
    let dir = TempDir::new().unwrap();
    let vars = env_for(dir.path(), &[("BIND_ADDR", "127.0.0.1:0")]);
    let mut child = command(dir.path(), &vars)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning tessera");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "tessera exited ({status}) with a valid config: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dir.path().join("tessera.db").exists(),
        "the SQLite database was not created"
    );
    stop(child).await;
}

#[tokio::test]
async fn valid_config_serves_health() {
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let vars = env_for(dir.path(), &[("BIND_ADDR", bind.as_str())]);
    let mut child = command(dir.path(), &vars)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning tessera");
    wait_healthy(&mut child, port).await;
    stop(child).await;
}

#[tokio::test]
async fn sqlite_url_scheme_is_accepted() {
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = format!("sqlite://{}", dir.path().join("scheme.db").display());
    let vars = env_for(
        dir.path(),
        &[("BIND_ADDR", bind.as_str()), ("DATABASE_URL", url.as_str())],
    );
    let mut child = command(dir.path(), &vars)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning tessera");
    wait_healthy(&mut child, port).await;
    stop(child).await;
    assert!(dir.path().join("scheme.db").exists());
}

#[tokio::test]
async fn environment_wins_over_dotenv() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "SESSION_TTL_SECONDS=0\nCOOKIE_SAMESITE=bogus\n",
    )
    .unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let vars = env_for(
        dir.path(),
        &[
            ("BIND_ADDR", bind.as_str()),
            ("SESSION_TTL_SECONDS", "60"),
            ("COOKIE_SAMESITE", "strict"),
        ],
    );
    let mut child = command(dir.path(), &vars)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning tessera");
    wait_healthy(&mut child, port).await;
    stop(child).await;
}

#[tokio::test]
async fn address_in_use_exits_with_code_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new().unwrap();
    let vars = env_for(dir.path(), &[("BIND_ADDR", bind.as_str())]);
    let run = run_to_exit(dir.path(), &vars).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    drop(taken);
}
