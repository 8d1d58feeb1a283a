//! `/openapi.json`: the OpenAPI document of this service, generated from the handlers' annotations.

use actix_web::{web, HttpResponse};

use crate::openapi;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    summary = "This document",
    description = "The OpenAPI 3.1 description of this service, generated from its code. The \
        `session_cookie` security scheme names the cookie this instance is configured with, and \
        `/metrics` is listed when this port serves it.",
    responses(
        (status = 200, description = "The OpenAPI document.", content_type = "application/json",
            body = Object),
    ),
    security(()),
)]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi::document(&state.settings))
}
