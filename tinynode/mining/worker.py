"""The proof-of-work inner loop, run in worker processes.

`grind` is a top-level pure function (hashlib and struct only) so a `ProcessPoolExecutor` can
pickle it by reference; `init_worker` prepares each worker process (signals, priority, exit
when the node is gone). It mirrors the hashing half of Bitcoin Core's `GenerateBlock()` /
btcd's `cpuminer.solveBlock`: the 80-byte header is `header76 | nonce`, the first 64 bytes are
constant for a whole chunk, so their SHA-256 midstate is computed once and copied per nonce.
"""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import threading
import time

__all__ = ["grind", "MAX_NONCE", "init_worker"]

MAX_NONCE = 0xFFFFFFFF


def grind(header76: bytes, target: int, nonce_start: int, count: int) -> int | None:
    """Return the first nonce in [nonce_start, nonce_start + count) whose header hash ≤ target.

    The hash is compared as a little-endian 256-bit integer, as Core's `CheckProofOfWork`.
    Returns None when no nonce in the range works (the range is clipped to 32 bits).
    """
    if len(header76) != 76:
        raise ValueError("header76 must be 76 bytes")
    if target <= 0:
        return None
    end = min(nonce_start + count, MAX_NONCE + 1)
    if nonce_start >= end:
        return None
    if target.bit_length() > 256:
        return nonce_start
    sha256 = hashlib.sha256
    mid = sha256(header76[:64])
    mid.update(header76[64:])
    copy = mid.copy
    # Big-endian target bytes: the hash digest reversed compares as bytes in the same order.
    target_be = target.to_bytes(32, "big")
    top = target_be[0]
    pack = struct.Struct("<I").pack
    for nonce_bytes in map(pack, range(nonce_start, end)):
        h = copy()
        h.update(nonce_bytes)
        digest = sha256(h.digest()).digest()
        # Fast reject on the most significant byte; exact compare only when it could pass.
        if digest[31] <= top and digest[::-1] <= target_be:
            return int.from_bytes(nonce_bytes, "little")
    return None


def init_worker(nice: int = 10, parent_pid: int | None = None) -> None:
    """Worker initializer: ignore SIGINT (Ctrl-C reaches the whole process group; the parent
    shuts the pool down), raise the nice value so the node's event loop always wins the CPU
    over hashing, and exit if the node process disappears (killed with SIGKILL, it cannot
    shut the pool down; the workers of a forkserver pool would otherwise linger, idle)."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    if nice:
        try:
            os.nice(nice)
        except (AttributeError, OSError):
            pass
    if parent_pid:
        threading.Thread(target=_exit_when_gone, args=(parent_pid,), name="parent-watch",
                         daemon=True).start()


def _exit_when_gone(pid: int, interval: float = 1.0) -> None:
    while True:
        time.sleep(interval)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except OSError:
            pass  # exists but not ours to signal: still alive
