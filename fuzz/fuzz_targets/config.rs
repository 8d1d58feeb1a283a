//! Fuzz target `config`: `Settings::from_lookup`, the one parser of every configuration variable.
//!
//! The input is read like a `.env` file: one `NAME=value` per line. A line whose name is not a
//! variable tessera reads is given one that is (chosen by the bytes of the name), so that every
//! line reaches a parser. The variable names are those `Settings::describe` lists, i.e. the real
//! ones, so a variable added to `config.rs` is fuzzed without touching this file. Checks:
//!
//! - `from_lookup` returns settings or a `ConfigError` naming a variable, and never panics;
//! - settings it accepts keep the promises of `config.rs` and `.env.example`: the absolute session
//!   lifetime is at least the idle one, the lockout cap at least the first lockout, counts and
//!   pools at least 1, cookie attributes browsers accept (`SameSite=None` and `Partitioned` only
//!   with `Secure`, the `__Host-` and `__Secure-` prefix rules, a name of token characters),
//!   origins that are exactly `scheme://host[:port]`, and a database password never shown.
//!
//! `BIND_ADDR` and `METRICS_BIND_ADDR` are resolved with the system resolver when they are not
//! `ip:port`; a value that would be sent to DNS is dropped (the variable counts as unset), so the
//! fuzzer never waits on the network.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use actix_web::cookie::SameSite;
use libfuzzer_sys::fuzz_target;
use tessera::config::{DatabaseTarget, Settings};

/// Every variable `Settings` reads, in the order `describe` lists them.
fn names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Settings::from_lookup(|_| None)
            .expect("the defaults are valid")
            .describe()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    })
}

/// Whether `to_socket_addrs` would ask the resolver: not an `ip:port`, but a `host:port` whose
/// port is a number (anything else fails before any lookup).
fn needs_resolver(value: &str) -> bool {
    let value = value.trim();
    value.parse::<SocketAddr>().is_err()
        && value
            .rsplit_once(':')
            .is_some_and(|(host, port)| port.parse::<u16>().is_ok() && !host.contains('\0'))
}

fn is_origin(origin: &str) -> bool {
    url::Url::parse(origin).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.origin().ascii_serialization() == origin
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let names = names();
    let mut vars: HashMap<&str, String> = HashMap::new();
    for line in text.lines() {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        let name = match names.iter().find(|known| **known == name) {
            Some(known) => *known,
            None => {
                let sum = name.bytes().map(usize::from).sum::<usize>();
                names[sum % names.len()]
            }
        };
        if matches!(name, "BIND_ADDR" | "METRICS_BIND_ADDR") && needs_resolver(value) {
            vars.remove(name);
            continue;
        }
        vars.insert(name, value.to_owned());
    }

    let settings = match Settings::from_lookup(|name| vars.get(name).cloned()) {
        Ok(settings) => settings,
        Err(err) => {
            assert!(
                names.contains(&err.var.as_str()),
                "the error names no variable: {err:?}"
            );
            assert!(!err.message.is_empty());
            assert!(err.to_string().starts_with(&format!("{}: ", err.var)));
            return;
        }
    };

    let session = settings.session;
    assert!(session.ttl_seconds >= 1);
    assert!(session.max_lifetime_seconds >= session.ttl_seconds);
    let throttle = settings.throttle;
    assert!(throttle.lockout_max_seconds >= throttle.lockout_seconds);
    assert!(throttle.lockout_seconds >= 1 && throttle.login_window_seconds >= 1);
    assert!(throttle.login_max_failures >= 0 && throttle.login_max_failures_per_ip >= 0);
    assert!(throttle.register_max_per_ip >= 0 && throttle.register_window_seconds >= 1);
    assert!(settings.workers >= 1 && settings.db_pool_size >= 1);
    assert!(settings.argon2_max_concurrency >= 1);
    assert!(settings.db_connect_timeout.as_secs() >= 1);
    assert!(settings.fresh_session_seconds >= 0 && settings.max_sessions_per_user >= 0);
    assert!(settings.retention.batch_size >= 1);
    assert!(settings.retention.session_retention_days >= 0);
    assert!(settings.retention.event_retention_days >= 0);

    let cookie = &settings.cookie;
    assert!(!cookie.name.is_empty());
    assert!(cookie
        .name
        .chars()
        .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c)));
    if cookie.same_site == SameSite::None || cookie.partitioned {
        assert!(cookie.secure, "{cookie:?}");
    }
    let lower = cookie.name.to_ascii_lowercase();
    if lower.starts_with("__host-") {
        assert!(cookie.secure && cookie.domain.is_none(), "{cookie:?}");
    }
    if lower.starts_with("__secure-") {
        assert!(cookie.secure, "{cookie:?}");
    }

    for origin in settings
        .allowed_origins
        .iter()
        .chain(settings.public_origin.iter())
    {
        assert!(is_origin(origin), "{origin:?} is not an origin");
    }
    let mut unique = settings.allowed_origins.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), settings.allowed_origins.len());

    // The database password is never shown.
    let described = settings.describe();
    let described_names: Vec<&str> = described.iter().map(|(name, _)| *name).collect();
    assert_eq!(described_names, names);
    if let DatabaseTarget::Postgres(raw) = &settings.database {
        let password = url::Url::parse(raw)
            .ok()
            .and_then(|url| url.password().map(str::to_owned));
        if let Some(password) = password.filter(|p| p != "***") {
            let shown = &described
                .iter()
                .find(|(name, _)| *name == "DATABASE_URL")
                .expect("DATABASE_URL is described")
                .1;
            let shown_password = url::Url::parse(shown)
                .ok()
                .and_then(|url| url.password().map(str::to_owned));
            assert!(
                shown_password.is_none() || shown_password.as_deref() == Some("***"),
                "check-config shows the password {password:?} in {shown:?}"
            );
            assert!(
                !format!("{:?}", settings.database).contains(raw.as_str()),
                "the database URL is logged with its password"
            );
        }
    }
});
