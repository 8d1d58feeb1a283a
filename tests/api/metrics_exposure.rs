//! Where `/metrics` is served (issue 10, item 14): by default on a loopback listener of its own
//! (`METRICS_BIND_ADDR=127.0.0.1:9464`), and the public port answers 404; on the public port only
//! with `METRICS_BIND_ADDR=public`.

use std::collections::HashMap;

use serde_json::json;

use crate::helpers::*;

backend_tests!(
    metrics_are_on_their_own_listener_and_404_on_the_public_port,
    metrics_are_on_the_public_port_only_when_asked,
);

/// The real default, unset `METRICS_BIND_ADDR`: the only test that binds the fixed port 9464 (an
/// empty value counts as unset).
#[tokio::test(flavor = "multi_thread")]
async fn by_default_metrics_listen_on_loopback_9464_only() {
    let vars: HashMap<String, String> = [("DATABASE_URL", "unused.db"), ("METRICS_BIND_ADDR", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let settings = settings_from(&vars);
    assert_eq!(
        settings.metrics_bind_addr.as_deref(),
        Some("127.0.0.1:9464")
    );
    let described = settings.describe();
    assert!(described.contains(&("METRICS_BIND_ADDR", "127.0.0.1:9464".to_owned())));

    let app = spawn_app_with(Backend::Sqlite, &[("METRICS_BIND_ADDR", "")]).await;
    app.get("/health").await.expect(200);
    assert_eq!(
        app.metrics_address.as_deref(),
        Some("http://127.0.0.1:9464")
    );
    let answer = app.metrics().await.expect(200);
    assert!(answer.text.contains("tessera_http_requests_total"));
    let answer = app.get("/metrics").await;
    assert_eq!(answer.problem(404)["detail"], json!("Not found."));
}

async fn metrics_are_on_their_own_listener_and_404_on_the_public_port(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/health").await.expect(200);
    for path in ["/metrics", "/metrics/"] {
        let answer = app.get(path).await;
        assert_eq!(answer.problem(404)["detail"], json!("Not found."), "{path}");
    }
    let doc = app.get("/openapi.json").await.expect(200).json();
    assert!(doc["paths"].get("/metrics").is_none(), "documented: {doc}");

    let answer = app.metrics().await.expect(200);
    assert!(
        answer
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        answer.headers
    );
    assert!(
        answer.text.lines().any(|l| l
            == "tessera_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("tessera_db_circuit_open 0"));
}

async fn metrics_are_on_the_public_port_only_when_asked(backend: Backend) {
    let app = spawn_app_with(backend, &[("METRICS_BIND_ADDR", "public")]).await;
    assert_eq!(app.metrics_address, None, "no separate listener");
    app.get("/health").await.expect(200);
    let answer = app.get("/metrics").await.expect(200);
    assert!(answer.text.contains("tessera_http_requests_total"));
    let doc = app.get("/openapi.json").await.expect(200).json();
    assert!(doc["paths"].get("/metrics").is_some());
    drop(app);

    let app = spawn_app_with(
        backend,
        &[
            ("METRICS_BIND_ADDR", "public"),
            ("METRICS_ENABLED", "false"),
        ],
    )
    .await;
    assert_eq!(app.metrics_address, None);
    app.get("/metrics").await.problem(404);
}
