#!/usr/bin/env bash
# bench/pg_write_paths.sh: what one PostgreSQL server sustains for tessera's database work, path by
# path, measured with pgbench running tessera's own statements (bench/pgbench/*.sql, captured from
# the server with log_statement=all) against a database migrated by tessera itself.
#
#   bench/pg_write_paths.sh                      # defaults below
#   USERS=10000 SESSIONS=1000000 CLIENTS=8 DURATION=10 bench/pg_write_paths.sh
#
# Prints transactions/s per path (one transaction = one request's worth of statements) and the
# purge rate (dead rows deleted per second by `tessera purge`), for docs/scaling.md. The figures
# are for this machine's PostgreSQL (its cores shared with pgbench itself); docs/scaling.md says
# how they are used. These are benchmarks, not tests.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
pg_admin=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=tessera_pgw
url=${pg_admin%/*}/$db
USERS=${USERS:-10000}
SESSIONS=${SESSIONS:-200000}
DEAD=${DEAD:-200000}
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-10}
bin=${TESSERA_BIN:-$repo/target/release/tessera}
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -1)
[ -x "$pgbench" ] || { echo "pg_write_paths: pgbench not found" >&2; exit 2; }
[ -x "$bin" ] || (cd "$repo" && cargo build --release --quiet)

cleanup() { psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL=$url "$bin" migrate >/dev/null

echo "seeding $USERS users, $SESSIONS active sessions, $DEAD dead ones ..."
psql "$url" -qAt -v ON_ERROR_STOP=1 <<SQL
INSERT INTO users (username, username_key, password_hash, created_at)
  SELECT 'user' || i, 'user' || i, '\$argon2id\$v=19\$m=19456,t=2,p=1\$c2FsdHNhbHQ\$aGFzaA', now() AT TIME ZONE 'UTC'
  FROM generate_series(1, $USERS) i;
INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, created_at, expires_at, last_seen_at)
  SELECT 's' || i, 1 + i % $USERS, encode(sha256(('s' || i)::bytea), 'hex'), 'active', repeat('f', 64),
         now() AT TIME ZONE 'UTC', (now() AT TIME ZONE 'UTC') + interval '7 days', now() AT TIME ZONE 'UTC'
  FROM generate_series(1, $SESSIONS) i;
INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, created_at, expires_at, last_seen_at, revoked_at)
  SELECT 'd' || i, 1 + i % $USERS, encode(sha256(('d' || i)::bytea), 'hex'),
         CASE WHEN i % 2 = 0 THEN 'expired' ELSE 'inactive' END, repeat('f', 64),
         (now() AT TIME ZONE 'UTC') - interval '90 days', (now() AT TIME ZONE 'UTC') - interval '60 days',
         (now() AT TIME ZONE 'UTC') - interval '60 days', (now() AT TIME ZONE 'UTC') - interval '60 days'
  FROM generate_series(1, $DEAD) i;
VACUUM ANALYZE;
SQL

size=$(psql "$url" -qAt -c "SELECT pg_total_relation_size('sessions'), pg_relation_size('sessions'), (SELECT count(*) FROM sessions)")
IFS='|' read -r total_bytes heap_bytes rows <<<"$size"
echo "sessions: $rows rows, $((total_bytes / rows)) bytes per row with its indexes ($((heap_bytes / rows)) in the heap)"

run() { # name script
    local out tps
    out=$("$pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -D users="$USERS" -D sessions="$SESSIONS" \
        -f "$repo/bench/pgbench/$2" "$url" 2>&1) || { echo "$out" >&2; exit 1; }
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
    printf '| %-34s | %10.0f | %8s |\n' "$1" "$tps" "$lat"
}

echo
echo "PostgreSQL $(psql "$pg_admin" -qAt -c 'SHOW server_version'), $(nproc) cores shared with pgbench, $CLIENTS clients, ${DURATION}s each"
echo
echo "| path (one request's statements)    |  tx/s      | avg ms   |"
echo "|------------------------------------|-----------:|---------:|"
run "verify, cache miss (read only)" verify.sql
run "last-seen touch (read + update)" touch.sql
run "renewal (read + update 2 columns)" renew.sql
run "login (throttle, session, event)" login.sql
run "logout (find, end, event)" logout.sql

# The purge: everything DEAD is past retention; time `tessera purge` deleting it in batches.
start=$(date +%s.%N)
report=$(DATABASE_URL=$url PURGE_BATCH_SIZE=${PURGE_BATCH_SIZE:-1000} "$bin" purge)
end=$(date +%s.%N)
deleted=$(sed -n 's/.* \([0-9]*\) sessions deleted.*/\1/p' <<<"$report")
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
rate=$(awk -v n="$deleted" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
printf '| %-34s | %10.0f | %8s |\n' "purge: dead rows deleted per second" "$rate" "-"
echo
echo "purge: $report in ${secs}s"
