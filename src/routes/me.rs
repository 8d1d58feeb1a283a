//! `/users/me`: the signed-in user.

use actix_web::HttpResponse;

use super::views::UserView;
use crate::auth::CurrentSession;
use crate::error::no_store;
use crate::openapi::{Unauthorized, Unavailable};

#[utoipa::path(
    get,
    path = "/users/me",
    operation_id = "me",
    tag = "account",
    summary = "Who am I",
    description = "The signed-in user.",
    responses(
        (status = 200, description = "The signed-in user.", body = UserView,
            headers(
                ("Set-Cookie" = String, description = "Sent when the session was renewed"),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("session_cookie" = [])),
)]
pub async fn show(current: CurrentSession) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(UserView::from(&current.user))
}
