//! Prometheus metrics: requests by route and status with latency, logins, sessions, the session
//! cache, the pool, the database circuit breaker and the argon2 queue. Counters are bumped where things happen; gauges are read at scrape time
//! (the active-session count at most every few seconds, so scraping stays cheap).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::db::events::EventKind;
use crate::state::AppState;

/// How long a counted number of active sessions is reused.
const ACTIVE_SESSIONS_MAX_AGE: Duration = Duration::from_secs(5);

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    logins: IntCounterVec,
    sessions: IntCounterVec,
    active_sessions: IntGauge,
    pool: IntGaugeVec,
    argon2_queue: IntGauge,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    cache_entries: IntGauge,
    circuit_open: IntGauge,
    active_counted_at: Mutex<Option<Instant>>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".into()), None).unwrap_or_default();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new(
                "logins_total",
                "Login attempts by outcome (succeeded, failed, throttled)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let sessions = IntCounterVec::new(
            Opts::new(
                "sessions_total",
                "Session lifecycle events (created, revoked, expired)",
            ),
            &["event"],
        )
        .expect("valid metric");
        let active_sessions = IntGauge::new(
            "active_sessions",
            "Sessions that are active and not past expiry",
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (in_use, idle)",
            ),
            &["state"],
        )
        .expect("valid metric");
        let argon2_queue =
            IntGauge::new("argon2_queue_depth", "Password hashes waiting or running")
                .expect("valid metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "session_cache_lookups_total",
                "Session verifications answered from memory (hit) or by the database (miss)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cache_entries = IntGauge::new("session_cache_entries", "Sessions held in memory")
            .expect("valid metric");
        let circuit_open = IntGauge::new(
            "db_circuit_open",
            "1 while the database is unreachable and requests are answered 503 at once, else 0",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(sessions.clone()),
            Box::new(active_sessions.clone()),
            Box::new(pool.clone()),
            Box::new(argon2_queue.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(cache_entries.clone()),
            Box::new(circuit_open.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        for outcome in ["succeeded", "failed", "throttled"] {
            logins.with_label_values(&[outcome]);
        }
        for event in ["created", "revoked", "expired"] {
            sessions.with_label_values(&[event]);
        }
        Self {
            registry,
            requests,
            latency,
            logins,
            sessions,
            active_sessions,
            pool,
            argon2_queue,
            cache_hits: cache_lookups.with_label_values(&["hit"]),
            cache_misses: cache_lookups.with_label_values(&["miss"]),
            cache_entries,
            circuit_open,
            active_counted_at: Mutex::new(None),
        }
    }

    /// Counts what an audit event says happened.
    pub fn observe(&self, kind: EventKind) {
        match kind {
            EventKind::Login => {
                self.logins.with_label_values(&["succeeded"]).inc();
                self.sessions.with_label_values(&["created"]).inc();
            }
            EventKind::LoginFailed => self.logins.with_label_values(&["failed"]).inc(),
            EventKind::LoginThrottled => self.logins.with_label_values(&["throttled"]).inc(),
            EventKind::Logout | EventKind::SessionRevoked => {
                self.sessions.with_label_values(&["revoked"]).inc()
            }
            EventKind::SessionExpired => self.sessions.with_label_values(&["expired"]).inc(),
            _ => {}
        }
    }

    /// One session verification, answered from memory (`hit`) or not.
    pub fn session_cache(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// Sessions found past expiry by the purge.
    pub fn expired(&self, n: usize) {
        self.sessions
            .with_label_values(&["expired"])
            .inc_by(n as u64);
    }

    fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    fn active_sessions_stale(&self) -> bool {
        let mut counted = self
            .active_counted_at
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *counted {
            Some(at) if at.elapsed() < ACTIVE_SESSIONS_MAX_AGE => false,
            _ => {
                *counted = Some(Instant::now());
                true
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: one count and one latency sample per request, labelled by the matched route
/// pattern (never the raw path, which would make a label per session id).
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let res = next.call(req).await?;
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state.metrics.observe_request(
            res.request().method().as_str(),
            &route,
            res.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(res)
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    let pool = state.pool().state();
    m.pool
        .with_label_values(&["in_use"])
        .set(i64::from(pool.connections - pool.idle_connections));
    m.pool
        .with_label_values(&["idle"])
        .set(i64::from(pool.idle_connections));
    m.argon2_queue.set(state.hasher.in_flight() as i64);
    m.cache_entries.set(state.session_cache.len() as i64);
    m.circuit_open.set(i64::from(state.breaker.is_open()));
    if m.active_sessions_stale() {
        match state
            .db(|conn| crate::db::sessions::count_active(conn, crate::db::now()))
            .await
        {
            Ok(n) => m.active_sessions.set(n),
            Err(error) => tracing::warn!(%error, "metrics: cannot count active sessions"),
        }
    }
    let mut body = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&m.registry.gather(), &mut body) {
        tracing::error!(%error, "metrics: encoding failed");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
