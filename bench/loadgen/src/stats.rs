//! Counters and latencies, kept per worker without locks and merged at the end, and the checks
//! the caller asked for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::http::Outcome;

const MAX_SAMPLES: usize = 40;
/// Samples of one kind (5xx status, transport error) kept per endpoint: enough to read, few enough
/// to leave room for the others.
const SAMPLES_PER_KIND: u64 = 3;
const KIND_TRANSPORT: u16 = 0;
const KIND_LOCKED: u16 = 1;
const KIND_NO_DETAIL: u16 = 2;

/// Whether this is one of the first few samples of its kind for this endpoint.
fn first_few(
    seen: &mut BTreeMap<(&'static str, u16), u64>,
    label: &'static str,
    kind: u16,
) -> bool {
    let n = seen.entry((label, kind)).or_default();
    *n += 1;
    *n <= SAMPLES_PER_KIND
}
const LOCKED: &[u8] = b"database is locked";

#[derive(Default)]
struct Endpoint {
    /// Microseconds, one per request that got an answer.
    latencies_us: Vec<u32>,
    status: BTreeMap<u16, u64>,
    transport_errors: u64,
    timeouts: u64,
    locked: u64,
    missing_detail: u64,
}

/// One second of the run.
#[derive(Default, Clone, Copy)]
struct Bucket {
    ok: u64,
    client_errors: u64,
    server_errors: u64,
    unavailable: u64,
    transport_errors: u64,
    timeouts: u64,
    max_us: u32,
}

pub struct Stats {
    start: Instant,
    endpoints: BTreeMap<&'static str, Endpoint>,
    unexpected: u64,
    /// Lines explaining failures, with the (endpoint, kind) of those capped per kind.
    samples: Vec<(Option<(&'static str, u16)>, String)>,
    /// Samples taken so far per (endpoint, kind): a 5xx status or one of the `KIND_` values.
    sampled: BTreeMap<(&'static str, u16), u64>,
    timeline: Option<Vec<Bucket>>,
    /// The latency of every 503 answer, all endpoints together (how fast the service refuses
    /// while its database is away).
    unavailable_us: Vec<u32>,
}

impl Stats {
    pub fn new(start: Instant, timeline: bool) -> Self {
        Self {
            start,
            endpoints: BTreeMap::new(),
            unexpected: 0,
            samples: Vec::new(),
            sampled: BTreeMap::new(),
            timeline: timeline.then(Vec::new),
            unavailable_us: Vec::new(),
        }
    }

    /// Keeps a few lines that explain failures (the first ones of each run).
    pub fn sample(&mut self, line: String) {
        self.keep(None, line);
    }

    fn keep(&mut self, key: Option<(&'static str, u16)>, line: String) {
        let room = self.samples.len() < MAX_SAMPLES;
        let kind_room = key.is_none_or(|k| {
            (self
                .samples
                .iter()
                .filter(|(other, _)| *other == Some(k))
                .count() as u64)
                < SAMPLES_PER_KIND
        });
        if room && kind_room {
            self.samples.push((key, line));
        }
    }

    /// A response that contradicts what the client knows (a live session refused, an ended one
    /// accepted, a revocation that ended fewer sessions than exist, ...).
    pub fn unexpected(&mut self, line: String) {
        self.unexpected += 1;
        self.sample(format!("unexpected: {line}"));
    }

    pub fn record(&mut self, label: &'static str, elapsed: Duration, outcome: &Outcome) {
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        let ep = self.endpoints.entry(label).or_default();
        let seen = &mut self.sampled;
        let mut sample = None;
        match outcome {
            Outcome::Response { status, body, .. } => {
                ep.latencies_us.push(us);
                if *status == 503 {
                    self.unavailable_us.push(us);
                }
                *ep.status.entry(*status).or_default() += 1;
                if contains(body, LOCKED) {
                    ep.locked += 1;
                    if first_few(seen, label, KIND_LOCKED) {
                        sample =
                            Some((KIND_LOCKED, format!("{label}: {status} {}", excerpt(body))));
                    }
                }
                if *status >= 400 && !has_detail(body) {
                    ep.missing_detail += 1;
                    if first_few(seen, label, KIND_NO_DETAIL) {
                        sample = Some((
                            KIND_NO_DETAIL,
                            format!("{label}: {status} without a JSON detail: {}", excerpt(body)),
                        ));
                    }
                }
                if *status >= 500 && sample.is_none() && first_few(seen, label, *status) {
                    sample = Some((*status, format!("{label}: {status} {}", excerpt(body))));
                }
            }
            Outcome::Timeout => ep.timeouts += 1,
            Outcome::Transport(why) => {
                ep.transport_errors += 1;
                if first_few(seen, label, KIND_TRANSPORT) {
                    sample = Some((KIND_TRANSPORT, format!("{label}: transport error: {why}")));
                }
            }
        }
        if let Some((kind, line)) = sample {
            self.keep(Some((label, kind)), line);
        }
        if let Some(timeline) = &mut self.timeline {
            let second = self.start.elapsed().as_secs() as usize;
            if timeline.len() <= second {
                timeline.resize(second + 1, Bucket::default());
            }
            let b = &mut timeline[second];
            match outcome.status() {
                Some(503) => b.unavailable += 1,
                Some(s) if s >= 500 => b.server_errors += 1,
                Some(s) if s >= 400 => b.client_errors += 1,
                Some(_) => b.ok += 1,
                None if matches!(outcome, Outcome::Timeout) => b.timeouts += 1,
                None => b.transport_errors += 1,
            }
            b.max_us = b.max_us.max(us);
        }
    }

    pub fn merge(&mut self, other: Stats) {
        for (label, theirs) in other.endpoints {
            let ours = self.endpoints.entry(label).or_default();
            ours.latencies_us.extend(theirs.latencies_us);
            for (status, n) in theirs.status {
                *ours.status.entry(status).or_default() += n;
            }
            ours.transport_errors += theirs.transport_errors;
            ours.timeouts += theirs.timeouts;
            ours.locked += theirs.locked;
            ours.missing_detail += theirs.missing_detail;
        }
        self.unexpected += other.unexpected;
        self.unavailable_us.extend(other.unavailable_us);
        for (key, line) in other.samples {
            self.keep(key, line);
        }
        if let (Some(ours), Some(theirs)) = (&mut self.timeline, other.timeline) {
            if ours.len() < theirs.len() {
                ours.resize(theirs.len(), Bucket::default());
            }
            for (a, b) in ours.iter_mut().zip(theirs) {
                a.ok += b.ok;
                a.client_errors += b.client_errors;
                a.server_errors += b.server_errors;
                a.unavailable += b.unavailable;
                a.transport_errors += b.transport_errors;
                a.timeouts += b.timeouts;
                a.max_us = a.max_us.max(b.max_us);
            }
        }
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for ep in self.endpoints.values() {
            t.responses += ep.latencies_us.len() as u64;
            t.transport_errors += ep.transport_errors;
            t.timeouts += ep.timeouts;
            t.locked += ep.locked;
            t.missing_detail += ep.missing_detail;
            t.max_us = t
                .max_us
                .max(ep.latencies_us.iter().copied().max().unwrap_or(0));
            for (&status, &n) in &ep.status {
                *t.status.entry(status).or_default() += n;
                if status >= 500 {
                    t.server_errors += n;
                }
            }
        }
        t.unexpected = self.unexpected;
        t
    }

    /// The JSON summary of everything recorded (sorts the latencies).
    pub fn summarize(&mut self, elapsed: Duration) -> Map<String, Value> {
        let totals = self.totals();
        let mut all: Vec<u32> = Vec::new();
        let mut endpoints = Map::new();
        for (label, ep) in &mut self.endpoints {
            ep.latencies_us.sort_unstable();
            all.extend_from_slice(&ep.latencies_us);
            let requests = ep.latencies_us.len() as u64 + ep.transport_errors + ep.timeouts;
            endpoints.insert(
                (*label).to_owned(),
                json!({
                    "requests": requests,
                    "status": status_map(&ep.status),
                    "transport_errors": ep.transport_errors,
                    "timeouts": ep.timeouts,
                    "database_locked": ep.locked,
                    "missing_detail": ep.missing_detail,
                    "p50_ms": ms(percentile(&ep.latencies_us, 0.50)),
                    "p99_ms": ms(percentile(&ep.latencies_us, 0.99)),
                    "max_ms": ms(ep.latencies_us.last().copied()),
                }),
            );
        }
        all.sort_unstable();
        let requests = totals.responses + totals.transport_errors + totals.timeouts;
        let secs = elapsed.as_secs_f64();
        let mut out = Map::new();
        out.insert("requests".into(), json!(requests));
        out.insert(
            "requests_per_second".into(),
            json!(if secs > 0.0 {
                (requests as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            }),
        );
        out.insert("status".into(), status_map(&totals.status));
        out.insert("server_errors".into(), json!(totals.server_errors));
        out.insert("database_locked".into(), json!(totals.locked));
        out.insert("transport_errors".into(), json!(totals.transport_errors));
        out.insert("timeouts".into(), json!(totals.timeouts));
        out.insert("missing_detail".into(), json!(totals.missing_detail));
        out.insert("unexpected".into(), json!(totals.unexpected));
        out.insert(
            "latency_ms".into(),
            json!({
                "p50": ms(percentile(&all, 0.50)),
                "p99": ms(percentile(&all, 0.99)),
                "max": ms(all.last().copied()),
            }),
        );
        self.unavailable_us.sort_unstable();
        let unavailable = &self.unavailable_us;
        out.insert(
            "latency_503_ms".into(),
            json!({
                "count": unavailable.len(),
                "p50": ms(percentile(unavailable, 0.50)),
                "p99": ms(percentile(unavailable, 0.99)),
                "max": ms(unavailable.last().copied()),
            }),
        );
        out.insert("endpoints".into(), Value::Object(endpoints));
        let samples: Vec<&String> = self.samples.iter().map(|(_, line)| line).collect();
        out.insert("samples".into(), json!(samples));
        if let Some(timeline) = &self.timeline {
            let rows: Vec<Value> = timeline
                .iter()
                .enumerate()
                .map(|(second, b)| {
                    json!({
                        "second": second,
                        "ok": b.ok,
                        "4xx": b.client_errors,
                        "503": b.unavailable,
                        "other_5xx": b.server_errors,
                        "transport_errors": b.transport_errors,
                        "timeouts": b.timeouts,
                        "max_ms": ms(Some(b.max_us)),
                    })
                })
                .collect();
            out.insert("timeline".into(), Value::Array(rows));
        }
        out
    }
}

#[derive(Default)]
pub struct Totals {
    pub responses: u64,
    pub status: BTreeMap<u16, u64>,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub timeouts: u64,
    pub locked: u64,
    pub missing_detail: u64,
    pub unexpected: u64,
    pub max_us: u32,
}

/// The checks the caller asked for; each one asked for is reported, passed or not.
#[derive(Default, Clone)]
pub struct Checks {
    pub fail_on_5xx: bool,
    pub fail_on_locked: bool,
    pub fail_on_transport_errors: bool,
    pub fail_on_timeouts: bool,
    pub fail_on_unexpected: bool,
    pub require_detail: bool,
    pub allow_status: Option<Vec<u16>>,
    pub max_latency_ms: Option<f64>,
}

impl Checks {
    /// (what was checked, passed, what was seen)
    pub fn evaluate(&self, t: &Totals) -> Vec<(String, bool, String)> {
        let mut out = Vec::new();
        let mut count = |name: &str, asked: bool, n: u64| {
            if asked {
                out.push((name.to_owned(), n == 0, n.to_string()));
            }
        };
        count("no 5xx response", self.fail_on_5xx, t.server_errors);
        count(
            "no 'database is locked' in a body",
            self.fail_on_locked,
            t.locked,
        );
        count(
            "no transport error",
            self.fail_on_transport_errors,
            t.transport_errors,
        );
        count("no request timed out", self.fail_on_timeouts, t.timeouts);
        count(
            "no unexpected response",
            self.fail_on_unexpected,
            t.unexpected,
        );
        count(
            "every error response has a JSON detail",
            self.require_detail,
            t.missing_detail,
        );
        if let Some(allowed) = &self.allow_status {
            let outside: Vec<String> = t
                .status
                .iter()
                .filter(|(s, _)| !allowed.contains(s))
                .map(|(s, n)| format!("{s}x{n}"))
                .collect();
            let list: Vec<String> = allowed.iter().map(u16::to_string).collect();
            out.push((
                format!("every status in {}", list.join(",")),
                outside.is_empty(),
                if outside.is_empty() {
                    "none outside".to_owned()
                } else {
                    outside.join(" ")
                },
            ));
        }
        if let Some(limit) = self.max_latency_ms {
            let max = f64::from(t.max_us) / 1000.0;
            out.push((
                format!("no request slower than {limit} ms"),
                max <= limit,
                format!("max {max:.1} ms"),
            ));
        }
        out
    }
}

pub fn status_map(map: &BTreeMap<u16, u64>) -> Value {
    Value::Object(
        map.iter()
            .map(|(status, n)| (status.to_string(), json!(n)))
            .collect(),
    )
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(us: Option<u32>) -> Value {
    match us {
        Some(us) => json!((f64::from(us) / 10.0).round() / 100.0),
        None => Value::Null,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn has_detail(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").map(Value::is_string))
        .unwrap_or(false)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_capped_per_kind_across_workers() {
        let unavailable = Outcome::Response {
            status: 503,
            body: br#"{"detail":"down"}"#.to_vec(),
            cookie: None,
        };
        let mut merged = Stats::new(Instant::now(), false);
        for _ in 0..4 {
            let mut worker = Stats::new(Instant::now(), false);
            for _ in 0..5 {
                worker.record("GET /x", Duration::from_millis(1), &unavailable);
            }
            worker.unexpected("odd".into());
            merged.merge(worker);
        }
        let kept = |needle: &str| {
            merged
                .samples
                .iter()
                .filter(|(_, l)| l.contains(needle))
                .count()
        };
        assert_eq!(kept("503"), SAMPLES_PER_KIND as usize);
        assert_eq!(kept("unexpected: odd"), 4);
        assert_eq!(merged.totals().unexpected, 4);
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn counts_locked_bodies_and_missing_details() {
        let mut s = Stats::new(Instant::now(), true);
        let locked = Outcome::Response {
            status: 503,
            body: br#"{"detail":"database is locked"}"#.to_vec(),
            cookie: None,
        };
        let bare = Outcome::Response {
            status: 500,
            body: b"oops".to_vec(),
            cookie: None,
        };
        s.record("GET /x", Duration::from_millis(3), &locked);
        s.record("GET /x", Duration::from_millis(9), &bare);
        s.record("GET /x", Duration::from_millis(1), &Outcome::Timeout);
        let t = s.totals();
        assert_eq!(
            (t.locked, t.missing_detail, t.server_errors, t.timeouts),
            (1, 1, 2, 1)
        );
        let checks = Checks {
            fail_on_5xx: true,
            allow_status: Some(vec![200, 503]),
            max_latency_ms: Some(5.0),
            ..Checks::default()
        };
        let results = checks.evaluate(&t);
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|(_, ok, _)| !ok), "{:?}", results);
    }
}
