//! `/metrics`: the Prometheus exposition of `crate::metrics`, documented here; served on its own
//! loopback listener by default, on the public port only with `METRICS_BIND_ADDR=public`.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    summary = "Prometheus metrics",
    description = "Counters, histograms and gauges in the Prometheus text format. Served on this \
        port only when `METRICS_ENABLED` is on and `METRICS_BIND_ADDR=public` (this path is then in \
        the document); otherwise on the separate `METRICS_BIND_ADDR` listener (by default \
        `127.0.0.1:9464`), and this port answers 404.",
    responses(
        (status = 200, description = "The Prometheus text exposition format 0.0.4.",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
    ),
    security(()),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::render(state).await
}
