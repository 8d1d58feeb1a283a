//! The `tessera` binary: configuration, logging, then the server until it stops.

use std::process::ExitCode;

use tessera::config::Settings;
use tessera::startup::{Application, StartupError};

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => return fail(&StartupError::Config(err)),
    };
    if let Err(err) = tessera::telemetry::init(&settings.log_filter) {
        return fail(&err);
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => return fail(&err),
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&StartupError::Io(err)),
    }
}

/// One line on stderr, whatever the driver's message looked like.
fn fail(err: &StartupError) -> ExitCode {
    let message = err.to_string();
    let one_line: Vec<&str> = message.split_whitespace().collect();
    eprintln!("tessera: {}", one_line.join(" "));
    ExitCode::from(err.exit_code())
}
