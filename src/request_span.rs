//! The root span `tracing-actix-web` opens for each request, built so that nothing a client sends
//! can put a secret or a forged address into the logs: the target is the path without its query
//! string (`?access_token=...` stays out), the client IP is the one [`client_ip`] resolves through
//! `TRUSTED_PROXIES` only (`Forwarded` and `X-Forwarded-For` from any other peer are ignored), and
//! the host is the `Host` header itself, not `X-Forwarded-Host`. No other header is recorded.
//!
//! A client error (4xx, such as 401 or 404) is the client's business: it shows in the INFO request
//! line only. A server error (5xx) is also logged at ERROR, with the error's message.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HOST, USER_AGENT};
use actix_web::{web, Error, HttpMessage};
use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::auth::client::client_ip;
use crate::state::AppState;

/// Use as `TracingLogger::<RequestSpan>::new()`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(req: &ServiceRequest) -> Span {
        let route = req.match_pattern().unwrap_or_else(|| "default".to_owned());
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %req.method(),
            http.route = %route,
            http.flavor = ?req.version(),
            http.host = %header_text(req, &HOST),
            http.client_ip = %client(req),
            http.user_agent = %header_text(req, &USER_AGENT),
            http.target = %req.path(),
            http.status_code = Empty,
            otel.name = %format!("{} {route}", req.method()),
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(res) => (
                res.status(),
                res.response().error().map(ToString::to_string),
            ),
            Err(err) => (err.as_response_error().status_code(), Some(err.to_string())),
        };
        span.record("http.status_code", status.as_u16());
        let failed = status.is_server_error();
        span.record("otel.status_code", if failed { "ERROR" } else { "OK" });
        if let Some(message) = &error {
            span.record("exception.message", message.as_str());
        }
        if failed {
            tracing::error!(
                parent: &span,
                status = status.as_u16(),
                error = error.as_deref().unwrap_or(""),
                "server error"
            );
        }
    }
}

/// The client as the rest of the service sees it; empty when the peer is unknown.
fn client(req: &ServiceRequest) -> String {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.trusted_proxies.as_slice())
        .unwrap_or_default();
    req.peer_addr()
        .map(|peer| client_ip(peer.ip(), req.headers(), trusted).to_string())
        .unwrap_or_default()
}

fn header_text<'a>(req: &'a ServiceRequest, name: &HeaderName) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use actix_web::{test, App, HttpResponse};
    use tracing_actix_web::TracingLogger;
    use tracing_subscriber::fmt::format::FmtSpan;

    use super::*;
    use crate::error::ApiError;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn the_span_has_no_query_no_forged_address_and_only_5xx_above_info() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route(
                    "/private",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::NotAuthenticated { clear_cookie: None })
                    }),
                )
                .route(
                    "/fail",
                    web::get()
                        .to(|| async { Err::<HttpResponse, _>(ApiError::Internal("boom".into())) }),
                )
                .wrap(TracingLogger::<RequestSpan>::new()),
        )
        .await;
        for (uri, status) in [
            ("/private?access_token=s3cret", 401),
            ("/nowhere?password=s3cret", 404),
            ("/fail?key=s3cret", 500),
        ] {
            let req = test::TestRequest::get()
                .uri(uri)
                .peer_addr("[::ffff:192.0.2.10]:4000".parse().unwrap())
                .insert_header(("x-forwarded-for", "198.51.100.66"))
                .insert_header(("forwarded", "for=198.51.100.67;host=forged.example"))
                .insert_header(("x-forwarded-host", "forged.example"))
                .insert_header(("x-api-key", "s3cret"))
                .to_request();
            assert_eq!(test::call_service(&app, req).await.status(), status);
        }

        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for leaked in ["s3cret", "198.51.100.", "forged.example", "::ffff:"] {
            assert!(!log.contains(leaked), "`{leaked}` is in the log:\n{log}");
        }
        for (target, status) in [("/private", 401), ("/nowhere", 404), ("/fail", 500)] {
            assert!(
                log.lines().any(|line| line.contains(&format!(
                    "http.client_ip=192.0.2.10 http.user_agent= http.target={target} "
                )) && line.contains(&format!("http.status_code={status}"))),
                "no closed span for {target} with status {status}:\n{log}"
            );
        }
        let loud: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .collect();
        assert!(
            loud.iter().all(|line| line.contains("http.target=/fail ")),
            "only the 500 is above INFO:\n{log}"
        );
        assert!(
            loud.iter()
                .any(|line| line.contains(" ERROR ") && line.contains("server error")),
            "the 500 is logged at ERROR:\n{log}"
        );
    }
}
