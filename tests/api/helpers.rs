//! Shared machinery: a real server per test on port 0, a fresh database per test
//! (SQLite file in a temp dir, or a PostgreSQL database created for the test and
//! dropped afterwards), HTTP clients, cookie parsing and direct database reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDateTime;
use cookie::Cookie;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Generates, for each `async fn name(backend: Backend)` in the current module,
/// a module `name` with two tests: `name::sqlite` and `name::postgres`.
/// The PostgreSQL variant returns early (with a note) only when
/// `TEST_DATABASE_URL` is unset; when it is set, every failure is a failure.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if $crate::helpers::postgres_enabled(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

/// Like `backend_tests!`, for tests that only make sense on PostgreSQL.
macro_rules! postgres_tests {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                if $crate::helpers::postgres_enabled(module_path!()) {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        }
    )+};
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const DEFAULT_COOKIE: &str = "access_token";
pub const NOT_AUTHENTICATED: &str = "Not authenticated.";
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `TEST_DATABASE_URL`, when set and not blank.
pub fn test_database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub fn postgres_enabled(test: &str) -> bool {
    if test_database_url().is_some() {
        true
    } else {
        eprintln!(
            "note: TEST_DATABASE_URL is not set, the PostgreSQL variant of {test} did not run"
        );
        false
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn is_lower_hex_64(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_base64url_43(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---------------------------------------------------------------------------
// Databases

/// The database of one test. PostgreSQL databases are dropped on drop.
pub enum TestDb {
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
    /// Another test's PostgreSQL database, used by a second server (not dropped here).
    SharedPostgres {
        url: String,
    },
    /// Another test's SQLite file, used by a second server (a second process on one file).
    SharedSqlite {
        path: PathBuf,
    },
}

impl TestDb {
    pub fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("creating a temp dir");
                let path = dir.path().join("tessera-test.db");
                TestDb::Sqlite { _dir: dir, path }
            }
            Backend::Postgres => {
                let admin_url =
                    test_database_url().expect("the PostgreSQL variant needs TEST_DATABASE_URL");
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = admin_connection(&admin_url);
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin) {
                        Ok(_) => break,
                        // Concurrent CREATE DATABASE can collide on template1.
                        Err(e) if attempt < 10 => {
                            eprintln!("CREATE DATABASE {name} failed ({e}), retrying");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        Err(e) => panic!("CREATE DATABASE {name} failed: {e}"),
                    }
                }
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                TestDb::Postgres {
                    admin_url,
                    name,
                    url: url.to_string(),
                }
            }
        }
    }

    /// The DATABASE_URL the application is given.
    pub fn app_url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } | TestDb::SharedSqlite { path } => {
                path.to_str().expect("utf-8 temp path").to_owned()
            }
            TestDb::Postgres { url, .. } | TestDb::SharedPostgres { url } => url.clone(),
        }
    }

    /// The PostgreSQL database name (panics for SQLite).
    pub fn pg_name(&self) -> &str {
        match self {
            TestDb::Postgres { name, .. } => name,
            _ => panic!("not a PostgreSQL test database of its own"),
        }
    }

    /// A connection to the server's maintenance database (not this test's).
    pub fn pg_admin(&self) -> PgConnection {
        match self {
            TestDb::Postgres { admin_url, .. } => admin_connection(admin_url),
            _ => panic!("not a PostgreSQL test database of its own"),
        }
    }

    /// A direct connection to the test database, beside the application's pool.
    pub fn connect(&self) -> DbConn {
        match self {
            TestDb::Sqlite { path, .. } | TestDb::SharedSqlite { path } => {
                let mut conn = SqliteConnection::establish(path.to_str().expect("utf-8 path"))
                    .expect("opening the test SQLite file");
                conn.batch_execute("PRAGMA busy_timeout = 10000;")
                    .expect("setting busy_timeout");
                DbConn::Sqlite(conn)
            }
            TestDb::Postgres { url, .. } | TestDb::SharedPostgres { url } => DbConn::Pg(
                PgConnection::establish(url).expect("connecting to the test PostgreSQL database"),
            ),
        }
    }
}

pub fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::establish(admin_url).unwrap_or_else(|e| {
        panic!("TEST_DATABASE_URL is set but PostgreSQL cannot be reached ({admin_url}): {e}")
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            match PgConnection::establish(admin_url) {
                Ok(mut admin) => {
                    if let Err(e) =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                    {
                        eprintln!("warning: could not drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("warning: could not drop test database {name}: {e}"),
            }
        }
    }
}

#[derive(QueryableByName, Debug, Clone)]
pub struct SessionRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub token_hash: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub client_fingerprint: String,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub expires_at: NaiveDateTime,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub last_seen_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub revoked_reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(QueryableByName, Debug, Clone)]
pub struct UserRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub username_key: String,
    #[diesel(sql_type = Text)]
    pub password_hash: String,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
}

const SESSIONS_SQL: &str = "SELECT id, user_id, token_hash, status, client_fingerprint, \
     created_at, expires_at, last_seen_at, user_agent, ip, revoked_reason, revoked_at \
     FROM sessions ORDER BY created_at, id";
const USERS_SQL: &str =
    "SELECT id, username, username_key, password_hash, created_at FROM users ORDER BY id";

macro_rules! bind_arg {
    ($query:expr, $arg:expr) => {
        match $arg {
            Arg::Text(v) => $query.bind::<Text, _>(v.clone()),
            Arg::OptText(v) => $query.bind::<Nullable<Text>, _>(v.clone()),
            Arg::Int(v) => $query.bind::<BigInt, _>(*v),
            Arg::Time(v) => $query.bind::<Timestamp, _>(*v),
            Arg::OptTime(v) => $query.bind::<Nullable<Timestamp>, _>(*v),
        }
    };
}

pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl DbConn {
    pub fn sessions(&mut self) -> Vec<SessionRow> {
        let query = diesel::sql_query(SESSIONS_SQL);
        match self {
            DbConn::Sqlite(conn) => query.load(conn),
            DbConn::Pg(conn) => query.load(conn),
        }
        .expect("reading the sessions table")
    }

    pub fn users(&mut self) -> Vec<UserRow> {
        let query = diesel::sql_query(USERS_SQL);
        match self {
            DbConn::Sqlite(conn) => query.load(conn),
            DbConn::Pg(conn) => query.load(conn),
        }
        .expect("reading the users table")
    }

    /// Runs one statement with bound arguments. `sql` uses `?` placeholders on both
    /// backends (rewritten to `$n` for PostgreSQL); returns the number of rows affected.
    #[track_caller]
    pub fn execute(&mut self, sql: &str, args: &[Arg]) -> usize {
        macro_rules! run {
            ($conn:expr, $sql:expr, $db:ty) => {{
                let mut query = diesel::sql_query($sql).into_boxed::<$db>();
                for arg in args {
                    query = bind_arg!(query, arg);
                }
                query.execute($conn)
            }};
        }
        match self {
            DbConn::Sqlite(conn) => run!(conn, sql.to_owned(), diesel::sqlite::Sqlite),
            DbConn::Pg(conn) => run!(conn, pg_placeholders(sql), diesel::pg::Pg),
        }
        .unwrap_or_else(|e| panic!("{sql} failed: {e}"))
    }

    /// Runs a query with bound arguments (`?` placeholders, as for `execute`).
    #[track_caller]
    pub fn query<T>(&mut self, sql: &str, args: &[Arg]) -> Vec<T>
    where
        T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
    {
        macro_rules! run {
            ($conn:expr, $sql:expr, $db:ty) => {{
                let mut query = diesel::sql_query($sql).into_boxed::<$db>();
                for arg in args {
                    query = bind_arg!(query, arg);
                }
                query.load::<T>($conn)
            }};
        }
        match self {
            DbConn::Sqlite(conn) => run!(conn, sql.to_owned(), diesel::sqlite::Sqlite),
            DbConn::Pg(conn) => run!(conn, pg_placeholders(sql), diesel::pg::Pg),
        }
        .unwrap_or_else(|e| panic!("{sql} failed: {e}"))
    }

    /// `SELECT COUNT(*) ...` (the statement must name its count column `n`).
    #[track_caller]
    pub fn count(&mut self, sql: &str, args: &[Arg]) -> i64 {
        let rows: Vec<Count> = self.query(sql, args);
        rows.first()
            .unwrap_or_else(|| panic!("{sql} returned no row"))
            .n
    }

    pub fn events(&mut self) -> Vec<EventRow> {
        self.query(EVENTS_SQL, &[])
    }

    pub fn failures(&mut self) -> Vec<FailureRow> {
        self.query(FAILURES_SQL, &[])
    }
}

/// A bound argument for [`DbConn::execute`] and [`DbConn::query`].
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Time(NaiveDateTime),
    OptTime(Option<NaiveDateTime>),
}

pub fn text(value: &str) -> Arg {
    Arg::Text(value.to_owned())
}

pub fn time(value: NaiveDateTime) -> Arg {
    Arg::Time(value)
}

/// `?` -> `$1`, `$2`, ... (the statements used here have no `?` inside literals).
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(QueryableByName, Debug)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

#[derive(QueryableByName, Debug, Clone)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub session_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
}

#[derive(QueryableByName, Debug, Clone)]
pub struct FailureRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username_key: String,
    #[diesel(sql_type = Text)]
    pub ip: String,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    #[diesel(sql_type = BigInt)]
    pub cleared: i64,
}

const EVENTS_SQL: &str =
    "SELECT id, user_id, session_id, kind, ip, user_agent, created_at FROM auth_events ORDER BY id";
const FAILURES_SQL: &str = "SELECT id, username_key, ip, created_at, \
     CAST(cleared AS BIGINT) AS cleared FROM login_failures ORDER BY id";

/// UTC now, naive, as the service stores times.
pub fn utc_now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Asserts `t` is within two minutes of now.
#[track_caller]
pub fn assert_about_now(t: NaiveDateTime, what: &str) {
    let skew = (utc_now() - t).num_seconds().abs();
    assert!(skew < 120, "{what} {t} is not about now ({})", utc_now());
}

// ---------------------------------------------------------------------------
// The application under test

pub struct TestApp {
    pub address: String,
    /// A client with a cookie store, like a browser.
    pub client: reqwest::Client,
    /// A client without a cookie store: cookies are sent explicitly.
    pub raw: reqwest::Client,
    pub cookie_name: String,
    /// The configuration the server was given.
    pub vars: HashMap<String, String>,
    /// `http://127.0.0.1:<port>` of the separate `/metrics` listener, when there is one.
    pub metrics_address: Option<String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropped after the server task is aborted (field order matters).
    pub db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn base_settings(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("WORKERS", "2"),
        ("DB_POOL_SIZE", "4"),
        ("ARGON2_MAX_CONCURRENCY", "2"),
        ("COOKIE_SECURE", "true"),
        // Many servers run at once: each metrics listener on a port of its own.
        ("METRICS_BIND_ADDR", "127.0.0.1:0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn http_client(cookie_store: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(cookie_store)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDb::create(backend), overrides).await
}

/// A second server on the database of `first` (two instances, one database).
pub async fn spawn_second_app(first: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    let db = match &first.db {
        TestDb::Postgres { url, .. } | TestDb::SharedPostgres { url } => {
            TestDb::SharedPostgres { url: url.clone() }
        }
        TestDb::Sqlite { path, .. } | TestDb::SharedSqlite { path } => {
            TestDb::SharedSqlite { path: path.clone() }
        }
    };
    spawn_app_on(db, overrides).await
}

/// How soon a session ended anywhere must be refused everywhere (instances keep verified
/// sessions in memory and hear of revocations asynchronously).
pub const PROPAGATION: Duration = Duration::from_millis(100);

/// Asserts that `app` refuses `token` (401) within [`PROPAGATION`] from now, and accepts it (200)
/// until then; returns how long it took.
pub async fn assert_refused_soon(app: &TestApp, token: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let answer = app.me_with(token, &[]).await;
        let waited = started.elapsed();
        match answer.status.as_u16() {
            401 => return waited,
            200 => assert!(
                waited < PROPAGATION,
                "still accepted {waited:?} after it was ended elsewhere"
            ),
            other => panic!("unexpected {other}: {}", answer.text),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn settings_from(vars: &HashMap<String, String>) -> tessera::config::Settings {
    tessera::config::Settings::from_lookup(|name: &str| vars.get(name).cloned())
        .unwrap_or_else(|e| panic!("the test settings {vars:?} were refused: {e}"))
}

pub async fn spawn_app_on(db: TestDb, overrides: &[(&str, &str)]) -> TestApp {
    let mut vars = base_settings(&db.app_url());
    for (name, value) in overrides {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let cookie_name = vars
        .get("COOKIE_NAME")
        .cloned()
        .unwrap_or_else(|| DEFAULT_COOKIE.to_owned());
    let settings = settings_from(&vars);
    let app = tessera::startup::Application::build(settings)
        .await
        .unwrap_or_else(|e| panic!("the application did not start: {e}"));
    let port = app.port();
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: http_client(true),
        raw: http_client(false),
        cookie_name,
        vars,
        metrics_address,
        server,
        db,
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn read(response: Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading the response body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// Panics (showing the body) unless the status is `code`.
    #[track_caller]
    pub fn expect(self, code: u16) -> Answer {
        assert_eq!(
            self.status.as_u16(),
            code,
            "expected HTTP {code}, got {} with body {:?}",
            self.status,
            self.text
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is visible ASCII"))
    }

    /// All `Set-Cookie` headers, parsed.
    pub fn set_cookies(&self) -> Vec<Cookie<'static>> {
        set_cookies(&self.headers)
    }

    /// The `Set-Cookie` for `name`; panics if absent or repeated.
    #[track_caller]
    pub fn cookie(&self, name: &str) -> Cookie<'static> {
        let found: Vec<_> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.name() == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one Set-Cookie named {name}, got {:?}",
            self.headers.get_all(SET_COOKIE)
        );
        found.into_iter().next().unwrap()
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.set_cookies().iter().any(|c| c.name() == name)
    }

    #[track_caller]
    pub fn assert_no_store(&self) {
        let value = self
            .header("cache-control")
            .unwrap_or_else(|| panic!("no Cache-Control header in {:?}", self.headers));
        assert!(
            value
                .split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
            "Cache-Control is {value:?}, expected no-store"
        );
    }

    /// Asserts the contract's JSON error shape and returns the body.
    #[track_caller]
    pub fn problem(&self, code: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            code,
            "expected HTTP {code}, got {} with body {:?}",
            self.status,
            self.text
        );
        assert_problem_shape(self)
    }
}

/// The error shape without the status check: `Content-Type: application/json`,
/// `type`, `title` (reason phrase), `status` (number) and a non-empty `detail`.
#[track_caller]
pub fn assert_problem_shape(answer: &Answer) -> Value {
    let content_type = answer.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "error Content-Type is {content_type:?} (status {}, body {:?})",
        answer.status,
        answer.text
    );
    let body = answer.json();
    let detail = body["detail"].as_str().unwrap_or_else(|| {
        panic!(
            "error body has no string detail: {body} (status {})",
            answer.status
        )
    });
    assert!(!detail.trim().is_empty(), "empty detail in {body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(answer.status.as_u16())),
        "status field of {body}"
    );
    assert_eq!(body["type"], json!("about:blank"), "type field of {body}");
    assert_eq!(
        body["title"].as_str(),
        answer.status.canonical_reason(),
        "title field of {body}"
    );
    body
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<Cookie<'static>> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("Set-Cookie is visible ASCII").to_owned();
            Cookie::parse(text.clone())
                .unwrap_or_else(|e| panic!("unparsable Set-Cookie {text:?}: {e}"))
        })
        .collect()
}

/// Max-Age in whole seconds.
#[track_caller]
pub fn max_age_secs(cookie: &Cookie<'_>) -> i64 {
    cookie
        .max_age()
        .unwrap_or_else(|| panic!("cookie {cookie} has no Max-Age"))
        .whole_seconds()
}

/// A clearing cookie: right name, empty value, Max-Age=0, Path=/.
#[track_caller]
pub fn assert_clearing_cookie(cookie: &Cookie<'_>, name: &str) {
    assert_eq!(cookie.name(), name);
    assert_eq!(
        cookie.value(),
        "",
        "clearing cookie must be empty: {cookie}"
    );
    assert_eq!(max_age_secs(cookie), 0, "clearing cookie Max-Age: {cookie}");
    assert_eq!(cookie.path(), Some("/"), "clearing cookie Path: {cookie}");
}

/// The attributes a browser matches a cookie by, and the security flags.
#[track_caller]
pub fn assert_same_attributes(a: &Cookie<'_>, b: &Cookie<'_>) {
    assert_eq!(a.name(), b.name(), "name: {a} vs {b}");
    assert_eq!(a.path(), b.path(), "Path: {a} vs {b}");
    assert_eq!(a.domain(), b.domain(), "Domain: {a} vs {b}");
    assert_eq!(a.same_site(), b.same_site(), "SameSite: {a} vs {b}");
    assert_eq!(
        a.secure().unwrap_or(false),
        b.secure().unwrap_or(false),
        "Secure: {a} vs {b}"
    );
    assert_eq!(
        a.http_only().unwrap_or(false),
        b.http_only().unwrap_or(false),
        "HttpOnly: {a} vs {b}"
    );
}

pub fn with_headers(mut request: RequestBuilder, headers: &[(&str, &str)]) -> RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

pub fn credentials(username: &str, password: &str) -> Value {
    json!({ "username": username, "password": password })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn cookie_header(&self, token: &str) -> String {
        format!("{}={}", self.cookie_name, token)
    }

    pub fn db(&self) -> DbConn {
        self.db.connect()
    }

    /// The server's settings, for library entry points such as `tessera::purge::run`.
    pub fn settings(&self) -> tessera::config::Settings {
        settings_from(&self.vars)
    }

    pub fn events(&self) -> Vec<EventRow> {
        self.db().events()
    }

    pub fn failures(&self) -> Vec<FailureRow> {
        self.db().failures()
    }

    /// The session row with this id.
    #[track_caller]
    pub fn session_by_id(&self, id: &str) -> SessionRow {
        let rows = self.sessions();
        rows.iter()
            .find(|row| row.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no session row {id} among {rows:?}"))
    }

    /// Sets a timestamp column of the session with this token (direct SQL).
    #[track_caller]
    pub fn set_session_time(&self, token: &str, column: &str, value: NaiveDateTime) {
        let sql = format!("UPDATE sessions SET {column} = ? WHERE token_hash = ?");
        let changed = self
            .db()
            .execute(&sql, &[time(value), text(&sha256_hex(token))]);
        assert_eq!(changed, 1, "{sql}: no such session");
    }

    /// Moves the session's `created_at` `seconds` into the past (it stops being fresh).
    #[track_caller]
    pub fn age_session(&self, token: &str, seconds: i64) {
        let created = self.session_for(token).created_at;
        self.set_session_time(
            token,
            "created_at",
            created - chrono::Duration::seconds(seconds),
        );
    }

    /// Any request with the raw client: optional session token, optional JSON body,
    /// extra headers.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.raw.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header(COOKIE, self.cookie_header(token));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = with_headers(request, headers)
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// GET /users/me/sessions with the token.
    pub async fn list_sessions(&self, token: &str, headers: &[(&str, &str)]) -> Answer {
        self.call(
            reqwest::Method::GET,
            "/users/me/sessions",
            Some(token),
            None,
            headers,
        )
        .await
    }

    /// DELETE /users/me/sessions/{id} with the token and an optional JSON body.
    pub async fn revoke_session(&self, token: &str, id: &str, body: Option<&Value>) -> Answer {
        let path = format!("/users/me/sessions/{id}");
        self.call(reqwest::Method::DELETE, &path, Some(token), body, &[])
            .await
    }

    /// DELETE /users/me/sessions with the token and an optional JSON body.
    pub async fn revoke_others(&self, token: &str, body: Option<&Value>) -> Answer {
        self.call(
            reqwest::Method::DELETE,
            "/users/me/sessions",
            Some(token),
            body,
            &[],
        )
        .await
    }

    /// POST /logout/all with the token.
    pub async fn logout_all(&self, token: &str) -> Answer {
        self.call(reqwest::Method::POST, "/logout/all", Some(token), None, &[])
            .await
    }

    /// PUT /users/me/password with the token.
    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Answer {
        let body = json!({ "current_password": current, "new_password": new });
        self.call(
            reqwest::Method::PUT,
            "/users/me/password",
            Some(token),
            Some(&body),
            &[],
        )
        .await
    }

    /// DELETE /users/me with the token and `{"password"}`.
    pub async fn delete_account(&self, token: &str, password: &str) -> Answer {
        let body = json!({ "password": password });
        self.call(
            reqwest::Method::DELETE,
            "/users/me",
            Some(token),
            Some(&body),
            &[],
        )
        .await
    }

    /// GET /users/me/events (with `?query` when given).
    pub async fn list_events(&self, token: &str, query: Option<&str>) -> Answer {
        let path = match query {
            Some(query) => format!("/users/me/events?{query}"),
            None => "/users/me/events".to_owned(),
        };
        self.call(reqwest::Method::GET, &path, Some(token), None, &[])
            .await
    }

    pub fn sessions(&self) -> Vec<SessionRow> {
        self.db().sessions()
    }

    pub fn users(&self) -> Vec<UserRow> {
        self.db().users()
    }

    #[track_caller]
    pub fn session_for(&self, token: &str) -> SessionRow {
        let hash = sha256_hex(token);
        let rows = self.sessions();
        rows.iter()
            .find(|row| row.token_hash == hash)
            .cloned()
            .unwrap_or_else(|| panic!("no session row with the token's hash among {rows:?}"))
    }

    /// POST JSON with the cookie-store client.
    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// POST a raw body with an explicit Content-Type (None: no Content-Type).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self.raw.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        Answer::read(request.send().await.expect("request failed")).await
    }

    /// GET /metrics on the separate metrics listener (panics when there is none).
    pub async fn metrics(&self) -> Answer {
        let base = self
            .metrics_address
            .as_ref()
            .expect("this server has no separate metrics listener");
        let response = self
            .raw
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    pub async fn register(&self, username: &str, password: &str) -> Answer {
        self.post_json("/register", &credentials(username, password))
            .await
    }

    /// Registers and returns the user JSON (asserting 201).
    pub async fn register_ok(&self, username: &str, password: &str) -> Value {
        self.register(username, password).await.expect(201).json()
    }

    /// Logs in with the cookie-store client.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        self.post_json("/login", &credentials(username, password))
            .await
    }

    /// Logs in with the raw client and extra headers (User-Agent, Cookie, ...).
    pub async fn login_raw(
        &self,
        username: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request = self
            .raw
            .post(self.url("/login"))
            .json(&credentials(username, password));
        let response = with_headers(request, headers)
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// Logs in with the raw client and returns the session token.
    pub async fn login_token(&self, username: &str, password: &str) -> String {
        self.login_token_with(username, password, &[]).await
    }

    pub async fn login_token_with(
        &self,
        username: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let answer = self
            .login_raw(username, password, headers)
            .await
            .expect(200);
        let cookie = answer.cookie(&self.cookie_name);
        assert!(
            !cookie.value().is_empty(),
            "login cookie is empty: {cookie}"
        );
        cookie.value().to_owned()
    }

    /// Registers `username` with PASSWORD and logs in; returns the token.
    pub async fn user_session(&self, username: &str) -> String {
        self.register_ok(username, PASSWORD).await;
        self.login_token(username, PASSWORD).await
    }

    /// GET /users/me with the cookie-store client.
    pub async fn me(&self) -> Answer {
        self.get("/users/me").await
    }

    /// GET /users/me with the raw client, the token sent explicitly.
    pub async fn me_with(&self, token: &str, headers: &[(&str, &str)]) -> Answer {
        let request = self
            .raw
            .get(self.url("/users/me"))
            .header(COOKIE, self.cookie_header(token));
        let response = with_headers(request, headers)
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// POST /logout (no body) with the cookie-store client.
    pub async fn logout(&self) -> Answer {
        let response = self
            .client
            .post(self.url("/logout"))
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// POST /logout with the raw client, the token sent explicitly.
    pub async fn logout_with(&self, token: &str) -> Answer {
        let response = self
            .raw
            .post(self.url("/logout"))
            .header(COOKIE, self.cookie_header(token))
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }

    /// A request with the raw client and arbitrary headers.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let request = self.raw.request(method, self.url(path));
        let response = with_headers(request, headers)
            .send()
            .await
            .expect("request failed");
        Answer::read(response).await
    }
}

/// Asserts the user JSON shape: exactly id (integer), username, created_at
/// (RFC 3339 UTC, whole seconds, `Z`).
#[track_caller]
pub fn assert_user_json(user: &Value, username: &str) {
    let object = user
        .as_object()
        .unwrap_or_else(|| panic!("user is not an object: {user}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "id", "username"],
        "user keys of {user}"
    );
    assert!(user["id"].is_i64(), "id must be an integer: {user}");
    assert_eq!(user["username"], json!(username), "username of {user}");
    let created = user["created_at"]
        .as_str()
        .unwrap_or_else(|| panic!("created_at is not a string: {user}"));
    assert!(
        created.len() == 20 && created.ends_with('Z'),
        "created_at must look like 2026-11-22T03:00:00Z, got {created:?}"
    );
    let parsed = chrono::DateTime::parse_from_rfc3339(created)
        .unwrap_or_else(|e| panic!("created_at {created:?} is not RFC 3339: {e}"));
    let age = chrono::Utc::now().signed_duration_since(parsed);
    assert!(
        age.num_seconds().abs() < 600,
        "created_at {created} is not about now"
    );
}

// ---------------------------------------------------------------------------
// Session management (issue 3)

pub const NEW_PASSWORD: &str = "a much better passphrase";
pub const INCORRECT_PASSWORD: &str = "Incorrect password.";
pub const REAUTH_REQUIRED: &str =
    "Re-authentication required: send your password, or sign in again.";
pub const SESSION_NOT_FOUND: &str = "Session not found.";

/// The `Retry-After` of an answer, in whole seconds (>= 1).
#[track_caller]
pub fn retry_after(answer: &Answer) -> i64 {
    let value = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", answer.headers));
    let seconds: i64 = value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {value:?} is not whole seconds: {e}"));
    assert!(seconds >= 1, "Retry-After must be >= 1, got {seconds}");
    seconds
}

/// A 429 of the login throttle: the error shape, `Retry-After`, the contract's detail naming
/// the same number of seconds, and no session cookie. Returns `Retry-After`.
#[track_caller]
pub fn assert_login_throttled(answer: &Answer) -> i64 {
    let body = answer.problem(429);
    let seconds = retry_after(answer);
    assert_eq!(
        body["detail"],
        json!(format!(
            "Too many failed login attempts; try again in {seconds} seconds."
        )),
        "429 detail"
    );
    assert!(
        answer.set_cookies().iter().all(|c| c.value().is_empty()),
        "a throttled answer must not start a session: {:?}",
        answer.set_cookies()
    );
    seconds
}

/// `status = inactive`, `revoked_reason = reason`, `revoked_at` about now.
#[track_caller]
pub fn assert_revoked(row: &SessionRow, reason: &str) {
    assert_eq!(row.status, "inactive", "{row:?}");
    assert_eq!(
        row.revoked_reason.as_deref(),
        Some(reason),
        "revoked_reason of {row:?}"
    );
    let at = row
        .revoked_at
        .unwrap_or_else(|| panic!("revoked_at is not set: {row:?}"));
    assert_about_now(at, "revoked_at");
}

/// Still usable: `active`, never revoked.
#[track_caller]
pub fn assert_live(row: &SessionRow) {
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.revoked_reason, None, "{row:?}");
    assert_eq!(row.revoked_at, None, "{row:?}");
}

/// A string field that is RFC 3339 UTC with whole seconds and `Z`.
#[track_caller]
pub fn assert_rfc3339_z(value: &Value, what: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        text.len() == 20 && text.ends_with('Z'),
        "{what} must look like 2026-11-22T03:00:00Z, got {text:?}"
    );
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} {text:?} is not RFC 3339: {e}"))
}

/// The sorted keys of a JSON object.
#[track_caller]
pub fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}
