//! `/metrics` on the public port: the Prometheus exposition of `crate::metrics`, documented here.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    summary = "Prometheus metrics",
    description = "Counters, histograms and gauges in the Prometheus text format. Served here when \
        `METRICS_ENABLED` is on and `METRICS_BIND_ADDR` is unset (this path is then in the document); \
        with `METRICS_BIND_ADDR` it is served on that address instead.",
    responses(
        (status = 200, description = "The Prometheus text exposition format 0.0.4.",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
    ),
    security(()),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::render(state).await
}
