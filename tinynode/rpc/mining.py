"""Mining RPCs (Core's rpc/mining.cpp): `generatetoaddress`, `generateblock`, `submitblock`,
`getmininginfo`, `getnetworkhashps`. Argument parsing and JSON over the miner and the chain writer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..consensus.errors import RejectReason
from ..mining.miner import MiningError
from ..mining.template import template_with_txs
from ..primitives.address import AddressError, decode_address
from ..chain.index import BlockStatus
from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import DecodeError
from ..primitives.tx import Tx
from ..script.descriptor import descriptor_checksum
from .protocol import (
    RPC_DESERIALIZATION_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_MISC_ERROR,
    RPC_TYPE_ERROR, RPC_VERIFY_ERROR, RPCError,
)
from .util import RPCArea, _bool, _int, _str, _target_hex

log = logging.getLogger(__name__)


class MiningRPC(RPCArea):
    """Mining methods."""

    async def m_generatetoaddress(self, nblocks, address, maxtries=1000000) -> list:
        """generatetoaddress nblocks "address" ( maxtries )
Mine blocks immediately to a specified address (before the RPC call returns)."""
        n = _int(nblocks, "nblocks")
        if not isinstance(address, str):
            raise RPCError(RPC_TYPE_ERROR, "address must be a string")
        try:
            spk = decode_address(address, self._params).script_pubkey
        except AddressError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        if n < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "nblocks must be non-negative")
        if self.node.miner is None:
            raise RPCError(RPC_MISC_ERROR, "mining is not available")
        hashes = await self.node.miner.generate(n, spk)
        return [hash_to_hex(h) for h in hashes]

    async def m_generateblock(self, output, transactions, submit=True) -> dict:
        """generateblock "output" ["rawtx/txid",...] ( submit )
Mine a block with exactly the given transactions (mempool txids or raw hex), in that order.
output is an address or a descriptor (addr(ADDRESS), raw(HEX)). With submit false the block is
returned as hex ("hex") instead of being submitted. As in Core, the coinbase claims only the
subsidy (the transactions' fees are left unclaimed)."""
        spk = _output_script(output, self._params)
        if not isinstance(transactions, list):
            raise RPCError(RPC_TYPE_ERROR, "transactions must be an array")
        do_submit = _bool(submit, "submit")
        miner = self.node.miner
        if miner is None:
            raise RPCError(RPC_MISC_ERROR, "mining is not available")

        def build():
            mp = self.node.mempool
            txs = [_block_tx(_str(item, "transaction"), mp) for item in transactions]
            return template_with_txs(self._cs(), txs, spk, int(time.time()), params=self._params)
        template = await self._w(build)
        try:
            block = await miner.solve(template)  # the miner's worker pool, not this process
        except MiningError:
            raise RPCError(RPC_MISC_ERROR, "Failed to make block.") from None
        if do_submit:
            res = await self.node.service.submit_block(block)
            if not res.ok:
                err = res.error
                detail = f", {err.detail}" if err.detail and not err._formatted() else ""
                raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {err.reject_string}{detail}")
            return {"hash": hash_to_hex(block.hash)}
        return {"hash": hash_to_hex(block.hash), "hex": block.serialize().hex()}

    async def m_submitblock(self, hexdata, dummy=None) -> str | None:
        """submitblock "hexdata" ( "dummy" )
Attempts to submit a new block to the network. Returns null when it is valid and now the tip,
otherwise a BIP22 result as Core gives it: "duplicate", "duplicate-invalid", "inconclusive"
(valid so far but not on the best chain), "prev-blk-not-found", or the reject reason."""
        try:
            block = Block.from_bytes(bytes.fromhex(_str(hexdata, "hexdata")))
        except (ValueError, DecodeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        known, parent = await self._w(lambda: (self._cs().get_entry(block.hash),
                                               self._cs().get_entry(block.header.prev_hash)))
        if known is not None:  # Core submitblock looks the hash up before ProcessNewBlock
            if known.failed:
                return "duplicate-invalid"
            if known.status & BlockStatus.VALID_SCRIPTS:   # Core IsValid(BLOCK_VALID_SCRIPTS)
                return "duplicate"
        if parent is None:  # Core keeps no block whose parent it lacks (AcceptBlockHeader)
            return "prev-blk-not-found"
        parent_failed = parent.failed
        res = await self.node.service.submit_block(block)  # Core submitblock + BIP22ValidationResult
        if res.status == "connected":
            return None
        if res.status in ("duplicate", "accepted"):
            return "duplicate" if res.status == "duplicate" else "inconclusive"
        if res.error is not None and res.error.reason == RejectReason.BAD_PREVBLK and not parent_failed:
            # stored, then an ancestor failed while the chain moved onto it: Core reports on the
            # submitted block only, which was never checked on its own
            return "inconclusive"
        return res.error.reject_string if res.error is not None else "rejected"

    def _network_hashps(self, nblocks: int = 120, height: int = -1) -> float:
        """Core `GetNetworkHashPS`: work over the last `nblocks` blocks (-1: since the last
        retarget) divided by the time they span, at the tip or at `height` (writer thread)."""
        cs = self._cs()
        if nblocks < -1 or nblocks == 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid nblocks. Must be a positive number or -1.")
        if height < -1 or height > cs.height:
            raise RPCError(RPC_INVALID_PARAMETER, "Block does not exist at specified height")
        pb = cs.tip if height == -1 else cs.get_entry(cs.get_block_hash(height))
        if pb is None or pb.height == 0:
            return 0
        if nblocks == -1:
            nblocks = pb.height % self._params.retarget_window + 1
        nblocks = min(nblocks, pb.height)
        pb0 = pb
        times = [pb.header.time]
        for _ in range(nblocks):
            pb0 = pb0.prev
            times.append(pb0.header.time)
        if min(times) == max(times):
            return 0
        return float(f"{(pb.chainwork - pb0.chainwork) / (max(times) - min(times)):.16g}")

    async def m_getnetworkhashps(self, nblocks=120, height=-1) -> float:
        """getnetworkhashps ( nblocks height )
Returns the estimated network hashes per second based on the last n blocks (-1: since the last
difficulty change), at the tip or at the given height."""
        n, h = _int(nblocks, "nblocks"), _int(height, "height")
        return await self._w(lambda: self._network_hashps(n, h))

    async def m_getmininginfo(self) -> dict:
        """getmininginfo
Returns a json object containing mining-related information."""
        miner = self.node.miner
        mp = self.node.mempool

        def work():
            cs = self._cs()
            tip = cs.tip
            next_time = max(cs.median_time_past(tip) + 1, int(time.time()))
            next_bits = cs.next_bits(tip, next_time)  # Core NextEmptyBlockIndex
            return {"blocks": tip.height, "bits": f"{tip.header.bits:08x}",
                    "difficulty": self._difficulty(tip.header.bits), "target": _target_hex(tip.header.bits),
                    "networkhashps": self._network_hashps(), "pooledtx": len(mp) if mp is not None else 0,
                    "chain": self._params.name,
                    "next": {"height": tip.height + 1, "bits": f"{next_bits:08x}",
                             "difficulty": self._difficulty(next_bits), "target": _target_hex(next_bits)},
                    "warnings": [],
                    "mining": bool(miner is not None and miner.running),
                    "hashespersec": miner.hashrate if miner is not None else 0.0,
                    "blocksfound": miner.blocks_found if miner is not None else 0,
                    "workers": miner.workers if miner is not None else 0}
        return await self._w(work)


def _output_script(output: Any, params) -> bytes:
    """generateblock's `output` (Core's `getScriptFromDescriptor`, then `DecodeDestination`): a
    descriptor `addr(ADDRESS)` or `raw(HEX)`, with or without its `#checksum`, or an address."""
    text = _str(output, "output")
    desc, sep, checksum = text.partition("#")
    try:
        if sep and descriptor_checksum(desc) != checksum:
            raise ValueError("bad checksum")
        if desc.startswith("raw(") and desc.endswith(")"):
            return bytes.fromhex(desc[4:-1])
        if desc.startswith("addr(") and desc.endswith(")"):
            return decode_address(desc[5:-1], params).script_pubkey
        if not sep:
            return decode_address(text, params).script_pubkey
    except ValueError:  # AddressError is a ValueError
        pass
    raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address or descriptor")


def _block_tx(item: str, mempool: Any) -> Tx:
    """One entry of generateblock's `transactions`: 64 hex digits name a mempool transaction,
    anything else is a raw transaction (Core's `uint256::FromHex`, then `DecodeHexTx`)."""
    txid = None
    if len(item) == 64:
        try:
            txid = hex_to_hash(item)
        except ValueError:
            txid = None
    if txid is not None:
        entry = mempool.get(txid) if mempool is not None else None
        if entry is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {item} not in mempool.")
        return entry.tx
    try:
        return Tx.from_hex(item)
    except (DecodeError, ValueError):
        raise RPCError(RPC_DESERIALIZATION_ERROR,
                       f"Transaction decode failed for {item}. Make sure the tx has at least one input.") from None
