#!/usr/bin/env bash
# tessera CI, browser end-to-end: examples/spa in headless Chromium against the release binary, on
# two origins, in every set-up of e2e/spa.e2e.mjs (same-site; cross-site with Chromium's default
# third-party cookie blocking and with third-party cookies allowed; two controls).
#
# Builds nothing: call it after `cargo build --release` (or set TESSERA_BIN). Installs what it
# needs: Debian's chromium and chromium-driver with apt when /usr/bin/chromium is missing (never a
# browser download), and e2e/'s npm packages with `npm ci`. Needs ports 8080, 5173 and 5174 free.
# Screenshots and the server logs land in target/e2e/.
# Run from anywhere: it works in the repository that contains this script.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf '\n==> e2e: %s\n' "$*"; }
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

binary="${TESSERA_BIN:-$repo_root/target/release/tessera}"
[[ -x "$binary" ]] || die "$binary does not exist: build it first (cargo build --release)"

log "browser"
if [[ ! -x /usr/bin/chromium ]]; then
    echo "installing Debian's chromium and chromium-driver"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is still missing after apt-get install chromium"
/usr/bin/chromium --version 2>/dev/null  # (Debian's wrapper may warn about /dev/shm on stderr)

log "node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing nodejs and npm"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" -ge 20 ]] || die "Node.js $(node --version) is too old: playwright-core needs 20 or newer"
echo "node $(node --version), npm $(npm --version 2>/dev/null)"

log "npm ci (e2e/)"
# playwright-core ships no browser and downloads none; the variable only makes sure of it.
(cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)

log "run (tessera: $binary)"
mkdir -p target/e2e
TESSERA_BIN="$binary" CHROMIUM_BIN=/usr/bin/chromium node e2e/spa.e2e.mjs "$@"
