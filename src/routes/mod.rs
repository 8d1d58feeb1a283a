//! The HTTP surface: which handler answers which path and method.
//!
//! [`ROUTES`] is the one list of endpoints: [`configure`] registers exactly these, and the
//! OpenAPI document (`crate::openapi`) is checked against it by the tests, so a route cannot exist
//! without being documented. Each handler carries its `#[utoipa::path]` annotation.

pub(crate) mod account;
pub(crate) mod auth;
mod body;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod me;
pub(crate) mod metrics;
pub(crate) mod sessions;
mod views;

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::{web, Route};

use crate::config::Settings;
use crate::error::ApiError;

pub use body::{has_body, is_json_content_type, JsonBody};
pub use views::{LoggedOut, Revoked, UserView};

/// One method on one path, and the handler that answers it.
pub struct Endpoint {
    pub method: Method,
    /// actix path pattern, without a trailing slash (`NormalizePath` makes `/login/` reach
    /// `/login`); `{name}` segments are the same in actix and OpenAPI.
    pub path: &'static str,
    route: fn() -> Route,
}

/// Every endpoint of the service. Add a route here, annotate its handler with
/// `#[utoipa::path]` and list it in `crate::openapi::ApiDoc`; the tests fail if one is missing.
pub static ROUTES: &[Endpoint] = &[
    Endpoint {
        method: Method::POST,
        path: "/register",
        route: || web::to(auth::register_user),
    },
    Endpoint {
        method: Method::POST,
        path: "/users",
        route: || web::to(auth::create_user),
    },
    Endpoint {
        method: Method::POST,
        path: "/login",
        route: || web::to(auth::login),
    },
    Endpoint {
        method: Method::POST,
        path: "/logout",
        route: || web::to(auth::logout),
    },
    Endpoint {
        method: Method::POST,
        path: "/logout/all",
        route: || web::to(auth::logout_all),
    },
    Endpoint {
        method: Method::GET,
        path: "/users/me",
        route: || web::to(me::show),
    },
    Endpoint {
        method: Method::DELETE,
        path: "/users/me",
        route: || web::to(account::delete_account),
    },
    Endpoint {
        method: Method::PUT,
        path: "/users/me/password",
        route: || web::to(account::change_password),
    },
    Endpoint {
        method: Method::GET,
        path: "/users/me/events",
        route: || web::to(account::list_events),
    },
    Endpoint {
        method: Method::GET,
        path: "/users/me/sessions",
        route: || web::to(sessions::list),
    },
    Endpoint {
        method: Method::DELETE,
        path: "/users/me/sessions",
        route: || web::to(sessions::revoke_others),
    },
    Endpoint {
        method: Method::DELETE,
        path: "/users/me/sessions/{id}",
        route: || web::to(sessions::revoke_one),
    },
    Endpoint {
        method: Method::GET,
        path: "/health",
        route: || web::to(health::check),
    },
    Endpoint {
        method: Method::GET,
        path: "/health/live",
        route: || web::to(health::live),
    },
    Endpoint {
        method: Method::GET,
        path: "/health/ready",
        route: || web::to(health::ready),
    },
    Endpoint {
        method: Method::GET,
        path: "/openapi.json",
        route: || web::to(docs::openapi_json),
    },
];

/// `GET /metrics`, on the public port only when [`serves_metrics`] says so.
pub static METRICS_ROUTE: Endpoint = Endpoint {
    method: Method::GET,
    path: "/metrics",
    route: || web::to(metrics::metrics),
};

/// Whether the public port serves [`METRICS_ROUTE`]: metrics on, and `METRICS_BIND_ADDR=public`
/// (by default they have a loopback listener of their own).
pub fn serves_metrics(settings: &Settings) -> bool {
    settings.metrics_enabled && settings.metrics_bind_addr.is_none()
}

/// Every endpoint the public port serves with these settings.
pub fn endpoints(settings: &Settings) -> Vec<&'static Endpoint> {
    let mut all: Vec<&'static Endpoint> = ROUTES.iter().collect();
    if serves_metrics(settings) {
        all.push(&METRICS_ROUTE);
    }
    all
}

/// Registers every route of [`ROUTES`], one resource per path; other methods on a known path get
/// a JSON 405 naming the allowed ones.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ROUTES.iter());
}

/// Registers [`METRICS_ROUTE`] (the application calls it when [`serves_metrics`], and the metrics
/// listener of `METRICS_BIND_ADDR` always).
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    register(cfg, std::iter::once(&METRICS_ROUTE));
}

fn register<'a>(cfg: &mut web::ServiceConfig, endpoints: impl Iterator<Item = &'a Endpoint>) {
    let endpoints: Vec<&Endpoint> = endpoints.collect();
    let allow = allow_headers();
    let mut seen: Vec<&str> = Vec::new();
    for path in endpoints.iter().map(|e| e.path) {
        if seen.contains(&path) {
            continue;
        }
        seen.push(path);
        let allow: &'static str = allow[path];
        let mut resource = web::resource(path).default_service(web::to(move || async move {
            Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow })
        }));
        for endpoint in endpoints.iter().filter(|e| e.path == path) {
            resource = resource.route((endpoint.route)().method(endpoint.method.clone()));
        }
        cfg.service(resource);
    }
}

/// `Allow` of each path (`"GET, DELETE"`), in the order of [`ROUTES`]; built once per process.
fn allow_headers() -> &'static HashMap<&'static str, &'static str> {
    static ALLOW: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    ALLOW.get_or_init(|| {
        let mut methods: HashMap<&'static str, Vec<&str>> = HashMap::new();
        for endpoint in ROUTES.iter().chain(std::iter::once(&METRICS_ROUTE)) {
            methods
                .entry(endpoint.path)
                .or_default()
                .push(endpoint.method.as_str());
        }
        methods
            .into_iter()
            .map(|(path, list)| {
                let allow: &'static str = Box::leak(list.join(", ").into_boxed_str());
                (path, allow)
            })
            .collect()
    })
}

/// Answers paths that match no route.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
