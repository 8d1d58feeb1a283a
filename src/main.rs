//! The `tessera` binary; the command line lives in `tessera::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime starts any thread.
    tessera::memory::configure_allocator();
    actix_web::rt::System::new().block_on(tessera::cli::main())
}
