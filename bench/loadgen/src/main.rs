//! loadgen: drives a running tessera with N connections for D seconds and prints a JSON summary;
//! `verify` checks that saved session cookies still work. See bench/reliability/README.md.
//!
//! Exit codes: 0 every requested check passed; 1 a check failed; 2 bad usage or a failed set-up.

mod http;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use serde_json::{json, Map, Value};

use scenarios::{CookieSink, Ctx, Weights, DEFAULT_WEIGHTS};
use stats::{Checks, Stats};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Logins, logouts, revocations by id and of all others, /users/me, session lists, optional
    /// password changes, and checks that ended sessions stay ended (see --weights).
    Mixed,
    /// Only GET /users/me, with a pool of live cookies (set-up's, or --cookies-in).
    Me,
    /// Only POST /login (every 200 is recorded with its cookie).
    Login,
    /// Only the set-up: register --users users and log each in --sessions-per-user times.
    Setup,
    /// GET /users/me once with each cookie of --cookies-in: each must be a 200 naming its user.
    Verify,
}

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Load generator and session checker for tessera",
    after_help = "Exit codes: 0 every requested check passed, 1 a check failed, 2 usage or set-up error."
)]
struct Cli {
    #[arg(value_enum)]
    scenario: Scenario,

    /// Base URL of the server (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// Concurrent connections (one request at a time on each).
    #[arg(short = 'c', long, default_value_t = 16)]
    connections: usize,

    /// Seconds of load after the set-up.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,

    /// Per-request timeout in seconds (a request without a full answer by then counts as a timeout).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,

    /// Users to register in the set-up [default: the number of connections; mixed needs at
    /// least that many, each connection owns its users].
    #[arg(long)]
    users: Option<usize>,

    /// Sessions the set-up opens per user (mixed always opens 1; login opens none).
    #[arg(long, default_value_t = 1)]
    sessions_per_user: usize,

    /// Prefix of the usernames registered [default: lg<pid>x<time>_], so runs never collide.
    #[arg(long)]
    prefix: Option<String>,

    /// Password of the users registered.
    #[arg(long, default_value = "loadgen password")]
    password: String,

    /// mixed: relative weights of the operations, name=weight,... (names not given keep their
    /// default).
    #[arg(long, default_value = DEFAULT_WEIGHTS)]
    weights: String,

    /// mixed: sessions older than this many seconds send the password when they end other
    /// sessions (keep it below the server's FRESH_SESSION_SECONDS).
    #[arg(long, default_value_t = 300)]
    fresh_seconds: u64,

    /// mixed: most live sessions kept per user (a login beyond it logs one out instead).
    #[arg(long, default_value_t = 8)]
    max_sessions: usize,

    /// Write every (username, cookie) that got a 200 from /login to this file as it happens,
    /// `username<TAB>name=value` per line; without it the summary lists them.
    #[arg(long)]
    cookies_out: Option<PathBuf>,

    /// verify: the file to check; me: use these cookies instead of a set-up.
    #[arg(long)]
    cookies_in: Option<PathBuf>,

    /// Also write the JSON summary to this file.
    #[arg(long)]
    summary_out: Option<PathBuf>,

    /// Create this file once the set-up is done and the load starts (for scripts that act
    /// mid-run).
    #[arg(long)]
    ready_file: Option<PathBuf>,

    /// Add per-second counts (ok, 4xx, 503, other 5xx, errors, max latency) to the summary.
    #[arg(long)]
    timeline: bool,

    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Seed of the operation choices [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,

    /// User-Agent of every request (tessera binds sessions to it).
    #[arg(long, default_value = "tessera-loadgen/0.1")]
    user_agent: String,

    /// Fail when any response is a 5xx.
    #[arg(long)]
    fail_on_5xx: bool,

    /// Fail when any response body contains "database is locked".
    #[arg(long)]
    fail_on_locked: bool,

    /// Fail on any transport error (refused or reset connection, malformed answer).
    #[arg(long)]
    fail_on_transport_errors: bool,

    /// Fail when any request timed out (--timeout).
    #[arg(long)]
    fail_on_timeouts: bool,

    /// Fail on any response that contradicts what the client knows (a live session refused, an
    /// ended one accepted, a login refused, ...).
    #[arg(long)]
    fail_on_unexpected: bool,

    /// Fail when a response with status >= 400 has no JSON body with a string `detail`.
    #[arg(long)]
    require_detail: bool,

    /// Fail when any response has a status outside this list, e.g. 200,204,401,503.
    #[arg(long, value_delimiter = ',')]
    allow_status: Option<Vec<u16>>,

    /// Fail when any answered request took longer than this many milliseconds.
    #[arg(long)]
    max_latency_ms: Option<f64>,

    /// All of --fail-on-5xx --fail-on-locked --fail-on-transport-errors --fail-on-timeouts
    /// --fail-on-unexpected --require-detail.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn validate(cli: &Cli) -> Result<(), String> {
    if !cli.url.starts_with("http://") {
        return Err("--url must be a plain http:// URL".into());
    }
    if cli.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if !(cli.duration.is_finite() && cli.duration >= 0.0) {
        return Err("--duration must be a number of seconds >= 0".into());
    }
    if !(cli.timeout.is_finite() && cli.timeout > 0.0) {
        return Err("--timeout must be a number of seconds > 0".into());
    }
    if cli.password.chars().count() < 8 {
        return Err("--password needs at least 8 characters (tessera's rule)".into());
    }
    if cli.max_sessions == 0 {
        return Err("--max-sessions must be at least 1".into());
    }
    if let Some(p) = &cli.prefix {
        let ok = p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c));
        if !ok || p.len() > 48 {
            return Err("--prefix: at most 48 ASCII letters, digits and _ . - @".into());
        }
    }
    let users = cli.users.unwrap_or(cli.connections);
    if cli.scenario == Scenario::Mixed && users < cli.connections {
        return Err(format!(
            "mixed: --users ({users}) must be at least --connections ({}): each connection owns its users",
            cli.connections
        ));
    }
    if cli.scenario == Scenario::Verify && cli.cookies_in.is_none() {
        return Err("verify needs --cookies-in FILE".into());
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<u8, String> {
    validate(&cli)?;
    let weights = Weights::parse(&cli.weights)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let prefix = cli.prefix.clone().unwrap_or_else(|| {
        format!(
            "lg{}x{}_",
            std::process::id(),
            now.as_millis() % 100_000_000
        )
    });
    let seed = cli.seed.unwrap_or(now.as_nanos() as u64);
    // verify only reads cookies: it must not truncate a file it was given as --cookies-out too
    let sink_path = match cli.scenario {
        Scenario::Verify => None,
        _ => cli.cookies_out.as_deref(),
    };
    let mut ctx = Ctx {
        url: cli.url.clone(),
        timeout: Duration::from_secs_f64(cli.timeout),
        user_agent: cli.user_agent.clone(),
        password: cli.password.clone(),
        prefix: prefix.clone(),
        fresh: Duration::from_secs(cli.fresh_seconds),
        max_sessions: cli.max_sessions,
        weights: weights.clone(),
        sink: CookieSink::new(sink_path)?,
        seed,
        timeline: cli.timeline,
        start: Instant::now(),
    };
    let users = cli.users.unwrap_or(cli.connections);

    let mut summary = Map::new();
    summary.insert(
        "scenario".into(),
        json!(format!("{:?}", cli.scenario).to_lowercase()),
    );
    summary.insert("url".into(), json!(cli.url));
    summary.insert("connections".into(), json!(cli.connections));

    if cli.scenario == Scenario::Verify {
        return verify(&cli, ctx, summary).await;
    }

    // ---- set-up
    let mut setup_stats = Stats::new(Instant::now(), false);
    let setup_started = Instant::now();
    let sessions = match cli.scenario {
        Scenario::Mixed => 1,
        Scenario::Login => 0,
        _ => cli.sessions_per_user,
    };
    let from_file = match (cli.scenario, &cli.cookies_in) {
        (Scenario::Me, Some(path)) => Some(scenarios::read_cookie_file(path)?),
        _ => None,
    };
    let prepared = if from_file.is_some() {
        Vec::new()
    } else {
        let shared = Arc::new(ctx);
        let result =
            scenarios::setup(&shared, users, sessions, cli.connections, &mut setup_stats).await;
        ctx = Arc::try_unwrap(shared).map_err(|_| "set-up still holds the context".to_owned())?;
        result?
    };
    let setup_elapsed = setup_started.elapsed();
    let mut setup_json = setup_stats.summarize(setup_elapsed);
    setup_json.insert("users".into(), json!(prepared.len()));
    setup_json.insert("sessions_per_user".into(), json!(sessions));
    setup_json.insert(
        "elapsed_s".into(),
        json!(round3(setup_elapsed.as_secs_f64())),
    );
    for k in ["samples", "endpoints"] {
        setup_json.remove(k);
    }
    summary.insert("prefix".into(), json!(prefix));
    summary.insert("setup".into(), Value::Object(setup_json));

    // ---- load
    if let Some(path) = &cli.ready_file {
        std::fs::write(path, "ready\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    ctx.start = Instant::now();
    let ctx = Arc::new(ctx);
    let deadline = ctx.start + Duration::from_secs_f64(cli.duration);
    let mut tasks = Vec::new();
    match cli.scenario {
        Scenario::Mixed => {
            summary.insert("weights".into(), weights.to_json());
            let mut buckets: Vec<Vec<scenarios::Prepared>> =
                (0..cli.connections).map(|_| Vec::new()).collect();
            for (i, p) in prepared.into_iter().enumerate() {
                buckets[i % cli.connections].push(p);
            }
            for (w, users) in buckets.into_iter().enumerate() {
                tasks.push(tokio::spawn(scenarios::mixed_worker(
                    ctx.clone(),
                    w,
                    users,
                    deadline,
                )));
            }
        }
        Scenario::Me => {
            let pool: Vec<(String, String)> = match from_file {
                Some(entries) => entries,
                None => prepared
                    .into_iter()
                    .flat_map(|p| {
                        let name = p.username;
                        p.cookies.into_iter().map(move |c| (name.clone(), c))
                    })
                    .collect(),
            };
            if pool.is_empty() {
                return Err(
                    "me: no cookies (--users 0, --sessions-per-user 0 or an empty --cookies-in)"
                        .into(),
                );
            }
            let pool = Arc::new(pool);
            for w in 0..cli.connections {
                tasks.push(tokio::spawn(scenarios::me_worker(
                    ctx.clone(),
                    w,
                    pool.clone(),
                    deadline,
                )));
            }
        }
        Scenario::Login => {
            if prepared.is_empty() {
                return Err("login: --users must be at least 1".into());
            }
            let names = Arc::new(prepared.into_iter().map(|p| p.username).collect::<Vec<_>>());
            for w in 0..cli.connections {
                tasks.push(tokio::spawn(scenarios::login_worker(
                    ctx.clone(),
                    w,
                    names.clone(),
                    deadline,
                )));
            }
        }
        Scenario::Setup | Scenario::Verify => {}
    }
    let mut stats = Stats::new(ctx.start, cli.timeline);
    for t in tasks {
        stats.merge(t.await.map_err(|e| format!("worker failed: {e}"))??);
    }
    let elapsed = ctx.start.elapsed();
    let checks = checks(&cli);
    let results = checks.evaluate(&stats.totals());
    summary.insert("duration_s".into(), json!(cli.duration));
    summary.insert("elapsed_s".into(), json!(round3(elapsed.as_secs_f64())));
    if cli.scenario != Scenario::Setup {
        summary.extend(stats.summarize(elapsed));
    }
    ctx.sink.describe(&mut summary);
    finish(&cli, summary, results)
}

async fn verify(cli: &Cli, ctx: Ctx, mut summary: Map<String, Value>) -> Result<u8, String> {
    let path = cli.cookies_in.as_ref().expect("validated");
    let entries = Arc::new(scenarios::read_cookie_file(path)?);
    let ctx = Arc::new(ctx);
    let connections = cli.connections;
    let mut tasks = Vec::new();
    for w in 0..connections {
        tasks.push(tokio::spawn(scenarios::verify_worker(
            ctx.clone(),
            entries.clone(),
            w,
            connections,
        )));
    }
    let mut stats = Stats::new(ctx.start, false);
    let mut failed = 0;
    for t in tasks {
        let (s, f) = t.await.map_err(|e| format!("worker failed: {e}"))??;
        stats.merge(s);
        failed += f;
    }
    let elapsed = ctx.start.elapsed();
    summary.insert("cookies_file".into(), json!(path.display().to_string()));
    summary.insert("checked".into(), json!(entries.len()));
    summary.insert("failed".into(), json!(failed));
    summary.insert("elapsed_s".into(), json!(round3(elapsed.as_secs_f64())));
    summary.extend(stats.summarize(elapsed));
    let mut results = checks(cli).evaluate(&stats.totals());
    results.push((
        "at least one cookie to check".into(),
        !entries.is_empty(),
        entries.len().to_string(),
    ));
    results.push((
        "every cookie gets 200 on /users/me for its user".into(),
        failed == 0,
        format!("{failed} of {} failed", entries.len()),
    ));
    finish(cli, summary, results)
}

fn checks(cli: &Cli) -> Checks {
    Checks {
        fail_on_5xx: cli.fail_on_5xx || cli.strict,
        fail_on_locked: cli.fail_on_locked || cli.strict,
        fail_on_transport_errors: cli.fail_on_transport_errors || cli.strict,
        fail_on_timeouts: cli.fail_on_timeouts || cli.strict,
        fail_on_unexpected: cli.fail_on_unexpected || cli.strict,
        require_detail: cli.require_detail || cli.strict,
        allow_status: cli.allow_status.clone(),
        max_latency_ms: cli.max_latency_ms,
    }
}

/// Prints the summary (stdout, and --summary-out), one line per check on stderr; 1 if any failed.
fn finish(
    cli: &Cli,
    mut summary: Map<String, Value>,
    results: Vec<(String, bool, String)>,
) -> Result<u8, String> {
    let ok = results.iter().all(|(_, ok, _)| *ok);
    summary.insert(
        "checks".into(),
        Value::Array(
            results
                .iter()
                .map(|(name, ok, seen)| json!({"check": name, "ok": ok, "observed": seen}))
                .collect(),
        ),
    );
    summary.insert("ok".into(), json!(ok));
    let text = serde_json::to_string_pretty(&Value::Object(summary))
        .map_err(|e| format!("cannot print the summary: {e}"))?;
    println!("{text}");
    if let Some(path) = &cli.summary_out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for (name, passed, seen) in &results {
        let word = if *passed { "ok" } else { "FAILED" };
        eprintln!("loadgen: check {word}: {name} ({seen})");
    }
    Ok(if ok { 0 } else { 1 })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
