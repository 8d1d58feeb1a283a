//! `/health`: whether the service and its database answer.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

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
