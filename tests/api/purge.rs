//! Retention: `tessera::purge::run`, the `tessera purge` command and the background purge.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDateTime};
use tokio::process::Command;

use crate::helpers::*;

backend_tests!(
    purge_removes_dead_rows_in_batches_while_logins_keep_succeeding,
    two_purges_at_once_do_no_harm,
    purge_command_exits_0_and_reports_what_it_did,
    background_purge_runs_every_interval,
    migrate_command_creates_the_new_tables_and_exits_0,
);

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// No background purge: the tests run it themselves.
const NO_BACKGROUND: (&str, &str) = ("PURGE_INTERVAL_SECONDS", "0");

/// How many dead rows of each kind a backend gets (PostgreSQL takes bulk work well).
fn scale(backend: Backend) -> i64 {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 5,
    }
}

/// One kind of session row, inserted `count` at a time by a single INSERT ... SELECT.
struct Batch<'a> {
    prefix: &'a str,
    count: i64,
    status: &'a str,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    revoked_reason: Option<&'a str>,
    revoked_at: Option<NaiveDateTime>,
}

const SERIES: &str =
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) ";

fn insert_sessions(db: &mut DbConn, user_id: i64, batch: &Batch<'_>) {
    let sql = format!(
        "{SERIES}INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, \
         created_at, expires_at, last_seen_at, user_agent, ip, revoked_reason, revoked_at) \
         SELECT ? || '-' || i, ?, ? || '-hash-' || i, ?, ?, ?, ?, ?, NULL, '192.0.2.1', ?, ? \
         FROM seq"
    );
    let inserted = db.execute(
        &sql,
        &[
            Arg::Int(batch.count),
            text(batch.prefix),
            Arg::Int(user_id),
            text(batch.prefix),
            text(batch.status),
            text(&"f".repeat(64)),
            time(batch.created_at),
            time(batch.expires_at),
            time(batch.last_seen_at),
            Arg::OptText(batch.revoked_reason.map(str::to_owned)),
            Arg::OptTime(batch.revoked_at),
        ],
    );
    assert_eq!(inserted as i64, batch.count, "inserting {}", batch.prefix);
}

fn insert_events(db: &mut DbConn, user_id: i64, count: i64, created_at: NaiveDateTime) {
    let sql = format!(
        "{SERIES}INSERT INTO auth_events (user_id, session_id, kind, ip, user_agent, created_at) \
         SELECT ?, NULL, 'login', '192.0.2.1', NULL, ? FROM seq"
    );
    let inserted = db.execute(
        &sql,
        &[Arg::Int(count), Arg::Int(user_id), time(created_at)],
    );
    assert_eq!(inserted as i64, count);
}

fn insert_failures(db: &mut DbConn, count: i64, created_at: NaiveDateTime) {
    let sql = format!(
        "{SERIES}INSERT INTO login_failures (username_key, ip, created_at, cleared) \
         SELECT 'old-' || i, '192.0.2.1', ?, 0 FROM seq"
    );
    let inserted = db.execute(&sql, &[Arg::Int(count), time(created_at)]);
    assert_eq!(inserted as i64, count);
}

fn count_prefix(db: &mut DbConn, prefix: &str, status: &str) -> i64 {
    db.count(
        "SELECT COUNT(*) AS n FROM sessions WHERE id LIKE ? AND status = ?",
        &[text(&format!("{prefix}-%")), text(status)],
    )
}

fn count_prefix_any(db: &mut DbConn, prefix: &str) -> i64 {
    db.count(
        "SELECT COUNT(*) AS n FROM sessions WHERE id LIKE ?",
        &[text(&format!("{prefix}-%"))],
    )
}

fn count_events_older_than(db: &mut DbConn, cutoff: NaiveDateTime) -> i64 {
    db.count(
        "SELECT COUNT(*) AS n FROM auth_events WHERE created_at < ?",
        &[time(cutoff)],
    )
}

/// What the seeded database holds, so the outcome can be checked exactly.
struct Seeded {
    /// Rows the purge must delete.
    dead: i64,
    /// Active rows past expiry (all of them are marked expired).
    overdue: i64,
    /// Of those, the ones recent enough to be kept.
    overdue_kept: i64,
    old_events: i64,
    recent_events: i64,
    live: i64,
    kept_ended: i64,
}

/// Seeds dead and live rows for `user_id`; `unit` rows is the size of the small kinds.
fn seed(db: &mut DbConn, user_id: i64, unit: i64) -> Seeded {
    let now = utc_now();
    let long_ago = now - Duration::days(40);
    let recently = now - Duration::days(20);
    let batches = [
        // Dead: revoked 40 days ago.
        Batch {
            prefix: "dead-revoked",
            count: 12 * unit,
            status: "inactive",
            created_at: long_ago - Duration::days(1),
            expires_at: long_ago + Duration::days(6),
            last_seen_at: long_ago,
            revoked_reason: Some("logout"),
            revoked_at: Some(long_ago),
        },
        // Dead: inactive from before revoked_at existed, last used 40 days ago.
        Batch {
            prefix: "dead-legacy",
            count: unit,
            status: "inactive",
            created_at: long_ago - Duration::days(1),
            expires_at: long_ago + Duration::days(6),
            last_seen_at: long_ago,
            revoked_reason: None,
            revoked_at: None,
        },
        // Dead: expired 40 days ago.
        Batch {
            prefix: "dead-expired",
            count: 4 * unit,
            status: "expired",
            created_at: long_ago - Duration::days(7),
            expires_at: long_ago,
            last_seen_at: long_ago - Duration::days(2),
            revoked_reason: None,
            revoked_at: None,
        },
        // Dead: still marked active, but expired 40 days ago.
        Batch {
            prefix: "dead-overdue",
            count: 3 * unit,
            status: "active",
            created_at: long_ago - Duration::days(7),
            expires_at: long_ago,
            last_seen_at: long_ago - Duration::days(2),
            revoked_reason: None,
            revoked_at: None,
        },
        // Kept, marked expired: active, past expiry since yesterday.
        Batch {
            prefix: "overdue",
            count: unit + 500,
            status: "active",
            created_at: now - Duration::days(8),
            expires_at: now - Duration::days(1),
            last_seen_at: now - Duration::days(2),
            revoked_reason: None,
            revoked_at: None,
        },
        // Kept: ended within the retention period.
        Batch {
            prefix: "recent-revoked",
            count: 300,
            status: "inactive",
            created_at: recently - Duration::days(1),
            expires_at: recently + Duration::days(6),
            last_seen_at: recently,
            revoked_reason: Some("revoked_by_user"),
            revoked_at: Some(recently),
        },
        Batch {
            prefix: "recent-expired",
            count: 300,
            status: "expired",
            created_at: recently - Duration::days(7),
            expires_at: recently,
            last_seen_at: recently - Duration::days(1),
            revoked_reason: None,
            revoked_at: None,
        },
        // Kept: live.
        Batch {
            prefix: "live",
            count: 200,
            status: "active",
            created_at: now - Duration::hours(1),
            expires_at: now + Duration::days(6),
            last_seen_at: now - Duration::minutes(5),
            revoked_reason: None,
            revoked_at: None,
        },
    ];
    for batch in &batches {
        insert_sessions(db, user_id, batch);
    }
    let old_events = 5 * unit;
    insert_events(db, user_id, old_events, now - Duration::days(100));
    insert_events(db, user_id, 100, now - Duration::days(80));
    insert_failures(db, unit, now - Duration::hours(2));
    Seeded {
        dead: 20 * unit,
        overdue: 3 * unit + unit + 500,
        overdue_kept: unit + 500,
        old_events,
        recent_events: 100,
        live: 200,
        kept_ended: 600,
    }
}

fn user_id_of(app: &TestApp, username: &str) -> i64 {
    app.users()
        .into_iter()
        .find(|u| u.username == username)
        .unwrap_or_else(|| panic!("no user {username}"))
        .id
}

/// Everything the seed marked dead is gone, everything else is where it should be.
fn assert_purged(db: &mut DbConn, seeded: &Seeded) {
    for prefix in [
        "dead-revoked",
        "dead-legacy",
        "dead-expired",
        "dead-overdue",
    ] {
        assert_eq!(count_prefix_any(db, prefix), 0, "{prefix} rows left");
    }
    let overdue = count_prefix_any(db, "overdue");
    assert_eq!(count_prefix(db, "overdue", "expired"), overdue);
    assert_eq!(overdue, seeded.overdue_kept);
    assert_eq!(count_prefix(db, "live", "active"), seeded.live);
    assert_eq!(
        count_prefix(db, "recent-revoked", "inactive")
            + count_prefix(db, "recent-expired", "expired"),
        seeded.kept_ended
    );
    let now = utc_now();
    assert_eq!(count_events_older_than(db, now - Duration::days(90)), 0);
    assert_eq!(
        count_events_older_than(db, now - Duration::days(70)),
        seeded.recent_events
    );
    let old_failures = db.count(
        "SELECT COUNT(*) AS n FROM login_failures WHERE ip = '192.0.2.1'",
        &[],
    );
    assert_eq!(old_failures, 0, "login failures older than the window");
}

async fn purge_removes_dead_rows_in_batches_while_logins_keep_succeeding(backend: Backend) {
    let app = spawn_app_with(backend, &[NO_BACKGROUND, ("PURGE_BATCH_SIZE", "1000")]).await;
    app.register_ok("alice", PASSWORD).await;
    let alice = app.login_token("alice", PASSWORD).await;
    app.register_ok("carol", PASSWORD).await;
    let alice_id = user_id_of(&app, "alice");
    let mut db = app.db();
    // SQLite: 20,000 dead sessions; PostgreSQL: 100,000.
    let seeded = seed(&mut db, alice_id, 1000 * scale(backend));
    assert!(seeded.dead >= 20_000);

    let settings = app.settings();
    let started = Instant::now();
    let purge = tokio::task::spawn_blocking(move || tessera::purge::run(&settings));
    // Logins (and the session checks that write) keep working while it runs.
    let mut logins = 0;
    while !purge.is_finished() || logins < 3 {
        let token = app.login_token("carol", PASSWORD).await;
        app.me_with(&token, &[]).await.expect(200);
        logins += 1;
    }
    let report = purge
        .await
        .expect("the purge panicked")
        .unwrap_or_else(|e| panic!("the purge failed: {e:?}"));
    eprintln!(
        "purge of {} dead sessions took {:.1} s with {logins} logins meanwhile",
        seeded.dead,
        started.elapsed().as_secs_f64()
    );

    assert_eq!(report.expired as i64, seeded.overdue, "{report:?}");
    assert_eq!(report.sessions_deleted as i64, seeded.dead, "{report:?}");
    assert_eq!(
        report.events_deleted as i64, seeded.old_events,
        "{report:?}"
    );
    assert_purged(&mut db, &seeded);

    // The real sessions are untouched and still work.
    app.me_with(&alice, &[]).await.expect(200);
    assert_live(&app.session_for(&alice));

    // A second purge finds nothing left to do.
    let settings = app.settings();
    let again = tokio::task::spawn_blocking(move || tessera::purge::run(&settings))
        .await
        .expect("the purge panicked")
        .unwrap_or_else(|e| panic!("the purge failed: {e:?}"));
    assert_eq!(again.expired, 0, "{again:?}");
    assert_eq!(again.sessions_deleted, 0, "{again:?}");
    assert_eq!(again.events_deleted, 0, "{again:?}");
}

async fn two_purges_at_once_do_no_harm(backend: Backend) {
    let app = spawn_app_with(backend, &[NO_BACKGROUND, ("PURGE_BATCH_SIZE", "500")]).await;
    app.register_ok("alice", PASSWORD).await;
    let alice = app.login_token("alice", PASSWORD).await;
    let alice_id = user_id_of(&app, "alice");
    let mut db = app.db();
    let seeded = seed(&mut db, alice_id, 250 * scale(backend));

    let (first, second) = (app.settings(), app.settings());
    let a = tokio::task::spawn_blocking(move || tessera::purge::run(&first));
    let b = tokio::task::spawn_blocking(move || tessera::purge::run(&second));
    let a = a
        .await
        .expect("the purge panicked")
        .unwrap_or_else(|e| panic!("the first purge failed: {e:?}"));
    let b = b
        .await
        .expect("the purge panicked")
        .unwrap_or_else(|e| panic!("the second purge failed: {e:?}"));
    // A row is deleted once: by one purger or the other (a third run picks up any remainder).
    let settings = app.settings();
    let c = tokio::task::spawn_blocking(move || tessera::purge::run(&settings))
        .await
        .expect("the purge panicked")
        .unwrap_or_else(|e| panic!("the third purge failed: {e:?}"));
    let deleted = (a.sessions_deleted + b.sessions_deleted + c.sessions_deleted) as i64;
    assert_eq!(deleted, seeded.dead, "{a:?} {b:?} {c:?}");
    let events = (a.events_deleted + b.events_deleted + c.events_deleted) as i64;
    assert_eq!(events, seeded.old_events, "{a:?} {b:?} {c:?}");
    let expired = (a.expired + b.expired + c.expired) as i64;
    assert_eq!(expired, seeded.overdue, "{a:?} {b:?} {c:?}");
    assert_purged(&mut db, &seeded);
    app.me_with(&alice, &[]).await.expect(200);
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run_tessera(dir: &Path, database_url: &str, args: &[&str]) -> Run {
    let mut command = Command::new(TESSERA);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("spawning tessera");
    let output = tokio::time::timeout(StdDuration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tessera {args:?} did not exit by itself"))
        .expect("waiting for tessera");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The one line `tessera purge` prints (design-v3):
/// `purged: <n> sessions expired, <n> sessions deleted, <n> events deleted, <n> login failures deleted`.
#[track_caller]
fn parse_report(stdout: &str) -> (i64, i64, i64) {
    let line = stdout.trim_end_matches(['\n', '\r']);
    assert!(
        !line.contains('\n'),
        "tessera purge must print one line, got {stdout:?}"
    );
    let numbers: Vec<i64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().expect("a count"))
        .collect();
    assert_eq!(numbers.len(), 4, "four counts in {line:?}");
    let expected = format!(
        "purged: {} sessions expired, {} sessions deleted, {} events deleted, {} login failures deleted",
        numbers[0], numbers[1], numbers[2], numbers[3]
    );
    assert_eq!(line, expected, "the line printed by tessera purge");
    (numbers[0], numbers[1], numbers[2])
}

async fn purge_command_exits_0_and_reports_what_it_did(backend: Backend) {
    let app = spawn_app_with(backend, &[NO_BACKGROUND]).await;
    app.register_ok("alice", PASSWORD).await;
    let alice = app.login_token("alice", PASSWORD).await;
    let alice_id = user_id_of(&app, "alice");
    let mut db = app.db();
    let seeded = seed(&mut db, alice_id, 100);
    let dir = tempfile::tempdir().unwrap();

    let migrate = run_tessera(dir.path(), &app.db.app_url(), &["migrate"]).await;
    assert_eq!(migrate.code, Some(0), "tessera migrate: {}", migrate.stderr);

    let run = run_tessera(dir.path(), &app.db.app_url(), &["purge"]).await;
    assert_eq!(
        run.code,
        Some(0),
        "tessera purge exit code; stdout {:?} stderr {:?}",
        run.stdout,
        run.stderr
    );
    let (expired, deleted, events) = parse_report(&run.stdout);
    assert_eq!(expired, seeded.overdue, "{}", run.stdout);
    assert_eq!(deleted, seeded.dead, "{}", run.stdout);
    assert_eq!(events, seeded.old_events, "{}", run.stdout);
    assert_purged(&mut db, &seeded);
    app.me_with(&alice, &[]).await.expect(200);

    // Nothing left: still exit 0.
    let run = run_tessera(dir.path(), &app.db.app_url(), &["purge"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(parse_report(&run.stdout), (0, 0, 0), "{}", run.stdout);
}

async fn background_purge_runs_every_interval(backend: Backend) {
    let app = spawn_app_with(backend, &[("PURGE_INTERVAL_SECONDS", "1")]).await;
    app.register_ok("alice", PASSWORD).await;
    let alice = app.login_token("alice", PASSWORD).await;
    let alice_id = user_id_of(&app, "alice");
    let mut db = app.db();
    let seeded = seed(&mut db, alice_id, 50);

    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let left = [
            "dead-revoked",
            "dead-legacy",
            "dead-expired",
            "dead-overdue",
        ]
        .iter()
        .map(|p| count_prefix_any(&mut db, p))
        .sum::<i64>()
            + count_prefix(&mut db, "overdue", "active")
            + count_events_older_than(&mut db, utc_now() - Duration::days(90))
            + db.count(
                "SELECT COUNT(*) AS n FROM login_failures WHERE ip = '192.0.2.1'",
                &[],
            );
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background purge (every 1 s) left {left} rows to purge"
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    assert_purged(&mut db, &seeded);
    app.me_with(&alice, &[]).await.expect(200);
}

async fn migrate_command_creates_the_new_tables_and_exits_0(backend: Backend) {
    // A database no server has opened yet.
    let db = TestDb::create(backend);
    let dir = tempfile::tempdir().unwrap();
    let run = run_tessera(dir.path(), &db.app_url(), &["migrate"]).await;
    assert_eq!(run.code, Some(0), "tessera migrate: {}", run.stderr);
    let mut conn = db.connect();
    for sql in [
        "SELECT COUNT(*) AS n FROM auth_events",
        "SELECT COUNT(*) AS n FROM login_failures",
        "SELECT COUNT(*) AS n FROM sessions \
         WHERE user_agent IS NULL AND ip IS NULL AND revoked_reason IS NULL AND revoked_at IS NULL",
    ] {
        assert_eq!(conn.count(sql, &[]), 0, "{sql}");
    }
    // Twice is fine.
    let run = run_tessera(dir.path(), &db.app_url(), &["migrate"]).await;
    assert_eq!(run.code, Some(0), "tessera migrate again: {}", run.stderr);
}
