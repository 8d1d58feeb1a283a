#!/usr/bin/env bash
# kill9.sh: crash safety on SQLite. Each of ROUNDS rounds starts tessera on the same database file,
# runs write load (a `login` load whose every 200 is recorded with its cookie, plus a `mixed` load
# of logins, logouts and revocations), kills the server with SIGKILL at a random moment of the
# load, then checks:
#   - PRAGMA integrity_check is "ok" (and foreign_key_check is empty) on the file the crash left;
#   - the server starts again on that file;
#   - every login that got a 200, in this round and every earlier one, still has a working session
#     (`loadgen verify`: 200 on /users/me naming its user);
#   - the restarted server takes writes (registrations and logins);
#   - before the kill the load got no 500 and nothing that contradicts its sessions.
#
#   bench/reliability/kill9.sh
#   ROUNDS=5 TESSERA_BIN=/path/to/tessera bench/reliability/kill9.sh
#
# Knobs: ROUNDS (3), LOAD (10 s of load per round; the kill comes 1 to LOAD-2 s in),
# CONNECTIONS (8 for the login load, 8 more for the mixed load), PORT (18303), TESSERA_BIN,
# LOADGEN, KEEP_WORK=1.
set -euo pipefail
# shellcheck source=bench/reliability/lib.sh
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
LOAD=${LOAD:-10}
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-18303}
(( LOAD >= 4 )) || die "LOAD must be at least 4 s"
(( ROUNDS >= 1 )) || die "ROUNDS must be at least 1"

db=$work/kill9.db
url=http://127.0.0.1:$PORT

# integrity_check and foreign_key_check of the database file, with python3's sqlite3
integrity() {
    python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
rows = [r[0] for r in c.execute("PRAGMA integrity_check")]
fk = c.execute("PRAGMA foreign_key_check").fetchall()
sessions = c.execute("SELECT count(*) FROM sessions").fetchone()[0]
c.close()
print(f"integrity_check: {'; '.join(rows[:5])}; foreign_key_check: {len(fk)} rows; sessions: {sessions}")
sys.exit(0 if rows == ["ok"] and not fk else 1)
EOF
}

wait_ready() { # file pid
    local deadline=$((SECONDS + 120))
    until [[ -e "$1" ]]; do
        kill -0 "$2" 2>/dev/null || die "loadgen exited during its set-up ($1)"
        ((SECONDS < deadline)) || die "loadgen set-up took more than 120 s"
        sleep 0.05
    done
}

: >"$work/all-logins.tsv"
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS: tessera on $db"
    start_server sqlite "$PORT" "$db" WORKERS="$(nproc)"

    checks_args=(--allow-status "200,201,204,401,503" --fail-on-unexpected --require-detail --timeout 5)
    "$LOADGEN" login --url "$url" -c "$CONNECTIONS" -d "$LOAD" --prefix "k${round}l$$_" \
        --cookies-out "$work/logins.$round.tsv" --ready-file "$work/ready.login.$round" \
        --summary-out "$work/login.$round.json" "${checks_args[@]}" >/dev/null 2>&1 &
    login_pid=$!
    bg_pids+=("$login_pid")
    "$LOADGEN" mixed --url "$url" -c "$CONNECTIONS" -d "$LOAD" --prefix "k${round}m$$_" \
        --ready-file "$work/ready.mixed.$round" \
        --summary-out "$work/mixed.$round.json" "${checks_args[@]}" >/dev/null 2>&1 &
    mixed_pid=$!
    bg_pids+=("$mixed_pid")
    wait_ready "$work/ready.login.$round" "$login_pid"
    wait_ready "$work/ready.mixed.$round" "$mixed_pid"

    delay_ms=$((1000 + RANDOM % ((LOAD - 3) * 1000)))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill9_server sqlite
    log "round $round: SIGKILL $delay_ms ms into the load, $(wc -l <"$work/logins.$round.tsv") logins recorded so far"
    for pid in "$login_pid" "$mixed_pid"; do
        rc=0
        wait "$pid" || rc=$?
        [[ $rc -le 1 ]] || die "loadgen failed (exit $rc)"
    done
    bg_pids=()
    for load in login mixed; do
        summarize "$work/$load.$round.json"
        check_json "$work/$load.$round.json"
    done

    logins=$(wc -l <"$work/logins.$round.tsv")
    if ((logins > 0)); then
        pass "round $round: $logins logins got a 200 before the kill"
    else
        fail "round $round: no login got a 200 before the kill (nothing to verify)"
    fi
    cat "$work/logins.$round.tsv" >>"$work/all-logins.tsv"

    if result=$(integrity); then
        pass "round $round: the file the crash left: $result"
    else
        fail "round $round: the file the crash left: $result"
    fi

    start_server sqlite "$PORT" "$db" WORKERS="$(nproc)"
    pass "round $round: tessera restarted on the crashed file"
    rc=0
    "$LOADGEN" verify --url "$url" --cookies-in "$work/all-logins.tsv" -c 4 \
        --summary-out "$work/verify.$round.json" >/dev/null 2>&1 || rc=$?
    [[ $rc -le 1 && -s "$work/verify.$round.json" ]] || die "loadgen verify failed (exit $rc)"
    summarize "$work/verify.$round.json"
    check_json "$work/verify.$round.json"

    rc=0
    "$LOADGEN" setup --url "$url" --users 2 -c 2 --prefix "k${round}after$$_" \
        --summary-out "$work/after.$round.json" >/dev/null 2>&1 || rc=$?
    if [[ $rc -eq 0 ]]; then
        pass "round $round: the restarted server takes writes (2 registrations, 2 logins)"
    else
        fail "round $round: the restarted server does not take writes (loadgen setup exit $rc)"
    fi
    stop_server sqlite
done
finish
