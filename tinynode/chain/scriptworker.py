"""The worker-process side of the script check queue (`chain/checkqueue.py`, mode "processes").

A block's checks cross the process boundary as plain bytes, not pickled objects: per tx, its
raw serialization once (Core's `TX_WITH_WITNESS`) and how its PrecomputedTxData was made (none;
from the spent outputs, which are then sent for every input of the tx; or without them); per
checked input, its position in the block's list of checks, the input index, the spent coin's
amount and script_pubkey. The worker parses the tx, rebuilds the PrecomputedTxData
(`PrecomputedTxData.for_tx(tx, spent, force=False)`, as block connect makes it, Core
`PrecomputedTransactionData::Init`), checks its inputs in order (Core `CScriptCheck`) and stops
at the first failure, as Core's check queue stops handing out work after one. Its reply is the
position of that failure (or none), its reason and detail, and the worker's own wall time.

A rebuilt PrecomputedTxData gives the same verdict as the one the parent holds: both carry the
same spent outputs (or none), and a hash it did not precompute is computed on use.

`worker_main` is a top-level function run in a process started with a spawn/forkserver
context (never a fork of the node, which holds an event loop and threads). It exits when its
pipe closes: the parent closed it (`close()`), or the parent died.
"""

from __future__ import annotations

import signal
import struct
import time
from typing import Sequence

from ..consensus.errors import ValidationError
from ..consensus.tx_checks import check_input_script
from ..primitives.serialize import ByteReader
from ..primitives.tx import Tx, TxOut
from ..script.sighash import PrecomputedTxData

__all__ = ["encode_batch", "run_batch", "decode_reply", "worker_main", "READY", "BatchResult",
           "OK", "FAILED", "CRASHED"]

#: the first message a worker sends: it has imported everything and waits for batches
READY = b"ready"

# txdata kinds of a tx group
_NO_TXDATA, _SPENT, _NO_SPENT = 0, 1, 2
# reply kinds
OK, FAILED, CRASHED = 0, 1, 2

_HEAD = struct.Struct("<IH")          # script flags, len(reason)
_U32 = struct.Struct("<I")
_TXHEAD = struct.Struct("<IB")        # len(raw tx), txdata kind
_SPENTOUT = struct.Struct("<qI")      # amount, len(script_pubkey)
_CHECK = struct.Struct("<IIqI")       # position, input index, amount, len(script_pubkey)
_REPLY = struct.Struct("<BiId")       # kind, failing position (-1: none), checks done, seconds

#: (kind, failing position or -1, checks done, worker wall seconds, reason, detail)
BatchResult = tuple[int, int, int, float, str, str]


def encode_batch(checks: Sequence, start: int, end: int, flags: int, reason: str) -> bytes:
    """checks[start:end] as one message (positions are indices into `checks`). Consecutive
    checks of the same tx object share one tx group (ConnectBlock adds a tx's inputs together)."""
    parts = [_HEAD.pack(flags, len(reason)), reason.encode()]
    append = parts.append
    pack_check = _CHECK.pack
    n_groups = 0
    group_at = len(parts)
    parts.append(b"")                 # number of groups, filled in at the end
    last_tx = None
    count_at = 0
    count = 0
    for pos in range(start, end):
        tx, j, spk, amount, txdata = checks[pos]
        if tx is not last_tx:
            if last_tx is not None:
                parts[count_at] = _U32.pack(count)
            last_tx = tx
            n_groups += 1
            raw = tx.raw
            if txdata is None:
                append(_TXHEAD.pack(len(raw), _NO_TXDATA))
                append(raw)
            elif txdata.spent_outputs is None:
                append(_TXHEAD.pack(len(raw), _NO_SPENT))
                append(raw)
            else:
                spent = txdata.spent_outputs
                append(_TXHEAD.pack(len(raw), _SPENT))
                append(raw)
                append(_U32.pack(len(spent)))
                for o in spent:
                    s = o.script_pubkey
                    append(_SPENTOUT.pack(o.value, len(s)))
                    append(s)
            count_at = len(parts)
            append(b"")
            count = 0
        append(pack_check(pos, j, amount, len(spk)))
        append(spk)
        count += 1
    if last_tx is not None:
        parts[count_at] = _U32.pack(count)
    parts[group_at] = _U32.pack(n_groups)
    return b"".join(parts)


def run_batch(data: bytes) -> bytes:
    """Check one encoded batch in order; the reply (see `decode_reply`)."""
    t0 = time.perf_counter()
    mv = memoryview(data)
    flags, rlen = _HEAD.unpack_from(mv, 0)
    p = _HEAD.size
    reason = bytes(mv[p:p + rlen]).decode()
    p += rlen
    (n_groups,) = _U32.unpack_from(mv, p)
    p += 4
    done = 0
    for _ in range(n_groups):
        raw_len, kind = _TXHEAD.unpack_from(mv, p)
        p += _TXHEAD.size
        raw = bytes(mv[p:p + raw_len])
        p += raw_len
        r = ByteReader(raw)
        tx = Tx.parse(r)
        if kind == _NO_TXDATA:
            txdata = None
        elif kind == _NO_SPENT:
            txdata = PrecomputedTxData.for_tx(tx, None, force=False)
        else:
            (n_spent,) = _U32.unpack_from(mv, p)
            p += 4
            spent = []
            for _ in range(n_spent):
                value, slen = _SPENTOUT.unpack_from(mv, p)
                p += _SPENTOUT.size
                spent.append(TxOut(value, bytes(mv[p:p + slen])))
                p += slen
            txdata = PrecomputedTxData.for_tx(tx, tuple(spent), force=False)
        (n_checks,) = _U32.unpack_from(mv, p)
        p += 4
        for _ in range(n_checks):
            pos, j, amount, slen = _CHECK.unpack_from(mv, p)
            p += _CHECK.size
            spk = bytes(mv[p:p + slen])
            p += slen
            try:
                check_input_script(tx, j, spk, flags, reason, amount, txdata)
            except ValidationError as e:
                return _reply(FAILED, pos, done, t0, str(e.reason.value), e.detail or "")
            except Exception as e:  # noqa: BLE001 - the parent re-runs this check itself
                return _reply(CRASHED, pos, done, t0, type(e).__name__, str(e))
            done += 1
    return _reply(OK, -1, done, t0, "", "")


def _reply(kind: int, pos: int, done: int, t0: float, reason: str, detail: str) -> bytes:
    r, d = reason.encode(), detail.encode("utf-8", "replace")
    return b"".join([_REPLY.pack(kind, pos, done, time.perf_counter() - t0),
                     _U32.pack(len(r)), r, _U32.pack(len(d)), d])


def decode_reply(data: bytes) -> BatchResult:
    kind, pos, done, seconds = _REPLY.unpack_from(data, 0)
    p = _REPLY.size
    (n,) = _U32.unpack_from(data, p)
    reason = data[p + 4:p + 4 + n].decode()
    p += 4 + n
    (n,) = _U32.unpack_from(data, p)
    detail = data[p + 4:p + 4 + n].decode("utf-8", "replace")
    return kind, pos, done, seconds, reason, detail


def worker_main(conn) -> None:
    """A script check worker: READY, then one reply per batch until the pipe closes.

    SIGINT is ignored (Ctrl-C reaches the whole process group; the parent ends its workers).
    EOF on the pipe (the parent closed it or died) ends the process."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    try:
        conn.send_bytes(READY)
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            conn.send_bytes(run_batch(data))
    except (BrokenPipeError, EOFError, OSError):
        return
    finally:
        conn.close()
