#!/usr/bin/env bash
# bench/run.sh: issue 5's benchmark. tessera on SQLite and on PostgreSQL, every target of the issue
# measured in one invocation, summed up in ONE markdown table of ratios with PASS/FAIL per target
# (printed, and saved to $OUT_MD so it can be pasted into docs/performance.md).
#
#   bench/run.sh                                   # everything, 3 runs where runs are asked for
#   TESSERA_BIN=/work/snap/target/release/tessera bench/run.sh    # bench a binary built elsewhere
#   SCENARIOS="peers login" RUNS=5 bench/run.sh    # a subset
#   RUNS=1 DURATION=3s LOGIN_DURATION=3s FLOOD_DURATION=4s SCALE_ROWS=50000 SETTLE_MAX=2 \
#       STARTUP_RUNS=2 bench/run.sh                # a quick check of the script itself
#
# Scenarios (SCENARIOS, default all, in this order):
#   peers   RUNS x ../shared/bench/run_peers.sh with tessera-sqlite and tessera-pg as extra targets
#           (PEERS, default "seed2 limitdb actixredis"): GET /users/me at CONNS=32 against limit-db,
#           actix-redis and fastapi-seed in the same compare.sh run, p99, non-2xx; per-run ratios
#           and their median. run_peers.sh would take a server already listening on a peer's port
#           (8001, 8002, 8090, 8095) for its own, so a run waits up to 60 s for them to be free,
#           else it is skipped (and the peers checks fail as not measured).
#   login   RUNS x: the argon2 bound (examples/argon2_bound.rs: cores / seconds of one verify with
#           tessera's own hasher), then POST /login at LOGIN_CONNS=8 on each backend: ratio to it.
#   flood   per backend, a fresh server: idle RSS after start-up and one login (IDLE_SETTLE s
#           later; the user is made beforehand with `tessera user create`), then FLOOD_CONNS=64 on POST /login for FLOOD_DURATION while a second wrk
#           (FLOOD_ME_CONNS=8, --latency) measures GET /users/me; VmRSS sampled every 0.1 s and
#           VmHWM (peak) of the server process.
#   scale   per backend, a fresh server: GET /users/me (CONNS, SCALE_RUNS runs) near-empty, then
#           after seeding SCALE_ROWS sessions (mostly dead, SCALE_ACTIVE_PCT% live) in the database
#           directly; then `tessera purge` runs while wrk (PURGE_CONNS) measures GET /users/me:
#           p99, how long the purge took, and that the dead rows are gone.
#   startup per backend STARTUP_RUNS x: exec to the first 200 from /health on an empty database
#           (migrations included), polled every 5 ms (bench/lib/startup_probe.py).
#
# Servers: TESSERA_BIN (default: `cargo build --release` here, target/release/tessera), run in a
# scratch directory (no .env is read) with throttles and the per-user session limit off (one client
# IP logs one user in over and over), WORKERS = cores. PostgreSQL: BENCH_PG_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) must be allowed to create and drop databases; the
# script creates tessera_bench* databases and drops them on exit. BACKENDS="sqlite" skips it.
# Needs wrk (installed with apt-get when missing and running as root), curl, python3, psql.
# Only 127.0.0.1 is ever contacted. Exit status: 0 if every check passed, 1 if one failed or
# could not be measured, 2 on a usage or set-up error.
#
# Knobs (defaults): RUNS=3 DURATION=10s CONNS=32 THREADS=1 WARMUP=2s LOGIN_DURATION=10s
#   LOGIN_CONNS=8 SETTLE_MAX=30 ARGON2_VERIFIES=30 FLOOD_DURATION=20s FLOOD_CONNS=64
#   FLOOD_ME_CONNS=8 IDLE_SETTLE=5 SCALE_ROWS=1000000 SCALE_USERS=1000 SCALE_ACTIVE_PCT=5
#   SCALE_RUNS=$RUNS PURGE_CONNS=8 SESSION_RETENTION_DAYS=30 PURGE_BATCH_SIZE=1000
#   STARTUP_RUNS=5 OUT_MD=/tmp/tessera-bench-<date>.md KEEP_WORK=1 (keep the scratch directory:
#   server logs, every wrk output) ARGON2_BOUND_BIN (a prebuilt examples/argon2_bound)
#   SHARED_BENCH=../shared/bench. DURATION, CONNS, THREADS, WARMUP, LOGIN_*, SETTLE_MAX and PEERS
#   are passed on to run_peers.sh / compare.sh.
# shellcheck disable=SC2317 # scenario_* run as "scenario_$s", cleanup from the trap
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
lib=$repo/bench/lib
shared=${SHARED_BENCH:-$repo/../shared/bench}
pg_admin=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}

SCENARIOS=${SCENARIOS:-peers login flood scale startup}
BACKENDS=${BACKENDS:-sqlite postgres}
RUNS=${RUNS:-3}
export PEERS=${PEERS:-seed2 limitdb actixredis}
export DURATION=${DURATION:-10s} CONNS=${CONNS:-32} THREADS=${THREADS:-1} WARMUP=${WARMUP:-2s}
export LOGIN_DURATION=${LOGIN_DURATION:-10s} LOGIN_CONNS=${LOGIN_CONNS:-8}
export SETTLE_MAX=${SETTLE_MAX:-30}
ARGON2_VERIFIES=${ARGON2_VERIFIES:-30}
FLOOD_DURATION=${FLOOD_DURATION:-20s}
FLOOD_CONNS=${FLOOD_CONNS:-64}
FLOOD_ME_CONNS=${FLOOD_ME_CONNS:-8}
IDLE_SETTLE=${IDLE_SETTLE:-5}
SCALE_ROWS=${SCALE_ROWS:-1000000}
SCALE_USERS=${SCALE_USERS:-1000}
SCALE_ACTIVE_PCT=${SCALE_ACTIVE_PCT:-5}
SCALE_RUNS=${SCALE_RUNS:-$RUNS}
PURGE_CONNS=${PURGE_CONNS:-8}
SESSION_RETENTION_DAYS=${SESSION_RETENTION_DAYS:-30}
PURGE_BATCH_SIZE=${PURGE_BATCH_SIZE:-1000}
STARTUP_RUNS=${STARTUP_RUNS:-5}
OUT_MD=${OUT_MD:-/tmp/tessera-bench-$(date +%Y%m%d-%H%M%S).md}

# shellcheck source=bench/lib/common.sh
. "$lib/common.sh"
# shellcheck source=bench/lib/seed.sh
. "$lib/seed.sh"

# ---------------------------------------------------------------------------------------------
# Arguments and tools, checked before anything starts.

for s in $SCENARIOS; do
    case $s in peers|login|flood|scale|startup) ;; *) die "unknown scenario '$s' (peers login flood scale startup)";; esac
done
for b in $BACKENDS; do
    case $b in sqlite|postgres) ;; *) die "unknown backend '$b' (sqlite postgres)";; esac
done
for v in RUNS SCALE_RUNS STARTUP_RUNS ARGON2_VERIFIES SCALE_ROWS SCALE_USERS CONNS LOGIN_CONNS \
         FLOOD_CONNS FLOOD_ME_CONNS PURGE_CONNS PURGE_BATCH_SIZE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number >= 1 (got '${!v}')"
done
for v in IDLE_SETTLE SETTLE_MAX SESSION_RETENTION_DAYS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
if ! [[ $SCALE_ACTIVE_PCT =~ ^[0-9]+$ ]] || [ "$SCALE_ACTIVE_PCT" -gt 100 ]; then
    die "SCALE_ACTIVE_PCT must be 0-100 (got '$SCALE_ACTIVE_PCT')"
fi
for v in DURATION LOGIN_DURATION FLOOD_DURATION WARMUP; do
    [[ ${!v} =~ ^[0-9]+[sm]?$ ]] || die "$v must look like 10s, 2m or 10 (got '${!v}')"
done
case $pg_admin in
    postgres://127.0.0.1[:/]*|postgresql://127.0.0.1[:/]*|postgres://*@127.0.0.1[:/]*|postgresql://*@127.0.0.1[:/]*) ;;
    *) [[ " $BACKENDS " == *" postgres "* ]] && die "BENCH_PG_URL must point at 127.0.0.1 (got $pg_admin)" ;;
esac
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

if ! command -v wrk >/dev/null; then
    [ "$(id -u)" = 0 ] || die "wrk not found (apt-get install -y wrk)"
    note "wrk not found; installing it with apt-get"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; } \
        || die "apt-get install -y wrk failed"
fi
for tool in curl python3 ss; do command -v "$tool" >/dev/null || die "$tool not found"; done
py=$(python3 -c 'import sys; print(sys.executable)')
if [[ " $BACKENDS " == *" postgres "* ]]; then
    command -v psql >/dev/null || die "psql not found (apt-get install -y postgresql-client), or BACKENDS=sqlite"
    psql "$pg_admin" -qAt -c 'SELECT 1' >/dev/null 2>&1 \
        || die "PostgreSQL not reachable at $pg_admin (BENCH_PG_URL), or set BACKENDS=sqlite"
fi
if want peers; then [ -x "$shared/run_peers.sh" ] || die "$shared/run_peers.sh not found (SHARED_BENCH)"; fi

if [ -n "${TESSERA_BIN:-}" ]; then
    bin=$TESSERA_BIN
    [ -x "$bin" ] || die "TESSERA_BIN=$bin is not an executable"
else
    note "building the release binary (nice -n 10 cargo build --release)"
    (cd "$repo" && nice -n 10 cargo build --release --quiet) || die "cargo build --release failed"
    bin=$repo/target/release/tessera
fi
if want login; then
    if [ -n "${ARGON2_BOUND_BIN:-}" ]; then
        argon2_bin=$ARGON2_BOUND_BIN
    else
        note "building examples/argon2_bound (nice -n 10 cargo build --release --example argon2_bound)"
        (cd "$repo" && nice -n 10 cargo build --release --quiet --example argon2_bound) \
            || die "cannot build examples/argon2_bound (or set ARGON2_BOUND_BIN)"
        argon2_bin=$repo/target/release/examples/argon2_bound
    fi
    [ -x "$argon2_bin" ] || die "$argon2_bin is not an executable"
fi

if want peers; then
    # run_peers.sh builds the Rust peers itself; building them here first, niced, keeps that
    # compile off the cores of whoever else shares the machine (a no-op when they are up to date)
    peers_src=$shared/../peers
    if [[ " $PEERS " == *" limit "* || " $PEERS " == *" limitdb "* ]]; then
        (cd "$peers_src/limit" && nice -n 10 cargo build --release -q) || die "building the limit peer failed"
    fi
    if [[ " $PEERS " == *" actixredis "* ]]; then
        (cd "$peers_src/actix_redis" && nice -n 10 cargo build --release -q) || die "building the actix-redis peer failed"
    fi
fi

work=$(mktemp -d /tmp/tessera-bench.XXXXXX)
results=$work/results.tsv
: > "$results"
bg_groups=()   # run_peers.sh, in a process group of its own
descendants() { # PID: the ids of every process below PID
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$child"; descendants "$child"; done
}
cleanup() {
    local pid p all
    for pid in "${bg_groups[@]}"; do
        # compare.sh runs wrk under timeout(1), which takes a process group of its own: so every
        # descendant by id, then the group
        all=$(descendants "$pid")
        # compare.sh names its raw-output directory only when done; a running wrk writes into it
        for p in $all; do
            readlink "/proc/$p/fd/1" 2>/dev/null | grep -oE '^/tmp/compare\.[A-Za-z0-9]+/' \
                | sed 's#^#raw wrk output in #; s#/$##' >> "$peers_log.dirs" || true
        done
        # shellcheck disable=SC2086 # a list of ids
        kill -TERM $all 2>/dev/null || true
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # the log and raw-output directories of an interrupted run_peers.sh / compare.sh
    if [ -n "${peers_log:-}" ]; then adopt_peer_dirs "$peers_log" "$peers_log.dirs"; fi
    stop_all_servers
    drop_pg_dbs
    if [ "${KEEP_WORK:-0}" = 1 ]; then note "scratch directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

short() { case $1 in sqlite) echo sqlite;; postgres) echo pg;; esac; }
port() { # BACKEND BASE_PORT -> BASE_PORT for sqlite, +1 for postgres
    case $1 in sqlite) echo "$2";; postgres) echo $(( $2 + 1 ));; esac
}

version=$("$bin" --version 2>/dev/null || echo "unknown version")
record scenarios - - "$SCENARIOS"
record backends - - "$BACKENDS"
record peers - - "$PEERS"
record meta - - "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r); wrk runs on the same cores"
record meta - - "binary: $bin ($version)"
record meta - - "scenarios: $SCENARIOS; backends: $BACKENDS; RUNS=$RUNS"
want peers && record meta - - "peers: PEERS=\"$PEERS\", wrk -t$THREADS -c$CONNS -d$DURATION (warm-up $WARMUP), login -c$LOGIN_CONNS -d$LOGIN_DURATION"
want login && record meta - - "login: wrk -t$THREADS -c$LOGIN_CONNS -d$LOGIN_DURATION on POST /login; bound from $ARGON2_VERIFIES verifies"
want flood && record meta - - "flood: wrk -c$FLOOD_CONNS on POST /login for $FLOOD_DURATION + 2 s, wrk -c$FLOOD_ME_CONNS -d$FLOOD_DURATION on GET /users/me; idle RSS ${IDLE_SETTLE} s after one login"
want scale && record meta - - "scale: $SCALE_ROWS sessions ($SCALE_ACTIVE_PCT% live) over $SCALE_USERS+1 users, wrk -c$CONNS -d$DURATION x $SCALE_RUNS each side; purge SESSION_RETENTION_DAYS=$SESSION_RETENTION_DAYS PURGE_BATCH_SIZE=$PURGE_BATCH_SIZE under wrk -c$PURGE_CONNS"
want startup && record meta - - "startup: $STARTUP_RUNS starts per backend on an empty database, /health polled every 5 ms"
echo "bench: $version; scratch $work"

# The long-lived pair of servers of the peers and login scenarios (ports 18180 / 18181).
main_up=0
start_main_servers() {
    [ "$main_up" = 1 ] && return 0
    local b url
    for b in $BACKENDS; do
        fresh_db "$b" "$( [ "$b" = sqlite ] && echo bench || echo tessera_bench )"
        start_server "main-$b" "$(port "$b" 18180)" "$DB_URL"
    done
    main_up=1
}

# adopt_peer_dirs LOG...: the log and raw-output directories run_peers.sh and compare.sh name in LOG
# join ours (kept with KEEP_WORK=1, else removed with it)
adopt_peer_dirs() { # LOG...
    cat "$@" 2>/dev/null | grep -oE '(logs /tmp/peers|raw wrk output in /tmp/compare)\.[A-Za-z0-9]+' \
        | awk '{print $NF}' | while read -r d; do if [ -d "$d" ]; then mv "$d" "$work/"; fi; done \
        || true
}

# peer_ports_free: true once nothing listens on the ports of the peers in PEERS (waits up to
# 60 s); else false with $taken naming the port and its process
peer_ports_free() {
    local p pid
    for _ in $(seq 1 60); do
        taken=""
        for p in $( [[ " $PEERS " == *" seed2 "* ]] && echo 8001
                    [[ " $PEERS " == *" seed1 "* ]] && echo 8002
                    [[ " $PEERS " == *" limit"* ]] && echo 8090
                    [[ " $PEERS " == *" actixredis "* ]] && echo 8095 ); do
            if ! port_free "$p"; then
                pid=$(ss -Htlnp "sport = :$p" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
                taken="port $p is taken by pid ${pid:-?} ($(cat "/proc/$pid/comm" 2>/dev/null || echo '?'))"
                break
            fi
        done
        [ -z "$taken" ] && return 0
        sleep 1
    done
    note "$taken"
    return 1
}

# ---------------------------------------------------------------------------------------------
scenario_peers() {
    local r b rc peers_pid tail_pid targets=()
    start_main_servers
    for b in $BACKENDS; do targets+=("tessera-$(short "$b")=http://127.0.0.1:$(port "$b" 18180)"); done
    for r in $(seq 1 "$RUNS"); do
        echo "== peers: run $r of $RUNS (run_peers.sh ${targets[*]}, PEERS=\"$PEERS\")"
        # run_peers.sh takes any server already answering on a peer's port for its own, so a
        # peer left running by someone else would be measured instead: wait for the ports
        if ! peer_ports_free; then
            record peers_error - "$r" "$taken; run skipped"
            continue
        fi
        # in a process group of its own, so that an interrupted run stops compare.sh, its wrk
        # and the peers too, not only run_peers.sh
        peers_log=$work/peers-$r.log
        : > "$peers_log"
        OUT=$work/peers-$r.md setsid "$shared/run_peers.sh" "${targets[@]}" > "$peers_log" 2>&1 &
        peers_pid=$!
        bg_groups+=("$peers_pid")
        tail -n +1 -f --pid="$peers_pid" "$peers_log" &
        tail_pid=$!
        bg_pids+=("$tail_pid")
        if wait "$peers_pid"; then rc=0; else rc=$?; fi
        bg_groups=()
        bg_wait "$tail_pid"
        adopt_peer_dirs "$peers_log"
        if [ ! -s "$work/peers-$r.md" ]; then
            record peers_error - "$r" "run_peers.sh exited $rc without a results table"
            continue
        fi
        record peers_md - "$r" "$work/peers-$r.md"
        # | target | GET path | req/s | p50 | p99 | non-2xx | valid | x first | cpu | login req/s | login p50 |
        while IFS=$'\t' read -r name rps p99 non valid login; do
            record peers_rps "$name" "$r" "$rps"
            record peers_p99_ms "$name" "$r" "$p99"
            record peers_non2xx "$name" "$r" "$non"
            record peers_valid "$name" "$r" "$valid"
            record peers_login_rps "$name" "$r" "$login"
        done < <(awk -F'|' '/^\| / && !/^\| target \|/ {
                    for (i = 2; i <= 11; i++) gsub(/^ +| +$/, "", $i)
                    print $2 "\t" $4 "\t" $6 "\t" $7 "\t" $8 "\t" $11 }' "$work/peers-$r.md")
    done
}

# ---------------------------------------------------------------------------------------------
scenario_login() {
    local r b base out line hash
    declare -A body ua
    start_main_servers
    for b in $BACKENDS; do
        base=http://127.0.0.1:$(port "$b" 18180)
        make_session "$base" "login_$(short "$b")"
        body[$b]=$S_BODY; ua[$b]=$S_UA
        # the parameters the server really hashes with, to compare with the bound's
        hash=$(echo "SELECT password_hash FROM users WHERE username = '$S_USER';" \
            | db_sql "$b" "$(main_db_url "$b")")
        record server_argon2_params "$b" 1 "$(echo "$hash" | cut -d'$' -f4)"
    done
    for r in $(seq 1 "$RUNS"); do
        echo "== login: run $r of $RUNS"
        settle argon2_bound - "$r"
        out=$work/argon2-$r.json
        if ! "$argon2_bin" --verifies "$ARGON2_VERIFIES" --cores "$(nproc)" > "$out" 2> "$out.err"; then
            record argon2_error - "$r" "$(tr '\t\n' '  ' < "$out.err")"
            continue
        fi
        line=$("$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["median_s"], d["bound_per_s"], d["algorithm"] + "," + d["params"], d["hasher"], sep="\t")' "$out")
        IFS=$'\t' read -r median bound params hasher <<< "$line"
        record argon2_median_s - "$r" "$median"
        record argon2_bound - "$r" "$bound"
        record argon2_params - "$r" "${params#*,}"
        record argon2_hasher - "$r" "$hasher"
        echo "    argon2 bound: $median s per verify ($params) -> $bound logins/s on $(nproc) cores"
        for b in $BACKENDS; do
            base=http://127.0.0.1:$(port "$b" 18180)
            S_BODY=${body[$b]}; S_UA=${ua[$b]}
            settle login "$b" "$r"
            wrk_login "$work/login-$b-$r.out" "$LOGIN_CONNS" "$LOGIN_DURATION" "$base"
            record_wrk login "$b" "$r" "$work/login-$b-$r.out"
        done
    done
}

main_db_url() { # BACKEND -> the main server's DATABASE_URL
    case $1 in sqlite) echo "$work/bench.db";; postgres) pg_url_for tessera_bench;; esac
}

# ---------------------------------------------------------------------------------------------
scenario_flood() {
    local b url p base pid login_pid sampler
    for b in $BACKENDS; do
        echo "== flood: $b"
        fresh_db "$b" "$( [ "$b" = sqlite ] && echo flood || echo tessera_bench_flood )"; url=$DB_URL
        p=$(port "$b" 18182); base=http://127.0.0.1:$p
        # the user comes from `tessera user create` (which also migrates), so the server itself
        # does nothing before the idle measurement but start and answer one login
        new_user "flood_$(short "$b")"
        # shellcheck disable=SC2046 # VAR=VALUE words without spaces
        (cd "$work" && echo "$S_PASSWORD" | env -i $(server_env "$url" "$p") "$bin" user create "$S_USER") \
            > "$work/user-create-$b.out" 2>&1 || die "tessera user create failed: $(cat "$work/user-create-$b.out")"
        start_server "flood-$b" "$p" "$url"
        pid=${srv_pid[flood-$b]}
        login_session "$base"
        sleep "$IDLE_SETTLE"
        record idle_rss_kb "$b" 1 "$(proc_status "$pid" VmRSS)"
        echo "    idle RSS after start-up + 1 login: $(proc_status "$pid" VmRSS) kB"
        settle flood "$b" 1
        rm -f "$work/sampler.stop"
        ( max=0
          while kill -0 "$pid" 2>/dev/null && [ ! -e "$work/sampler.stop" ]; do
              v=$(proc_status "$pid" VmRSS); [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v
              sleep 0.1
          done
          echo "$max" > "$work/sampler.max" ) &
        sampler=$!; bg_pids+=("$sampler")
        wrk_login_start "$work/flood-login-$b.out" "$FLOOD_CONNS" "$(( $(secs "$FLOOD_DURATION") + 2 ))s" "$base"
        login_pid=$WRK_PID
        sleep 1   # the flood is on before /users/me is measured, and lasts until after it
        wrk_me "$work/flood-me-$b.out" "$FLOOD_ME_CONNS" "$FLOOD_DURATION" "$base" --latency
        bg_wait "$login_pid"
        touch "$work/sampler.stop"; bg_wait "$sampler"
        kill -0 "$pid" 2>/dev/null || record flood_error "$b" 1 "the server exited during the flood: $(tail -3 "${srv_log[flood-$b]}" | tr '\t\n' '  ')"
        record flood_peak_rss_kb "$b" 1 "$(proc_status "$pid" VmHWM)"
        record flood_threads "$b" 1 "$(proc_status "$pid" Threads)"
        record flood_sampled_rss_kb "$b" 1 "$(cat "$work/sampler.max")"
        echo "    peak RSS (VmHWM): $(proc_status "$pid" VmHWM) kB, sampled VmRSS max $(cat "$work/sampler.max") kB"
        record_wrk flood_me "$b" 1 "$work/flood-me-$b.out"
        record_wrk flood_login "$b" 1 "$work/flood-login-$b.out"
        stop_server "flood-$b"
    done
}

# ---------------------------------------------------------------------------------------------
scenario_scale() {
    local b url p base uid i t0 t1 counts wrk_pid rc
    for b in $BACKENDS; do
        echo "== scale: $b"
        fresh_db "$b" "$( [ "$b" = sqlite ] && echo scale || echo tessera_bench_scale )"; url=$DB_URL
        p=$(port "$b" 18184); base=http://127.0.0.1:$p
        # no background purge: the one under test is `tessera purge`, started below
        start_server "scale-$b" "$p" "$url" PURGE_INTERVAL_SECONDS=0
        make_session "$base" "scale_$(short "$b")"
        uid=$(echo "SELECT id FROM users WHERE username = '$S_USER';" | db_sql "$b" "$url")

        settle scale_warmup "$b" 1
        wrk_me "$work/scale-warm-$b.out" "$CONNS" "$WARMUP" "$base"
        for i in $(seq 1 "$SCALE_RUNS"); do
            settle scale_empty "$b" "$i"
            wrk_me "$work/scale-empty-$b-$i.out" "$CONNS" "$DURATION" "$base"
            record_wrk scale_empty "$b" "$i" "$work/scale-empty-$b-$i.out"
        done

        echo "    seeding $SCALE_ROWS sessions over $SCALE_USERS more users ($SCALE_ACTIVE_PCT% live)"
        t0=$(date +%s.%N)
        seed_sql "$b" "$SCALE_ROWS" "$SCALE_USERS" "$SCALE_ACTIVE_PCT" "$SESSION_RETENTION_DAYS" "$uid" \
            | db_sql "$b" "$url" > "$work/seed-$b.out" || die "seeding $b failed: $(cat "$work/seed-$b.out")"
        t1=$(date +%s.%N)
        counts=$(dead_sql "$b" "$SESSION_RETENTION_DAYS" | db_sql "$b" "$url")
        record scale_seed_s "$b" 1 "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
        record scale_rows "$b" 1 "${counts#*|}"
        echo "    seeded in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s: ${counts#*|} sessions, ${counts%|*} dead"

        settle scale_warmup "$b" 2
        wrk_me "$work/scale-warm2-$b.out" "$CONNS" "$WARMUP" "$base"
        for i in $(seq 1 "$SCALE_RUNS"); do
            settle scale_full "$b" "$i"
            wrk_me "$work/scale-full-$b-$i.out" "$CONNS" "$DURATION" "$base"
            record_wrk scale_full "$b" "$i" "$work/scale-full-$b-$i.out"
        done

        record purge_dead_before "$b" 1 "${counts%|*}"
        record purge_total_before "$b" 1 "${counts#*|}"
        settle purge "$b" 1
        # wrk runs until the purge is over (SIGINT makes it stop and report), at most 1 h
        wrk_me_start "$work/purge-me-$b.out" "$PURGE_CONNS" 3600s "$base" --latency
        wrk_pid=$WRK_PID
        sleep 1
        t0=$(date +%s.%N)
        # shellcheck disable=SC2046 # VAR=VALUE words without spaces
        if (cd "$work" && env -i $(server_env "$url" "$p") SESSION_RETENTION_DAYS="$SESSION_RETENTION_DAYS" \
                PURGE_BATCH_SIZE="$PURGE_BATCH_SIZE" "$bin" purge) > "$work/purge-$b.out" 2>&1; then
            rc=0
        else
            rc=$?
        fi
        t1=$(date +%s.%N)
        kill -INT "$wrk_pid" 2>/dev/null || true
        bg_wait "$wrk_pid"
        record purge_rc "$b" 1 "$rc"
        record purge_report "$b" 1 "$(tr '\t\n' '  ' < "$work/purge-$b.out")"
        record purge_s "$b" 1 "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
        record purge_me_secs "$b" 1 "$(sed -nE 's/^BENCH .* secs=([0-9.]+) .*/\1/p' "$work/purge-me-$b.out")"
        echo "    tessera purge (exit $rc) in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s: $(tr '\n' ' ' < "$work/purge-$b.out")"
        record_wrk purge_me "$b" 1 "$work/purge-me-$b.out"
        counts=$(dead_sql "$b" "$SESSION_RETENTION_DAYS" | db_sql "$b" "$url")
        record purge_dead_after "$b" 1 "${counts%|*}"
        record purge_total_after "$b" 1 "${counts#*|}"
        echo "    after the purge: ${counts#*|} sessions, ${counts%|*} dead"
        stop_server "scale-$b"
    done
}

# ---------------------------------------------------------------------------------------------
scenario_startup() {
    local b i url p ms
    for b in $BACKENDS; do
        echo "== startup: $b"
        p=$(port "$b" 18186)
        port_free "$p" || die "port $p is taken"
        for i in $(seq 1 "$STARTUP_RUNS"); do
            fresh_db "$b" "$( [ "$b" = sqlite ] && echo "startup-$i" || echo tessera_bench_startup )"; url=$DB_URL
            settle startup "$b" "$i"
            # shellcheck disable=SC2046 # VAR=VALUE words without spaces
            if ms=$(cd "$work" && env -i $(server_env "$url" "$p") "$py" "$lib/startup_probe.py" \
                    "http://127.0.0.1:$p/health" "$work/startup-$b.log" "$bin" 2>> "$work/startup-$b.err"); then
                record startup_ms "$b" "$i" "$ms"
                echo "    start $i: $ms ms"
            else
                record startup_error "$b" "$i" "$(tail -1 "$work/startup-$b.err") (log: $(tail -2 "$work/startup-$b.log" | tr '\t\n' '  '))"
            fi
        done
    done
}

for s in peers login flood scale startup; do
    want "$s" && "scenario_$s"
done
stop_all_servers

echo
if "$py" "$lib/report.py" "$results" > "$OUT_MD"; then rc=0; else rc=$?; fi
cat "$OUT_MD"
echo
echo "(saved to $OUT_MD)"
exit "$rc"
