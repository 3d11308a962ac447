#!/usr/bin/env bash
# Run a throwaway bcoin regtest node bound to 127.0.0.1 only (for trying tinynode against it by hand).
#
#   contrib/interop/run_bcoin.sh DATADIR P2P_PORT HTTP_PORT [extra bcoin options...]
#
# In-memory chain (--memory), no wallet, no worker processes, P2P and HTTP RPC on 127.0.0.1,
# API key "tinynode" (HTTP basic auth, any user name). Useful extra options:
#   --only=127.0.0.1:PORT   dial only this peer (e.g. a tinynode) and use it as the sync peer
#   --listen=false          do not accept inbound connections
# Examples (regtest addresses for bcoin use prefix 0x3c, e.g. R9HC5WtHbpoa51NCUAz86XLCmGTbkf45NT):
#   curl -s -u x:tinynode -d '{"method":"generatetoaddress","params":[10,"R9HC5WtHbpoa51NCUAz86XLCmGTbkf45NT"]}' http://127.0.0.1:HTTP_PORT/
#   python -m tinynode --network regtest --datadir /tmp/tn --port 0 --peers 127.0.0.1:P2P_PORT
# Runs in the foreground; Ctrl-C stops it. BCOIN_DIR overrides <repo>/.interop.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
entry="${BCOIN_DIR:-$repo/.interop}/node_modules/bcoin/bin/node"
if [ ! -f "$entry" ]; then
    echo "run_bcoin: $entry missing; run contrib/interop/install_bcoin.sh first" >&2
    exit 2
fi
datadir="$1"; p2p_port="$2"; http_port="$3"; shift 3
mkdir -p "$datadir"
exec node -r "$here/loopback_only.js" -r "$here/core_regtest_rules.js" "$entry" --network=regtest --prefix="$datadir" --memory=true --workers=false \
    --no-wallet=true --host=127.0.0.1 --port="$p2p_port" --http-host=127.0.0.1 \
    --http-port="$http_port" --api-key=tinynode --max-inbound=8 --max-outbound=1 \
    --log-level="${BCOIN_LOG_LEVEL:-info}" "$@"
