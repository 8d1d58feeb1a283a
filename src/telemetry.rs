//! Logging set-up: `tracing` events to stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::startup::StartupError;

/// Installs the global subscriber once; a second call (as in tests) is a no-op.
pub fn init(filter: &str) -> Result<(), StartupError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| {
        StartupError::Config(crate::config::ConfigError {
            var: "RUST_LOG".into(),
            message: e.to_string(),
        })
    })?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    Ok(())
}
