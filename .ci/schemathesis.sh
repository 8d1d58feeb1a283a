#!/usr/bin/env bash
# Property-based API testing: schemathesis (from PyPI, pinned) against a freshly started release
# binary, with a registered user's session cookie, for a bounded number of examples per operation.
# Fails on any 500 and on any response the OpenAPI document (GET /openapi.json) does not describe:
# status code, content type, headers or body.
#
# Needs target/release/tessera (cargo build --release), python3 with venv, and curl.
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 30), SCHEMATHESIS_SEED (default: random),
# SCHEMATHESIS_CHECKS (default: no 500 + the four conformance checks), TESSERA_BINARY (default
# target/release/tessera), SCHEMATHESIS_DATABASE_URL (default: a fresh SQLite file; give an empty
# PostgreSQL database to test that backend). Reports: target/schemathesis-report/*.xml (JUnit).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${TESSERA_BINARY:-$repo_root/target/release/tessera}"
venv="$repo_root/target/schemathesis-venv"
report_dir="$repo_root/target/schemathesis-report"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-30}"

server_pid=""
work_dir=""

log() { printf '==> schemathesis: %s\n' "$*"; }
die() { printf 'schemathesis: error: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -n "$work_dir" && -f "$work_dir/server.log" ]]; then
        echo "--- server log (last 40 lines) ---" >&2
        tail -n 40 "$work_dir/server.log" >&2 || true
    fi
    if [[ -n "$work_dir" && -d "$work_dir" ]]; then
        rm -rf "$work_dir"
    fi
    exit "$rc"
}
trap cleanup EXIT

[[ -x "$binary" ]] || die "$binary not found: run 'cargo build --release' first"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"

# ---------------------------------------------------------------------------------------------
# schemathesis, pinned, in a venv under target/
st="$venv/bin/schemathesis"
if ! "$st" --version 2>/dev/null | grep -qF "version $SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$st" --version

# ---------------------------------------------------------------------------------------------
# the server: a free loopback port, a fresh SQLite file, no throttling, a clean environment
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
[[ "$port" != 8080 ]] || die "got port 8080, which the walkthrough uses; run again"
base="http://127.0.0.1:$port"
work_dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-schemathesis.XXXXXX")"
database_url="${SCHEMATHESIS_DATABASE_URL:-$work_dir/tessera.db}"
log "starting $binary on $base (database $(sed -E 's#(//[^:/@]*):[^@/]*@#\1:***@#' <<<"$database_url"))"
(
    cd "$work_dir"
    exec env -i PATH="$PATH" HOME="${HOME:-/root}" \
        DATABASE_URL="$database_url" \
        BIND_ADDR="127.0.0.1:$port" \
        WORKERS=2 \
        LOGIN_MAX_FAILURES=0 \
        LOGIN_MAX_FAILURES_PER_IP=0 \
        REGISTER_MAX_PER_IP=0 \
        PURGE_INTERVAL_SECONDS=0 \
        METRICS_BIND_ADDR=127.0.0.1:0 \
        RUST_LOG=warn \
        "$binary" >"$work_dir/server.log" 2>&1
) &
server_pid=$!

deadline=$(( $(date +%s) + 30 ))
until curl -fs -o /dev/null --max-time 2 "$base/health"; do
    kill -0 "$server_pid" 2>/dev/null || die "the server exited before answering"
    [[ $(date +%s) -lt $deadline ]] || die "the server did not answer $base/health within 30 s"
    sleep 0.3
done

# ---------------------------------------------------------------------------------------------
# a user (its password unlike any example in the document) and a session cookie for it
username="schemathesis"
password="st-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
status="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/register" \
    -H 'Content-Type: application/json' \
    -d "{\"username\":\"$username\",\"password\":\"$password\"}")"
[[ "$status" == 201 ]] || die "POST /register answered $status"

cookie_name="$(curl -fs "$base/openapi.json" | python3 -c \
    'import json, sys; print(json.load(sys.stdin)["components"]["securitySchemes"]["session_cookie"]["name"])')"

# Sessions are bound to the client's User-Agent and Accept-Language (FINGERPRINT=full): curl and
# schemathesis present the same ones.
user_agent="tessera-ci-schemathesis"

# prints the Cookie header value of a fresh session
login() {
    local headers value
    headers="$(curl -s -D - -o /dev/null -X POST "$base/login" \
        -H 'Content-Type: application/json' -H "User-Agent: $user_agent" \
        -d "{\"username\":\"$username\",\"password\":\"$password\"}")"
    value="$(printf '%s\n' "$headers" | tr -d '\r' |
        sed -n "s/^[Ss]et-[Cc]ookie: $cookie_name=\([^;]*\).*/\1/p" | head -n 1)"
    [[ -n "$value" ]] || die "POST /login set no $cookie_name cookie: $headers"
    printf '%s=%s' "$cookie_name" "$value"
}

checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance}"
[[ -n "${SCHEMATHESIS_CHECKS:-}" ]] ||
    checks+=,response_headers_conformance,response_schema_conformance
rm -rf "$report_dir"
mkdir -p "$report_dir"

# run NAME COOKIE [filter options...]
run() {
    local name="$1" cookie="$2"
    shift 2
    log "run '$name' ($max_examples examples per operation)"
    (
        cd "$work_dir"  # schemathesis keeps its state in the working directory
        "$st" run "$base/openapi.json" \
            --checks "$checks" \
            --max-examples "$max_examples" \
            ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
            --header "Cookie: $cookie" \
            --header "User-Agent: $user_agent" \
            --generation-with-security-parameters false \
            --generation-database none \
            --request-timeout 30 \
            --no-color \
            --report junit \
            --report-junit-path "$report_dir/$name.xml" \
            "$@"
    )
}

# Expect warnings "Authentication failed: ... returned only 401/403": the user's password is
# not in the document, so PUT /users/me/password and DELETE /users/me only ever see 403, and a
# session ended by one test case (a revoked current session) is 401 for the next ones.
#
# 1. Everything that keeps the session alive. Not POST /login: a login sent with the cookie ends
#    the cookie's session, so it runs in the second pass.
cookie="$(login)"  # an assignment, so that a failed login stops the script (set -e)
run session "$cookie" \
    --exclude-operation-id login \
    --exclude-operation-id logout \
    --exclude-operation-id logout_all

# 2. The operations that end (or replace) the session, each with a fresh one. Once it has ended,
#    the rest of that run sees 401s, which the document lists too.
for operation in login logout logout_all; do
    cookie="$(login)"
    run "$operation" "$cookie" --include-operation-id "$operation"
done

log "OK"
