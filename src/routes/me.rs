//! `/users/me`: the signed-in user.

use actix_web::HttpResponse;

use super::views::UserView;
use crate::auth::CurrentSession;
use crate::error::no_store;

pub async fn show(current: CurrentSession) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(UserView::from(&current.user))
}
