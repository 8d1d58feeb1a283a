#!/usr/bin/env bash
# soak.sh: DURATION seconds of mixed traffic on one tessera. Passes when there is no error at all
# (no 5xx, no transport error, no timeout, no "database is locked", nothing that contradicts the
# client's sessions, every status 200/201/204/401) and the server's resident memory (VmRSS, sampled
# every SAMPLE_EVERY s) grows less than MAX_GROWTH_PCT from the first WINDOW seconds after WARMUP
# to the last WINDOW seconds, comparing the highest sample of each window. Single samples would not
# do: every argon2 hash in flight holds a 19 MiB block that goes back to the OS when it ends, so
# two samples a second apart differ by up to ARGON2_MAX_CONCURRENCY x 19 MiB; the highest sample of
# a busy minute is the base plus every block in flight, and a leak raises it like any other.
#
#   bench/reliability/soak.sh                                    # 5 minutes
#   DURATION=60 WARMUP=10 WINDOW=20 TESSERA_BIN=/path/to/tessera bench/reliability/soak.sh
#
# Knobs: DURATION (300), WARMUP (60), SAMPLE_EVERY (1), WINDOW (60), PRINT_EVERY (10),
# MAX_GROWTH_PCT (10), CONNECTIONS (32),
# WEIGHTS (loadgen --weights), TIMEOUT per request (30), SOAK_DATABASE_URL (a fresh SQLite file;
# a postgres:// URL works too, its database must exist), PORT (18304), TESSERA_BIN, LOADGEN,
# KEEP_WORK=1.
set -euo pipefail
# shellcheck source=bench/reliability/lib.sh
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-300}
WARMUP=${WARMUP:-60}
SAMPLE_EVERY=${SAMPLE_EVERY:-1}
WINDOW=${WINDOW:-60}
PRINT_EVERY=${PRINT_EVERY:-10}
MAX_GROWTH_PCT=${MAX_GROWTH_PCT:-10}
CONNECTIONS=${CONNECTIONS:-32}
WEIGHTS=${WEIGHTS:-me=20,sessions=2,login=3,logout=2,revoke_one=2,revoke_others=1,logout_all=1,password=1,probe=1}
PORT=${PORT:-18304}
TIMEOUT=${TIMEOUT:-30}
database=${SOAK_DATABASE_URL:-$work/soak.db}
((DURATION >= WARMUP + 2 * WINDOW)) ||
    die "DURATION ($DURATION) must hold WARMUP ($WARMUP) and two windows of WINDOW ($WINDOW) s: lower them"

log "tessera $TESSERA_BIN on $database, port $PORT"
start_server soak "$PORT" "$database" WORKERS="$(nproc)"

log "mixed load: $CONNECTIONS connections for $DURATION s; RSS every $SAMPLE_EVERY s, first window after $WARMUP s"
"$LOADGEN" mixed --url "http://127.0.0.1:$PORT" -c "$CONNECTIONS" -d "$DURATION" --weights "$WEIGHTS" \
    --timeout "$TIMEOUT" \
    --allow-status 200,201,204,401 --strict --ready-file "$work/ready" \
    --cookies-out "$work/logins.tsv" --summary-out "$work/soak.json" >/dev/null 2>"$work/loadgen.err" &
load_pid=$!
bg_pids+=("$load_pid")
deadline=$((SECONDS + 120))
until [[ -e "$work/ready" ]]; do
    kill -0 "$load_pid" 2>/dev/null || { cat "$work/loadgen.err" >&2; die "loadgen exited during its set-up"; }
    ((SECONDS < deadline)) || die "loadgen set-up took more than 120 s"
    sleep 0.1
done
start=$SECONDS
: >"$work/rss.txt"
next_print=0
echo "  RSS samples (seconds into the load, kB; one printed every $PRINT_EVERY s, all in the check):"
while :; do
    sleep "$SAMPLE_EVERY"
    kill -0 "$load_pid" 2>/dev/null || break
    kill -0 "${server_pid[soak]}" 2>/dev/null || { fail "the server died during the soak"; break; }
    t=$((SECONDS - start))
    rss=$(server_rss_kb soak)
    echo "$t $rss" >>"$work/rss.txt"
    if ((t >= next_print)); then
        echo "    t=${t}s rss=${rss} kB"
        next_print=$((t + PRINT_EVERY))
    fi
done
rc=0
wait "$load_pid" || rc=$?
[[ $rc -le 1 && -s "$work/soak.json" ]] || { cat "$work/loadgen.err" >&2; die "loadgen failed (exit $rc)"; }
summarize "$work/soak.json"
check_json "$work/soak.json"

if result=$(python3 - "$work/rss.txt" "$WARMUP" "$WINDOW" "$MAX_GROWTH_PCT" <<'EOF'
import sys
samples = [tuple(map(int, line.split())) for line in open(sys.argv[1]) if line.strip()]
warmup, window, limit = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if not samples:
    print("no RSS sample")
    sys.exit(1)
last = samples[-1][0]
first_w = [r for t, r in samples if warmup <= t < warmup + window]
last_w = [r for t, r in samples if last - window < t <= last]
if len(first_w) < 2 or len(last_w) < 2 or last - window < warmup + window:
    print(f"too few RSS samples for two {window} s windows after the {warmup} s warm-up (last at {last} s)")
    sys.exit(1)
base, end = max(first_w), max(last_w)
growth = (end - base) * 100.0 / base
print(f"RSS highest {base} kB in {warmup}-{warmup + window} s -> highest {end} kB in {last - window}-{last} s: "
      f"{growth:+.1f}% (limit {limit:g}%); lowest {min(first_w)} -> {min(last_w)} kB, "
      f"overall peak {max(r for _, r in samples)} kB, {len(samples)} samples")
sys.exit(0 if growth < limit else 1)
EOF
); then
    pass "$result"
else
    fail "$result"
fi
finish
