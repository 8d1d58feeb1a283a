//! Building the application: the database (connected and migrated), the listener, and the actix
//! `App` with its middleware. Taking the address from the settings (port 0 in tests) lets the
//! integration tests run the real server.

use std::io;
use std::net::TcpListener;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{
    from_fn, DefaultHeaders, ErrorHandlers, Next, NormalizePath, TrailingSlash,
};
use actix_web::HttpMessage;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::session::resend_renewed_cookie;
use crate::config::{ConfigError, Settings};
use crate::csrf::refuse_cross_site;
use crate::db::breaker::Breaker;
use crate::db::migrations;
use crate::db::pool::{build_pool, StartupDbError};
use crate::error::json_error_handler;
use crate::request_span::RequestSpan;
use crate::routes;
use crate::state::AppState;

/// Why the server could not start; each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("database error: DATABASE_URL ({target}): {source}")]
    Database {
        target: String,
        source: StartupDbError,
    },
    /// `var` is `BIND_ADDR` or `METRICS_BIND_ADDR`.
    #[error("cannot listen on {var} {addr}: {source}")]
    Bind {
        var: &'static str,
        addr: String,
        source: io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] io::Error),
    /// A command named something that does not exist (a user, say).
    #[error("{0}")]
    Usage(String),
}

impl StartupError {
    /// 2 for bad configuration, 3 when the database cannot be reached or migrated, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::Database { .. } => 3,
            Self::Bind { .. } | Self::Io(_) => 1,
            Self::Usage(_) => 4,
        }
    }
}

/// A server ready to run.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on `METRICS_BIND_ADDR`, unless that is `public` or metrics are off.
    metrics_server: Option<(Server, u16)>,
}

impl Application {
    /// Connects to the database, applies migrations, binds `BIND_ADDR` and prepares the server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool_settings = settings.clone();
        let breaker = Breaker::new(settings.database.clone());
        let pool_breaker = breaker.clone();
        let pool =
            web::block(move || build_pool(&pool_settings, &pool_breaker, migrations::run_pending))
                .await
                .map_err(|e| StartupError::Io(io::Error::other(e.to_string())))?
                .map_err(|source| StartupError::Database {
                    target: settings.database.redacted(),
                    source,
                })?;

        let listener =
            TcpListener::bind(&settings.bind_addr).map_err(|source| StartupError::Bind {
                var: "BIND_ADDR",
                addr: settings.bind_addr.clone(),
                source,
            })?;
        let addr = listener.local_addr()?;

        let state = web::Data::new(AppState::new(pool, breaker, &settings));
        crate::auth::sync::spawn(&state.session_cache, &settings)?;
        crate::purge::spawn_background(
            state.pool().clone(),
            state.breaker.clone(),
            settings.clone(),
            state.metrics.clone(),
        );
        let metrics_apart = match (&settings.metrics_bind_addr, settings.metrics_enabled) {
            (Some(metrics_addr), true) => Some(metrics_server(metrics_addr, state.clone())?),
            _ => None,
        };
        let metrics_here = routes::serves_metrics(&settings);
        let origins = settings.allowed_origins.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if metrics_here {
                        routes::configure_metrics(cfg);
                    }
                })
                .default_service(web::to(routes::not_found))
                .wrap(from_fn(resend_renewed_cookie))
                .wrap(from_fn(refuse_cross_site))
                .wrap(cors(&origins))
                .wrap(ErrorHandlers::new().default_handler(json_error_handler))
                .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
                .wrap(from_fn(crate::metrics::record_request))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(log_request))
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .workers(settings.workers)
        .listen(listener)?
        .run();

        tracing::info!(%addr, database = %settings.database.redacted(), "tessera listening");
        Ok(Self {
            port: addr.port(),
            server,
            metrics_server: metrics_apart,
        })
    }

    /// The port of the separate `/metrics` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM), finishing in-flight requests.
    /// Only the main server handles the signals (actix stops the whole process once a server that
    /// got one has stopped, so an idle metrics listener would cut the API's in-flight requests
    /// short); the metrics listener stops when the main server has.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        match self.metrics_server {
            Some((metrics, _)) => {
                let metrics_handle = metrics.handle();
                let main = async move {
                    let result = self.server.await;
                    metrics_handle.stop(true).await;
                    result
                };
                let (main, metrics) = futures_util::future::join(main, metrics).await;
                main.and(metrics)
            }
            None => self.server.await,
        }
    }
}

/// `/metrics` alone on its own address, so it can stay off the public port.
fn metrics_server(addr: &str, state: web::Data<AppState>) -> Result<(Server, u16), StartupError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
        var: "METRICS_BIND_ADDR",
        addr: addr.to_owned(),
        source,
    })?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure_metrics)
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, port))
}

/// Credentials are allowed, so origins must be listed exactly; any other origin gets no
/// `Access-Control-Allow-Origin`.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_header(header::CONTENT_TYPE)
        .supports_credentials()
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// One line per request: method, path (no query string, which could carry secrets), status, time.
async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(value) = request_id.and_then(|id| header::HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    tracing::info!(
        %method,
        %path,
        status = res.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}
