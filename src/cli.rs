//! The command line: `tessera` (= `tessera serve`), `tessera migrate`, `tessera purge`.
//! Configuration always comes from the environment and `.env`; see `.env.example`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::migrations;
use crate::startup::{Application, StartupError};

/// `0.1.0 (commit abc123)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TESSERA_GIT_COMMIT"),
    ")"
);

const AFTER_HELP: &str = "\
Configuration comes from environment variables, then ./.env (see .env.example);
`tessera check-config` prints the effective values.

Exit codes:
  0  success
  1  server or I/O error (e.g. BIND_ADDR taken)
  2  invalid configuration, or an unknown command or option
  3  database unreachable within DB_CONNECT_TIMEOUT_SECONDS, or a migration failed
  4  refused: no such user, username taken, or password breaks the rules";

/// A JSON REST auth API with database-backed login sessions.
///
/// Exit codes: 0 success, 1 server or I/O error, 2 invalid configuration or usage, 3 database
/// unreachable or migration failed, 4 refused (no such user, name taken, password too short).
#[derive(Debug, Parser)]
#[command(name = "tessera", version = VERSION, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, then serve HTTP on BIND_ADDR until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Expire overdue sessions and delete ended sessions and old events, then exit.
    Purge,
    /// Operate on sessions.
    Sessions {
        #[command(subcommand)]
        action: SessionsCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Validate the configuration and print it, secrets hidden; exit 2 if it is invalid.
    CheckConfig,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (first line) when it is not a
    /// terminal, otherwise prompted for twice without echo; it is never an argument.
    Create { username: String },
    /// Disable a user: they cannot log in, and all their sessions end now.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// End sessions at once (status inactive, reason revoked_by_admin): one user's, or everyone's.
    Revoke {
        /// The username whose sessions end.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        /// End every active session of every user.
        #[arg(long)]
        all: bool,
    },
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => return fail(&StartupError::Config(err)),
    };
    if let Err(err) = crate::telemetry::init(&settings.log_filter, settings.log_json) {
        return fail(&err);
    }
    if let Some(offset) = std::env::var(crate::db::CLOCK_OFFSET_VAR)
        .ok()
        .and_then(|raw| raw.trim().parse::<i64>().ok())
        .filter(|offset| *offset != 0)
    {
        tracing::warn!(
            offset_seconds = offset,
            "{} is set: this process's clock is shifted (for tests only)",
            crate::db::CLOCK_OFFSET_VAR
        );
        crate::db::set_clock_offset(offset);
    }
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(&settings),
        Command::Sessions {
            action: SessionsCommand::Revoke { user, .. },
        } => revoke_sessions(&settings, user.as_deref()),
        Command::User { action } => user_command(&settings, action),
        Command::CheckConfig => {
            for (name, value) in settings.describe() {
                println!("{name}={value}");
            }
            Ok(())
        }
        Command::Purge => match crate::purge::run(&settings) {
            Ok(report) => {
                println!("{report}");
                Ok(())
            }
            Err(crate::purge::PurgeError::Connect { target, source }) => {
                Err(StartupError::Database { target, source })
            }
            Err(err) => Err(StartupError::Io(std::io::Error::other(err.to_string()))),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

async fn serve(settings: Settings) -> Result<(), StartupError> {
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}

fn migrate(settings: &Settings) -> Result<(), StartupError> {
    connect(settings)?;
    println!("migrations applied to {}", settings.database.redacted());
    Ok(())
}

fn connect(settings: &Settings) -> Result<crate::db::DbConnection, StartupError> {
    migrations::connect_migrated(settings).map_err(|source| StartupError::Database {
        target: settings.database.redacted(),
        source,
    })
}

/// `tessera sessions revoke --user NAME | --all` (ASVS V7.4.5: an administrator can end sessions).
fn revoke_sessions(settings: &Settings, user: Option<&str>) -> Result<(), StartupError> {
    use crate::db::sessions::{self, RevokeReason};
    let mut conn = connect(settings)?;
    let failed = |e: diesel::result::Error| StartupError::Io(std::io::Error::other(e.to_string()));
    let now = crate::db::now();
    let revoked = match user {
        Some(name) => {
            let key = crate::domain::username::key_of(name);
            let found = crate::db::users::find_by_key(&mut conn, &key).map_err(failed)?;
            let Some(found) = found else {
                return Err(StartupError::Usage(format!("no user named {name}")));
            };
            sessions::revoke_all_for_user(
                &mut conn,
                found.id,
                None,
                RevokeReason::RevokedByAdmin,
                now,
            )
            .map_err(failed)?
            .len()
        }
        None => {
            let mut total = 0;
            loop {
                let done =
                    sessions::revoke_any_batch(&mut conn, RevokeReason::RevokedByAdmin, now, 1000)
                        .map_err(failed)?;
                total += done;
                if done == 0 {
                    break total;
                }
            }
        }
    };
    crate::auth::sync::await_propagation();
    println!("revoked {revoked} sessions");
    Ok(())
}

fn user_command(settings: &Settings, action: UserCommand) -> Result<(), StartupError> {
    use crate::domain::{username::key_of, Password, Username};
    let failed = |e: diesel::result::Error| StartupError::Io(std::io::Error::other(e.to_string()));
    let disable = matches!(action, UserCommand::Disable { .. });
    match action {
        UserCommand::Create { username } => {
            let username = Username::parse(&username).map_err(StartupError::Usage)?;
            let password = Password::parse(read_password()?).map_err(StartupError::Usage)?;
            let hash = crate::auth::password::hash_blocking(password.expose())
                .map_err(|e| StartupError::Io(std::io::Error::other(e.to_string())))?;
            let mut conn = connect(settings)?;
            let key = username.key();
            let inserted = crate::db::users::insert(
                &mut conn,
                &crate::db::users::NewUser {
                    username: username.as_str(),
                    username_key: &key,
                    password_hash: &hash,
                    created_at: crate::db::now(),
                },
            );
            match inserted {
                Ok(user) => {
                    println!("created user {} (id {})", user.username, user.id);
                    Ok(())
                }
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => Err(StartupError::Usage(format!(
                    "username {username} is already taken"
                ))),
                Err(e) => Err(failed(e)),
            }
        }
        UserCommand::Disable { username } | UserCommand::Enable { username } => {
            let mut conn = connect(settings)?;
            let when = disable.then(crate::db::now);
            if !crate::db::users::set_disabled(&mut conn, &key_of(&username), when)
                .map_err(failed)?
            {
                return Err(StartupError::Usage(format!("no user named {username}")));
            }
            if disable {
                crate::auth::sync::await_propagation();
            }
            println!(
                "{} user {username}",
                if disable { "disabled" } else { "enabled" }
            );
            Ok(())
        }
    }
}

/// The new password: prompted twice on a terminal, else the first line of standard input.
fn read_password() -> Result<String, StartupError> {
    use std::io::{BufRead, IsTerminal};
    let io = |e: std::io::Error| StartupError::Io(e);
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(io)?;
        let second = rpassword::prompt_password("Password (again): ").map_err(io)?;
        if first != second {
            return Err(StartupError::Usage("the passwords do not match".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(io)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// One line on stderr, whatever the driver's message looked like.
fn fail(err: &StartupError) -> ExitCode {
    let message = err.to_string();
    let one_line: Vec<&str> = message.split_whitespace().collect();
    eprintln!("tessera: {}", one_line.join(" "));
    ExitCode::from(err.exit_code())
}
