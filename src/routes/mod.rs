//! The HTTP surface: which handler answers which path and method.

mod auth;
mod body;
mod health;
mod me;
mod views;

use actix_web::{web, Resource};

use crate::error::ApiError;

pub use body::JsonBody;
pub use views::UserView;

/// Registers every route. Paths are written without a trailing slash; `NormalizePath` in the
/// app makes `/login/` reach `/login`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/register", "POST").route(web::post().to(auth::register)))
        .service(resource("/users", "POST").route(web::post().to(auth::register)))
        .service(resource("/login", "POST").route(web::post().to(auth::login)))
        .service(resource("/logout", "POST").route(web::post().to(auth::logout)))
        .service(resource("/users/me", "GET").route(web::get().to(me::show)))
        .service(resource("/health", "GET").route(web::get().to(health::check)));
}

/// A resource whose other methods get a JSON 405 naming the allowed ones.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    }))
}

/// Answers paths that match no route.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
