//! GET /openapi.json: an OpenAPI 3.1 document that covers every route the server registers.
//!
//! `tessera::routes::ROUTES` is the list `routes::configure` registers the routes from (and
//! `routes::endpoints` adds `/metrics` where the public port serves it), so a route added there
//! without being documented fails `document_covers_every_registered_route`.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

backend_tests!(
    document_is_openapi_3_1_json,
    document_covers_every_registered_route,
    every_operation_documents_its_errors,
    every_documented_operation_answers,
    security_scheme_names_the_configured_cookie,
    nul_bytes_are_not_server_errors,
    metrics_are_documented_exactly_when_served,
);

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn fetch_document(app: &TestApp) -> Value {
    let answer = app.get("/openapi.json").await.expect(200);
    let content_type = answer.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "Content-Type of /openapi.json is {content_type:?}"
    );
    answer.json()
}

/// Every (METHOD, path) of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no paths object: {doc}"));
    let mut found = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// Every (METHOD, path) the server registers.
fn registered_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    tessera::routes::endpoints(&app.settings())
        .into_iter()
        .map(|route| (route.method.as_str().to_owned(), route.path.to_owned()))
        .collect()
}

/// Follows a local `$ref` (`#/components/...`), or returns `value` itself.
#[track_caller]
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
            resolve(doc, target)
        }
        None => value,
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

async fn document_is_openapi_3_1_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(
        version.starts_with("3.1"),
        "openapi is {:?}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], json!("tessera"));
    assert!(doc["info"]["version"].is_string(), "{}", doc["info"]);

    // With a trailing slash too, like every path.
    let again = app.get("/openapi.json/").await.expect(200).json();
    assert_eq!(again, doc);

    // Every $ref points at something.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or("");
        assert!(
            doc.pointer(pointer).is_some(),
            "$ref {reference} does not resolve"
        );
    }
}

async fn document_covers_every_registered_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    let documented = operations(&doc);
    let registered = registered_routes(&app);
    assert!(
        registered.len() >= 14,
        "the route table looks incomplete: {registered:?}"
    );
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    let phantom: Vec<_> = documented.difference(&registered).collect();
    assert!(
        phantom.is_empty(),
        "/openapi.json documents routes the server does not register: {phantom:?}"
    );
    // The contract's endpoints, named once more so that the table cannot silently lose one.
    for (method, path) in [
        ("POST", "/register"),
        ("POST", "/users"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("POST", "/logout/all"),
        ("GET", "/users/me"),
        ("DELETE", "/users/me"),
        ("PUT", "/users/me/password"),
        ("GET", "/users/me/sessions"),
        ("DELETE", "/users/me/sessions"),
        ("DELETE", "/users/me/sessions/{id}"),
        ("GET", "/users/me/events"),
        ("GET", "/health"),
        ("GET", "/openapi.json"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not documented"
        );
    }
    let limit = doc["paths"]["/users/me/events"]["get"]["parameters"]
        .as_array()
        .and_then(|params| params.iter().find(|p| p["name"] == json!("limit")))
        .unwrap_or_else(|| panic!("GET /users/me/events does not document `limit`"));
    assert_eq!(limit["in"], json!("query"));
    assert_eq!(limit["schema"]["minimum"], json!(1));
    assert_eq!(limit["schema"]["maximum"], json!(200));
}

/// The statuses each kind of operation can answer are all documented, with the error shape.
async fn every_operation_documents_its_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    let problem_schemas = [
        "#/components/schemas/Problem",
        "#/components/schemas/ValidationProblem",
        "#/components/schemas/Unhealthy",
        "#/components/schemas/NotReady",
    ];
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let what = format!("{method} {path}");
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{what} has no responses"));
        let has = |status: &str| responses.contains_key(status);
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what} documents no success"
        );

        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let needs_session = !security.is_empty()
            && security
                .iter()
                .all(|alternative| alternative.get("session_cookie").is_some());
        let has_body = operation.get("requestBody").is_some();
        let changes_state = matches!(method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH");

        let mut expected: Vec<&str> = Vec::new();
        if needs_session {
            expected.extend(["401", "503"]);
        }
        if changes_state {
            // The cross-site check, and a body that is not JSON, on every state-changing route.
            expected.extend(["403", "415", "503"]);
        }
        if has_body {
            expected.extend(["400", "413", "415", "422"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        for status in expected {
            assert!(has(status), "{what} does not document {status}");
        }
        if path == "/register" || path == "/users" {
            for status in ["409", "429"] {
                assert!(has(status), "{what} does not document {status}");
            }
        }
        if path == "/login" {
            assert!(has("401") && has("429"), "{what}: 401 and 429");
        }

        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(
                response["description"].is_string(),
                "{what} {status} has no description"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                let reference = schema["$ref"].as_str().unwrap_or("");
                assert!(
                    problem_schemas.contains(&reference),
                    "{what} {status} is not documented as a JSON problem: {response}"
                );
            }
            if status == "422" {
                let schema = resolve(&doc, &response["content"]["application/json"]["schema"]);
                assert!(
                    schema["required"]
                        .as_array()
                        .is_some_and(|r| r.contains(&json!("field"))),
                    "{what} 422 must require `field`: {schema}"
                );
            }
            if status == "429" || status == "503" {
                assert!(
                    response["headers"].get("Retry-After").is_some(),
                    "{what} {status} does not document Retry-After"
                );
            }
        }
    }

    // Set-Cookie where the cookie is set or cleared.
    for (method, path, status) in [
        ("post", "/login", "200"),
        ("post", "/logout", "200"),
        ("post", "/logout/all", "200"),
        ("put", "/users/me/password", "200"),
        ("delete", "/users/me", "204"),
        ("delete", "/users/me/sessions/{id}", "204"),
    ] {
        let response = resolve(&doc, &doc["paths"][path][method]["responses"][status]);
        assert!(
            response["headers"].get("Set-Cookie").is_some(),
            "{method} {path} {status} does not document Set-Cookie"
        );
    }
    let unauthorized = resolve(&doc, &doc["paths"]["/users/me"]["get"]["responses"]["401"]);
    assert!(unauthorized["headers"].get("Set-Cookie").is_some());
}

/// Each documented operation exists: called without a session and without a body, it answers
/// one of its documented statuses, and neither the unknown-path 404 nor a 405.
async fn every_documented_operation_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    let ops = operations(&doc);
    assert!(!ops.is_empty());
    for (method, path) in ops {
        let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000000");
        let documented = doc["paths"][&path][method.to_lowercase()]["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for url in [concrete.clone(), format!("{concrete}/")] {
            let http_method = Method::from_bytes(method.as_bytes()).unwrap();
            let answer = app.call(http_method, &url, None, None, &[]).await;
            let status = answer.status.as_u16();
            assert!(
                documented.contains_key(&status.to_string()),
                "{method} {url} answered {status}, which the document does not list \
                 (body {:?})",
                answer.text
            );
            assert_ne!(status, 405, "{method} {url}: {}", answer.text);
            if status == 404 {
                assert_ne!(
                    answer.json()["detail"],
                    json!("Not found."),
                    "{method} {url} is documented but the server does not know it"
                );
            }
        }
    }
}

async fn security_scheme_names_the_configured_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    let scheme = &doc["components"]["securitySchemes"]["session_cookie"];
    assert_eq!(scheme["type"], json!("apiKey"), "{scheme}");
    assert_eq!(scheme["in"], json!("cookie"), "{scheme}");
    assert_eq!(scheme["name"], json!(DEFAULT_COOKIE), "{scheme}");
    assert_eq!(
        doc["paths"]["/users/me"]["get"]["security"],
        json!([{ "session_cookie": [] }])
    );
    drop(app);

    let app = spawn_app_with(backend, &[("COOKIE_NAME", "tessera_sid")]).await;
    let doc = fetch_document(&app).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["session_cookie"]["name"],
        json!("tessera_sid")
    );
}

/// Found by schemathesis: PostgreSQL text cannot hold NUL, and such input once reached a query
/// (a 500). A name with NUL is an unknown user; an id with NUL is an unknown session.
async fn nul_bytes_are_not_server_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.user_session("nul_probe").await;

    let answer = app.login("nul\u{0}probe", PASSWORD).await;
    assert_eq!(answer.problem(401)["detail"], json!(BAD_CREDENTIALS));

    let body = json!({ "password": PASSWORD });
    let answer = app.revoke_session(&token, "a%00b", Some(&body)).await;
    assert_eq!(answer.problem(404)["detail"], json!(SESSION_NOT_FOUND));
    let answer = app.revoke_session(&token, "a%00b", None).await;
    assert_eq!(answer.problem(404)["detail"], json!(SESSION_NOT_FOUND));

    app.me_with(&token, &[]).await.expect(200);
}

/// `/metrics` is registered outside `routes::configure` (only where the public port serves it):
/// the document lists it exactly when it answers.
async fn metrics_are_documented_exactly_when_served(backend: Backend) {
    for (enabled, bind, served) in [
        ("true", "public", true),
        ("false", "public", false),
        ("true", "127.0.0.1:0", false),
    ] {
        let app = spawn_app_with(
            backend,
            &[("METRICS_ENABLED", enabled), ("METRICS_BIND_ADDR", bind)],
        )
        .await;
        let doc = fetch_document(&app).await;
        let documented = doc["paths"].get("/metrics").is_some();
        let status = app.get("/metrics").await.status.as_u16();
        assert_eq!(
            status != 404,
            served,
            "METRICS_ENABLED={enabled} METRICS_BIND_ADDR={bind}: GET /metrics answered {status}"
        );
        assert_eq!(
            documented, served,
            "METRICS_ENABLED={enabled} METRICS_BIND_ADDR={bind}: /metrics documented: {documented}, \
             served: {served}"
        );
    }
}
