#!/usr/bin/env bash
# pg_outage.sh: tessera on a fresh PostgreSQL database under mixed load while PostgreSQL is
# stopped for OUTAGE seconds. Checks:
#   - every response of the load is 200, 201 (it registers a user to replace one whose password
#     change had an unknown outcome), 204, 401 (its own checks that ended sessions stay ended) or
#     503: no 500, no other status; every error, 503 included, has a JSON `detail`;
#   - no transport error, no timeout, and no request slower than the pool timeout
#     (DB_CONNECT_TIMEOUT_SECONDS=POOL_TIMEOUT) plus LATENCY_MARGIN seconds (5: a password change
#     waits for the database up to twice and queues for argon2 twice, so it may legitimately take
#     two pool timeouts plus its hashing);
#   - fail fast: the p99 latency of the load's 503 answers is at most P99_503_MS (50) ms, and no
#     request that hashes no password (all but login, registration and password change) took
#     longer than the pool timeout: once a connection cannot be opened, tessera answers 503 at
#     once instead of making each request wait for the pool;
#   - no answer contradicts what the client knows (a live session refused, an ended one accepted);
#   - the outage was real (the load got 503s, /health said 503 during it) and the load recovered
#     (no 503 in the last 5 s);
#   - /health answers 200 within HEALTH_WITHIN (1) seconds of PostgreSQL accepting connections
#     again (the recovery time, printed);
#   - every session opened before the outage still gets 200 on /users/me afterwards.
# PostgreSQL is started again by the exit trap whatever happens, and the database dropped.
#
#   bench/reliability/pg_outage.sh
#   TESSERA_BIN=/path/to/tessera OUTAGE=5 bench/reliability/pg_outage.sh
#
# Knobs: PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), PG_VERSION (newest in
# /etc/postgresql), PG_CLUSTER (main): the cluster that is stopped must be the one PG_ADMIN_URL
# reaches. OUTAGE (10), BEFORE (5) and AFTER (15) seconds of load around it, CONNECTIONS (16),
# PRE_USERS (40, 2 sessions each), POOL_TIMEOUT (2), LATENCY_MARGIN (5), HEALTH_WITHIN (1),
# P99_503_MS (50),
# WEIGHTS (loadgen --weights), PORT (18301), TESSERA_BIN, LOADGEN, KEEP_WORK=1.
set -euo pipefail
# shellcheck source=bench/reliability/lib.sh
source "$(dirname "$0")/lib.sh"

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_VERSION=${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)}
PG_CLUSTER=${PG_CLUSTER:-main}
OUTAGE=${OUTAGE:-10}
BEFORE=${BEFORE:-5}
AFTER=${AFTER:-15}
CONNECTIONS=${CONNECTIONS:-16}
PRE_USERS=${PRE_USERS:-40}
POOL_TIMEOUT=${POOL_TIMEOUT:-2}
LATENCY_MARGIN=${LATENCY_MARGIN:-5}
HEALTH_WITHIN=${HEALTH_WITHIN:-1}
P99_503_MS=${P99_503_MS:-50}
PORT=${PORT:-18301}
WEIGHTS=${WEIGHTS:-me=20,sessions=2,login=3,logout=2,revoke_one=2,revoke_others=1,logout_all=1,password=1,probe=1}

[[ -n "$PG_VERSION" && -d "/etc/postgresql/$PG_VERSION/$PG_CLUSTER" ]] ||
    die "no PostgreSQL cluster /etc/postgresql/${PG_VERSION:-?}/$PG_CLUSTER (set PG_VERSION, PG_CLUSTER)"
for tool in pg_ctlcluster pg_isready psql; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y postgresql)"
done
(( AFTER >= 6 )) || die "AFTER must be at least 6 s (the last 5 s of the load must be free of 503)"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
pg_cluster() { as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" "$@"; }
pg_up() { pg_isready -q -d "$PG_ADMIN_URL"; }
wait_pg_up() { # seconds
    local deadline=$((SECONDS + $1))
    until pg_up; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
now() { date +%s.%N; }
secs_between() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

db=tessera_reliability_$$
pg_url=${PG_ADMIN_URL%/*}/$db

restore_pg() {
    if ! pg_up; then
        echo "$script_name: starting PostgreSQL $PG_VERSION/$PG_CLUSTER again" >&2
        pg_cluster start || true
        wait_pg_up 60 || echo "$script_name: WARNING: PostgreSQL did not come back" >&2
    fi
    stop_server pg
    psql "$PG_ADMIN_URL" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
on_cleanup restore_pg

if ! pg_up; then
    log "PostgreSQL is down: starting $PG_VERSION/$PG_CLUSTER"
    pg_cluster start || true
    wait_pg_up 30 || die "PostgreSQL does not answer at $PG_ADMIN_URL"
fi
PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qAt \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null

log "tessera $TESSERA_BIN on PostgreSQL database $db, port $PORT, DB_CONNECT_TIMEOUT_SECONDS=$POOL_TIMEOUT"
start_server pg "$PORT" "$pg_url" WORKERS="$(nproc)" DB_CONNECT_TIMEOUT_SECONDS="$POOL_TIMEOUT"
url=http://127.0.0.1:$PORT

log "before the outage: $PRE_USERS users, 2 sessions each"
"$LOADGEN" setup --url "$url" --users "$PRE_USERS" --sessions-per-user 2 -c 4 \
    --prefix "pre$$_" --cookies-out "$work/pre.tsv" --summary-out "$work/pre.json" >/dev/null ||
    die "could not log in the users before the outage"
log "$(wc -l <"$work/pre.tsv") sessions saved"

duration=$((BEFORE + OUTAGE + AFTER))
max_ms=$(((POOL_TIMEOUT + LATENCY_MARGIN) * 1000))
log "mixed load: $CONNECTIONS connections for $duration s; PostgreSQL stops ${BEFORE} s in for ${OUTAGE} s"
"$LOADGEN" mixed --url "$url" -c "$CONNECTIONS" -d "$duration" --prefix "mix$$_" --weights "$WEIGHTS" \
    --timeout $((POOL_TIMEOUT + LATENCY_MARGIN + 20)) --timeline --ready-file "$work/ready" \
    --allow-status 200,201,204,401,503 --require-detail --fail-on-locked \
    --fail-on-transport-errors --fail-on-timeouts --fail-on-unexpected --max-latency-ms "$max_ms" \
    --summary-out "$work/mixed.json" >/dev/null 2>"$work/mixed.err" &
load_pid=$!
bg_pids+=("$load_pid")
deadline=$((SECONDS + 120))
until [[ -e "$work/ready" ]]; do
    kill -0 "$load_pid" 2>/dev/null || { cat "$work/mixed.err" >&2; die "loadgen exited during its set-up"; }
    ((SECONDS < deadline)) || die "loadgen set-up took more than 120 s"
    sleep 0.1
done
sleep "$BEFORE"

log "stopping PostgreSQL ($PG_VERSION/$PG_CLUSTER, -m fast)"
t_stop=$(now)
pg_cluster stop -m fast
sleep 3
health=$(curl -s -w '\n%{http_code} %{time_total}' --max-time 30 "$url/health" || true)
log "during the outage: /health -> $(tail -n 1 <<<"$health" | awk '{print $1 " in " $2 " s"}'): $(head -n 1 <<<"$health")"
if [[ $(tail -n 1 <<<"$health" | cut -d' ' -f1) == 503 ]]; then
    pass "/health is 503 during the outage"
else
    fail "/health during the outage: $(tail -n 1 <<<"$health")"
fi
remaining=$(python3 -c "import sys,time; print(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))" "$t_stop" "$OUTAGE")
sleep "$remaining"

log "starting PostgreSQL"
pg_cluster start
wait_pg_up 60 || die "PostgreSQL did not come back within 60 s"
t_back=$(now)
log "PostgreSQL accepts connections again, $(secs_between "$t_stop" "$t_back") s after the stop"
t_health=""
while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$((POOL_TIMEOUT + 1))" "$url/health" || true)
    if [[ $code == 200 ]]; then
        t_health=$(now)
        break
    fi
    if [[ $(secs_between "$t_back" "$(now)" | cut -d. -f1) -ge 60 ]]; then
        break
    fi
    sleep 0.1
done
if [[ -z "$t_health" ]]; then
    fail "/health is not 200 60 s after PostgreSQL came back"
else
    recovery=$(secs_between "$t_back" "$t_health")
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$recovery" "$HEALTH_WITHIN"; then
        pass "/health 200 ${recovery} s after PostgreSQL came back (limit ${HEALTH_WITHIN} s)"
    else
        fail "/health 200 only ${recovery} s after PostgreSQL came back (limit ${HEALTH_WITHIN} s)"
    fi
fi

rc=0
wait "$load_pid" || rc=$?
[[ $rc -le 1 && -s "$work/mixed.json" ]] || { cat "$work/mixed.err" >&2; die "loadgen failed (exit $rc)"; }
summarize "$work/mixed.json"
echo "  per second (PostgreSQL stopped at ~${BEFORE} s, back at ~$((BEFORE + OUTAGE)) s):"
python3 - "$work/mixed.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1])).get("timeline", []):
    print(f"    t={r['second']:>3}s ok={r['ok']:>5} 4xx={r['4xx']:>4} 503={r['503']:>4} "
          f"other5xx={r['other_5xx']} transport={r['transport_errors']} timeouts={r['timeouts']} "
          f"max={r['max_ms']} ms")
EOF
check_json "$work/mixed.json"
# Fail fast: how quickly the 503s came, and the slowest request that waited only for the database.
if python3 - "$work/mixed.json" "$P99_503_MS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_503_ms"]
print(f"  503 answers: {l['count']}, latency p50 {l['p50']} ms, p99 {l['p99']} ms, max {l['max']} ms")
sys.exit(0 if l["count"] > 0 and l["p99"] is not None and l["p99"] <= float(sys.argv[2]) else 1)
EOF
then
    pass "p99 of the 503 answers during the outage <= ${P99_503_MS} ms"
else
    fail "p99 of the 503 answers during the outage above ${P99_503_MS} ms (or no 503 at all)"
fi
if python3 - "$work/mixed.json" "$POOL_TIMEOUT" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
hashing = {"POST /login", "POST /register", "PUT /users/me/password"}
others = {k: e["max_ms"] for k, e in d["endpoints"].items() if k not in hashing and e["max_ms"] is not None}
worst = max(others.items(), key=lambda kv: kv[1]) if others else ("-", 0)
print(f"  slowest request of all: {d['latency_ms']['max']} ms; slowest that hashes no password: "
      f"{worst[1]} ms ({worst[0]})")
sys.exit(0 if worst[1] <= float(sys.argv[2]) * 1000 else 1)
EOF
then
    pass "no request that hashes no password took longer than the pool timeout (${POOL_TIMEOUT} s)"
else
    fail "a request that hashes no password took longer than the pool timeout (${POOL_TIMEOUT} s)"
fi
if python3 - "$work/mixed.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
rows = d.get("timeline", [])
seen = d["status"].get("503", 0)
tail = [r for r in rows if r["second"] >= d["duration_s"] - 5]
recovered = tail and all(r["503"] == 0 for r in tail) and sum(r["ok"] for r in tail) > 0
print(f"  503 responses: {seen}; last 5 s: {sum(r['ok'] for r in tail)} ok, {sum(r['503'] for r in tail)} 503")
sys.exit(0 if seen > 0 and recovered else 1)
EOF
then
    pass "the load saw the outage (503s) and then recovered (no 503 in its last 5 s)"
else
    fail "the load did not see the outage, or did not recover (timeline above)"
fi

log "every session opened before the outage"
rc=0
"$LOADGEN" verify --url "$url" --cookies-in "$work/pre.tsv" -c 4 --summary-out "$work/verify.json" >/dev/null 2>&1 || rc=$?
[[ $rc -le 1 && -s "$work/verify.json" ]] || die "loadgen verify failed (exit $rc)"
summarize "$work/verify.json"
check_json "$work/verify.json"

errors=$(grep -c "request failed" "$work/pg.log" || true)
if [[ $errors -eq 0 ]]; then
    pass "the server logged no failed request (500)"
else
    fail "the server logged $errors failed requests (500):"
    grep "request failed" "$work/pg.log" | head -n 5
fi
finish
