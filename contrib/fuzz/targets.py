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
    locktime edges, 1 byte which side the rest replaces or extends (sig, spk, both).

    With bit 7 of the flags byte set the input is a taproot spend instead (`_taproot`): the
    first 7 bytes seed a generated spend (tests/framework/taproot_spends: key path with every
    hash type, k-of-n CHECKSIG/CHECKSIGADD leaves, OP_SUCCESSx, annexes, unknown leaf versions,
    wrong control blocks, validation weight, codeseparators) and the rest shapes it: the
    tapscript itself (committed to, so it runs), a witness item, or the key path signature's
    hash type and bits. Both engines get every spent output and P2SH|WITNESS|TAPROOT plus the
    input's other consensus bits."""

    def __init__(self) -> None:
        import pbk  # the oracle; only this target needs it
        self.pbk = pbk
        self.seeds = _seed_scripts()

    def __call__(self, data: bytes) -> None:
        if len(data) < 7:
            return
        row, fl, iv, isq, ilt, mode = struct.unpack_from("<HBBBBB", data)
        if fl & 0x80:
            self._taproot(data, fl, mode)
            return
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


    def _taproot(self, data: bytes, fl: int, mode: int) -> None:
        import random

        from tests.framework import taproot_spends as ts
        from tinynode.script.taproot import TAPROOT_LEAF_TAPSCRIPT, taproot_tree

        rng = random.Random(data[:7])
        rest = data[7:]
        flags = sum(b for i, b in enumerate(_FLAG_BITS) if fl >> i & 1) | (1 << 0) | (1 << 11) | (1 << 17)
        sub = mode % 4
        if sub == 0 or (sub == 2 and not rest):        # a generated spend, one witness item replaced
            case = ts.random_case(rng, ts.KINDS[(mode >> 2) % len(ts.KINDS)])
            wit = list(case.tx.vin[case.index].witness)
            if rest and wit:
                wit[rest[0] % len(wit)] = rest[1:]
            case = ts.TaprootCase(ts.with_witness(case.tx, case.index, tuple(wit)), case.index,
                                  case.spent)
        elif sub == 1 or sub == 3:                     # the input is the tapscript
            k = ts.key(rng.randrange(8))
            leaf = (TAPROOT_LEAF_TAPSCRIPT, rest)
            tree = leaf if sub == 1 else [leaf, (TAPROOT_LEAF_TAPSCRIPT, b"\x51")]
            info = taproot_tree(ts.key(99).xonly_public_key, tree)
            n_in = rng.randint(1, 2)
            spks = [info.script_pubkey] * n_in
            tx, spent = ts.spending_tx(spks, rng, rng.randint(1, 2))
            index = rng.randrange(n_in)
            annex = b"\x50" if rng.random() < 0.2 else None
            sig = ts.script_sig(k, tx, index, spent, info.leaves[0][2],
                                rng.choice((0, 1, 2, 3, 0x81, 0x82, 0x83)), annex)
            stack = [b"", b"\x01", sig, k.xonly_public_key][rng.randrange(3):]
            wit = tuple(stack) + (rest, info.control_blocks[0]) + ((annex,) if annex else ())
            case = ts.TaprootCase(ts.with_witness(tx, index, wit), index, spent)
        else:                                           # key path: hash type and flipped bits
            k = ts.key(rng.randrange(8))
            info = taproot_tree(k.xonly_public_key)
            n_in = rng.randint(1, 3)
            tx, spent = ts.spending_tx([info.script_pubkey] * n_in, rng, rng.randint(1, 3))
            index = rng.randrange(n_in)
            hash_type = rest[0]
            sig = ts.keypath_sig(k, tx, index, spent, hash_type if hash_type in
                                 (1, 2, 3, 0x81, 0x82, 0x83) else 0)
            sig = sig[:64] + (bytes((hash_type,)) if hash_type or len(rest) % 2 else b"")
            sig = bytearray(sig)
            for b in rest[1:9]:
                if b & 1:
                    sig[(b >> 1) % len(sig)] ^= 1 << (b % 8)
            case = ts.TaprootCase(ts.with_witness(tx, index, (bytes(sig),)), index, spent)
        case = ts.TaprootCase(case.tx, case.index, case.spent, flags)
        mine = ts.verify(case, verify_script) == "OK"
        pbk = self.pbk
        ktx = pbk.Transaction(case.tx.serialize())
        outs = [pbk.TransactionOutput(pbk.ScriptPubkey(o.script_pubkey), o.value) for o in case.spent]
        txdata = pbk.script.PrecomputedTransactionData(ktx, outs)
        core = pbk.ScriptPubkey(case.script_pubkey).verify(
            case.spent[case.index].value, ktx, txdata, case.index, pbk.ScriptVerificationFlags(flags))
        if mine != bool(core):
            raise Disagreement(f"taproot: tinynode {mine}, Core {core}: flags={flags:#x} "
                               f"input={case.index} spent={[(o.script_pubkey.hex(), o.value) for o in case.spent]} "
                               f"tx={case.tx.serialize().hex()}")


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
