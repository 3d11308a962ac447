#!/usr/bin/env bash
# Get a Bitcoin Core bitcoind for tinynode's Core interop tests, from package registries only.
#
#   contrib/interop/install_bitcoind.sh [DIR]     # default DIR: <repo>/.interop/core
#
# No registry ships bitcoind, but PyPI ships Bitcoin Core's full source tree inside the sdist of
# py-bitcoinkernel (under depend/bitcoin/; 0.1.0a5 carries Core 31.99, April 2026). This script
# downloads that sdist (pinned by its sha256), and builds bitcoind from it with
# contrib/interop/build_bitcoind.sh (cmake, a C++20 compiler, Boost and libevent headers; when
# the headers are missing and we are root with apt-get, it installs libboost-dev and
# libevent-dev). About 10–25 minutes on two cores; nothing to do when DIR already has the binary.
# Every step is bounded (apt-get 3 × 5 min, download 10 min, build 40 min) so CI stays under
# its 90 minutes even when this machine cannot build.
# Prints the path of bitcoind on its last line. Exit codes: 0 built, 2 a tool is missing,
# 1 the download or the build failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$repo/.interop/core}"
sdist_version="0.1.0a5"
sdist_sha256="71b91eecac7a8b07248be04471c3bf98016b38bf823aefd28f7b31179940520d"
src="$dir/py_bitcoinkernel-$sdist_version/depend/bitcoin"
bin="$src/build/bin/bitcoind"
python="${PYTHON:-python3}"

if [ -x "$bin" ] && "$bin" -version >/dev/null 2>&1 && [ -x "$src/build/bin/bitcoin-cli" ]; then
    echo "install_bitcoind: $("$bin" -version | head -1) already built"
    echo "$bin"
    exit 0
fi

have_headers() {
    printf '#include <boost/multi_index_container.hpp>\n#include <event2/event.h>\nint main(){}\n' \
        | c++ -x c++ -fsyntax-only - >/dev/null 2>&1
}
for tool in c++ cmake; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install_bitcoind: '$tool' not found; the Bitcoin Core interop tests cannot run" >&2
        exit 2
    fi
done
if ! have_headers; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get install -y -q libboost-dev libevent-dev >/dev/null 2>&1 \
            || { timeout 300 apt-get update -q >/dev/null 2>&1 \
                 && timeout 300 apt-get install -y -q libboost-dev libevent-dev >/dev/null 2>&1; } || true
    fi
    if ! have_headers; then
        echo "install_bitcoind: Boost and libevent headers are missing (apt-get install libboost-dev libevent-dev)" >&2
        exit 2
    fi
fi

mkdir -p "$dir"
req="$dir/requirements.txt"
echo "py-bitcoinkernel==$sdist_version --hash=sha256:$sdist_sha256" > "$req"
timeout 600 "$python" -m pip download -q --no-deps --no-binary :all: --require-hashes -r "$req" -d "$dir" \
    || { echo "install_bitcoind: could not download py-bitcoinkernel $sdist_version from PyPI" >&2; exit 1; }
tar xzf "$dir/py_bitcoinkernel-$sdist_version.tar.gz" -C "$dir"
timeout 2400 nice -n 10 "$here/build_bitcoind.sh" "$src" > "$dir/build.log" 2>&1 \
    || { echo "install_bitcoind: the build failed; see $dir/build.log" >&2; tail -20 "$dir/build.log" >&2; exit 1; }
echo "install_bitcoind: $("$bin" -version | head -1)"
echo "$bin"
