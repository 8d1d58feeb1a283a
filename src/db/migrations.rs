//! The schema migrations of both backends, embedded in the binary and applied at start-up.

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::sql_types::Text;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::connection::DbConnection;
use super::pool::StartupDbError;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// An arbitrary constant naming tessera's advisory lock, so that instances starting together on one
/// PostgreSQL database apply migrations one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x0074_6573_7365_7261;

/// Applies every pending migration of the connection's backend.
pub fn run_pending(conn: &mut DbConnection) -> Result<(), StartupDbError> {
    let migrate =
        |e: Box<dyn std::error::Error + Send + Sync>| StartupDbError::Migrate(e.to_string());
    match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| StartupDbError::Migrate(e.to_string()))?;
            let result = pg
                .run_pending_migrations(POSTGRES)
                .map(|_| ())
                .map_err(migrate);
            let unlock = pg
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| StartupDbError::Migrate(e.to_string()));
            result.and(unlock)
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE)
            .map(|_| ())
            .map_err(migrate),
    }
}

/// One connection of its own, migrated: what the one-shot commands (`migrate`, `purge`, `user`,
/// `sessions`) work on.
pub fn connect_migrated(
    settings: &crate::config::Settings,
) -> Result<DbConnection, StartupDbError> {
    let mut conn = super::connection::ConnectionManager::new(
        settings.database.clone(),
        settings.db_connect_timeout,
    )
    .establish()
    .map_err(StartupDbError::Connect)?;
    run_pending(&mut conn)?;
    Ok(conn)
}

/// The versions of the embedded migrations of the connection's backend that the database has not
/// recorded as applied (oldest first); empty when the schema is up to date. Only reads
/// `__diesel_schema_migrations` (an error when the table does not exist).
pub fn pending(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let query = diesel::sql_query("SELECT version FROM __diesel_schema_migrations");
    let (expected, applied) = match conn {
        DbConnection::Postgres(pg) => (
            versions::<diesel::pg::Pg>(&POSTGRES),
            query.load::<Applied>(pg)?,
        ),
        DbConnection::Sqlite(sqlite) => (
            versions::<diesel::sqlite::Sqlite>(&SQLITE),
            query.load::<Applied>(sqlite)?,
        ),
    };
    Ok(expected
        .into_iter()
        .filter(|version| !applied.iter().any(|row| &row.version == version))
        .collect())
}

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The versions of the embedded migrations, oldest first.
fn versions<DB: Backend>(source: &EmbeddedMigrations) -> Vec<String>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let mut versions: Vec<String> = MigrationSource::<DB>::migrations(source)
        .map(|all| {
            all.iter()
                .map(|migration| migration.name().version().to_string())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
}
