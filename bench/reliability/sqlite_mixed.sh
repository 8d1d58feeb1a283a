#!/usr/bin/env bash
# sqlite_mixed.sh: tessera on a fresh SQLite file under mixed write load (logins, logouts,
# revocations by id and of all others, logouts everywhere, password changes, /users/me, session
# lists, checks that ended sessions stay ended) on CONNECTIONS connections for DURATION seconds.
# Passes when no response is a 5xx, no body says "database is locked", there is no transport
# error or timeout, every error has a JSON detail, and no answer contradicts what the client knows
# about its sessions.
#
#   bench/reliability/sqlite_mixed.sh
#   DURATION=10 TESSERA_BIN=/path/to/tessera bench/reliability/sqlite_mixed.sh
#
# Knobs: DURATION (60), CONNECTIONS (64), USERS (= CONNECTIONS), WEIGHTS (loadgen --weights),
# TIMEOUT per request (30 s: logins queue behind argon2 on a busy machine), PORT (18302),
# TESSERA_BIN, LOADGEN, KEEP_WORK=1.
set -euo pipefail
# shellcheck source=bench/reliability/lib.sh
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
USERS=${USERS:-$CONNECTIONS}
WEIGHTS=${WEIGHTS:-me=20,sessions=2,login=3,logout=2,revoke_one=2,revoke_others=1,logout_all=1,password=1,probe=1}
TIMEOUT=${TIMEOUT:-30}
PORT=${PORT:-18302}

log "tessera $TESSERA_BIN on SQLite $work/mixed.db, port $PORT"
start_server sqlite "$PORT" "$work/mixed.db" WORKERS="$(nproc)"

log "mixed load: $CONNECTIONS connections, $USERS users, ${DURATION} s, weights $WEIGHTS"
rc=0
"$LOADGEN" mixed --url "http://127.0.0.1:$PORT" -c "$CONNECTIONS" --users "$USERS" \
    -d "$DURATION" --timeout "$TIMEOUT" --weights "$WEIGHTS" \
    --allow-status 200,201,204,401 --strict \
    --cookies-out "$work/logins.tsv" --summary-out "$work/mixed.json" >/dev/null || rc=$?
[[ $rc -le 1 && -s "$work/mixed.json" ]] || die "loadgen failed (exit $rc)"
summarize "$work/mixed.json"
check_json "$work/mixed.json"

# the load must have written: sessions created and ended, not just read
if python3 - "$work/mixed.json" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))["endpoints"]
ok = lambda name, status: e.get(name, {}).get("status", {}).get(status, 0)
sys.exit(0 if ok("POST /login", "200") > 0 and ok("POST /logout", "200") > 0
         and ok("DELETE /users/me/sessions/{id}", "204") > 0
         and ok("DELETE /users/me/sessions", "200") > 0 else 1)
EOF
then
    pass "the load wrote (logins, logouts and revocations answered)"
else
    fail "the load did not write enough (see the counts above)"
fi

if grep -qi "database is locked" "$work/sqlite.log"; then
    fail "server log mentions 'database is locked': $(grep -ci 'database is locked' "$work/sqlite.log") lines"
    grep -i "database is locked" "$work/sqlite.log" | head -n 5
else
    pass "server log has no 'database is locked'"
fi
finish
