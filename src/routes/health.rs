//! `/health`: whether the service and its database answer; `/health/live` (the process is up, for
//! a liveness probe) and `/health/ready` (the database answers and is migrated, for a readiness
//! probe).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::breaker::is_connection_lost;
use crate::db::{migrations, DbError};
use crate::error::no_store;
use crate::state::AppState;

/// `{"status": "ok", "database": "ok"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "database": "ok"}))]
pub struct Healthy {
    /// `ok`
    #[schema(pattern = "^ok$")]
    status: &'static str,
    /// `ok`
    #[schema(pattern = "^ok$")]
    database: &'static str,
}

/// The error shape, with `status` and `database` saying what is down.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Service Unavailable", "status": "error",
    "database": "unavailable", "detail": "The database is not answering."}))]
pub struct Unhealthy {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    /// `error`
    #[schema(pattern = "^error$")]
    status: &'static str,
    /// `unavailable`
    #[schema(pattern = "^unavailable$")]
    database: &'static str,
    detail: &'static str,
}

#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "meta",
    summary = "Health check",
    description = "Whether the service and its database answer. Needs no session.",
    responses(
        (status = 200, description = "The service and its database answer.", body = Healthy),
        (status = 503, description = "The database does not answer.", body = Unhealthy,
            headers(("Retry-After" = i64, description = "Seconds to wait before trying again"))),
    ),
    security(()),
)]
pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    match state.db(|conn| conn.batch_execute("SELECT 1")).await {
        Ok(()) => HttpResponse::Ok().json(Healthy {
            status: "ok",
            database: "ok",
        }),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            HttpResponse::build(status)
                .insert_header((header::RETRY_AFTER, "5"))
                .json(Unhealthy {
                    kind: "about:blank",
                    title: status.canonical_reason().unwrap_or("Service Unavailable"),
                    status: "error",
                    database: "unavailable",
                    detail: "The database is not answering.",
                })
        }
    }
}

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Alive {
    /// `ok`
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// `{"status": "ok", "database": "ok", "migrations": "ok"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "database": "ok", "migrations": "ok"}))]
pub struct Ready {
    /// `ok`
    #[schema(pattern = "^ok$")]
    status: &'static str,
    /// `ok`
    #[schema(pattern = "^ok$")]
    database: &'static str,
    /// `ok`
    #[schema(pattern = "^ok$")]
    migrations: &'static str,
}

/// The error shape (`Problem`), with `database` and `migrations` saying what is not ready.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Service Unavailable", "status": 503,
    "detail": "The database is not answering.", "database": "unavailable", "migrations": "unknown"}))]
pub struct NotReady {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `Service Unavailable`.
    title: &'static str,
    /// `503`.
    #[schema(minimum = 503, maximum = 503)]
    status: u16,
    /// What is not ready.
    detail: String,
    /// `ok` or `unavailable` (the database does not answer).
    #[schema(pattern = "^(ok|unavailable)$")]
    database: &'static str,
    /// `ok`, `pending` (the database lacks migrations this binary embeds) or `unknown` (they
    /// could not be read).
    #[schema(pattern = "^(ok|pending|unknown)$")]
    migrations: &'static str,
}

#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "meta",
    summary = "Liveness probe",
    description = "200 whenever the process serves HTTP; never touches the database, so a database \
        outage does not make an orchestrator restart the service. Needs no session.",
    responses(
        (status = 200, description = "The process is up.", body = Alive),
    ),
    security(()),
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(Alive { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "meta",
    summary = "Readiness probe",
    description = "200 when the database answers and has every migration this binary embeds \
        applied; 503 otherwise, so a load balancer sends no traffic here meanwhile. Needs no session.",
    responses(
        (status = 200, description = "Ready: the database answers and is migrated.", body = Ready),
        (status = 503, description = "Not ready: the database does not answer, or lacks migrations.",
            body = NotReady,
            headers(("Retry-After" = i64, description = "Seconds to wait before trying again"))),
    ),
    security(()),
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let not_ready = |detail: String, database, migrations| {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        HttpResponse::build(status)
            .insert_header((header::RETRY_AFTER, "5"))
            .insert_header(no_store())
            .json(NotReady {
                kind: "about:blank",
                title: status.canonical_reason().unwrap_or("Service Unavailable"),
                status: status.as_u16(),
                detail,
                database,
                migrations,
            })
    };
    match state.db(migrations::pending).await {
        Ok(pending) if pending.is_empty() => {
            HttpResponse::Ok().insert_header(no_store()).json(Ready {
                status: "ok",
                database: "ok",
                migrations: "ok",
            })
        }
        Ok(pending) => {
            tracing::warn!(?pending, "readiness: migrations not applied");
            not_ready(
                format!("Migrations not applied: {}.", pending.join(", ")),
                "ok",
                "pending",
            )
        }
        Err(DbError::Query(error)) if !is_connection_lost(&error) => {
            tracing::warn!(%error, "readiness: cannot read the applied migrations");
            not_ready(
                "The applied migrations cannot be read.".to_owned(),
                "ok",
                "unknown",
            )
        }
        Err(error) => {
            tracing::debug!(%error, "readiness: database unavailable");
            not_ready(
                "The database is not answering.".to_owned(),
                "unavailable",
                "unknown",
            )
        }
    }
}
