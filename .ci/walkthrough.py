#!/usr/bin/env python3
"""Run the README's curl walkthrough and check every output line.

The walkthrough is the text between the lines

    <!-- walkthrough:begin -->
    <!-- walkthrough:end -->

in README.md. Inside it, every ```console block is a series of steps: a line
starting with "$ " is a command (a trailing backslash continues it on the next
line), and the lines after it, up to the next command or the end of the block,
are its expected standard output.

Matching rules for expected output:
  * trailing whitespace (including the \\r of HTTP header lines) is ignored,
    on both sides, and trailing empty lines are dropped;
  * "..." inside a line matches any text within that line;
  * a line that is exactly "..." matches any number of whole lines (zero or more).

Each command runs with `bash -c` in the directory given by --cwd (the curl
cookie jar lives there). A step fails when its output does not match or its
exit status is not 0. The script stops at the first failing step and exits 1.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- walkthrough:begin -->"
END = "<!-- walkthrough:end -->"
WILDCARD = "..."


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    line: int = 0  # line number of the command in the README (1-based)


class WalkthroughError(Exception):
    pass


def extract_steps(text: str) -> list[Step]:
    lines = text.splitlines()
    begins = [i for i, l in enumerate(lines) if l.strip() == BEGIN]
    ends = [i for i, l in enumerate(lines) if l.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise WalkthroughError(
            f"README must contain exactly one {BEGIN} line followed by one {END} line "
            f"(found {len(begins)} begin, {len(ends)} end)"
        )
    steps: list[Step] = []
    state = "out"  # "out", "console" (a ```console block) or "other" (any other fenced block)
    current: Step | None = None
    continuing = False
    for i in range(begins[0] + 1, ends[0]):
        raw = lines[i]
        stripped = raw.strip()
        if state == "out":
            if stripped.startswith("```"):
                state = "console" if stripped == "```console" else "other"
            continue
        if state == "other":
            if stripped == "```":
                state = "out"
            continue
        # inside a console block
        if continuing and current is not None:
            if stripped == "```":
                raise WalkthroughError(f"README line {i + 1}: a command ends with '\\' at the end of a block")
            current.command += "\n" + raw
            continuing = raw.endswith("\\")
            continue
        if stripped == "```":
            state = "out"
            current = None
            continue
        if raw.startswith("$ "):
            current = Step(command=raw[2:], line=i + 1)
            steps.append(current)
            continuing = raw.endswith("\\")
            continue
        if current is None:
            if stripped:
                raise WalkthroughError(
                    f"README line {i + 1}: output line before any command in a console block: {raw!r}"
                )
            continue
        current.expected.append(raw)
    if state != "out":
        raise WalkthroughError("a fenced block inside the walkthrough is not closed")
    if not steps:
        raise WalkthroughError("the walkthrough contains no '$ ' commands")
    for step in steps:
        step.expected = normalise(step.expected)
    return steps


def normalise(lines: list[str]) -> list[str]:
    out = [l.rstrip() for l in lines]
    while out and out[-1] == "":
        out.pop()
    return out


def line_pattern(expected: str) -> re.Pattern[str]:
    parts = expected.split(WILDCARD)
    return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


def matches(expected: list[str], got: list[str]) -> bool:
    """Match line by line; an expected line equal to '...' eats any number of got lines."""
    memo: dict[tuple[int, int], bool] = {}

    def go(e: int, g: int) -> bool:
        key = (e, g)
        if key in memo:
            return memo[key]
        if e == len(expected):
            result = g == len(got)
        elif expected[e] == WILDCARD:
            result = any(go(e + 1, k) for k in range(g, len(got) + 1))
        elif g == len(got):
            result = False
        else:
            result = bool(line_pattern(expected[e]).fullmatch(got[g])) and go(e + 1, g + 1)
        memo[key] = result
        return result

    return go(0, 0)


def indent(lines: list[str], prefix: str = "    ") -> str:
    if not lines:
        return prefix + "(nothing)"
    return "\n".join(prefix + l for l in lines)


def main() -> int:
    repo_root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=str(repo_root / "README.md"), help="README to read (default: the repo's README.md)")
    parser.add_argument("--cwd", default=".", help="directory the commands run in (the cookie jar is created there)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a single command may take (default 30)")
    parser.add_argument("--list", action="store_true", help="print the steps and their expected output, run nothing")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # keep step lines and failure reports in order in CI logs

    try:
        steps = extract_steps(Path(args.readme).read_text(encoding="utf-8"))
    except (OSError, WalkthroughError) as err:
        print(f"walkthrough: {err}", file=sys.stderr)
        return 2

    if args.list:
        for n, step in enumerate(steps, 1):
            print(f"[{n}] (README line {step.line}) $ {step.command}")
            print(indent(step.expected))
        return 0

    cwd = os.path.abspath(args.cwd)
    if not os.path.isdir(cwd):
        print(f"walkthrough: --cwd {cwd} is not a directory", file=sys.stderr)
        return 2

    print(f"walkthrough: {len(steps)} steps from {args.readme}, running in {cwd}")
    started = time.monotonic()
    for n, step in enumerate(steps, 1):
        print(f"[{n}/{len(steps)}] $ {step.command}", flush=True)
        try:
            proc = subprocess.run(
                ["bash", "-c", step.command],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=args.timeout,
            )
        except subprocess.TimeoutExpired:
            print(f"FAIL step {n} (README line {step.line}): timed out after {args.timeout:g} s", file=sys.stderr)
            return 1
        stdout = proc.stdout.decode("utf-8", errors="replace")
        stderr = proc.stderr.decode("utf-8", errors="replace")
        got = normalise(stdout.split("\n"))
        ok_output = matches(step.expected, got)
        if ok_output and proc.returncode == 0:
            print(indent(got))
            continue
        reason = "output differs" if not ok_output else f"exit status {proc.returncode}"
        print(f"FAIL step {n} (README line {step.line}): {reason}", file=sys.stderr)
        print(f"  command:\n    $ {step.command}", file=sys.stderr)
        print(f"  expected:\n{indent(step.expected)}", file=sys.stderr)
        print(f"  got (exit status {proc.returncode}):\n{indent(got)}", file=sys.stderr)
        if stderr.strip():
            print(f"  stderr:\n{indent(normalise(stderr.split(chr(10))))}", file=sys.stderr)
        return 1
    print(f"walkthrough: all {len(steps)} steps passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
