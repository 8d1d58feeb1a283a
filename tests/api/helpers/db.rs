//! The database of one test (a SQLite file in a temp dir, or a PostgreSQL database created for
//! the test and dropped afterwards) and direct reads and writes beside the application's pool.

use super::*;

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
