//! The argon2 bound on `POST /login`: the most password verifications per second this machine
//! can do, measured with tessera's own hasher at the server's parameters.
//!
//! ```sh
//! cargo run --release --example argon2_bound                 # 30 timed verifies
//! cargo run --release --example argon2_bound -- --verifies 60 --warmup 3 --cores 2
//! ```
//!
//! Hashes one password with [`PasswordHasher`] (what `POST /register` does; the server's argon2
//! parameters are the `argon2` crate's defaults and are not configurable, only
//! `ARGON2_MAX_CONCURRENCY` is), then times `--verifies` verifications of it one after another
//! (what `POST /login` does), so exactly one runs at a time. Prints one JSON line on stdout: the
//! seconds per verify (median, also min/mean/max) and the bound = cores / median, the logins per
//! second the machine could answer if every core did nothing but verify. `--cores` defaults to
//! the cores this process may run on (what `nproc` prints).

use std::process::ExitCode;
use std::time::Instant;

use tessera::auth::password::PasswordHasher;
use tessera::domain::Password;

const PASSWORD: &str = "argon2-bound correct horse battery staple";

/// The command line: how many verifies to time, how many to run untimed first, and the cores.
struct Options {
    verifies: usize,
    warmup: usize,
    cores: Option<usize>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            verifies: 30,
            warmup: 2,
            cores: None,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number: usize = value
                .parse()
                .map_err(|_| format!("{flag}: `{value}` is not a whole number"))?;
            match flag.as_str() {
                "--verifies" if number >= 1 => options.verifies = number,
                "--warmup" => options.warmup = number,
                "--cores" if number >= 1 => options.cores = Some(number),
                "--verifies" | "--cores" => return Err(format!("{flag} must be at least 1")),
                _ => {
                    return Err(format!(
                        "unknown option {flag} (known: --verifies N, --warmup N, --cores N)"
                    ))
                }
            }
        }
        Ok(options)
    }
}

fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("argon2_bound: {message}");
            return ExitCode::from(2);
        }
    };
    let cores = options.cores.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });

    // One permit: the verifies below never overlap, so each one is timed alone on one thread.
    let hasher = PasswordHasher::new(1, 1);
    let slot = match hasher.reserve() {
        Ok(slot) => slot,
        Err(error) => {
            eprintln!("argon2_bound: {error}");
            return ExitCode::FAILURE;
        }
    };
    let hash = match hasher
        .hash(slot, Password::offered(PASSWORD.to_owned()))
        .await
    {
        Ok(hash) => hash,
        Err(error) => {
            eprintln!("argon2_bound: hashing failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    // A PHC string: $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    let fields: Vec<&str> = hash.split('$').collect();
    let (algorithm, params) = match fields.as_slice() {
        [_, algorithm, _, params, ..] => (*algorithm, *params),
        _ => {
            eprintln!("argon2_bound: unexpected hash format");
            return ExitCode::FAILURE;
        }
    };

    let mut seconds = Vec::with_capacity(options.verifies);
    for round in 0..options.warmup + options.verifies {
        let started = Instant::now();
        let verified = match hasher.reserve() {
            Ok(slot) => {
                hasher
                    .verify(
                        slot,
                        Some(hash.clone()),
                        Password::offered(PASSWORD.to_owned()),
                    )
                    .await
            }
            Err(error) => Err(error),
        };
        let elapsed = started.elapsed().as_secs_f64();
        match verified {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("argon2_bound: the hasher rejected its own hash");
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("argon2_bound: verify failed: {error}");
                return ExitCode::FAILURE;
            }
        }
        if round >= options.warmup {
            seconds.push(elapsed);
        }
    }
    seconds.sort_by(f64::total_cmp);
    let per_verify = median(&seconds);
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;

    let report = serde_json::json!({
        "hasher": "tessera::auth::password::PasswordHasher",
        "algorithm": algorithm,
        "params": params,
        "verifies": seconds.len(),
        "warmup": options.warmup,
        "median_s": per_verify,
        "min_s": seconds[0],
        "mean_s": mean,
        "max_s": seconds[seconds.len() - 1],
        "cores": cores,
        "bound_per_s": cores as f64 / per_verify,
    });
    println!("{report}");
    ExitCode::SUCCESS
}
