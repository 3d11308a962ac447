#!/usr/bin/env bash
# Install bcoin (a Bitcoin full node in JavaScript) for tinynode's interop tests.
#
#   contrib/interop/install_bcoin.sh [DIR]      # default DIR: <repo>/.interop
#
# Installs the versions pinned in contrib/interop/package.json + package-lock.json (bcoin 1.0.2,
# leveldown overridden to 5.6.0: bcoin's own leveldown 4.0.1 does not compile on Node >= 12 and
# 5.6.0 ships prebuilt binaries). One native addon is compiled by node-gyp (mrmr, needs a C++
# compiler, make and python3); bcrypto/bsip/bstring fall back to pure JS if their builds fail.
# Tests run bcoin with --memory (no LevelDB on disk).
# Needs node >= 12 and npm; bounded by INTEROP_NPM_TIMEOUT seconds (default 300).
# Does nothing when DIR already holds this exact lock file and a working bcoin.
# Exit codes: 0 installed (prints the bcoin entry point), 2 node/npm missing, 1 install failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$repo/.interop}"
timeout_s="${INTEROP_NPM_TIMEOUT:-300}"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install_bcoin: '$tool' not found; bcoin interop tests cannot run (install Node.js >= 12 with npm)" >&2
        exit 2
    fi
done

entry="$dir/node_modules/bcoin/bin/node"
if [ -f "$entry" ] && cmp -s "$here/package-lock.json" "$dir/package-lock.json" \
        && node "$entry" --version >/dev/null 2>&1; then
    echo "install_bcoin: bcoin $(node "$entry" --version) already installed in $dir"
    echo "$entry"
    exit 0
fi
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
start=$(date +%s)
if ! timeout "$timeout_s" npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error; then
    echo "install_bcoin: npm ci failed or timed out after ${timeout_s}s (registry reachable?)" >&2
    exit 1
fi
version="$(node "$entry" --version)"
echo "install_bcoin: bcoin $version installed in $dir in $(( $(date +%s) - start ))s"
echo "$entry"
