//! Logging set-up: `tracing` events to stderr, filtered by `RUST_LOG`, as text or (with
//! `LOG_FORMAT=json`) one JSON object per line. Request lines carry the request id of
//! `tracing-actix-web`'s root span.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::startup::StartupError;

/// Installs the global subscriber once; a second call (as in tests) is a no-op.
pub fn init(filter: &str, json: bool) -> Result<(), StartupError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        StartupError::Config(crate::config::ConfigError {
            var: "RUST_LOG".into(),
            message: e.to_string(),
        })
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    Ok(())
}
