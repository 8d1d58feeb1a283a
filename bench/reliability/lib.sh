# shellcheck shell=bash disable=SC2034
# Shared by the bench/reliability scripts (sourced, not run). Provides:
#   $repo $work $TESSERA_BIN $LOADGEN    paths (the binaries are built here when not given)
#   start_server NAME PORT DATABASE_URL [VAR=value ...]   start tessera, wait for /health
#   stop_server NAME / kill9_server NAME                  SIGTERM (and wait) / SIGKILL
#   pass / fail / check_json                              PASS and FAIL lines, counted
#   finish                                                the closing line and exit status
# The caller sets `set -euo pipefail` first and may add its own cleanup with on_cleanup.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script_name=$(basename "$0" .sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-$script_name.XXXXXX")
failures=0
checks=0
declare -A server_pid=()
bg_pids=()
cleanup_hooks=()

log() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$script_name" "$*"; }
die() { printf '%s: error: %s\n' "$script_name" "$*" >&2; exit 2; }

pass() { checks=$((checks + 1)); printf 'PASS: %s\n' "$*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); printf 'FAIL: %s\n' "$*"; }

# on_cleanup 'command ...': run at exit, before the servers are stopped, in reverse order
on_cleanup() { cleanup_hooks+=("$1"); }

_cleanup() {
    local rc=$? i pid
    set +e
    for ((i = ${#cleanup_hooks[@]} - 1; i >= 0; i--)); do
        eval "${cleanup_hooks[$i]}"
    done
    for pid in "${bg_pids[@]}" "${server_pid[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${bg_pids[@]}" "${server_pid[@]}"; do
        wait "$pid" 2>/dev/null
    done
    if [[ -n "${KEEP_WORK:-}" ]]; then
        echo "$script_name: kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The tessera binary: TESSERA_BIN, or target/release/tessera built by `cargo build --release`.
if [[ -n "${TESSERA_BIN:-}" ]]; then
    [[ -x "$TESSERA_BIN" ]] || die "TESSERA_BIN=$TESSERA_BIN is not an executable file"
else
    log "building tessera (cargo build --release; set TESSERA_BIN to use another binary)"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
    TESSERA_BIN=$repo/target/release/tessera
fi
# The load generator: LOADGEN, or bench/loadgen built in its own target directory.
if [[ -n "${LOADGEN:-}" ]]; then
    [[ -x "$LOADGEN" ]] || die "LOADGEN=$LOADGEN is not an executable file"
else
    cargo build --release --quiet --manifest-path "$repo/bench/loadgen/Cargo.toml" \
        --target-dir "$repo/bench/loadgen/target" || die "building bench/loadgen failed"
    LOADGEN=$repo/bench/loadgen/target/release/loadgen
fi
command -v curl >/dev/null || die "curl not found (apt-get install -y curl)"
command -v python3 >/dev/null || die "python3 not found (apt-get install -y python3)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME PORT DATABASE_URL [VAR=value ...]: tessera with the throttles off and metrics on a
# free loopback port, in a clean environment, cwd $work (no .env), log in $work/NAME.log; waits up to
# 30 s for /health 200.
start_server() {
    local name=$1 port=$2 db=$3
    shift 3
    if port_open "$port"; then
        die "127.0.0.1:$port is already in use (set PORT to another one)"
    fi
    (
        cd "$work" || exit 1
        exec env -i PATH="$PATH" HOME="${HOME:-/root}" \
            DATABASE_URL="$db" BIND_ADDR="127.0.0.1:$port" RUST_LOG="${SERVER_LOG_LEVEL:-warn}" \
            LOGIN_MAX_FAILURES=0 LOGIN_MAX_FAILURES_PER_IP=0 REGISTER_MAX_PER_IP=0 \
            MAX_SESSIONS_PER_USER=0 METRICS_BIND_ADDR=127.0.0.1:0 "$@" \
            "$TESSERA_BIN" >>"$work/$name.log" 2>&1
    ) &
    server_pid[$name]=$!
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${server_pid[$name]}" 2>/dev/null; then
            tail -n 20 "$work/$name.log" >&2
            unset "server_pid[$name]"
            die "tessera ($name) exited before answering"
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health") == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$work/$name.log" >&2
    die "tessera ($name) did not answer /health within 30 s"
}

stop_server() {
    local pid=${server_pid[$1]:-}
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "server_pid[$1]"
}

kill9_server() {
    local pid=${server_pid[$1]:-}
    [[ -n "$pid" ]] || die "no server $1 to kill"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    unset "server_pid[$1]"
}

# VmRSS of a server in kB
server_rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/${server_pid[$1]}/status"
}

# check_json FILE: one PASS/FAIL line per entry of the loadgen summary's "checks"
check_json() {
    local line
    while IFS= read -r line; do
        case $line in
            PASS:*) pass "${line#PASS: }" ;;
            FAIL:*) fail "${line#FAIL: }" ;;
        esac
    done < <(python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
label = d.get("scenario", "")
for c in d.get("checks", []):
    print(f"{'PASS' if c['ok'] else 'FAIL'}: {label}: {c['check']} ({c['observed']})")
EOF
    )
}

# summarize FILE: the loadgen summary in a few lines (totals, statuses, per-endpoint latencies,
# samples of what went wrong)
summarize() {
    python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if "checked" in d:
    print(f"  verify: {d['checked']} cookies checked, {d['failed']} failed, "
          f"status {json.dumps(d.get('status', {}))}")
else:
    print(f"  {d['scenario']}: {d['requests']} requests in {d['elapsed_s']} s "
          f"({d['requests_per_second']}/s) on {d['connections']} connections; "
          f"logins ok {d.get('logins_ok', 0)}")
    print(f"  status {json.dumps(d['status'])}; 5xx {d['server_errors']}; "
          f"'database is locked' {d['database_locked']}; transport errors {d['transport_errors']}; "
          f"timeouts {d['timeouts']}; no detail {d['missing_detail']}; unexpected {d['unexpected']}")
    lat = d["latency_ms"]
    print(f"  latency ms: p50 {lat['p50']} p99 {lat['p99']} max {lat['max']}")
    for name, e in d["endpoints"].items():
        print(f"    {name:32} {e['requests']:>7} req  p50 {e['p50_ms']} p99 {e['p99_ms']} "
              f"max {e['max_ms']} ms  {json.dumps(e['status'])}")
for s in d.get("samples", [])[:10]:
    print(f"  sample: {s}")
EOF
}

finish() {
    if ((checks == 0)); then
        echo "FAIL: $script_name checked nothing"
        exit 1
    fi
    if ((failures > 0)); then
        echo "$script_name: FAIL ($failures of $checks checks failed)"
        exit 1
    fi
    echo "$script_name: PASS ($checks checks)"
}
