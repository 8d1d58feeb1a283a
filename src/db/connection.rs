//! One connection type for both backends, and the r2d2 manager that opens it.
//!
//! diesel's derived `MultiConnection::establish` tries every backend in turn and discards the real
//! error (a wrong password becomes "Invalid connection url for multiconnection", an empty URL opens a
//! temporary SQLite database). [`ConnectionManager`] instead picks the backend from the already
//! validated [`DatabaseTarget`] and keeps the driver's own error, minus any password it quotes.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};

use crate::config::DatabaseTarget;

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Set on every SQLite connection. `busy_timeout` must come before `journal_mode=WAL`, or switching
/// the journal can fail at once with "database is locked" while another connection holds the file.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;";

/// Opens connections for the pool.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    connect_timeout: Duration,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget, connect_timeout: Duration) -> Self {
        Self {
            target,
            connect_timeout,
        }
    }

    /// Opens one connection, reporting the driver's error.
    pub fn establish(&self) -> Result<DbConnection, ConnectionError> {
        match &self.target {
            DatabaseTarget::Postgres(raw) => {
                let url = with_connect_timeout(raw, self.connect_timeout);
                PgConnection::establish(&url)
                    .map(DbConnection::Postgres)
                    .map_err(|error| without_secrets(error, raw))
            }
            DatabaseTarget::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl(
                        "the SQLite path is not valid UTF-8".into(),
                    )
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// The driver's error with every password of `url` hidden: libpq quotes parts of the URL it could
/// not parse (a badly percent-encoded password, for one), and the error is shown and logged.
fn without_secrets(error: ConnectionError, url: &str) -> ConnectionError {
    let secrets = crate::redact::secrets_of(url);
    let scrub = |message: &str| crate::redact::scrub(message, &secrets);
    match error {
        ConnectionError::BadConnection(message) => ConnectionError::BadConnection(scrub(&message)),
        ConnectionError::InvalidConnectionUrl(message) => {
            ConnectionError::InvalidConnectionUrl(scrub(&message))
        }
        // Its `Debug` would show the bytes of the URL.
        ConnectionError::InvalidCString(_) => {
            ConnectionError::InvalidConnectionUrl("DATABASE_URL contains a NUL byte".into())
        }
        other => other,
    }
}

/// libpq waits for an unreachable host as long as the OS lets it unless told otherwise.
fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    with_params(
        url,
        &[("connect_timeout", timeout.as_secs().max(1).to_string())],
    )
}

/// Adds libpq parameters to a `postgres://` URL, leaving any the operator already set alone.
pub(crate) fn with_params(url: &str, params: &[(&str, String)]) -> String {
    let mut url = url.to_owned();
    for (name, value) in params {
        let key = format!("{name}=");
        let already = url
            .split(['?', '&'])
            .skip(1)
            .any(|pair| pair.starts_with(&key));
        if !already {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{name}={value}");
        }
    }
    url
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        let result = match conn {
            DbConnection::Postgres(c) => c.ping(),
            DbConnection::Sqlite(c) => c.ping(),
        };
        result.map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        match conn {
            DbConnection::Postgres(c) => c.is_broken(),
            DbConnection::Sqlite(c) => c.is_broken(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libpq repeats a value it cannot percent-decode; that value may be the password.
    #[test]
    fn driver_errors_do_not_repeat_a_password() {
        for raw in [
            "postgres://u@127.0.0.1:1/x?password=Hunter2%zzSecret",
            "postgres://u:Hunter2%zzSecret@127.0.0.1:1/x",
            "postgres://u@127.0.0.1:1/x?sslpassword=Hunter2%zzSecret",
        ] {
            let target = DatabaseTarget::parse(raw).expect("a valid DATABASE_URL");
            let manager = ConnectionManager::new(target, Duration::from_secs(1));
            let error = match manager.establish() {
                Ok(_) => panic!("{raw}: nothing listens on port 1"),
                Err(error) => error,
            };
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("Hunter2"), "{raw}: {shown}");
        }
    }

    #[test]
    fn connect_timeout_is_added_once() {
        let t = Duration::from_secs(3);
        assert_eq!(
            with_connect_timeout("postgres://h/db", t),
            "postgres://h/db?connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?sslmode=disable", t),
            "postgres://h/db?sslmode=disable&connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?connect_timeout=9", t),
            "postgres://h/db?connect_timeout=9"
        );
    }
}
