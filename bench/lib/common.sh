# shellcheck shell=bash
# bench/lib/common.sh: helpers of bench/run.sh (sourced; expects $work, $bin, $lib, $py, $results,
# $pg_admin, SETTLE_MAX and THREADS to be set). Everything talks to 127.0.0.1 only.

die() { echo "bench: $*" >&2; exit 2; }
note() { echo "bench: $*" >&2; }

secs() { # "10s" / "2m" / "10" -> whole seconds
    local d=$1
    case $d in *m) echo $(( ${d%m} * 60 ));; *s) echo "${d%s}";; *) echo "$d";; esac
}

# record KEY BACKEND RUN VALUE: one measurement for bench/lib/report.py (tab-separated; the value
# must not contain a tab or a newline).
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$results"
}

cpu_ticks() { # busy and total jiffies of the whole machine
    awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; total=busy+$5+$6; print busy, total}' /proc/stat
}

# settle LABEL BACKEND RUN: wait (at most SETTLE_MAX s) until the machine is under 15% busy, as
# compare.sh does, so queued argon2 work or a previous server's exit does not leak into the next
# measurement. If it never gets quiet, the measurement is recorded as taken on a busy box.
settle() {
    local i a b c d
    for i in $(seq $(( SETTLE_MAX * 2 ))); do
        read -r a c < <(cpu_ticks); sleep 0.5; read -r b d < <(cpu_ticks)
        [ $(( (b - a) * 100 )) -lt $(( (d - c) * 15 )) ] && return 0
    done
    note "machine still >15% busy after ${SETTLE_MAX}s before $1 ($2); flagged busy"
    record busy "$2" "$3" "$1"
}

port_free() { # PORT: true when nothing listens on 127.0.0.1:PORT
    ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

# ---------------------------------------------------------------------------------------------
# Databases: a fresh SQLite path or a fresh PostgreSQL database per server; dropped on exit.

pg_dbs=()
export PGOPTIONS="-c client_min_messages=warning"   # no NOTICE for DROP DATABASE IF EXISTS
pg_url_for() { echo "${pg_admin%/*}/$1"; }

# fresh_db BACKEND NAME: a new, empty database; sets DB_URL to its DATABASE_URL. (Not meant for
# $(...): the list of databases to drop on exit must be kept in this shell.)
fresh_db() {
    case $1 in
        sqlite)
            rm -f "$work/$2.db" "$work/$2.db-wal" "$work/$2.db-shm"
            DB_URL=$work/$2.db ;;
        postgres)
            psql "$pg_admin" -qAt -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" \
                -c "CREATE DATABASE $2" >/dev/null || die "cannot create PostgreSQL database $2"
            case " ${pg_dbs[*]} " in *" $2 "*) ;; *) pg_dbs+=("$2");; esac
            DB_URL=$(pg_url_for "$2") ;;
        *) die "unknown backend $1" ;;
    esac
}

drop_pg_dbs() {
    local db
    for db in "${pg_dbs[@]}"; do
        psql "$pg_admin" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

# db_sql BACKEND DATABASE_URL < script: runs SQL, prints result rows with columns joined by '|'
db_sql() {
    case $1 in
        sqlite) "$py" "$lib/sqlite_sql.py" "$2" ;;
        postgres) psql "$2" -qAt -v ON_ERROR_STOP=1 -f - ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Servers: each tessera runs in $work (so no .env of the caller's directory is read) with a clean
# environment: throttles and the per-user session limit off (one client IP hammers /login with
# one user), metrics on a free loopback port (not the fixed default 9464, which two servers
# would share), WORKERS = cores, RUST_LOG=warn, plus any VAR=VALUE given.

declare -A srv_pid srv_log
server_env() { # DATABASE_URL PORT -> the env(1) assignments every bench server gets
    echo "PATH=$PATH" "HOME=${HOME:-/root}" "DATABASE_URL=$1" "BIND_ADDR=127.0.0.1:$2" \
        "WORKERS=$(nproc)" RUST_LOG=warn LOGIN_MAX_FAILURES=0 LOGIN_MAX_FAILURES_PER_IP=0 \
        REGISTER_MAX_PER_IP=0 MAX_SESSIONS_PER_USER=0 METRICS_BIND_ADDR=127.0.0.1:0
}

# start_server NAME PORT DATABASE_URL [VAR=VALUE ...]: starts it and waits for a 200 from /health
start_server() {
    local name=$1 port=$2 url=$3 code i
    shift 3
    port_free "$port" || die "port $port is taken; stop whatever listens there"
    srv_log[$name]=$work/server-$name.log
    # shellcheck disable=SC2046 # server_env's words are VAR=VALUE pairs without spaces
    (cd "$work" && exec env -i $(server_env "$url" "$port") "$@" "$bin") >"${srv_log[$name]}" 2>&1 &
    srv_pid[$name]=$!
    for i in $(seq 1 300); do
        code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
        [ "$code" = 200 ] && return 0
        kill -0 "${srv_pid[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    note "tessera ($name) did not answer 200 on :$port/health:"
    cat "${srv_log[$name]}" >&2
    exit 1
}

stop_server() { # NAME
    local pid=${srv_pid[$1]:-}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "srv_pid[$1]"
}

stop_all_servers() {
    local name
    for name in "${!srv_pid[@]}"; do stop_server "$name"; done
}

proc_status() { # PID FIELD: a number from /proc/PID/status (VmRSS and VmHWM in kB, Threads)
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Sessions: a fresh user, registered and logged in with curl, as compare.sh does.

# make_session BASE_URL LABEL: registers a fresh user through the API, then logs it in (see
# login_session); sets S_USER, S_BODY (the login JSON), S_UA and S_COOKIE (name=value)
make_session() {
    local code
    new_user "$2"
    code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$S_BODY" "$1/register")
    [ "$code" = 201 ] || die "register on $1 -> HTTP $code"
    login_session "$1"
}

new_user() { # LABEL: picks S_USER, S_PASSWORD, S_BODY and S_UA for a user not created yet
    S_USER="bench_$1_$(date +%s%N)"
    S_PASSWORD="bench-Passw0rd-$RANDOM$RANDOM"
    S_BODY="{\"username\":\"$S_USER\",\"password\":\"$S_PASSWORD\"}"
    S_UA="tessera-bench/1.0 ($1)"
}

# login_session BASE_URL: POST /login as S_USER (must be 200 with an access_token cookie), then
# GET /users/me with that cookie (must be 200); sets S_COOKIE
login_session() {
    local base=$1 code
    code=$(curl -s -m 30 -A "$S_UA" -D "$work/login.hdr" -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/json' -d "$S_BODY" "$base/login")
    S_COOKIE=$(tr -d '\r' < "$work/login.hdr" | sed -nE 's/^[Ss]et-[Cc]ookie:[[:space:]]*(access_token=[^;]+).*/\1/p' \
        | head -1)
    if [ "$code" != 200 ] || [ -z "$S_COOKIE" ]; then
        die "login on $base -> HTTP $code, no access_token cookie"
    fi
    code=$(curl -s -m 10 -A "$S_UA" -H "Cookie: $S_COOKIE" -o /dev/null -w '%{http_code}' "$base/users/me")
    [ "$code" = 200 ] || die "GET /users/me with the new session on $base -> HTTP $code"
}

# ---------------------------------------------------------------------------------------------
# wrk with bench/wrk_auth.lua (status of every response counted, one BENCH line at the end).

# Background work is started in this shell and waited for with `wait`, which a signal interrupts
# (a foreground command would hold the trap, and so the clean-up, until it ends); bg_pids lists
# what is still running, for the clean-up to stop.
bg_pids=()
bg_wait() { # PID: waits for it, then drops it from bg_pids (its id may be reused afterwards)
    local pid kept=()
    wait "$1" 2>/dev/null || true
    for pid in "${bg_pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    bg_pids=("${kept[@]}")
}

# wrk_me_start OUT CONNS DURATION BASE_URL [wrk args]: GET /users/me with S_COOKIE / S_UA, in the
# background; WRK_PID is its id (timeout(1)'s, which passes INT and TERM on to wrk)
wrk_me_start() {
    local out=$1 conns=$2 dur=$3 base=$4
    shift 4
    BENCH_METHOD=GET BENCH_COOKIE=$S_COOKIE BENCH_UA=$S_UA BENCH_BODY="" \
        timeout $(( $(secs "$dur") + 60 )) wrk -t"$THREADS" -c"$conns" -d"$dur" --timeout 10s "$@" \
        -s "$repo/bench/wrk_auth.lua" "$base/users/me" > "$out" 2>&1 &
    WRK_PID=$!
    bg_pids+=("$WRK_PID")
}

# wrk_login_start OUT CONNS DURATION BASE_URL [wrk args]: POST /login with S_BODY and S_UA, no
# cookie, in the background (30 s timeout: a login flood queues for seconds); WRK_PID as above
wrk_login_start() {
    local out=$1 conns=$2 dur=$3 base=$4
    shift 4
    BENCH_METHOD=POST BENCH_COOKIE="" BENCH_UA=$S_UA BENCH_BODY=$S_BODY \
        timeout $(( $(secs "$dur") + 60 )) wrk -t"$THREADS" -c"$conns" -d"$dur" --timeout 30s "$@" \
        -s "$repo/bench/wrk_auth.lua" "$base/login" > "$out" 2>&1 &
    WRK_PID=$!
    bg_pids+=("$WRK_PID")
}

wrk_me() { wrk_me_start "$@"; bg_wait "$WRK_PID"; }        # the same, waited for
wrk_login() { wrk_login_start "$@"; bg_wait "$WRK_PID"; }

# record_wrk PREFIX BACKEND RUN FILE: PREFIX_rps, _p50_ms, _p99_ms, _requests, _non2xx,
# _sockerr and _statuses from the BENCH line; PREFIX_error if there is none.
record_wrk() {
    local prefix=$1 backend=$2 run=$3 file=$4 line
    line=$(grep '^BENCH ' "$file" | tail -1 || true)
    if [ -z "$line" ]; then
        record "${prefix}_error" "$backend" "$run" "no BENCH line: $(tail -3 "$file" | tr '\t\n' '  ')"
        return
    fi
    local requests rps p50_us p99_us non2xx status_ge400 connect read write timeout statuses
    eval "$(echo "${line#BENCH }" | tr ' ' '\n' | grep -E '^(requests|rps|p50_us|p99_us|non2xx|status_ge400|connect|read|write|timeout|statuses)=')"
    local p50 p99 sockerr=$(( connect + read + write + timeout ))
    p50=$(awk -v u="$p50_us" 'BEGIN{printf "%.2f", u/1000}')
    p99=$(awk -v u="$p99_us" 'BEGIN{printf "%.2f", u/1000}')
    record "${prefix}_rps" "$backend" "$run" "$rps"
    record "${prefix}_requests" "$backend" "$run" "$requests"
    record "${prefix}_p50_ms" "$backend" "$run" "$p50"
    record "${prefix}_p99_ms" "$backend" "$run" "$p99"
    record "${prefix}_non2xx" "$backend" "$run" "$(( non2xx > status_ge400 ? non2xx : status_ge400 ))"
    record "${prefix}_sockerr" "$backend" "$run" "$sockerr"
    record "${prefix}_statuses" "$backend" "$run" "$statuses"
    echo "    $prefix ($backend, run $run): $rps req/s, p50 $p50 ms, p99 $p99 ms, statuses $statuses, socket errors $sockerr"
}
