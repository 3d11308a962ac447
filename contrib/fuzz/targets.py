"""Fuzz targets: every decoder that takes bytes from a peer or an RPC caller, and a differential
script target against Bitcoin Core's kernel.

Each target takes one input (bytes) and returns normally when the code under test either
decoded it or refused it with its *declared* error (DecodeError and its WireError subclasses,
ScriptParseError, AddressError, RPCError). Anything else escaping is a crash; a verdict that
differs from Core's (target `script_diff`) raises `Disagreement`. Decoded values are
re-serialized and must give the same bytes back (a codec that parses what it cannot write is
a bug too).

`run.py` drives them with atheris (libFuzzer, coverage-guided); `TARGETS` names them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable

from tinynode.params import REGTEST
from tinynode.primitives.address import AddressError, decode_address, decode_wif
from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.hashes import ZERO_HASH
from tinynode.primitives.serialize import DecodeError
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.rpc.protocol import RPCError, decode_body, parse_request
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.script import (
    ScriptParseError, classify, is_push_only, iter_ops, legacy_sigop_count, p2sh_sigop_count,
    parse_core_script,
)
from tinynode.wire.envelope import FrameDecoder
from tinynode.wire.messages import MESSAGE_TYPES

__all__ = ["TARGETS", "Disagreement"]

_COMMANDS = sorted(MESSAGE_TYPES)
_MAX_FRAMES = 64


class Disagreement(AssertionError):
    """tinynode and Core's kernel gave different verdicts for the same script check."""


def fuzz_envelope(data: bytes) -> None:
    """A peer's byte stream, fed in two pieces, framed as regtest messages."""
    dec = FrameDecoder(REGTEST.magic)
    cut = data[0] % (len(data) + 1) if data else 0
    for piece in (data[:cut], data[cut:]):
        dec.feed(piece)
        for _ in range(_MAX_FRAMES):
            try:
                got = dec.next()
            except DecodeError:
                return
            if got is None:
                break


def fuzz_message(data: bytes) -> None:
    """One P2P message payload; the first byte picks the command (each of MESSAGE_TYPES)."""
    if not data:
        return
    cls = MESSAGE_TYPES[_COMMANDS[data[0] % len(_COMMANDS)]]
    payload = data[1:]
    try:
        msg = cls.from_payload(payload)
    except DecodeError:
        return
    again = cls.from_payload(msg.serialize())
    if again != msg:
        raise AssertionError(f"{cls.__name__}: decode(encode(m)) != m")


def fuzz_tx(data: bytes) -> None:
    try:
        tx = Tx.from_bytes(data)
    except DecodeError:
        return
    if tx.serialize() != data:
        raise AssertionError("Tx: serialize() differs from the accepted bytes")
    tx.txid  # noqa: B018 - hashing must not fail either


def fuzz_block(data: bytes) -> None:
    try:
        blk = Block.from_bytes(data)
    except DecodeError:
        pass
    else:
        if blk.serialize() != data:
            raise AssertionError("Block: serialize() differs from the accepted bytes")
    try:
        BlockHeader.from_bytes(data[:80])
    except DecodeError:
        pass


def fuzz_script(data: bytes) -> None:
    """Script iteration and the analyses run on scripts from peers (sigops, standardness)."""
    try:
        for _ in iter_ops(data):
            pass
    except ScriptParseError:
        pass
    legacy_sigop_count(data)
    legacy_sigop_count(data, accurate=True)
    classify(data)
    is_push_only(data)
    half = len(data) // 2
    p2sh_sigop_count(data[:half], data[half:])


def fuzz_address(data: bytes) -> None:
    """Address and WIF strings as an RPC caller sends them."""
    text = data.decode("utf-8", "replace")
    for decode in (decode_address, decode_wif):
        try:
            decode(text, REGTEST)
        except AddressError:
            pass


def fuzz_rpc(data: bytes) -> None:
    """An HTTP body through the server's decode and request-object parse (Core JSONRPCRequest)."""
    try:
        obj = decode_body(data)
    except RPCError:
        return
    for item in (obj if isinstance(obj, list) else [obj])[:1000]:
        try:
            parse_request(item)
        except RPCError:
            pass


# --------------------------------------------------------------------- differential (kernel)
_FLAG_BITS = (1 << 0, 1 << 2, 1 << 4, 1 << 9, 1 << 10)   # P2SH DERSIG NULLDUMMY CLTV CSV
_EDGE_U32 = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x00400000, 0x0040FFFF,
             499_999_999, 500_000_000, 3)


def _seed_scripts() -> list[tuple[bytes, bytes]]:
    data = Path(__file__).resolve().parents[2] / "tests" / "data"
    rows = json.loads((data / "script_tests.json").read_text())
    index = json.loads((data / "legacy_subset_index.json").read_text())
    return [(parse_core_script(rows[n][0]), parse_core_script(rows[n][1]))
            for n in index["script_tests.json"]["legacy"]]


class _ScriptDiff:
    """Inputs: 2 bytes pick a script_tests row, 1 byte the flags, 3 bytes version/sequence/
    locktime edges, 1 byte which side the rest replaces or extends (sig, spk, both)."""

    def __init__(self) -> None:
        import pbk  # the oracle; only this target needs it
        self.pbk = pbk
        self.seeds = _seed_scripts()

    def __call__(self, data: bytes) -> None:
        if len(data) < 7:
            return
        row, fl, iv, isq, ilt, mode = struct.unpack_from("<HBBBBB", data)
        sig, spk = self.seeds[row % len(self.seeds)]
        rest = data[7:]
        mode %= 5
        if mode == 0:
            sig = rest
        elif mode == 1:
            spk = rest
        elif mode == 2:
            sig = sig + rest
        elif mode == 3:
            spk = rest + spk
        else:
            half = len(rest) // 2
            sig, spk = rest[:half], rest[half:]
        flags = sum(b for i, b in enumerate(_FLAG_BITS) if fl >> i & 1)
        version = _EDGE_U32[iv % len(_EDGE_U32)]
        credit = Tx(1, (TxIn(OutPoint(ZERO_HASH, 0xFFFFFFFF), b"\x00\x00", 0xFFFFFFFF),),
                    (TxOut(0, spk),), 0)
        tx = Tx(version - (1 << 32) if version >= 1 << 31 else version,
                (TxIn(OutPoint(credit.txid, 0), sig, _EDGE_U32[isq % len(_EDGE_U32)]),),
                (TxOut(0, b""),), _EDGE_U32[ilt % len(_EDGE_U32)])
        try:
            verify_script(sig, spk, tx, 0, flags)
            mine = True
        except ScriptError:
            mine = False
        pbk = self.pbk
        core = pbk.ScriptPubkey(spk).verify(0, pbk.Transaction(tx.serialize()), None, 0,
                                            pbk.ScriptVerificationFlags(flags))
        if mine != bool(core):
            raise Disagreement(f"tinynode {mine}, Core {core}: flags={flags:#x} "
                               f"sig={sig.hex()} spk={spk.hex()} tx={tx.serialize().hex()}")


def _script_diff_factory() -> Callable[[bytes], None]:
    return _ScriptDiff()


#: name → factory of the one-input function (factories, so the kernel loads only when used)
TARGETS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "envelope": lambda: fuzz_envelope,
    "message": lambda: fuzz_message,
    "tx": lambda: fuzz_tx,
    "block": lambda: fuzz_block,
    "script": lambda: fuzz_script,
    "address": lambda: fuzz_address,
    "rpc": lambda: fuzz_rpc,
    "script_diff": _script_diff_factory,
}
