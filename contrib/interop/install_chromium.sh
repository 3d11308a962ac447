#!/usr/bin/env bash
# Find or install Debian's headless-capable Chromium for the explorer's browser test
# (tests/integration/test_explorer.py drives it over the DevTools protocol; no Node.js needed).
#
#   contrib/interop/install_chromium.sh        # prints the chromium path on its last line
#
# Uses `chromium` (or `chromium-browser`) when on PATH; otherwise, as root (or with passwordless
# sudo) on a Debian/Ubuntu system, `apt-get install -y chromium`, bounded by
# INTEROP_APT_TIMEOUT seconds (default 600). Exit codes: 0 found or installed, 2 cannot install
# here (not root, no apt-get), 1 the install failed.
set -euo pipefail
timeout_s="${INTEROP_APT_TIMEOUT:-600}"

found() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

path="$(found)"
if [ -n "$path" ]; then
    echo "$path"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: no chromium and no apt-get; the explorer's browser test will be skipped" >&2
    exit 2
fi
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install_chromium: not root and no passwordless sudo; cannot apt-get install chromium" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
if ! timeout "$timeout_s" "${sudo[@]}" apt-get install -y -q chromium >&2; then
    timeout "$timeout_s" "${sudo[@]}" apt-get update -q >&2 || true
    timeout "$timeout_s" "${sudo[@]}" apt-get install -y -q chromium >&2 || {
        echo "install_chromium: apt-get install chromium failed" >&2
        exit 1
    }
fi
path="$(found)"
[ -n "$path" ] || { echo "install_chromium: installed, but no chromium on PATH" >&2; exit 1; }
echo "$path"
