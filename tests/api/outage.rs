//! A database outage (issue 10, item 12): once a connection attempt has failed, requests answer
//! 503 with `Retry-After` at once instead of each waiting out `DB_CONNECT_TIMEOUT_SECONDS`, and
//! the service serves again by itself soon after the database is back. The outage is a TCP proxy
//! in front of PostgreSQL that the test takes down and brings back (see `crate::proxy`). On SQLite
//! a locked database must not count as an outage.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::proxy::{upstream_of, Proxy};

postgres_tests!(requests_fail_fast_during_an_outage_and_recover_by_themselves);

/// The connect timeout of the server under test; fast answers must be far below it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// "At once": generous for a loaded 2-core machine, far below the connect timeout.
const FAST: Duration = Duration::from_secs(1);

async fn requests_fail_fast_during_an_outage_and_recover_by_themselves(backend: Backend) {
    let db = TestDb::create(backend);
    let proxy = Proxy::start(upstream_of(&db.app_url())).await;
    let url = proxy.url_for(&db.app_url());
    let timeout = CONNECT_TIMEOUT.as_secs().to_string();
    let app = spawn_app_with(
        backend,
        &[
            ("DATABASE_URL", url.as_str()),
            ("DB_CONNECT_TIMEOUT_SECONDS", timeout.as_str()),
            // Every /users/me reads the database.
            ("SESSION_CACHE_SIZE", "0"),
            ("PURGE_INTERVAL_SECONDS", "0"),
        ],
    )
    .await;
    let token = app.user_session("alice").await;
    app.me_with(&token, &[]).await.expect(200);

    proxy.down();
    // The first request may have to find out (but never waits longer than the connect timeout).
    let started = Instant::now();
    let first = app.me_with(&token, &[]).await;
    let took = started.elapsed();
    first.problem(503);
    retry_after(&first);
    assert!(
        took < CONNECT_TIMEOUT + Duration::from_millis(500),
        "the first request of the outage took {took:?}"
    );

    let metrics = app.metrics().await.expect(200).text;
    assert!(
        metrics.lines().any(|l| l == "tessera_db_circuit_open 1"),
        "{metrics}"
    );

    for round in 0..5 {
        let started = Instant::now();
        let answer = app.me_with(&token, &[]).await;
        let took = started.elapsed();
        assert_eq!(
            answer.problem(503)["detail"],
            json!("The database is not answering; try again shortly."),
            "round {round}"
        );
        retry_after(&answer);
        assert!(took < FAST, "round {round}: GET /users/me took {took:?}");

        let started = Instant::now();
        let answer = app.register(&format!("bob{round}"), PASSWORD).await;
        let took = started.elapsed();
        answer.problem(503);
        retry_after(&answer);
        assert!(took < FAST, "round {round}: POST /register took {took:?}");

        let started = Instant::now();
        let answer = app.get("/health").await.expect(503);
        let took = started.elapsed();
        retry_after(&answer);
        assert_eq!(answer.json()["database"], json!("unavailable"));
        assert!(took < FAST, "round {round}: GET /health took {took:?}");
    }

    proxy.up();
    let back = Instant::now();
    loop {
        let answer = app.me_with(&token, &[]).await;
        if answer.status == 200 {
            break;
        }
        answer.problem(503);
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "still 503 {:?} after the database came back",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = back.elapsed();
    app.get("/health").await.expect(200);
    app.register("carol", PASSWORD).await.expect(201);
    let metrics = app.metrics().await.expect(200).text;
    assert!(
        metrics.lines().any(|l| l == "tessera_db_circuit_open 0"),
        "{metrics}"
    );
    eprintln!("served again {recovered:?} after the database came back");
}

/// SQLite's "database is locked" is load, not an outage: the request that waited out
/// `busy_timeout` gets its 503, and the breaker stays closed (reads go on being served).
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_sqlite_database_does_not_open_the_breaker() {
    let app = spawn_app_with(Backend::Sqlite, &[("SESSION_CACHE_SIZE", "0")]).await;
    let token = app.user_session("alice").await;

    let mut writer = app.db();
    writer.execute("BEGIN IMMEDIATE", &[]);
    // Waits for the write lock for busy_timeout (5 s), then gives up.
    let answer = app.register("bob", PASSWORD).await;
    answer.problem(503);

    let started = Instant::now();
    let me = app.me_with(&token, &[]).await.expect(200);
    assert_eq!(me.json()["username"], json!("alice"));
    assert!(started.elapsed() < FAST, "{:?}", started.elapsed());
    let metrics = app.metrics().await.expect(200).text;
    assert!(
        metrics.lines().any(|l| l == "tessera_db_circuit_open 0"),
        "{metrics}"
    );
    writer.execute("ROLLBACK", &[]);
    app.register("bob", PASSWORD).await.expect(201);
}
