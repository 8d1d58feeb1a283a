#!/usr/bin/env bash
# bench/run.sh: tessera on SQLite and on PostgreSQL against the shared peers, in one run.
#
#   bench/run.sh                 # build release, start both tessera set-ups, bench them with the peers
#   PEERS="seed2 limitdb actixredis" bench/run.sh   # which peers (see ../shared/bench/README.md)
#
# Starts target/release/tessera twice: on a fresh SQLite file (port 18180) and on a fresh
# PostgreSQL database `tessera_bench` (port 18181, BENCH_PG_URL overrides the server), with the
# throttles off (one client IP hammers /login) and the sessions limit off, then runs
# ../shared/bench/run_peers.sh with both as extra targets, so every figure comes from one
# invocation and only ratios are compared. Needs wrk (apt-get install -y wrk). These are
# benchmarks, not tests: nothing in `cargo test` depends on them.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$repo/../shared/bench}
pg_admin=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_db=tessera_bench
pg_url=${pg_admin%/*}/$pg_db
work=$(mktemp -d /tmp/tessera-bench.XXXXXX)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: wrk not found (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$shared/run_peers.sh" ] || { echo "bench: $shared/run_peers.sh not found" >&2; exit 2; }

(cd "$repo" && cargo build --release --quiet)
bin=$repo/target/release/tessera

psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db" >/dev/null

start() { # name port database_url
    env -i PATH="$PATH" HOME="${HOME:-/root}" \
        DATABASE_URL="$3" BIND_ADDR="127.0.0.1:$2" WORKERS="$(nproc)" RUST_LOG=warn \
        LOGIN_MAX_FAILURES=0 LOGIN_MAX_FAILURES_PER_IP=0 REGISTER_MAX_PER_IP=0 MAX_SESSIONS_PER_USER=0 \
        "$bin" >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$2/health" && return 0
        sleep 0.1
    done
    echo "bench: tessera ($1) did not start:" >&2
    cat "$work/$1.log" >&2
    exit 1
}

start sqlite 18180 "$work/bench.db"
start postgres 18181 "$pg_url"

"$shared/run_peers.sh" tessera-sqlite=http://127.0.0.1:18180 tessera-pg=http://127.0.0.1:18181
