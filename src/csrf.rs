//! Cross-site request refusal for state-changing methods, before any handler runs.
//!
//! Cookies ride along on cross-site requests, so POST, PUT, PATCH and DELETE are refused (403)
//! when `Origin` names a site that is neither this service nor in `ALLOWED_ORIGINS`, or, without
//! `Origin`, when the browser says `Sec-Fetch-Site: cross-site`. A body must be JSON (415), which
//! an HTML form cannot send. Clients that send neither header (curl, test suites) pass.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use crate::routes::{has_body, is_json_content_type};
use crate::state::AppState;

pub async fn refuse_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            check(&req, state)?;
        }
    }
    next.call(req).await
}

fn check(req: &ServiceRequest, state: &AppState) -> Result<(), ApiError> {
    let headers = req.headers();
    match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(origin) => {
            if !is_same_origin(origin, req, state)
                && !state.settings.allowed_origins.iter().any(|o| o == origin)
            {
                return Err(ApiError::Forbidden(format!(
                    "Cross-site request refused: origin {origin} is not allowed."
                )));
            }
        }
        None => {
            let cross_site = headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
            if cross_site {
                return Err(ApiError::Forbidden(
                    "Cross-site request refused: Sec-Fetch-Site is cross-site.".into(),
                ));
            }
        }
    }
    if has_body(req.head()) {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_content_type);
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// `PUBLIC_ORIGIN` when configured; otherwise the origin's host[:port] must be the `Host` the
/// request was sent to.
fn is_same_origin(origin: &str, req: &ServiceRequest, state: &AppState) -> bool {
    if let Some(public) = &state.settings.public_origin {
        return origin.eq_ignore_ascii_case(public);
    }
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    let host_without_default_port = match url.scheme() {
        "http" => host.strip_suffix(":80").unwrap_or(host),
        "https" => host.strip_suffix(":443").unwrap_or(host),
        _ => host,
    };
    matches!(url.scheme(), "http" | "https")
        && authority.eq_ignore_ascii_case(host_without_default_port)
}
