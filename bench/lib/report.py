#!/usr/bin/env python3
"""The summary of bench/run.sh: one markdown table, each of issue 5's targets against what was
measured, per backend, with PASS/FAIL; then notes and the compare.sh tables behind it.

    report.py RESULTS_TSV > report.md      # exit status 0 if every check passed, else 1

RESULTS_TSV holds one measurement a line, KEY<TAB>BACKEND<TAB>RUN<TAB>VALUE, written by
`record` in bench/lib/common.sh. BACKEND is sqlite / postgres, a compare.sh target name for the
peers scenario (tessera-sqlite, tessera-pg, limit-db, actix-redis, fastapi-seed), or - when the
figure belongs to the whole invocation (the argon2 bound, the settings). A check of a selected
scenario that has no figure for a selected backend is "not measured" and fails.
"""
import statistics
import sys
from collections import defaultdict

BACKENDS = [("sqlite", "SQLite", "tessera-sqlite"), ("postgres", "PostgreSQL", "tessera-pg")]
LISTED = ("meta", "peers_md", "busy")  # keys kept in file order, for the header and the notes


def load(path):
    data = defaultdict(dict)  # (key, backend) -> {run: value}
    order = []  # (key, backend, run, value) of LISTED keys and errors, in file order
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            key, backend, run, value = parts
            if key in LISTED or key.endswith("_error"):
                order.append((key, backend, run, value))
            data[(key, backend)][run] = value
    return data, order


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(x, digits=2):
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.{digits}f}"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def per_run_text(values, digits=2):
    """The median, then every run's value when there are several; a missing one is "invalid"."""
    shown = ", ".join(fmt(v, digits) if v is not None else "invalid" for v in values)
    m = med(values)
    median = fmt(m, digits) if m is not None else "invalid"
    return f"{median} (runs: {shown})" if len(values) > 1 else median


class Check:
    """One row of the table: a requirement, its target, and per backend a value and a verdict
    (True pass, False fail, None not judged)."""

    def __init__(self, label, target):
        self.label, self.target, self.cells = label, target, {}

    def set(self, backend, text, passed):
        self.cells[backend] = (text, passed)

    def cell(self, backend):
        if backend not in self.cells:
            return "-"
        text, passed = self.cells[backend]
        verdict = {True: "PASS", False: "FAIL", None: ""}[passed]
        return f"{text} **{verdict}**" if verdict else text


class Results:
    def __init__(self, data):
        self.data = data

    def get(self, key, backend, run="1"):
        return self.data.get((key, backend), {}).get(run)

    def runs(self, key, backend):
        """KEY's values for BACKEND, in run order."""
        d = self.data.get((key, backend), {})
        return [d[r] for r in sorted(d, key=lambda r: num(r) or 0)]

    def has(self, key, backend):
        return (key, backend) in self.data


def peers_checks(res, notes):
    peers = (res.get("peers", "-", "-") or "").split()
    peer_targets = [
        ("limitdb", "limit-db", ">= 0.50", 0.50),
        ("actixredis", "actix-redis", ">= 1.2", 1.2),
        ("seed2", "fastapi-seed", ">= 30", 30.0),
    ]
    runs = sorted({r for (k, _), d in res.data.items() if k == "peers_rps" for r in d}, key=num)

    def valid(target, run):
        return (res.get("peers_valid", target, run) or "").startswith("ok")

    def rps(target, run):
        return num(res.get("peers_rps", target, run)) if valid(target, run) else None

    checks = []
    for name, peer, target_text, threshold in peer_targets:
        check = Check(f"GET /users/me, 32 conns: x {peer} (median of runs)", target_text)
        checks.append(check)
        if name not in peers:
            for backend, _, _ in BACKENDS:
                check.set(backend, f"{peer} not in PEERS", None)
            continue
        for backend, _, target in BACKENDS:
            if not res.has("peers_rps", target):
                continue
            ratios = []
            for run in runs:
                a, b = rps(target, run), rps(peer, run)
                ratios.append(a / b if a is not None and b else None)
            m = med(ratios)
            check.set(backend, per_run_text(ratios),
                      m is not None and m >= threshold and None not in ratios)

    p99 = Check("GET /users/me, 32 conns: p99 ms (median of runs)", "<= 10")
    errors = Check("GET /users/me, 32 conns: non-2xx, invalid figures (all runs)", "0")
    for backend, _, target in BACKENDS:
        if not res.has("peers_rps", target):
            continue
        values = [num(res.get("peers_p99_ms", target, r)) for r in runs]
        m = med(values)
        p99.set(backend, per_run_text(values), m is not None and m <= 10 and None not in values)
        total = sum(num(res.get("peers_non2xx", target, r)) or 0 for r in runs)
        bad = [r for r in runs if not valid(target, r)]
        text = f"{fmt(total, 0)}" + (f"; invalid in run {', '.join(bad)}" if bad else "")
        errors.set(backend, text, not bad and total == 0)
    checks += [p99, errors]

    for run in runs:
        for target in sorted({t for (k, t) in res.data if k == "peers_valid"}):
            v = res.get("peers_valid", target, run) or "missing"
            if not v.startswith("ok") or "busy" in v:
                notes.append(f"peers run {run}, {target}: {v}")
    return checks


def login_checks(res, notes):
    check = Check("POST /login, 8 conns: x argon2 bound (cores / one verify; median of runs)", ">= 0.80")
    bounds = res.data.get(("argon2_bound", "-"), {})
    runs = sorted(bounds, key=num)
    bound_params = sorted({res.get("argon2_params", "-", r) or "?" for r in runs})
    for backend, _, _ in BACKENDS:
        if not runs or not res.has("login_rps", backend):
            continue
        ratios, pairs = [], []
        for run in runs:
            rps = num(res.get("login_rps", backend, run))
            clean = res.get("login_non2xx", backend, run) == "0" and res.get("login_sockerr", backend, run) == "0"
            bound = num(bounds.get(run))
            ratios.append(rps / bound if rps is not None and bound and clean else None)
            pairs.append(f"{fmt(rps, 1)}/{fmt(bound, 1)}")
        m = med(ratios)
        ok = m is not None and m >= 0.80 and None not in ratios
        text = f"{per_run_text(ratios)}; logins/s / bound: {', '.join(pairs)}"
        server_params = res.get("server_argon2_params", backend)
        if server_params and bound_params != [server_params]:
            text += f"; the server hashes with {server_params}, the bound used {', '.join(bound_params)}"
            ok = False
        check.set(backend, text, ok)
    if runs:
        per_verify = ", ".join(
            f"run {r}: {fmt((num(res.get('argon2_median_s', '-', r)) or 0) * 1000, 1)} ms per verify"
            f" -> {fmt(num(bounds[r]), 1)}/s" for r in runs)
        notes.append(f"argon2 bound: {per_verify} ({', '.join(bound_params)}, "
                     f"{res.get('argon2_hasher', '-', runs[0])})")
    return [check]


def flood_checks(res, notes):
    p99 = Check("login flood (64 conns on POST /login): GET /users/me p99 ms", "<= 50")
    err = Check("login flood: GET /users/me non-2xx + socket errors", "0")
    peak = Check("login flood: server peak RSS (VmHWM) MB", "< 256")
    idle = Check("idle RSS after start-up + 1 login MB", "< 30")
    for backend, _, _ in BACKENDS:
        def get(key):
            return res.get(key, backend)
        i = num(get("idle_rss_kb"))
        if i is not None:
            idle.set(backend, fmt(i / 1024, 1), i / 1024 < 30)
        if not res.has("flood_me_rps", backend):
            continue
        v = num(get("flood_me_p99_ms"))
        p99.set(backend, f"{fmt(v)} ({fmt(num(get('flood_me_rps')), 0)} req/s; logins "
                f"{fmt(num(get('flood_login_rps')), 1)}/s, statuses {get('flood_login_statuses')})",
                v is not None and v <= 50)
        non, sock = get("flood_me_non2xx"), get("flood_me_sockerr")
        err.set(backend, f"{non} + {sock} (statuses {get('flood_me_statuses')})", non == "0" and sock == "0")
        hwm, sampled = num(get("flood_peak_rss_kb")), num(get("flood_sampled_rss_kb"))
        if hwm is not None:
            peak.set(backend, f"{fmt(hwm / 1024, 1)} (sampled VmRSS max {fmt((sampled or 0) / 1024, 1)}; "
                     f"{get('flood_threads') or '?'} threads after)", hwm / 1024 < 256)
    return [p99, err, peak, idle]


def scale_checks(res, notes):
    rows = sorted({res.get("scale_rows", b) for b, _, _ in BACKENDS} - {None})
    ratio = Check(f"GET /users/me, 32 conns, with {'/'.join(rows) or 'the seeded'} session rows "
                  "x near-empty (medians)", ">= 0.85")
    p99 = Check("purge of the dead rows under GET /users/me: p99 ms", "<= 50")
    gone = Check("purge: dead rows left afterwards (time taken, rows deleted)", "0")
    for backend, _, _ in BACKENDS:
        def get(key):
            return res.get(key, backend)
        empty = [num(v) for v in res.runs("scale_empty_rps", backend)]
        full = [num(v) for v in res.runs("scale_full_rps", backend)]
        if empty and full:
            dirty = [v for k in ("scale_empty_non2xx", "scale_full_non2xx", "scale_empty_sockerr",
                                 "scale_full_sockerr") for v in res.runs(k, backend) if v != "0"]
            me, mf = med(empty), med(full)
            r = mf / me if me and mf is not None else None
            text = f"{fmt(r)} ({fmt(me, 0)} -> {fmt(mf, 0)} req/s)"
            if dirty:
                text += "; non-2xx or socket errors"
            ratio.set(backend, text, r is not None and r >= 0.85 and not dirty)
        if res.has("purge_me_rps", backend):
            v = num(get("purge_me_p99_ms"))
            non, sock = get("purge_me_non2xx"), get("purge_me_sockerr")
            p99.set(backend, f"{fmt(v)} ({fmt(num(get('purge_me_rps')), 0)} req/s over "
                    f"{fmt(num(get('purge_me_secs')), 1)} s; non-2xx {non}, socket errors {sock})",
                    v is not None and v <= 50 and non == "0" and sock == "0")
        if res.has("purge_rc", backend):
            left = num(get("purge_dead_after"))
            before, after = num(get("purge_total_before")), num(get("purge_total_after"))
            deleted = before - after if before is not None and after is not None else None
            gone.set(backend, f"{fmt(left, 0)} of {fmt(num(get('purge_dead_before')), 0)} "
                     f"(took {fmt(num(get('purge_s')), 1)} s, {fmt(deleted, 0)} deleted, "
                     f"exit {get('purge_rc')})", left == 0 and get("purge_rc") == "0")
            notes.append(f"purge ({backend}): {(get('purge_report') or '?').strip()}; seeding took "
                         f"{get('scale_seed_s') or '?'} s")
    return [ratio, p99, gone]


def startup_checks(res, notes):
    check = Check("start-up on an empty database to the first 200 from /health, ms (median)", "< 1000")
    for backend, _, _ in BACKENDS:
        values = [num(v) for v in res.runs("startup_ms", backend)]
        failed = res.runs("startup_error", backend)
        if not values and not failed:
            continue
        m = med(values)
        text = per_run_text(values, 0) if values else "n/a"
        if failed:
            text += f"; {len(failed)} failed"
        check.set(backend, text, m is not None and m < 1000 and not failed)
    return [check]


SCENARIOS = [("peers", peers_checks), ("login", login_checks), ("flood", flood_checks),
             ("scale", scale_checks), ("startup", startup_checks)]


def main():
    if len(sys.argv) != 2:
        print("usage: report.py RESULTS_TSV", file=sys.stderr)
        return 2
    data, order = load(sys.argv[1])
    res = Results(data)
    selected = (res.get("scenarios", "-", "-") or " ".join(s for s, _ in SCENARIOS)).split()
    backends = (res.get("backends", "-", "-") or "sqlite postgres").split()
    shown = [b for b in BACKENDS if b[0] in backends]

    checks, notes = [], []
    for scenario, make in SCENARIOS:
        if scenario in selected:
            for check in make(res, notes):
                for backend, _, _ in shown:
                    if backend not in check.cells:
                        check.set(backend, "not measured", False)
                checks.append(check)

    out = [f"- {value}" for key, _, _, value in order if key == "meta"]
    out.append("")
    out.append("| # | requirement (issue 5) | target | " + " | ".join(n for _, n, _ in shown) + " |")
    out.append("|---|---|---|" + "---|" * len(shown))
    verdicts = []
    for i, c in enumerate(checks, 1):
        out.append(f"| {i} | {c.label} | {c.target} | " + " | ".join(c.cell(b) for b, _, _ in shown) + " |")
        verdicts += [c.cells[b][1] for b, _, _ in shown if c.cells[b][1] is not None]
    out.append("")
    out.append(f"**{sum(verdicts)} of {len(verdicts)} checks pass.**")

    busy = [f"{value} ({backend}, run {run})" for key, backend, run, value in order if key == "busy"]
    problems = [f"{key} ({backend}, run {run}): {value}" for key, backend, run, value in order
                if key.endswith("_error")]
    if notes or busy or problems:
        out += ["", "Notes:"] + [f"- {n}" for n in notes]
        if busy:
            out.append("- measured on a busy box (still >15% busy after SETTLE_MAX): " + "; ".join(busy))
        out += [f"- {p}" for p in problems]

    for key, _, run, path in order:
        if key != "peers_md":
            continue
        out += ["", f"compare.sh, run {run}:", ""]
        try:
            with open(path, encoding="utf-8") as f:
                out += [line.rstrip("\n") for line in f if line.startswith(("|", "wrk "))]
        except OSError as error:
            out.append(f"({error})")
    print("\n".join(out))
    return 0 if verdicts and all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
