//! The `tessera` binary; the command line lives in `tessera::cli`.

use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    tessera::cli::main().await
}
