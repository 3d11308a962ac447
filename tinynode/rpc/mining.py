"""Mining RPCs (Core's rpc/mining.cpp): `generatetoaddress`, `generateblock`, `submitblock`,
`getmininginfo`, `getnetworkhashps`. Argument parsing and JSON over the miner and the chain writer.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..consensus.errors import RejectReason
from ..primitives.address import AddressError, decode_address
from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import DecodeError
from ..primitives.tx import Tx
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
Mine a block with exactly the given transactions (mempool txids or raw hex), in that order."""
        from ..mining.template import make_coinbase
        from ..mining.worker import grind
        from ..primitives.block import BlockHeader, bits_to_target, merkle_root
        spk = self._decode_address(output)
        if not isinstance(transactions, list):
            raise RPCError(RPC_TYPE_ERROR, "transactions must be an array")
        do_submit = _bool(submit, "submit")

        def build():
            cs, mp = self._cs(), self.node.mempool
            txs = []
            for item in transactions:
                s_item = _str(item, "transaction")
                tx = None
                if len(s_item) == 64:
                    try:
                        t = hex_to_hash(s_item)
                    except ValueError:
                        t = None
                    e = mp.get(t) if (mp is not None and t is not None) else None
                    if e is None:
                        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {s_item} not in mempool.")
                    tx = e.tx
                else:
                    try:
                        tx = Tx.from_hex(s_item)
                    except DecodeError:
                        raise RPCError(RPC_DESERIALIZATION_ERROR, f"Transaction decode failed for {s_item}") from None
                txs.append(tx)
            fees = 0
            spent: dict = {}
            for tx in txs:
                total_in = 0
                for txin in tx.vin:
                    v = spent.get(txin.prevout)
                    if v is None:
                        coin = cs.get_coin(txin.prevout)
                        v = coin.value if coin is not None else 0
                    total_in += v
                for n, o in enumerate(tx.vout):
                    from ..primitives.tx import OutPoint
                    spent[OutPoint(tx.txid, n)] = o.value
                fees += max(0, total_in - sum(o.value for o in tx.vout))
            tip = cs.tip
            height = tip.height + 1
            now = max(int(time.time()), cs.median_time_past(tip) + 1)
            bits = cs.next_bits(tip, now)
            cb = make_coinbase(height, self._params.block_subsidy(height) + fees, spk)
            all_txs = (cb,) + tuple(txs)
            root, _ = merkle_root([t.txid for t in all_txs])
            return BlockHeader(4, tip.hash, root, now, bits, 0), all_txs
        header, all_txs = await self._w(build)
        target = bits_to_target(header.bits)[0]
        h76 = header.serialize()[:76]
        nonce, start = None, 0
        while nonce is None:
            if start > 0xFFFFFFFF:
                raise RPCError(RPC_MISC_ERROR, "nonce space exhausted; try again")
            nonce = await asyncio.to_thread(grind, h76, target, start, 1 << 20)
            start += 1 << 20
        from dataclasses import replace as dc_replace
        block = Block(dc_replace(header, nonce=nonce), all_txs)
        if do_submit:
            res = await self.node.writer.submit_block(block)
            if not res.ok:
                raise RPCError(RPC_VERIFY_ERROR, f"generateblock: block rejected: {res.error}")
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
        parent = await self._w(lambda: self._cs().get_entry(block.header.prev_hash))
        if parent is None:  # Core keeps no block whose parent it lacks (AcceptBlockHeader)
            return "prev-blk-not-found"
        parent_failed = parent.failed
        res = await self.node.writer.submit_block(block)  # Core submitblock + BIP22ValidationResult
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
