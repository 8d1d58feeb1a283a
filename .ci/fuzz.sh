#!/usr/bin/env bash
# Fuzzing smoke run (issue 5): builds the cargo-fuzz targets in fuzz/ and runs each one for
# FUZZ_SECONDS (default 20) seconds, starting from its corpus (fuzz/corpus/<target>, kept between
# runs, not committed) plus the committed seeds (fuzz/seeds/<target>) and dictionary
# (fuzz/dicts/<target>.dict). Fails when any target finds a crash, a failed property or a hang;
# the input is then in fuzz/artifacts/<target>/ (see docs/fuzzing.md to reproduce and minimise).
#
# Needs the nightly toolchain (installed with rustup if missing) and cargo-fuzz (installed with
# `cargo install cargo-fuzz --locked` if missing). Environment: FUZZ_SECONDS, FUZZ_TARGETS (a
# space-separated subset; default: every target `cargo fuzz list` names), FUZZ_SANITIZER (default
# none; address, memory, thread ...).
# The first build compiles tessera and its dependencies with the sanitizer and takes minutes;
# later runs rebuild only what changed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
seconds="${FUZZ_SECONDS:-20}"
# tessera is safe Rust; AddressSanitizer mainly watches the bundled C (SQLite) and makes the first
# build of every dependency several times slower (~16 min here against a few). The smoke run uses
# none; FUZZ_SANITIZER=address for a campaign (docs/fuzzing.md).
sanitizer="${FUZZ_SANITIZER:-none}"

log() { printf '==> fuzz: %s\n' "$*"; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 1; }

[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a whole number of seconds, not '$seconds'"
command -v cargo >/dev/null || die "cargo not found"
if ! cargo +nightly --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "no nightly toolchain and no rustup to install one"
    log "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

log "building every target ($(cargo fuzz --version))"
cargo +nightly fuzz build --sanitizer "$sanitizer"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
[[ ${#targets[@]} -gt 0 ]] || die "no fuzz targets"

failed=()
for target in "${targets[@]}"; do
    corpus="$repo_root/fuzz/corpus/$target"
    mkdir -p "$corpus"
    if [[ -d "fuzz/seeds/$target" ]]; then
        cp -n "fuzz/seeds/$target"/* "$corpus"/ 2>/dev/null || true
    fi
    options=("-max_total_time=$seconds" -timeout=10 -print_final_stats=1)
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        options+=("-dict=$repo_root/fuzz/dicts/$target.dict")
    fi
    log "$target for ${seconds}s"
    if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- "${options[@]}"; then
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    for target in "${failed[@]}"; do
        printf 'fuzz: %s failed; inputs in fuzz/artifacts/%s/:\n' "$target" "$target" >&2
        ls -1 "fuzz/artifacts/$target" >&2 2>/dev/null || true
    done
    die "${#failed[@]} target(s) failed: ${failed[*]} (reproduce: cargo +nightly fuzz run <target> <artifact>)"
fi
log "every target ran ${seconds}s without a failure: ${targets[*]}"
