"""Blockchain RPCs (Core's rpc/blockchain.cpp): the active chain, blocks and headers, chain tips,
the UTXO set (`gettxout`, `gettxoutsetinfo`), and `invalidateblock`/`reconsiderblock`. Argument
parsing and JSON over the chain state, read on the chain writer thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..consensus.block_checks import script_flags_for_height
from ..consensus.versionbits import deployments_for
from ..primitives.block import Block
from ..primitives.hashes import hash_to_hex
from ..script.flags import ScriptFlags
from .protocol import (
    RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_MISC_ERROR, RPC_TYPE_ERROR, RPCError,
)
from .util import (
    RPCArea, _bool, _hash, _int, _jtype, _script_pubkey_json, _str, _target_hex, amount_to_json,
)
from .rawtx import txindex_enabled
from ..chain.chainstate import MIN_BLOCKS_TO_KEEP, PRUNE_TARGET_MANUAL
from ..chain.progress import chain_tx_data_for, guess_verification_progress

log = logging.getLogger(__name__)

#: Core DeploymentInfo's buried deployments, in its order, with the ChainParams field holding
#: each height (the ones the block checks read; Core v31 regtest: bip34 1, bip66 1, bip65 1,
#: csv 1, segwit 0, moved by -testactivationheight).
_BURIED = (("bip34", "bip34_height"), ("bip66", "bip66_height"), ("bip65", "bip65_height"),
           ("csv", "csv_height"), ("segwit", "segwit_height"))


def script_flag_names(flags: int) -> list[str]:
    """Core `GetScriptFlagNames`: the names of the set flags in the order of Core's name map
    (a std::map, so alphabetical), unknown leftover bits as one 0x%08x."""
    names = []
    left = int(flags)
    for name in sorted(f.name for f in ScriptFlags if f.value and f.name):
        bit = ScriptFlags[name].value
        if flags & bit:
            names.append(name)
            left &= ~bit
    if left:
        names.append(f"0x{left:08x}")
    return names


#: Core TIMESTAMP_WINDOW: pruneblockchain by time keeps blocks up to 2 h older than asked
TIMESTAMP_WINDOW = 2 * 60 * 60


def _prune_info(cs: Any) -> dict:
    """getblockchaininfo's pruning fields as Core: "pruned", and in prune mode "pruneheight"
    (the first block not pruned), "automatic_pruning" and, when automatic,
    "prune_target_size" in bytes."""
    if not cs.prune_mode:
        return {"pruned": False}
    last = cs.prune_height()
    out: dict = {"pruned": True, "pruneheight": 0 if last is None else last + 1}
    automatic = cs.prune_target != PRUNE_TARGET_MANUAL
    out["automatic_pruning"] = automatic
    if automatic:
        out["prune_target_size"] = cs.prune_target
    return out


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
                "verificationprogress": self._verification_progress(cs, tip),
                "initialblockdownload": self.node.in_ibd(), "chainwork": f"{tip.chainwork:064x}",
                "size_on_disk": self.node.size_on_disk(), "warnings": [],
                **_prune_info(cs),
            }
        return await self._w(work)

    def _verification_progress(self, cs: Any, entry: Any) -> float:
        """Core `GuessVerificationProgress(pindex)` for `entry` at the node's clock."""
        return guess_verification_progress(
            self._chain_tx_count(entry), entry.header.time, entry.height, cs.best_header.height,
            self.node.clock.seconds(), self._params.pow_target_spacing,
            chain_tx_data_for(self._params.name))

    # --- waiting for blocks (Core's waitfornewblock / waitforblock / waitforblockheight) ------
    def _tip_ref(self) -> dict:
        snap = self.node.writer.snapshot
        return {"hash": hash_to_hex(snap.tip_hash), "height": snap.height}

    async def _wait_tip(self, done, timeout_ms: int) -> dict:
        """Core's loop over `Mining::waitTipChanged`: wait until `done(tip_hash, height)` holds
        for the tip, `timeout_ms` passes (0: no limit) or the node stops; return the tip then."""
        if timeout_ms < 0:
            raise RPCError(RPC_MISC_ERROR, "Negative timeout")
        changed = asyncio.Event()

        def on_event(_ev: Any) -> None:
            changed.set()
        service = self.node.service
        service.subscribe_async(on_event)
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        try:
            while self.node.rpc is not None:   # Core: return the current block on shutdown
                snap = self.node.writer.snapshot
                if done(snap.tip_hash, snap.height):
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                changed.clear()
                if done(*self._snap_pair()):
                    break
                try:   # at most a second: the snapshot may move just after the event
                    await asyncio.wait_for(changed.wait(), timeout=1.0 if left is None else min(left, 1.0))
                except TimeoutError:
                    pass
        finally:
            service.unsubscribe_async(on_event)
        return self._tip_ref()

    def _snap_pair(self) -> tuple[bytes, int]:
        snap = self.node.writer.snapshot
        return snap.tip_hash, snap.height

    async def m_waitfornewblock(self, timeout=0, current_tip=None) -> dict:
        """waitfornewblock ( timeout "current_tip" )
Waits for any new block (a tip other than current_tip, default the tip at the call) and returns
its hash and height; the current block on timeout (milliseconds, 0: none) or exit."""
        t = _int(timeout, "timeout")
        if t < 0:
            raise RPCError(RPC_MISC_ERROR, "Negative timeout")
        start = self.node.writer.snapshot.tip_hash if current_tip is None else _hash(current_tip, "current_tip")
        return await self._wait_tip(lambda h, _height: h != start, t)

    async def m_waitforblock(self, blockhash, timeout=0) -> dict:
        """waitforblock "blockhash" ( timeout )
Waits for a specific block to be the tip and returns its hash and height; the current block on
timeout (milliseconds, 0: none) or exit."""
        want = _hash(blockhash, "blockhash")
        t = _int(timeout, "timeout")
        return await self._wait_tip(lambda h, _height: h == want, t)

    async def m_waitforblockheight(self, height, timeout=0) -> dict:
        """waitforblockheight height ( timeout )
Waits for (at least) block height and returns the height and hash of the current tip; the
current block on timeout (milliseconds, 0: none) or exit."""
        want = _int(height, "height")
        t = _int(timeout, "timeout")
        return await self._wait_tip(lambda _h, ht: ht >= want, t)

    async def m_verifychain(self, checklevel=None, nblocks=None) -> bool:
        """verifychain ( checklevel nblocks )
Verifies blockchain database. checklevel (0-4, default 3): how thorough; nblocks (default 6,
0=all): the number of blocks to check. Returns true when verified (false: a problem was found,
or a pruned node lacks the blocks)."""
        from ..chain.verify import DEFAULT_CHECKBLOCKS, DEFAULT_CHECKLEVEL, VerifyDBResult, verify_db
        level = DEFAULT_CHECKLEVEL if checklevel is None else _int(checklevel, "checklevel")
        depth = DEFAULT_CHECKBLOCKS if nblocks is None else _int(nblocks, "nblocks")

        def work():
            return verify_db(self._cs(), level, depth) is VerifyDBResult.SUCCESS
        return await self._w(work)

    async def m_pruneblockchain(self, height) -> int:
        """pruneblockchain height
Attempts to delete block and undo data up to a specified height or timestamp, if eligible for
pruning. Requires --prune at startup; the last 288 blocks are always kept. Returns the height of
the last block pruned (-1 when none is)."""
        h = _int(height, "height")

        def work():
            cs = self._cs()
            if not cs.prune_mode:
                raise RPCError(RPC_MISC_ERROR, "Cannot prune blocks because node is not in prune mode.")
            target = h
            if target < 0:
                raise RPCError(RPC_INVALID_PARAMETER, "Negative block height.")
            if target > 1_000_000_000:    # a timestamp: the earliest block at least 2 h before it
                t = target - TIMESTAMP_WINDOW
                found = next((cs.active[i] for i in range(cs.height + 1)
                              if cs.active[i].header.time >= t), None)
                if found is None:
                    raise RPCError(RPC_INVALID_PARAMETER,
                                   "Could not find block with at least the specified timestamp.")
                target = found.height
            chain_height = cs.height
            if chain_height < cs.prune_after_height:
                raise RPCError(RPC_MISC_ERROR, "Blockchain is too short for pruning.")
            if target > chain_height:
                raise RPCError(RPC_INVALID_PARAMETER,
                               "Blockchain is shorter than the attempted prune height.")
            target = min(target, chain_height - MIN_BLOCKS_TO_KEEP)
            cs.prune_to(target)
            got = cs.prune_height()
            return -1 if got is None else got
        return await self._w(work)

    async def m_getdeploymentinfo(self, blockhash=None) -> dict:
        """getdeploymentinfo ( "blockhash" )
Returns an object containing various state info regarding deployments of consensus changes.
Consensus changes for which the new rules are enforced from genesis are not listed in
"deployments" (on tinynode: P2SH, and taproot, enforced on every block as Core's
GetBlockScriptFlags). The BIP9 deployments follow the buried ones (regtest: Core's
"testdummy", which no rule depends on)."""
        bh = _hash(blockhash, "blockhash") if blockhash is not None else None

        def work():
            cs = self._cs()
            entry = cs.tip if bh is None else cs.get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            # Core SoftForkDescPushBack: "active" from the block before the activation height
            # (DeploymentActiveAfter), "height" the buried height
            deployments = {}
            for name, field in _BURIED:
                height = getattr(self._params, field)
                deployments[name] = {"type": "buried", "active": entry.height + 1 >= height, "height": height}
            vb = self.node.service.versionbits   # then the BIP9 ones (regtest: testdummy)
            for dep in deployments_for(self._params):
                deployments[dep.name] = vb.deployment_json(entry, dep)
            return {"hash": hash_to_hex(entry.hash), "height": entry.height,
                    "script_flags": script_flag_names(script_flags_for_height(entry.height, self._params)),
                    "deployments": deployments}
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
        if verbosity is not None and not isinstance(verbosity, (int, float)):
            # Core ParseVerbosity: a number (or a bool), never a string
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(verbosity)} is not of expected type number")
        v = 1 if verbosity is None else _int(verbosity, "verbosity")

        def work():
            cs = self._cs()
            entry = cs.get_entry(bh)
            if entry is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            block = self._block_checked(entry)
            if v <= 0:
                return block.serialize().hex()
            return self._block_to_json(block, entry, v)
        return await self._w(work)

    def _block_checked(self, entry: Any) -> Any:
        """Core `GetBlockChecked` (CheckBlockDataAvailability, then the read): the block's
        body, or Core's RPC_MISC_ERROR for pruned / never downloaded data."""
        cs = self._cs()
        raw = cs.read_block_bytes(entry.hash)   # from the files, as Core reads it each time
        block = Block.from_bytes(raw) if raw is not None else None
        if block is None:
            if cs.is_block_pruned(entry):
                raise RPCError(RPC_MISC_ERROR, "Block not available (pruned data)")
            if not entry.have_data:
                raise RPCError(RPC_MISC_ERROR, "Block not available (not fully downloaded)")
            raise RPCError(RPC_MISC_ERROR, "Block not found on disk")
        return block

    def _undo_checked(self, block: Any, entry: Any) -> list:
        """Core `GetUndoChecked`: the coins each non-coinbase tx spent (none for genesis);
        "Undo data not available" (with "(pruned data)" when pruned) for a block without undo
        (never connected; a block disconnected by a reorg keeps its record, as Core's
        BLOCK_HAVE_UNDO), "Can't read undo data from disk" when it has undo that cannot be
        read."""
        if entry.height == 0:
            return []
        have_undo, spent = self._block_undo(block, entry)
        if not have_undo:
            if self._cs().is_block_pruned(entry):
                raise RPCError(RPC_MISC_ERROR, "Undo data not available (pruned data)")
            raise RPCError(RPC_MISC_ERROR, "Undo data not available")
        if spent is None:
            raise RPCError(RPC_MISC_ERROR, "Can't read undo data from disk")
        return spent

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
(Core's legacy UTXO-set hash, the same value Core computes for the same set), 'muhash' (Core's
MuHash3072 of the set) or 'none'. disk_size: the bytes of the coins' database pages."""
        if hash_type not in ("hash_serialized_3", "muhash", "none"):
            raise RPCError(RPC_INVALID_PARAMETER, f"'{hash_type}' is not a valid hash_type")

        def work():
            cs = self._cs()
            st = cs.utxo_stats(with_hash=hash_type == "hash_serialized_3",
                               with_muhash=hash_type == "muhash")
            res = {"height": cs.height, "bestblock": hash_to_hex(cs.tip.hash), "txouts": st.txouts,
                   "bogosize": st.bogosize}
            if st.hash_serialized is not None:
                res["hash_serialized_3"] = hash_to_hex(st.hash_serialized)
            if st.muhash is not None:
                res["muhash"] = hash_to_hex(st.muhash)
            res.update({"total_amount": amount_to_json(st.total_amount), "transactions": st.transactions,
                        "disk_size": st.disk_size})
            return res
        return await self._w(work)

    async def m_scantxoutset(self, action, scanobjects=None) -> Any:
        """scantxoutset "action" ( [scanobjects,...] )
Scans the unspent transaction output set for entries that match certain output descriptors.
action: "start" (scan, returns after it completes), "abort", "status".
scanobjects: descriptors, each a string or {"desc": ..., "range": ...}: raw(HEX), addr(ADDRESS),
pk/pkh/wpkh/combo(KEY), sh(wpkh(KEY)), tr(KEY), rawtr(KEY), with fixed keys (hex public keys or
WIF), the #checksum optional. Result as Core's: success, txouts, height, bestblock, unspents
[{txid, vout, scriptPubKey, desc, amount, coinbase, height, blockhash, confirmations}],
total_amount."""
        act = _str(action, "action")
        scan = getattr(self, "_scan_state", None)
        if act == "status":
            return None if scan is None else {"progress": 0}
        if act == "abort":
            if scan is None:
                return False
            scan["abort"] = True
            return True
        if act != "start":
            raise RPCError(RPC_INVALID_PARAMETER, f"Invalid action '{act}'")
        if scan is not None:
            raise RPCError(RPC_INVALID_PARAMETER, 'Scan already in progress, use action "abort" or "status"')
        if scanobjects is None:
            raise RPCError(RPC_MISC_ERROR, "scanobjects argument is required for the start action")
        if not isinstance(scanobjects, list):
            raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(scanobjects)} is not of expected type array")
        needles: dict[bytes, str] = {}
        for obj in scanobjects:
            for spk, desc in self._scan_object_scripts(obj):
                needles.setdefault(spk, desc)
        state = {"abort": False}
        self._scan_state = state

        def work():
            cs = self._cs()
            if state["abort"]:
                return False, 0, cs.tip, []
            found = []
            for spk in needles:
                found.extend(cs.coins_for_script(spk))
            # Core's result is a std::map<COutPoint, Coin>: ordered by the txid's bytes, then n
            found.sort(key=lambda oc: (bytes(oc[0].txid), oc[0].n))
            tip = cs.tip
            rows = [(op, coin, cs.get_block_hash(coin.height)) for op, coin in found]
            return True, cs.coin_count(), tip, rows
        try:
            ok, count, tip, rows = await self._w(work)
        finally:
            self._scan_state = None
        unspents = []
        total = 0
        for op, coin, block_hash in rows:
            total += coin.value
            unspents.append({
                "txid": hash_to_hex(op.txid), "vout": op.n, "scriptPubKey": coin.script_pubkey.hex(),
                "desc": needles[bytes(coin.script_pubkey)], "amount": amount_to_json(coin.value),
                "coinbase": coin.is_coinbase, "height": coin.height,
                "blockhash": hash_to_hex(block_hash) if block_hash is not None else None,
                "confirmations": tip.height - coin.height + 1})
        return {"success": ok, "txouts": count, "height": tip.height, "bestblock": hash_to_hex(tip.hash),
                "unspents": unspents, "total_amount": amount_to_json(total)}

    def _scan_object_scripts(self, obj: Any) -> list[tuple[bytes, str]]:
        """Core `EvalDescriptorStringOrObject` for fixed-key descriptors: (script, desc) pairs."""
        from ..script.scan_descriptor import DescriptorError, expand_descriptor
        if isinstance(obj, str):
            text = obj
        elif isinstance(obj, dict):
            if obj.get("desc") is None:
                raise RPCError(RPC_INVALID_PARAMETER, "Descriptor needs to be provided in scan object")
            text = _str(obj["desc"], "desc")
        else:
            raise RPCError(RPC_INVALID_PARAMETER, "Scan object needs to be either a string or an object")
        try:
            return [(e.script_pubkey, e.desc) for e in expand_descriptor(text, self._params)]
        except DescriptorError as e:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(e)) from None

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

    # --- indexes and statistics (Core rpc/node.cpp getindexinfo, rpc/blockchain.cpp) -----------

    async def m_getindexinfo(self, index_name=None) -> dict:
        """getindexinfo ( "index_name" )
Returns the status of one or all available indices currently running in the node.
tinynode keeps Core's "txindex" (txid -> block), listed (and used by getrawtransaction and REST
/tx) with --txindex as Core's -txindex, and with --txospenderindex Core's "txospenderindex"
(spent output -> spending tx); both are written in the same store transaction as each block
they index, so they are always synced to the tip."""
        name = _str(index_name, "index_name") if index_name is not None else ""
        height = self.node.writer.snapshot.height
        indexes = {}                         # Core lists the running indexes in this order
        if txindex_enabled(self.node):       # without --txindex, as Core without -txindex
            indexes["txindex"] = {"synced": True, "best_block_height": height}
        if self._cs().txospenderindex:
            indexes["txospenderindex"] = {"synced": True, "best_block_height": height}
        if name:                             # Core's SummaryToJSON: other names give nothing
            return {name: indexes[name]} if name in indexes else {}
        return indexes

    async def m_getchaintxstats(self, nblocks=None, blockhash=None) -> dict:
        """getchaintxstats ( nblocks "blockhash" )
Compute statistics about the total number and rate of transactions in the chain.
nblocks: size of the window in blocks (default: one month of blocks); blockhash: the block
that ends the window (default: the chain tip)."""
        bh = _hash(blockhash, "blockhash") if blockhash is not None else None
        count_arg = _int(nblocks, "nblocks") if nblocks is not None else None

        def work():
            cs = self._cs()
            if bh is None:
                entry = cs.tip
            else:
                entry = cs.get_entry(bh)
                if entry is None:
                    raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
                if cs.get_block_hash(entry.height) != entry.hash:
                    raise RPCError(RPC_INVALID_PARAMETER, "Block is not in main chain")
            if count_arg is None:    # Core: one month of blocks, at most the block's height - 1
                blockcount = 30 * 24 * 60 * 60 // self._params.pow_target_spacing
                blockcount = max(0, min(blockcount, entry.height - 1))
            else:
                blockcount = count_arg
                if blockcount < 0 or (blockcount > 0 and blockcount >= entry.height):
                    raise RPCError(RPC_INVALID_PARAMETER,
                                   "Invalid block count: should be between 0 and the block's height - 1")
            past = cs.get_ancestor(entry, entry.height - blockcount)
            time_diff = cs.median_time_past(entry) - cs.median_time_past(past)
            txcount = self._chain_tx_count(entry)
            res: dict[str, Any] = {"time": entry.header.time, "txcount": txcount,
                                   "window_final_block_hash": hash_to_hex(entry.hash),
                                   "window_final_block_height": entry.height,
                                   "window_block_count": blockcount}
            if blockcount > 0:
                res["window_interval"] = time_diff
                window_tx_count = txcount - self._chain_tx_count(past)
                res["window_tx_count"] = window_tx_count
                if time_diff > 0:
                    res["txrate"] = float(f"{window_tx_count / time_diff:.16g}")
            return res
        return await self._w(work)

    def _chain_tx_count(self, entry) -> int:
        """Core's `CBlockIndex::m_chain_tx_count`: txs in the chain up to and including `entry`.
        Counted once per block from the stored block's tx count and remembered per block hash
        (a block's count depends only on its ancestors, so reorgs never invalidate it)."""
        memo: dict[bytes, int] | None = getattr(self, "_chain_tx_memo", None)
        if memo is None:
            memo = self._chain_tx_memo = {}
        path = []
        e = entry
        while e is not None and e.hash not in memo:   # bounded by the entry's height
            path.append(e)
            e = e.prev
        total = memo[e.hash] if e is not None else 0
        for e in reversed(path):
            total += self._block_tx_count(e.hash)
            memo[e.hash] = total
        return total

    def _block_tx_count(self, block_hash: bytes) -> int:
        from ..primitives.serialize import ByteReader
        cs = self._cs()
        raw = cs.read_block_bytes(block_hash)
        if raw is None:
            block = cs.get_block(block_hash)
            return len(block.txs) if block is not None else 0
        return ByteReader(raw[80:89]).compact_size()

    async def m_getblockstats(self, hash_or_height, stats=None) -> dict:
        """getblockstats hash_or_height ( stats )
Compute per block statistics for a given window. All amounts are in satoshis.
stats: the names of the values to return (default: all of them), as Core's: avgfee,
avgfeerate, avgtxsize, blockhash, feerate_percentiles, height, ins, maxfee, maxfeerate,
maxtxsize, medianfee, mediantime, mediantxsize, minfee, minfeerate, mintxsize, outs, subsidy,
swtotal_size, swtotal_weight, swtxs, time, total_out, total_size, total_weight, totalfee, txs,
utxo_increase, utxo_size_inc, utxo_increase_actual, utxo_size_inc_actual. Fees come from the
block's undo record (the coins its txs spent)."""
        if isinstance(hash_or_height, (int, float)) and not isinstance(hash_or_height, bool):
            height = _int(hash_or_height, "hash_or_height")
            bh = None
        else:
            height, bh = None, _hash(hash_or_height, "hash_or_height")
        selected: list[str] = []
        if stats is not None:
            if not isinstance(stats, list):
                raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(stats)} is not of expected type array")
            selected = sorted({_str(s, "stats") for s in stats})   # Core iterates a std::set

        def work():
            cs = self._cs()
            if bh is None:
                if height < 0:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Target block height {height} is negative")
                if height > cs.height:
                    raise RPCError(RPC_INVALID_PARAMETER,
                                   f"Target block height {height} after current tip {cs.height}")
                entry = cs.get_entry(cs.get_block_hash(height))
            else:
                entry = cs.get_entry(bh)
                if entry is None:
                    raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            block = self._block_checked(entry)
            spent = self._undo_checked(block, entry)
            return block_stats(block, entry.height, entry.hash, entry.header.time,
                               cs.median_time_past(entry), spent, self._params.block_subsidy(entry.height))
        all_stats = await self._w(work)
        if not selected:
            return all_stats
        out = {}
        for name in selected:
            if name not in all_stats:
                raise RPCError(RPC_INVALID_PARAMETER, f"Invalid selected statistic '{name}'")
            out[name] = all_stats[name]
        return out


#: Core's PER_UTXO_OVERHEAD: a COutPoint (36 bytes) and the height/coinbase word (4)
PER_UTXO_OVERHEAD = 36 + 4
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000


def _txout_size(value_unused: int, script_pubkey: bytes) -> int:
    """`GetSerializeSize(CTxOut)`: the 8-byte value and the length-prefixed script."""
    from ..primitives.serialize import ser_compact_size
    return 8 + len(ser_compact_size(len(script_pubkey))) + len(script_pubkey)


def _tx_size_weight(tx) -> tuple[int, int, bool]:
    """(total size with witness, weight, has witness), as Core's getblockstats reads them."""
    return tx.size, tx.weight, tx.has_witness()


def _truncated_median(values: list[int]) -> int:
    """Core `CalculateTruncatedMedian` (integer mean of the middle two)."""
    if not values:
        return 0
    v = sorted(values)
    n = len(v)
    return (v[n // 2 - 1] + v[n // 2]) // 2 if n % 2 == 0 else v[n // 2]


def _percentiles_by_weight(scores: list[tuple[int, int]], total_weight: int) -> list[int]:
    """Core `CalculatePercentilesByWeight`: the 10/25/50/75/90th percentile feerates by weight."""
    result = [0] * 5
    if not scores:
        return result
    scores = sorted(scores)
    marks = (total_weight / 10.0, total_weight / 4.0, total_weight / 2.0,
             (total_weight * 3.0) / 4.0, (total_weight * 9.0) / 10.0)
    i, cumulative = 0, 0
    for rate, weight in scores:
        cumulative += weight
        while i < 5 and cumulative >= marks[i]:
            result[i] = rate
            i += 1
    for j in range(i, 5):
        result[j] = scores[-1][0]
    return result


def _cdiv(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def block_stats(block, height: int, block_hash: bytes, time: int, mediantime: int,
                spent: list[list], subsidy: int) -> dict:
    """Core `getblockstats`' values for one block; `spent` holds the coins each non-coinbase tx
    spent (its undo record). Amounts in satoshis, feerates in sat/vB, as Core. Core's BIP30
    repeat exception (two mainnet coinbases) does not arise on tinynode's networks."""
    max_money = 21_000_000 * 100_000_000
    maxfee = maxfeerate = total_out = totalfee = inputs = outputs = 0
    minfee = minfeerate = max_money
    maxtxsize, mintxsize = 0, MAX_BLOCK_SERIALIZED_SIZE
    swtotal_size = swtotal_weight = swtxs = total_size = total_weight = 0
    utxos = utxo_size_inc = utxo_size_inc_actual = 0
    fees: list[int] = []
    feerates: list[tuple[int, int]] = []
    sizes: list[int] = []
    for i, tx in enumerate(block.txs):
        outputs += len(tx.vout)
        tx_total_out = 0
        for out in tx.vout:
            tx_total_out += out.value
            out_size = _txout_size(out.value, out.script_pubkey) + PER_UTXO_OVERHEAD
            utxo_size_inc += out_size
            if height == 0:
                continue
            spk = out.script_pubkey
            if spk[:1] == b"\x6a" or len(spk) > 10_000:     # IsUnspendable: not in the UTXO set
                continue
            utxos += 1
            utxo_size_inc_actual += out_size
        if i == 0:
            continue
        inputs += len(tx.vin)
        total_out += tx_total_out
        size, weight, has_witness = _tx_size_weight(tx)
        sizes.append(size)
        maxtxsize, mintxsize = max(maxtxsize, size), min(mintxsize, size)
        total_size += size
        total_weight += weight
        if has_witness:
            swtxs += 1
            swtotal_size += size
            swtotal_weight += weight
        tx_total_in = 0
        for coin in spent[i - 1]:
            tx_total_in += coin.value
            prev_size = _txout_size(coin.value, coin.script_pubkey) + PER_UTXO_OVERHEAD
            utxo_size_inc -= prev_size
            utxo_size_inc_actual -= prev_size
        fee = tx_total_in - tx_total_out
        fees.append(fee)
        maxfee, minfee = max(maxfee, fee), min(minfee, fee)
        totalfee += fee
        feerate = _cdiv(fee * 4, weight) if weight else 0
        feerates.append((feerate, weight))
        maxfeerate, minfeerate = max(maxfeerate, feerate), min(minfeerate, feerate)
    n = len(block.txs)
    return {
        "avgfee": _cdiv(totalfee, n - 1) if n > 1 else 0,
        "avgfeerate": _cdiv(totalfee * 4, total_weight) if total_weight else 0,
        "avgtxsize": _cdiv(total_size, n - 1) if n > 1 else 0,
        "blockhash": hash_to_hex(block_hash),
        "feerate_percentiles": _percentiles_by_weight(feerates, total_weight),
        "height": height, "ins": inputs, "maxfee": maxfee, "maxfeerate": maxfeerate,
        "maxtxsize": maxtxsize, "medianfee": _truncated_median(fees), "mediantime": mediantime,
        "mediantxsize": _truncated_median(sizes),
        "minfee": 0 if minfee == max_money else minfee,
        "minfeerate": 0 if minfeerate == max_money else minfeerate,
        "mintxsize": 0 if mintxsize == MAX_BLOCK_SERIALIZED_SIZE else mintxsize,
        "outs": outputs, "subsidy": subsidy, "swtotal_size": swtotal_size,
        "swtotal_weight": swtotal_weight, "swtxs": swtxs, "time": time, "total_out": total_out,
        "total_size": total_size, "total_weight": total_weight, "totalfee": totalfee, "txs": n,
        "utxo_increase": outputs - inputs, "utxo_size_inc": utxo_size_inc,
        "utxo_increase_actual": utxos - inputs, "utxo_size_inc_actual": utxo_size_inc_actual,
    }
