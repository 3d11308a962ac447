#!/usr/bin/env bash
# Install ElectrumX (PyPI `e-x`, the Electrum server) into its own venv for tinynode's
# ElectrumX interop test (tests/integration/test_interop_electrumx.py).
#
#   contrib/interop/install_electrumx.sh [DIR]     # default DIR: <repo>/.interop/electrumx
#
# Pinned: e-x 2.0.0 and plyvel (LevelDB, its database; the wheel carries LevelDB itself).
# Bounded (pip 10 min). Prints the path of electrumx_server on its last line. Exit codes: 0
# installed (or already there), 1 the install failed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-$repo/.interop/electrumx}"
python="${PYTHON:-python3}"
server="$dir/venv/bin/electrumx_server"

if [ -x "$server" ] && "$dir/venv/bin/python" -c "import electrumx, plyvel" 2>/dev/null; then
    echo "install_electrumx: already installed"
    echo "$server"
    exit 0
fi
mkdir -p "$dir"
"$python" -m venv "$dir/venv"
timeout 600 "$dir/venv/bin/python" -m pip install -q "e-x==2.0.0" "plyvel==1.5.1" \
    || { echo "install_electrumx: pip could not install e-x 2.0.0 and plyvel" >&2; exit 1; }
"$dir/venv/bin/python" -c "import electrumx, plyvel" \
    || { echo "install_electrumx: electrumx or plyvel does not import" >&2; exit 1; }
echo "$server"
