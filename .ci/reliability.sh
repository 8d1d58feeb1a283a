#!/usr/bin/env bash
# Reliability checks of a release binary (bench/reliability): PostgreSQL outage under load,
# SQLite under mixed write load for 60 s, and kill -9 mid-load. Runs all three, then fails if any
# failed. Called by .ci/run; runnable alone from anywhere.
#
#   .ci/reliability.sh                       # target/release/tessera (built when missing)
#   TESSERA_BIN=/path/to/tessera .ci/reliability.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth for `postgres` (its cluster is stopped for
# 10 s and started again), curl and python3; installs missing packages with apt-get. The soak
# test (bench/reliability/soak.sh, 5 minutes) is not run here.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "reliability: need root to run: $*" >&2
        exit 1
    fi
}

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
for tool in pg_ctlcluster pg_isready psql; do
    command -v "$tool" >/dev/null || { missing+=(postgresql); break; }
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "reliability: installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$pg_version" ]] || { echo "reliability: no PostgreSQL cluster in /etc/postgresql" >&2; exit 1; }
    echo "reliability: starting PostgreSQL $pg_version/main"
    as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 1
    done
    pg_isready -h 127.0.0.1 -p 5432 || { echo "reliability: PostgreSQL does not answer" >&2; exit 1; }
fi

if [[ -z "${TESSERA_BIN:-}" ]]; then
    TESSERA_BIN="$repo_root/target/release/tessera"
    if [[ ! -x "$TESSERA_BIN" ]]; then
        echo "reliability: building $TESSERA_BIN"
        cargo build --release
    fi
fi
[[ -x "$TESSERA_BIN" ]] || { echo "reliability: $TESSERA_BIN is not executable" >&2; exit 1; }
echo "reliability: bench/loadgen: fmt, unit tests, build"
cargo fmt --check --manifest-path bench/loadgen/Cargo.toml
cargo test --release --manifest-path bench/loadgen/Cargo.toml --target-dir bench/loadgen/target
cargo build --release --manifest-path bench/loadgen/Cargo.toml --target-dir bench/loadgen/target
export TESSERA_BIN
export LOADGEN="$repo_root/bench/loadgen/target/release/loadgen"

results=()
failed=0
run() { # name, then the command
    local name=$1 start rc=0
    shift
    printf '\n==> reliability: %s\n' "$name"
    start=$(date +%s)
    "$@" || rc=$?
    if [[ $rc -eq 0 ]]; then
        results+=("PASS $name ($(($(date +%s) - start)) s)")
    else
        results+=("FAIL $name (exit $rc, $(($(date +%s) - start)) s)")
        failed=$((failed + 1))
    fi
}

run pg_outage bench/reliability/pg_outage.sh
run sqlite_mixed env DURATION=60 bench/reliability/sqlite_mixed.sh
run kill9 bench/reliability/kill9.sh

printf '\nreliability results:\n'
printf '  %s\n' "${results[@]}"
if [[ $failed -gt 0 ]]; then
    echo "reliability: $failed of ${#results[@]} scripts failed"
    exit 1
fi
echo "reliability: all ${#results[@]} scripts passed"
