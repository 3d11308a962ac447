#!/usr/bin/env bash
# Build Bitcoin Core's bitcoind from a source tree for tinynode's Core interop tests
# (tests/integration/test_interop_core.py). No package registry ships bitcoind, so this takes a
# checkout of https://github.com/bitcoin/bitcoin (v28 or newer: the CMake build).
#
#   contrib/interop/build_bitcoind.sh SRC [JOBS]     # JOBS default: number of cores
#   TINYNODE_BITCOIND=SRC/build/bin/bitcoind pytest tests/integration/test_interop_core.py
#
# Needs cmake >= 3.22, GCC >= 12.1 or Clang >= 17, and the Boost (>= 1.74) and libevent headers:
# on Debian/Ubuntu `apt-get install cmake build-essential libboost-dev libevent-dev`.
# Builds only bitcoind and bitcoin-cli (no wallet, GUI, IPC, ZMQ or tests), optimised with -O1 to
# keep the build short (about 25 minutes on two cores); the tests need nothing else
# (bitcoin-cli, next to bitcoind, is the client of tests/integration/test_interop_bitcoin_cli.py).
set -euo pipefail
src="${1:?usage: build_bitcoind.sh SRC [JOBS]}"
jobs="${2:-$(nproc)}"
[ -f "$src/CMakeLists.txt" ] && [ -d "$src/src" ] || { echo "build_bitcoind: $src is not a Bitcoin Core source tree" >&2; exit 1; }
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g0" -DCMAKE_C_FLAGS_RELEASE="-O1 -g0" \
    -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF -DENABLE_WALLET=OFF -DENABLE_IPC=OFF \
    -DBUILD_BITCOIN_BIN=OFF -DBUILD_TX=OFF -DBUILD_UTIL=OFF -DBUILD_CLI=ON -DWITH_ZMQ=OFF \
    -DENABLE_EXTERNAL_SIGNER=OFF -DWITH_CCACHE=OFF -DINSTALL_MAN=OFF
cmake --build "$src/build" -j "$jobs" --target bitcoind bitcoin-cli
"$src/build/bin/bitcoind" -version | head -1
echo "build_bitcoind: TINYNODE_BITCOIND=$src/build/bin/bitcoind"
