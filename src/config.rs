//! Settings read once at start-up from the environment (then `.env`), validated so that a bad value
//! stops the process with one line naming the variable instead of surfacing later as a confusing
//! browser or database failure.

use std::fmt;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::cookie::SameSite;
use tracing_subscriber::EnvFilter;

use crate::redact::redact_url;

/// A variable whose value cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault (or `.env` when the file itself cannot be read).
    pub var: String,
    pub message: String,
}

impl ConfigError {
    fn new(var: &str, message: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where the data lives; chosen by the scheme of `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseTarget {
    /// `postgres://` / `postgresql://` is PostgreSQL, `sqlite://PATH` or a plain path is a SQLite file.
    ///
    /// A libpq key=value connection string (`host=db password=...`) is refused rather than taken
    /// for a file name that would be shown as it is; no error repeats the value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is empty; set it to a SQLite file path or a postgres:// URL".into());
        }
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let url =
                url::Url::parse(raw).map_err(|e| format!("is not a valid PostgreSQL URL ({e})"))?;
            if url.host_str().is_none_or(str::is_empty) && url.query().is_none() {
                return Err("is a PostgreSQL URL without a host".into());
            }
            let after_scheme = &raw[raw.find("://").map_or(0, |i| i + 3)..];
            let authority = &after_scheme[..after_scheme
                .find(['/', '?', '#'])
                .unwrap_or(after_scheme.len())];
            if authority.matches('@').count() > 1 {
                return Err(
                    "is a PostgreSQL URL with an unencoded @ in its user name or password; write it as %40"
                        .into(),
                );
            }
            return Ok(Self::Postgres(raw.to_owned()));
        }
        if lower.starts_with("postgres:") || lower.starts_with("postgresql:") {
            return Err(
                "is not a valid PostgreSQL URL; it must start with postgres:// or postgresql://"
                    .into(),
            );
        }
        if is_conninfo(raw) {
            return Err(
                "is a libpq key=value connection string, which is not supported; write it as a URL: postgres://USER:PASSWORD@HOST:PORT/DBNAME?PARAMETER=VALUE"
                    .into(),
            );
        }
        let path = if let Some(rest) = lower.strip_prefix("sqlite://") {
            raw[raw.len() - rest.len()..].to_owned()
        } else if let Some(rest) = lower.strip_prefix("sqlite:") {
            raw[raw.len() - rest.len()..].to_owned()
        } else if let Some((scheme, _)) = raw.split_once("://") {
            return Err(format!(
                "has the unsupported scheme `{scheme}://`; use postgres://, postgresql://, sqlite:// or a file path"
            ));
        } else {
            raw.to_owned()
        };
        if path.is_empty() {
            return Err("names no SQLite file; use sqlite://PATH or a plain path".into());
        }
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err(
                "is an in-memory SQLite database, which each pooled connection would see empty; use a file"
                    .into(),
            );
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    /// The target as it may be shown to an operator: every PostgreSQL password is hidden.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("SQLite file {}", path.display()),
            Self::Postgres(raw) => match redact_url(raw) {
                Some(url) => format!("PostgreSQL at {url}"),
                None => "PostgreSQL".to_owned(),
            },
        }
    }
}

/// libpq's connection parameter names; a string that starts with one of them and `=` is a libpq
/// key=value connection string, not a file name.
const LIBPQ_KEYWORDS: [&str; 39] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

fn is_conninfo(raw: &str) -> bool {
    raw.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        LIBPQ_KEYWORDS
            .iter()
            .any(|keyword| name.eq_ignore_ascii_case(keyword))
    })
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Which request headers make up the client fingerprint bound to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintMode {
    /// SHA-256 of `"{User-Agent}-{Accept-Language}"`, the replaced design's formula.
    Full,
    /// SHA-256 of the User-Agent alone.
    UserAgent,
    /// Recorded but never checked.
    Off,
}

/// The session cookie's name and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub name: String,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: SameSite,
    pub domain: Option<String>,
    /// CHIPS `Partitioned`: lets browsers that block third-party cookies keep a cross-site one.
    pub partitioned: bool,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// Idle lifetime: a session unused for this long expires; use pushes it out again.
    pub ttl_seconds: i64,
    /// Absolute lifetime counted from login, never extended.
    pub max_lifetime_seconds: i64,
}

/// Login and registration throttling; a threshold of 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub login_max_failures: i64,
    pub login_window_seconds: i64,
    pub lockout_seconds: i64,
    pub lockout_max_seconds: i64,
    pub login_max_failures_per_ip: i64,
    pub register_max_per_ip: i64,
    pub register_window_seconds: i64,
}

/// How long ended sessions and events are kept, and how the purge works through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// 0: no background purge (the `purge` command still works).
    pub purge_interval_seconds: u64,
    pub session_retention_days: i64,
    pub event_retention_days: i64,
    pub batch_size: i64,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseTarget,
    /// PostgreSQL only: where the session cache's listener connects (`SESSION_SYNC_DATABASE_URL`,
    /// e.g. directly to the server when `DATABASE_URL` goes through a pooler); `None`: the
    /// `DATABASE_URL` connection. Printed only redacted, like `database`.
    pub session_sync: Option<DatabaseTarget>,
    pub bind_addr: String,
    pub workers: usize,
    pub db_pool_size: u32,
    pub db_connect_timeout: Duration,
    /// Exact origins (`scheme://host[:port]`) allowed to call with credentials.
    pub allowed_origins: Vec<String>,
    pub cookie: CookieSettings,
    pub session: SessionSettings,
    pub fingerprint: FingerprintMode,
    pub argon2_max_concurrency: usize,
    /// Password computations waiting or running beyond which requests are answered 503 at once.
    pub argon2_max_queue: usize,
    /// How many verified sessions are kept in memory (0: none; every request reads the database).
    pub session_cache_size: usize,
    pub log_filter: String,
    /// A session younger than this may revoke others without re-entering the password.
    pub fresh_session_seconds: i64,
    /// 0: unlimited.
    pub max_sessions_per_user: i64,
    pub throttle: ThrottleSettings,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The service's own origin for the CSRF check, when the `Host` header cannot tell it.
    pub public_origin: Option<String>,
    pub retention: RetentionSettings,
    /// `LOG_FORMAT=json` for log shippers; otherwise human-readable text.
    pub log_json: bool,
    pub metrics_enabled: bool,
    /// The address of the separate `/metrics` listener ([`DEFAULT_METRICS_BIND_ADDR`] unless set);
    /// `None` (`METRICS_BIND_ADDR=public`): served on `BIND_ADDR` instead.
    pub metrics_bind_addr: Option<String>,
}

const MAX_SECONDS: i64 = 100 * 365 * 24 * 3600;

/// Where `/metrics` is served by default: a listener of its own on loopback, off the public port
/// (9464 is the port commonly used by Prometheus exporters of application metrics).
pub const DEFAULT_METRICS_BIND_ADDR: &str = "127.0.0.1:9464";
/// The `METRICS_BIND_ADDR` value that serves `/metrics` on `BIND_ADDR`, with the API.
pub const METRICS_ON_PUBLIC_PORT: &str = "public";

impl Settings {
    /// Reads the process environment, then `.env` (which never overrides a variable already set).
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(ConfigError::new(".env", format!("cannot be read: {err}"))),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any source of variables; tests pass a map.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, ConfigError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let vars = Vars(&lookup);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let database = match lookup("DATABASE_URL") {
            Some(raw) => {
                DatabaseTarget::parse(&raw).map_err(|m| ConfigError::new("DATABASE_URL", m))?
            }
            None => DatabaseTarget::Sqlite(PathBuf::from("tessera.db")),
        };
        let session_sync = match vars.get("SESSION_SYNC_DATABASE_URL") {
            None => None,
            Some(raw) => {
                let error = |m: String| ConfigError::new("SESSION_SYNC_DATABASE_URL", m);
                if !matches!(database, DatabaseTarget::Postgres(_)) {
                    return Err(error(
                        "is only for PostgreSQL (the session cache's LISTEN connection); DATABASE_URL is a SQLite file".into(),
                    ));
                }
                match DatabaseTarget::parse(&raw).map_err(error)? {
                    target @ DatabaseTarget::Postgres(_) => Some(target),
                    DatabaseTarget::Sqlite(_) => {
                        return Err(error("must be a postgres:// URL".into()))
                    }
                }
            }
        };

        let bind_addr = vars
            .get("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        match bind_addr.to_socket_addrs().map(|mut addrs| addrs.next()) {
            Ok(Some(_)) => {}
            Ok(_) => {
                return Err(ConfigError::new(
                    "BIND_ADDR",
                    format!("`{bind_addr}` resolves to no address"),
                ))
            }
            Err(e) => {
                return Err(ConfigError::new(
                    "BIND_ADDR",
                    format!("`{bind_addr}` is not a host:port address ({e})"),
                ))
            }
        }

        let workers = vars.int("WORKERS", cores as i64, 1, 1024)? as usize;
        let db_pool_size = vars.int("DB_POOL_SIZE", 10, 1, 1000)? as u32;
        let connect_timeout = vars.int("DB_CONNECT_TIMEOUT_SECONDS", 5, 1, 3600)?;
        let allowed_origins = parse_origins(&vars.get("ALLOWED_ORIGINS").unwrap_or_default())
            .map_err(|m| ConfigError::new("ALLOWED_ORIGINS", m))?;

        let cookie = CookieSettings {
            name: vars
                .get("COOKIE_NAME")
                .unwrap_or_else(|| "access_token".into()),
            secure: vars.bool("COOKIE_SECURE", true)?,
            http_only: vars.bool("COOKIE_HTTPONLY", true)?,
            same_site: match vars
                .get("COOKIE_SAMESITE")
                .map(|s| s.to_ascii_lowercase())
                .as_deref()
            {
                None | Some("lax") => SameSite::Lax,
                Some("strict") => SameSite::Strict,
                Some("none") => SameSite::None,
                Some(other) => {
                    return Err(ConfigError::new(
                        "COOKIE_SAMESITE",
                        format!("`{other}` is not one of lax, strict, none"),
                    ))
                }
            },
            domain: vars.get("COOKIE_DOMAIN"),
            partitioned: false,
        };
        let cookie = CookieSettings {
            partitioned: vars.bool("COOKIE_PARTITIONED", cookie.same_site == SameSite::None)?,
            ..cookie
        };
        validate_cookie(&cookie)?;

        let ttl_seconds = vars.int("SESSION_TTL_SECONDS", 604_800, 1, MAX_SECONDS)?;
        let max_lifetime_seconds =
            vars.int("SESSION_MAX_LIFETIME_SECONDS", 2_592_000, 1, MAX_SECONDS)?;
        if max_lifetime_seconds < ttl_seconds {
            return Err(ConfigError::new(
                "SESSION_MAX_LIFETIME_SECONDS",
                format!(
                    "{max_lifetime_seconds} is shorter than SESSION_TTL_SECONDS ({ttl_seconds}); the absolute lifetime must be at least the idle lifetime"
                ),
            ));
        }

        let fingerprint = match vars
            .get("FINGERPRINT")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("full") => FingerprintMode::Full,
            Some("user-agent") => FingerprintMode::UserAgent,
            Some("off") => FingerprintMode::Off,
            Some(other) => {
                return Err(ConfigError::new(
                    "FINGERPRINT",
                    format!("`{other}` is not one of full, user-agent, off"),
                ))
            }
        };

        let argon2_max_concurrency =
            vars.int("ARGON2_MAX_CONCURRENCY", cores as i64, 1, 1024)? as usize;
        let argon2_max_queue =
            vars.int("ARGON2_MAX_QUEUE", 64 * cores as i64, 1, 1_000_000)? as usize;
        let session_cache_size = vars.int("SESSION_CACHE_SIZE", 100_000, 0, 100_000_000)? as usize;

        let log_filter = vars
            .get("RUST_LOG")
            .map_or_else(|| "info".into(), |raw| trim_directives(&raw));
        if let Err(e) = EnvFilter::try_new(&log_filter) {
            return Err(ConfigError::new(
                "RUST_LOG",
                format!("`{log_filter}` is not a valid filter ({e})"),
            ));
        }

        let fresh_session_seconds = vars.int("FRESH_SESSION_SECONDS", 600, 0, MAX_SECONDS)?;
        let max_sessions_per_user = vars.int("MAX_SESSIONS_PER_USER", 20, 0, 1_000_000)?;
        let throttle = ThrottleSettings {
            login_max_failures: vars.int("LOGIN_MAX_FAILURES", 5, 0, 1_000_000)?,
            login_window_seconds: vars.int("LOGIN_WINDOW_SECONDS", 900, 1, MAX_SECONDS)?,
            lockout_seconds: vars.int("LOGIN_LOCKOUT_SECONDS", 60, 1, MAX_SECONDS)?,
            lockout_max_seconds: vars.int("LOGIN_LOCKOUT_MAX_SECONDS", 900, 1, MAX_SECONDS)?,
            login_max_failures_per_ip: vars.int(
                "LOGIN_MAX_FAILURES_PER_IP",
                50,
                0,
                1_000_000_000,
            )?,
            register_max_per_ip: vars.int("REGISTER_MAX_PER_IP", 20, 0, 1_000_000_000)?,
            register_window_seconds: vars.int("REGISTER_WINDOW_SECONDS", 3600, 1, MAX_SECONDS)?,
        };
        if throttle.lockout_max_seconds < throttle.lockout_seconds {
            return Err(ConfigError::new(
                "LOGIN_LOCKOUT_MAX_SECONDS",
                "is shorter than LOGIN_LOCKOUT_SECONDS; the cap must be at least the first lockout",
            ));
        }
        let trusted_proxies = parse_cidrs(&vars.get("TRUSTED_PROXIES").unwrap_or_default())
            .map_err(|m| ConfigError::new("TRUSTED_PROXIES", m))?;
        let public_origin = match vars.get("PUBLIC_ORIGIN") {
            None => None,
            Some(raw) => {
                let mut parsed =
                    parse_origins(&raw).map_err(|m| ConfigError::new("PUBLIC_ORIGIN", m))?;
                if parsed.len() != 1 {
                    return Err(ConfigError::new(
                        "PUBLIC_ORIGIN",
                        "must be exactly one origin",
                    ));
                }
                parsed.pop()
            }
        };
        let retention = RetentionSettings {
            purge_interval_seconds: vars.int("PURGE_INTERVAL_SECONDS", 3600, 0, MAX_SECONDS)?
                as u64,
            session_retention_days: vars.int("SESSION_RETENTION_DAYS", 30, 0, 36_500)?,
            event_retention_days: vars.int("EVENT_RETENTION_DAYS", 90, 0, 36_500)?,
            batch_size: vars.int("PURGE_BATCH_SIZE", 1000, 1, 1_000_000)?,
        };

        let log_json = match vars
            .get("LOG_FORMAT")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("`{other}` is not one of text, json"),
                ))
            }
        };
        let metrics_enabled = vars.bool("METRICS_ENABLED", true)?;
        let metrics_bind_addr = match vars.get("METRICS_BIND_ADDR") {
            None => Some(DEFAULT_METRICS_BIND_ADDR.to_owned()),
            Some(value) if value.eq_ignore_ascii_case(METRICS_ON_PUBLIC_PORT) => None,
            Some(addr) => Some(addr),
        };
        if let Some(addr) = &metrics_bind_addr {
            if !matches!(addr.to_socket_addrs().map(|mut a| a.next()), Ok(Some(_))) {
                return Err(ConfigError::new(
                    "METRICS_BIND_ADDR",
                    format!("`{addr}` is not a host:port address (nor `{METRICS_ON_PUBLIC_PORT}`)"),
                ));
            }
        }

        Ok(Self {
            session_sync,
            log_json,
            metrics_enabled,
            metrics_bind_addr,
            fresh_session_seconds,
            max_sessions_per_user,
            throttle,
            trusted_proxies,
            public_origin,
            retention,
            database,
            bind_addr,
            workers,
            db_pool_size,
            db_connect_timeout: Duration::from_secs(connect_timeout as u64),
            allowed_origins,
            cookie,
            session: SessionSettings {
                ttl_seconds,
                max_lifetime_seconds,
            },
            fingerprint,
            argon2_max_concurrency,
            argon2_max_queue,
            session_cache_size,
            log_filter,
        })
    }
}

impl Settings {
    /// Every setting as `VARIABLE=value`, as `tessera check-config` prints it; the database
    /// passwords are hidden.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let database = match &self.database {
            DatabaseTarget::Sqlite(path) => path.display().to_string(),
            DatabaseTarget::Postgres(raw) => {
                redact_url(raw).unwrap_or_else(|| "postgres://***".to_owned())
            }
        };
        let session_sync = match &self.session_sync {
            Some(DatabaseTarget::Postgres(raw)) => {
                redact_url(raw).unwrap_or_else(|| "postgres://***".to_owned())
            }
            _ => String::new(),
        };
        let same_site = match self.cookie.same_site {
            SameSite::Strict => "strict",
            SameSite::None => "none",
            SameSite::Lax => "lax",
        };
        let fingerprint = match self.fingerprint {
            FingerprintMode::Full => "full",
            FingerprintMode::UserAgent => "user-agent",
            FingerprintMode::Off => "off",
        };
        let t = &self.throttle;
        let r = &self.retention;
        let list = |items: Vec<String>| items.join(",");
        vec![
            ("DATABASE_URL", database),
            ("SESSION_SYNC_DATABASE_URL", session_sync),
            ("BIND_ADDR", self.bind_addr.clone()),
            ("WORKERS", self.workers.to_string()),
            ("DB_POOL_SIZE", self.db_pool_size.to_string()),
            (
                "DB_CONNECT_TIMEOUT_SECONDS",
                self.db_connect_timeout.as_secs().to_string(),
            ),
            ("ALLOWED_ORIGINS", list(self.allowed_origins.clone())),
            (
                "PUBLIC_ORIGIN",
                self.public_origin.clone().unwrap_or_default(),
            ),
            (
                "TRUSTED_PROXIES",
                list(
                    self.trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
            ),
            ("COOKIE_NAME", self.cookie.name.clone()),
            ("COOKIE_SECURE", self.cookie.secure.to_string()),
            ("COOKIE_HTTPONLY", self.cookie.http_only.to_string()),
            ("COOKIE_SAMESITE", same_site.to_owned()),
            (
                "COOKIE_DOMAIN",
                self.cookie.domain.clone().unwrap_or_default(),
            ),
            ("COOKIE_PARTITIONED", self.cookie.partitioned.to_string()),
            ("SESSION_TTL_SECONDS", self.session.ttl_seconds.to_string()),
            (
                "SESSION_MAX_LIFETIME_SECONDS",
                self.session.max_lifetime_seconds.to_string(),
            ),
            (
                "FRESH_SESSION_SECONDS",
                self.fresh_session_seconds.to_string(),
            ),
            (
                "MAX_SESSIONS_PER_USER",
                self.max_sessions_per_user.to_string(),
            ),
            ("FINGERPRINT", fingerprint.to_owned()),
            (
                "ARGON2_MAX_CONCURRENCY",
                self.argon2_max_concurrency.to_string(),
            ),
            ("ARGON2_MAX_QUEUE", self.argon2_max_queue.to_string()),
            ("SESSION_CACHE_SIZE", self.session_cache_size.to_string()),
            ("LOGIN_MAX_FAILURES", t.login_max_failures.to_string()),
            ("LOGIN_WINDOW_SECONDS", t.login_window_seconds.to_string()),
            ("LOGIN_LOCKOUT_SECONDS", t.lockout_seconds.to_string()),
            (
                "LOGIN_LOCKOUT_MAX_SECONDS",
                t.lockout_max_seconds.to_string(),
            ),
            (
                "LOGIN_MAX_FAILURES_PER_IP",
                t.login_max_failures_per_ip.to_string(),
            ),
            ("REGISTER_MAX_PER_IP", t.register_max_per_ip.to_string()),
            (
                "REGISTER_WINDOW_SECONDS",
                t.register_window_seconds.to_string(),
            ),
            (
                "PURGE_INTERVAL_SECONDS",
                r.purge_interval_seconds.to_string(),
            ),
            (
                "SESSION_RETENTION_DAYS",
                r.session_retention_days.to_string(),
            ),
            ("EVENT_RETENTION_DAYS", r.event_retention_days.to_string()),
            ("PURGE_BATCH_SIZE", r.batch_size.to_string()),
            ("METRICS_ENABLED", self.metrics_enabled.to_string()),
            (
                "METRICS_BIND_ADDR",
                self.metrics_bind_addr
                    .clone()
                    .unwrap_or_else(|| METRICS_ON_PUBLIC_PORT.to_owned()),
            ),
            (
                "LOG_FORMAT",
                if self.log_json { "json" } else { "text" }.to_owned(),
            ),
            ("RUST_LOG", self.log_filter.clone()),
        ]
    }
}

/// Typed reads of the variables; an empty value counts as unset.
struct Vars<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: i64 = raw
            .parse()
            .map_err(|_| ConfigError::new(name, format!("`{raw}` is not a whole number")))?;
        if value < min || value > max {
            return Err(ConfigError::new(
                name,
                format!("{value} is out of range; it must be between {min} and {max}"),
            ));
        }
        Ok(value)
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|s| s.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(
                name,
                format!("`{other}` is not a boolean (true/false, 1/0, yes/no, on/off)"),
            )),
        }
    }
}

/// A `RUST_LOG` filter with each comma-separated directive trimmed (and empty ones dropped).
/// tracing-subscriber finds the parts of a directive at offsets counted after trimming it, but cuts
/// the untrimmed text there: a space after a comma (`info, tessera=debug`) garbles the directive,
/// and panics when a multi-byte character follows.
fn trim_directives(raw: &str) -> String {
    raw.split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits on `,` or `;` and normalises each entry to the form browsers send in `Origin`.
fn parse_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for entry in raw
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if entry.contains('*') {
            return Err(format!(
                "`{entry}` is a wildcard, which browsers refuse for requests with credentials; list each origin exactly"
            ));
        }
        let url = url::Url::parse(entry).map_err(|e| {
            format!("`{entry}` is not an origin like https://app.example.com ({e})")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "`{entry}` is not an http(s) origin like https://app.example.com"
            ));
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(format!(
                "`{entry}` has a path, query or credentials; an origin is only scheme://host[:port]"
            ));
        }
        let origin = url.origin().ascii_serialization();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// Splits on `,` or `;`; a bare address is a single-host network.
fn parse_cidrs(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
    raw.split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(canonical_net)
                .map_err(|_| format!("`{entry}` is not an IP address or CIDR like 10.0.0.0/8"))
        })
        .collect()
}

/// An IPv4-mapped network (`::ffff:10.0.0.0/104`) as the IPv4 network it stands for
/// (`10.0.0.0/8`), since client addresses are compared in their canonical form.
fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .network()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, ipnet::IpNet::V4),
        _ => net,
    }
}

fn validate_cookie(cookie: &CookieSettings) -> Result<(), ConfigError> {
    let is_token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
    if !cookie.name.chars().all(is_token_char) {
        return Err(ConfigError::new(
            "COOKIE_NAME",
            format!(
                "`{}` contains characters not allowed in a cookie name",
                cookie.name
            ),
        ));
    }
    // tessera matches cookie names byte for byte (`SessionCookies::candidates`), but many clients,
    // proxies and frameworks percent-decode them: a name with `%` would not come back as itself,
    // and it could be the encoded spelling of another cookie's name.
    if cookie.name.contains('%') {
        return Err(ConfigError::new(
            "COOKIE_NAME",
            format!(
                "`{}` contains %, which many clients and proxies percent-decode in cookie names; the cookie would not come back under this name",
                cookie.name
            ),
        ));
    }
    if cookie.same_site == SameSite::None && !cookie.secure {
        return Err(ConfigError::new(
            "COOKIE_SAMESITE",
            "none requires COOKIE_SECURE=true: browsers drop SameSite=None cookies that are not Secure",
        ));
    }
    if cookie.partitioned && !cookie.secure {
        return Err(ConfigError::new(
            "COOKIE_PARTITIONED",
            "requires COOKIE_SECURE=true: browsers refuse Partitioned cookies that are not Secure",
        ));
    }
    let lower_name = cookie.name.to_ascii_lowercase();
    if lower_name.starts_with("__host-") {
        if !cookie.secure {
            return Err(ConfigError::new(
                "COOKIE_NAME",
                "a __Host- cookie requires COOKIE_SECURE=true, or browsers refuse it",
            ));
        }
        if cookie.domain.is_some() {
            return Err(ConfigError::new(
                "COOKIE_NAME",
                "a __Host- cookie must not have a COOKIE_DOMAIN, or browsers refuse it; unset COOKIE_DOMAIN",
            ));
        }
    }
    if lower_name.starts_with("__secure-") && !cookie.secure {
        return Err(ConfigError::new(
            "COOKIE_NAME",
            "a __Secure- cookie requires COOKIE_SECURE=true, or browsers refuse it",
        ));
    }
    if let Some(domain) = &cookie.domain {
        let valid = domain.trim_start_matches('.').split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !valid {
            return Err(ConfigError::new(
                "COOKIE_DOMAIN",
                format!("`{domain}` is not a host name like example.com"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database, DatabaseTarget::Sqlite("tessera.db".into()));
        assert_eq!(s.bind_addr, "127.0.0.1:8080");
        assert_eq!(s.cookie.name, "access_token");
        assert!(s.cookie.secure && s.cookie.http_only);
        assert_eq!(s.cookie.same_site, SameSite::Lax);
        assert_eq!(s.session.ttl_seconds, 604_800);
        assert_eq!(s.session.max_lifetime_seconds, 2_592_000);
        assert_eq!(s.fingerprint, FingerprintMode::Full);
        assert!(s.allowed_origins.is_empty());
    }

    #[test]
    fn database_urls_pick_the_backend_from_the_scheme() {
        let pg = DatabaseTarget::parse("postgresql://u:p@localhost/db").unwrap();
        assert!(matches!(pg, DatabaseTarget::Postgres(_)));
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/x.db").unwrap(),
            DatabaseTarget::Sqlite("data/x.db".into())
        );
        assert_eq!(
            DatabaseTarget::parse("sqlite:///abs/x.db").unwrap(),
            DatabaseTarget::Sqlite("/abs/x.db".into())
        );
        assert_eq!(
            DatabaseTarget::parse("x.db").unwrap(),
            DatabaseTarget::Sqlite("x.db".into())
        );
        assert!(DatabaseTarget::parse("").is_err());
        assert!(DatabaseTarget::parse("mysql://x").is_err());
        assert!(DatabaseTarget::parse(":memory:").is_err());
        assert!(DatabaseTarget::parse("postgres://[bad").is_err());
    }

    /// Every password form libpq accepts in a URL: userinfo, `password=` and `sslpassword=`
    /// parameters, also with a percent-encoded name.
    #[test]
    fn redacted_target_hides_every_password_form() {
        for raw in [
            "postgres://app:Hunter2Secret@db:5432/app",
            "postgres://app@db/app?password=Hunter2Secret",
            "postgres://app@db/app?sslmode=require&password=Hunter2Secret",
            "postgresql://app@db/app?sslpassword=Hunter2Secret",
            "postgres://app@db/app?pass%77ord=Hunter2Secret",
            "postgres://app:Hunter2Secret@db/app?password=Hunter2Secret&sslpassword=Hunter2Secret",
        ] {
            let target = DatabaseTarget::parse(raw).unwrap();
            assert!(!target.redacted().contains("Hunter2"), "{raw}");
            assert!(!format!("{target:?}").contains("Hunter2"), "{raw}");
            let s = settings(&[("DATABASE_URL", raw)]).unwrap();
            let described = s.describe();
            assert!(
                described.iter().all(|(_, v)| !v.contains("Hunter2")),
                "{raw}: {described:?}"
            );
        }
        let s = settings(&[(
            "DATABASE_URL",
            "postgres://app@db/app?password=x1&sslmode=disable",
        )])
        .unwrap();
        assert!(s.describe().iter().any(|(k, v)| *k == "DATABASE_URL"
            && v == "postgres://app@db/app?password=***&sslmode=disable"));
    }

    /// libpq also takes `host=db password=...`; tessera refuses it, and never repeats it.
    #[test]
    fn conninfo_strings_are_refused_without_echoing_them() {
        for raw in [
            "host=db user=app password=Hunter2Secret dbname=x",
            "dbname = x sslpassword='a Hunter2Secret'",
            "  user=app password='Hunter2 Secret' host=db",
            "postgres:app:Hunter2Secret@db/app",
            "postgres://app:Hunter2@Secret@db/app",
        ] {
            let err = settings(&[("DATABASE_URL", raw)]).unwrap_err();
            assert_eq!(err.var, "DATABASE_URL", "{raw}");
            assert!(!err.to_string().contains("Hunter2"), "{raw}: {err}");
        }
        assert_eq!(
            DatabaseTarget::parse("data/a=b.db").unwrap(),
            DatabaseTarget::Sqlite("data/a=b.db".into())
        );
    }

    #[test]
    fn redacted_target_hides_the_password() {
        let pg = DatabaseTarget::parse("postgres://user:hunter2@db:5432/app").unwrap();
        assert!(!pg.redacted().contains("hunter2"));
        assert!(!format!("{pg:?}").contains("hunter2"));
    }

    #[test]
    fn origins_are_split_and_normalised() {
        let s = settings(&[(
            "ALLOWED_ORIGINS",
            "http://localhost:5173; https://app.example.com:443 ,http://a.test",
        )])
        .unwrap();
        assert_eq!(
            s.allowed_origins,
            [
                "http://localhost:5173",
                "https://app.example.com",
                "http://a.test"
            ]
        );
        assert_eq!(
            settings(&[("ALLOWED_ORIGINS", "*")]).unwrap_err().var,
            "ALLOWED_ORIGINS"
        );
        assert!(settings(&[("ALLOWED_ORIGINS", "http://x.test/path")]).is_err());
    }

    #[test]
    fn cookie_rules_are_enforced() {
        let err = settings(&[("COOKIE_SAMESITE", "none"), ("COOKIE_SECURE", "false")]).unwrap_err();
        assert_eq!(err.var, "COOKIE_SAMESITE");
        assert!(settings(&[("COOKIE_SAMESITE", "None"), ("COOKIE_SECURE", "true")]).is_ok());
        assert_eq!(
            settings(&[("COOKIE_NAME", "__Host-t"), ("COOKIE_SECURE", "0")])
                .unwrap_err()
                .var,
            "COOKIE_NAME"
        );
        assert_eq!(
            settings(&[("COOKIE_NAME", "__Host-t"), ("COOKIE_DOMAIN", "a.test")])
                .unwrap_err()
                .var,
            "COOKIE_NAME"
        );
        assert_eq!(
            settings(&[("COOKIE_NAME", "__Secure-t"), ("COOKIE_SECURE", "no")])
                .unwrap_err()
                .var,
            "COOKIE_NAME"
        );
        assert!(settings(&[("COOKIE_NAME", "__Secure-t"), ("COOKIE_DOMAIN", "a.test")]).is_ok());
        assert!(settings(&[("COOKIE_NAME", "bad name")]).is_err());
        // Found by the `cookie_token` fuzz target: read back, `%5F` is `_`, not this name.
        assert_eq!(
            settings(&[("COOKIE_NAME", "access%5Ftoken")])
                .unwrap_err()
                .var,
            "COOKIE_NAME"
        );
        assert!(settings(&[("COOKIE_SAMESITE", "sometimes")]).is_err());
    }

    #[test]
    fn partitioned_follows_samesite_none_unless_set() {
        assert!(
            settings(&[("COOKIE_SAMESITE", "none")])
                .unwrap()
                .cookie
                .partitioned
        );
        assert!(!settings(&[]).unwrap().cookie.partitioned);
        assert!(
            !settings(&[("COOKIE_SAMESITE", "none"), ("COOKIE_PARTITIONED", "false")])
                .unwrap()
                .cookie
                .partitioned
        );
        assert!(
            settings(&[("COOKIE_PARTITIONED", "true")])
                .unwrap()
                .cookie
                .partitioned
        );
        let err =
            settings(&[("COOKIE_PARTITIONED", "true"), ("COOKIE_SECURE", "false")]).unwrap_err();
        assert_eq!(err.var, "COOKIE_PARTITIONED");
    }

    #[test]
    fn described_config_hides_the_database_password() {
        let s = settings(&[("DATABASE_URL", "postgres://app:hunter2@db/app")]).unwrap();
        let described = s.describe();
        assert!(described.iter().all(|(_, v)| !v.contains("hunter2")));
        assert!(described
            .iter()
            .any(|(k, v)| *k == "DATABASE_URL" && v.contains("app:***@db")));
        assert_eq!(described.len(), 38);
    }

    #[test]
    fn session_sync_url_is_postgres_only_and_hidden() {
        let pg = "postgres://app:hunter2@db/app";
        let s = settings(&[
            ("DATABASE_URL", pg),
            (
                "SESSION_SYNC_DATABASE_URL",
                "postgres://app:direct9@db:5432/app?password=x2",
            ),
        ])
        .unwrap();
        assert!(matches!(s.session_sync, Some(DatabaseTarget::Postgres(_))));
        let described = format!("{:?} {:?}", s.describe(), s);
        for secret in ["hunter2", "direct9", "x2"] {
            assert!(!described.contains(secret), "{secret} in {described}");
        }
        assert!(settings(&[("DATABASE_URL", pg)])
            .unwrap()
            .session_sync
            .is_none());
        let err = settings(&[("SESSION_SYNC_DATABASE_URL", pg)]).unwrap_err();
        assert_eq!(err.var, "SESSION_SYNC_DATABASE_URL");
        let err =
            settings(&[("DATABASE_URL", pg), ("SESSION_SYNC_DATABASE_URL", "x.db")]).unwrap_err();
        assert_eq!(err.var, "SESSION_SYNC_DATABASE_URL");
    }

    #[test]
    fn numbers_are_checked() {
        assert_eq!(
            settings(&[("SESSION_TTL_SECONDS", "0")]).unwrap_err().var,
            "SESSION_TTL_SECONDS"
        );
        assert_eq!(settings(&[("WORKERS", "two")]).unwrap_err().var, "WORKERS");
        assert_eq!(
            settings(&[
                ("SESSION_TTL_SECONDS", "100"),
                ("SESSION_MAX_LIFETIME_SECONDS", "50")
            ])
            .unwrap_err()
            .var,
            "SESSION_MAX_LIFETIME_SECONDS"
        );
        assert_eq!(
            settings(&[("COOKIE_SECURE", "maybe")]).unwrap_err().var,
            "COOKIE_SECURE"
        );
        assert_eq!(
            settings(&[("BIND_ADDR", "nowhere")]).unwrap_err().var,
            "BIND_ADDR"
        );
        assert_eq!(
            settings(&[("FINGERPRINT", "ip")]).unwrap_err().var,
            "FINGERPRINT"
        );
    }

    #[test]
    fn proxies_and_throttles_are_parsed() {
        let s = settings(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8; 127.0.0.1 ,::1"),
            ("LOGIN_MAX_FAILURES", "0"),
        ])
        .unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert_eq!(s.throttle.login_max_failures, 0);
        assert_eq!(
            settings(&[("TRUSTED_PROXIES", "10.0.0/8")])
                .unwrap_err()
                .var,
            "TRUSTED_PROXIES"
        );
        assert_eq!(
            settings(&[("LOGIN_WINDOW_SECONDS", "0")]).unwrap_err().var,
            "LOGIN_WINDOW_SECONDS"
        );
        assert_eq!(
            settings(&[("PUBLIC_ORIGIN", "https://a.test, https://b.test")])
                .unwrap_err()
                .var,
            "PUBLIC_ORIGIN"
        );
    }

    /// Client addresses are canonical (`::ffff:a.b.c.d` is `a.b.c.d`), so are the proxies.
    #[test]
    fn ipv4_mapped_proxies_are_ipv4_networks() {
        let s = settings(&[(
            "TRUSTED_PROXIES",
            "::ffff:10.0.0.0/104, ::ffff:192.0.2.1, ::ffff:0:0/96, 2001:db8::/32",
        )])
        .unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["10.0.0.0/8", "192.0.2.1/32", "0.0.0.0/0", "2001:db8::/32"]
        );
    }

    /// Found by the `config` fuzz target: a space after a comma made tracing-subscriber misread
    /// the directive, or panic when a multi-byte character followed.
    #[test]
    fn log_filter_directives_are_trimmed() {
        let s = settings(&[("RUST_LOG", "info, tessera=debug ,actix_web=warn")]).unwrap();
        assert_eq!(s.log_filter, "info,tessera=debug,actix_web=warn");
        let s = settings(&[("RUST_LOG", "info, \u{e9}t\u{e9}=debug")]).unwrap();
        assert_eq!(s.log_filter, "info,\u{e9}t\u{e9}=debug");
        assert_eq!(
            settings(&[("RUST_LOG", "info, =debug")]).unwrap_err().var,
            "RUST_LOG"
        );
    }

    #[test]
    fn empty_values_mean_the_default_except_for_the_database() {
        assert!(settings(&[("COOKIE_DOMAIN", ""), ("WORKERS", " ")]).is_ok());
        assert_eq!(
            settings(&[("DATABASE_URL", "")]).unwrap_err().var,
            "DATABASE_URL"
        );
    }
}
