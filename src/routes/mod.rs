//! The HTTP surface: which handler answers which path and method.

mod account;
mod auth;
mod body;
mod health;
mod me;
mod sessions;
mod views;

use actix_web::{web, Resource};

use crate::error::ApiError;

pub use body::{has_body, is_json_content_type, JsonBody};
pub use views::UserView;

/// Registers every route. Paths are written without a trailing slash; `NormalizePath` in the
/// app makes `/login/` reach `/login`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/register", "POST").route(web::post().to(auth::register)))
        .service(resource("/users", "POST").route(web::post().to(auth::register)))
        .service(resource("/login", "POST").route(web::post().to(auth::login)))
        .service(resource("/logout", "POST").route(web::post().to(auth::logout)))
        .service(resource("/logout/all", "POST").route(web::post().to(auth::logout_all)))
        .service(
            resource("/users/me", "GET, DELETE")
                .route(web::get().to(me::show))
                .route(web::delete().to(account::delete_account)),
        )
        .service(
            resource("/users/me/password", "PUT").route(web::put().to(account::change_password)),
        )
        .service(resource("/users/me/events", "GET").route(web::get().to(account::list_events)))
        .service(
            resource("/users/me/sessions", "GET, DELETE")
                .route(web::get().to(sessions::list))
                .route(web::delete().to(sessions::revoke_others)),
        )
        .service(
            resource("/users/me/sessions/{id}", "DELETE")
                .route(web::delete().to(sessions::revoke_one)),
        )
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
