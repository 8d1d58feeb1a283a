//! `/health`: whether the service and its database answer.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::error::problem;
use crate::state::AppState;

pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    match state.db(|conn| conn.batch_execute("SELECT 1")).await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok", "database": "ok"})),
        Err(error) => {
            tracing::warn!(%error, "health check: database unavailable");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let mut body = problem(status, "The database is not answering.");
            body["status"] = json!("error");
            body["database"] = json!("unavailable");
            HttpResponse::build(status)
                .insert_header(("Retry-After", "5"))
                .json(body)
        }
    }
}
