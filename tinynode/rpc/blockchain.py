"""Blockchain RPCs (Core's rpc/blockchain.cpp): the active chain, blocks and headers, chain tips,
the UTXO set (`gettxout`, `gettxoutsetinfo`), and `invalidateblock`/`reconsiderblock`. Argument
parsing and JSON over the chain state, read on the chain writer thread.
"""

from __future__ import annotations

import logging
from typing import Any

from ..primitives.hashes import hash_to_hex
from .protocol import RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_MISC_ERROR, RPCError
from .util import RPCArea, _bool, _hash, _int, _script_pubkey_json, _target_hex, amount_to_json

log = logging.getLogger(__name__)


class BlockchainRPC(RPCArea):
    """Blockchain methods: block, header, tip and UTXO-set queries; invalidate/reconsider."""

    async def m_getblockchaininfo(self) -> dict:
        """getblockchaininfo
Returns an object containing various state info regarding blockchain processing."""
        def work():
            cs = self._cs()
            tip, best = cs.tip, cs.best_header
            return {
                "chain": self._params.name, "blocks": tip.height, "headers": best.height,
                "bestblockhash": hash_to_hex(tip.hash), "bits": f"{tip.header.bits:08x}",
                "target": _target_hex(tip.header.bits), "difficulty": self._difficulty(tip.header.bits),
                "time": tip.header.time, "mediantime": cs.median_time_past(tip),
                "verificationprogress": 1.0 if best.height <= tip.height else tip.height / max(1, best.height),
                "initialblockdownload": self.node.in_ibd(), "chainwork": f"{tip.chainwork:064x}",
                "size_on_disk": self.node.size_on_disk(), "pruned": False, "warnings": [],
            }
        return await self._w(work)

    async def m_getblockcount(self) -> int:
        """getblockcount
Returns the height of the most-work fully-validated chain."""
        return self.node.writer.snapshot.height

    async def m_getbestblockhash(self) -> str:
        """getbestblockhash
Returns the hash of the best (tip) block in the most-work fully-validated chain."""
        return hash_to_hex(self.node.writer.snapshot.tip_hash)

    async def m_getblockhash(self, height) -> str:
        """getblockhash height
Returns hash of block in best-block-chain at height provided."""
        h = _int(height, "height")
        bh = await self._w(lambda: self._cs().get_block_hash(h) if 0 <= h <= self._cs().height else None)
        if bh is None:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return hash_to_hex(bh)

    async def m_getblock(self, blockhash, verbosity=1) -> Any:
        """getblock "blockhash" ( verbosity )
If verbosity is 0, returns a string that is serialized, hex-encoded data for block 'hash'.
If verbosity is 1, returns an Object with information about block <hash>.
If verbosity is 2, returns an Object with information about block <hash> and information about each transaction.
If verbosity is 3, also the coin each input spent ("prevout")."""
        bh = _hash(blockhash, "blockhash")
        if isinstance(verbosity, bool):
            verbosity = 1 if verbosity else 0
        v = _int(verbosity, "verbosity")

        def work():
            cs = self._cs()
            entry = cs.get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            block = cs.get_block(bh)
            if block is None:
                raise RPCError(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
            if v <= 0:
                return block.serialize().hex()
            return self._block_to_json(block, entry, v)
        return await self._w(work)

    async def m_getblockheader(self, blockhash, verbose=True) -> Any:
        """getblockheader "blockhash" ( verbose )
If verbose is false, returns a string that is serialized, hex-encoded data for blockheader 'hash'.
If verbose is true, returns an Object with information about blockheader <hash>."""
        bh = _hash(blockhash, "blockhash")
        v = _bool(verbose, "verbose")

        def work():
            entry = self._cs().get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            return self._header_json(entry) if v else entry.header.serialize().hex()
        return await self._w(work)

    async def m_getchaintips(self) -> list:
        """getchaintips
Return information about all known tips in the block tree, including the main chain as well as orphaned branches."""
        def work():
            cs = self._cs()
            out = []
            for entry, status in cs.chain_tips():
                e = entry
                while e is not None and cs.get_block_hash(e.height) != e.hash:
                    e = e.prev
                fork_h = e.height if e is not None else 0
                out.append({"height": entry.height, "hash": hash_to_hex(entry.hash),
                            "branchlen": entry.height - fork_h, "status": status})
            return out
        return await self._w(work)

    async def m_getdifficulty(self) -> float:
        """getdifficulty
Returns the proof-of-work difficulty as a multiple of the minimum difficulty."""
        return self._difficulty(self.node.writer.snapshot.tip_bits)

    async def m_gettxout(self, txid, n, include_mempool=True) -> Any:
        """gettxout "txid" n ( include_mempool )
Returns details about an unspent transaction output (null if spent or unknown)."""
        t = _hash(txid, "txid")
        vout = _int(n, "n")
        incl = _bool(include_mempool, "include_mempool")

        def work():
            from ..primitives.tx import OutPoint
            cs = self._cs()
            op = OutPoint(t, vout)
            mp = self.node.mempool
            if incl and mp is not None:
                coin = mp.get_coin(op)
                if coin is None:
                    return None
                conf = 0 if t in mp else cs.height - coin.height + 1
            else:
                coin = cs.get_coin(op)
                if coin is None:
                    return None
                conf = cs.height - coin.height + 1
            return {"bestblock": hash_to_hex(cs.tip.hash), "confirmations": conf,
                    "value": amount_to_json(coin.value),
                    "scriptPubKey": _script_pubkey_json(coin.script_pubkey, self._params),
                    "coinbase": coin.is_coinbase}
        return await self._w(work)

    async def m_gettxoutsetinfo(self, hash_type="hash_serialized_3") -> dict:
        """gettxoutsetinfo ( "hash_type" )
Returns statistics about the unspent transaction output set. hash_type: 'hash_serialized_3'
(Core's legacy UTXO-set hash, the same value Core computes for the same set) or 'none'."""
        if hash_type not in ("hash_serialized_3", "none"):
            raise RPCError(RPC_INVALID_PARAMETER, f"'{hash_type}' is not a valid hash_type")

        def work():
            cs = self._cs()
            st = cs.utxo_stats(with_hash=hash_type == "hash_serialized_3")
            res = {"height": cs.height, "bestblock": hash_to_hex(cs.tip.hash), "txouts": st.txouts,
                   "bogosize": st.bogosize}
            if st.hash_serialized is not None:
                res["hash_serialized_3"] = hash_to_hex(st.hash_serialized)
            res.update({"total_amount": amount_to_json(st.total_amount), "transactions": st.transactions,
                        "disk_size": self.node.size_on_disk()})
            return res
        return await self._w(work)

    async def m_invalidateblock(self, blockhash) -> None:
        """invalidateblock "blockhash"
Permanently marks a block as invalid, as if it violated a consensus rule."""
        bh = _hash(blockhash, "blockhash")

        def work():
            try:
                self._cs().invalidate_block(bh)
            except KeyError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found") from None
            except ValueError as e:
                raise RPCError(RPC_MISC_ERROR, str(e)) from None
        return await self._w(work)

    async def m_reconsiderblock(self, blockhash) -> None:
        """reconsiderblock "blockhash"
Removes invalidity status of a block, its ancestors and its descendants, reconsider them for activation."""
        bh = _hash(blockhash, "blockhash")

        def work():
            try:
                self._cs().reconsider_block(bh)
            except KeyError:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found") from None
        return await self._w(work)
