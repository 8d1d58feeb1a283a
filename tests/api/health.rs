//! GET /health.

use serde_json::json;

use crate::helpers::*;

backend_tests!(health_is_200_with_status_and_database_ok);

postgres_tests!(postgresql_url_scheme_is_accepted);

async fn health_is_200_with_status_and_database_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/health").await.expect(200);
    assert!(
        answer
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{:?}",
        answer.headers
    );
    assert_eq!(answer.json(), json!({ "status": "ok", "database": "ok" }));
    let answer = app.get("/health/").await.expect(200);
    assert_eq!(answer.json(), json!({ "status": "ok", "database": "ok" }));
}

async fn postgresql_url_scheme_is_accepted(backend: Backend) {
    let db = TestDb::create(backend);
    let url = db.app_url().replacen("postgres://", "postgresql://", 1);
    assert!(url.starts_with("postgresql://"), "{url}");
    let app = spawn_app_with(backend, &[("DATABASE_URL", url.as_str())]).await;
    let answer = app.get("/health").await.expect(200);
    assert_eq!(answer.json(), json!({ "status": "ok", "database": "ok" }));
    let token = app.user_session("alice").await;
    app.me_with(&token, &[]).await.expect(200);
    // The app used the database named in the URL.
    assert_eq!(db.connect().sessions().len(), 1);
    drop(app);
}
