//! `/health/live` and `/health/ready` (issue 10, item 13): liveness never depends on the database;
//! readiness needs the database to answer and to have every embedded migration applied.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::proxy::{upstream_of, Proxy};

backend_tests!(
    live_and_ready_are_200_when_all_is_well,
    ready_is_503_while_a_migration_is_missing,
);

postgres_tests!(live_is_200_and_ready_503_while_the_database_is_down);

async fn live_and_ready_are_200_when_all_is_well(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/health/live", "/health/live/"] {
        let answer = app.get(path).await.expect(200);
        assert_eq!(answer.json(), json!({ "status": "ok" }), "{path}");
    }
    for path in ["/health/ready", "/health/ready/"] {
        let answer = app.get(path).await.expect(200);
        assert_eq!(
            answer.json(),
            json!({ "status": "ok", "database": "ok", "migrations": "ok" }),
            "{path}"
        );
    }
    // `/health` is unchanged.
    let answer = app.get("/health").await.expect(200);
    assert_eq!(answer.json(), json!({ "status": "ok", "database": "ok" }));
}

/// Asserts a 503 of `/health/ready`: the problem shape, `Retry-After`, and what is not ready.
#[track_caller]
fn assert_not_ready(answer: &Answer, database: &str, migrations: &str) -> serde_json::Value {
    let body = answer.problem(503);
    retry_after(answer);
    assert_eq!(body["database"], json!(database), "{body}");
    assert_eq!(body["migrations"], json!(migrations), "{body}");
    body
}

async fn ready_is_503_while_a_migration_is_missing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/health/ready").await.expect(200);

    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let newest: Vec<Version> = app.db().query(
        "SELECT MAX(version) AS version FROM __diesel_schema_migrations",
        &[],
    );
    let newest = newest[0].version.clone();
    let deleted = app.db().execute(
        "DELETE FROM __diesel_schema_migrations WHERE version = ?",
        &[text(&newest)],
    );
    assert_eq!(deleted, 1);

    let answer = app.get("/health/ready").await;
    let body = assert_not_ready(&answer, "ok", "pending");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&newest), "{detail} names {newest}");
    // Liveness does not care.
    app.get("/health/live").await.expect(200);

    app.db().execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES (?)",
        &[text(&newest)],
    );
    app.get("/health/ready").await.expect(200);
}

async fn live_is_200_and_ready_503_while_the_database_is_down(backend: Backend) {
    let db = TestDb::create(backend);
    let proxy = Proxy::start(upstream_of(&db.app_url())).await;
    let url = proxy.url_for(&db.app_url());
    let app = spawn_app_with(
        backend,
        &[
            ("DATABASE_URL", url.as_str()),
            ("DB_CONNECT_TIMEOUT_SECONDS", "2"),
            ("PURGE_INTERVAL_SECONDS", "0"),
        ],
    )
    .await;
    app.get("/health/ready").await.expect(200);

    proxy.down();
    for _ in 0..3 {
        let started = Instant::now();
        let answer = app.get("/health/live").await.expect(200);
        assert_eq!(answer.json(), json!({ "status": "ok" }));
        assert!(started.elapsed() < Duration::from_secs(1));

        let answer = app.get("/health/ready").await;
        let body = assert_not_ready(&answer, "unavailable", "unknown");
        assert_eq!(body["detail"], json!("The database is not answering."));
    }

    proxy.up();
    let back = Instant::now();
    while app.get("/health/ready").await.status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "/health/ready still not 200 {:?} after the database came back",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
