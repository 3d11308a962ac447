"""Mining RPCs (Core's rpc/mining.cpp): `getblocktemplate`, `generatetoaddress`, `generateblock`,
`submitblock`, `getmininginfo`, `getnetworkhashps`. Argument parsing and JSON over the miner and the chain writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from ..consensus.block_checks import check_block, witness_commitment_index
from ..consensus.errors import RejectReason
from ..consensus.versionbits import BIP9Deployment, ThresholdState, deployments_for
from ..mining.miner import MiningError
from ..mining.template import template_with_txs
from ..primitives.address import AddressError, decode_address
from ..chain.index import BlockStatus
from ..primitives.block import Block, BlockHeader
from ..consensus.errors import ValidationError
from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import DecodeError
from ..primitives.tx import Tx
from .protocol import (
    RPC_CLIENT_IN_INITIAL_DOWNLOAD, RPC_CLIENT_NOT_CONNECTED, RPC_DESERIALIZATION_ERROR, RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_MISC_ERROR,
    RPC_TYPE_ERROR, RPC_VERIFY_ERROR, RPCError,
)
from .util import RPCArea, _bool, _int, _jtype, _str, _target_hex, amount_to_json

log = logging.getLogger(__name__)

#: Core MAX_TIMEWARP (BIP94): GetMinimumTime lets the first block of a difficulty period be at
#: most this much older than its parent.
MAX_TIMEWARP = 600
#: Core MAX_BLOCK_SERIALIZED_SIZE, getblocktemplate's "sizelimit".
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
#: Networks where getblocktemplate needs no peers and no finished sync (Core `isTestChain()`:
#: every chain but main; tinynet is tinynode's live network, so it is held to main's rule).
_TEST_CHAINS = frozenset({"regtest", "testnet", "testnet4", "signet"})
#: Core's getblocktemplate long poll: transactions count after a minute, then every 10 s.
_LONGPOLL_FIRST_TX_CHECK = 60.0
_LONGPOLL_TX_CHECK = 10.0


class MiningRPC(RPCArea):
    """Mining methods."""

    async def m_getblocktemplate(self, template_request=None) -> Any:
        """getblocktemplate ( "template_request" )
If the request parameters include a 'mode' key, that is used to explicitly select between the
default 'template' request or a 'proposal'. It returns data needed to construct a block to work
on (BIP22, BIP23, BIP9, BIP145); the request must name the "segwit" rule.
A proposal ({"mode": "proposal", "data": HEX}) is checked as Core's TestBlockValidity (no proof
of work, nothing stored): null when valid, else the reject reason, "duplicate",
"duplicate-invalid" or "duplicate-inconclusive"."""
        mode = "template"
        lpval = None
        rules: set[str] = set()
        if template_request is not None:
            if not isinstance(template_request, dict):
                raise RPCError(RPC_TYPE_ERROR, "JSON value of type "
                               f"{_jtype(template_request)} is not of expected type object")
            modeval = template_request.get("mode")
            if isinstance(modeval, str):
                mode = modeval
            elif modeval is not None:
                raise RPCError(RPC_INVALID_PARAMETER, "Invalid mode")
            lpval = template_request.get("longpollid")
            if mode == "proposal":
                return await self._proposal(template_request.get("data"))
            client_rules = template_request.get("rules")
            if isinstance(client_rules, list):
                for r in client_rules:
                    if not isinstance(r, str):
                        raise RPCError(RPC_TYPE_ERROR, f"JSON value of type {_jtype(r)} is not of expected type string")
                    rules.add(r)
        if mode != "template":
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid mode")
        if self._params.name not in _TEST_CHAINS:
            cm = self.node.connman
            if cm is None or not cm.connected_peers():
                raise RPCError(RPC_CLIENT_NOT_CONNECTED, "tinynode is not connected!")
            if self.node.in_ibd():
                raise RPCError(RPC_CLIENT_IN_INITIAL_DOWNLOAD, "tinynode is in initial sync and waiting for blocks...")
        if lpval is not None:
            await self._longpoll(lpval)
        if "segwit" not in rules:
            raise RPCError(RPC_INVALID_PARAMETER, "getblocktemplate must be called with the segwit rule set "
                                                  "(call with {\"rules\": [\"segwit\"]})")
        return await self._w(self._template_json, int(self.node.clock()), frozenset(rules))

    async def _proposal(self, data: Any) -> str | None:
        """BIP23 block proposal: Core looks the hash up first, then runs TestBlockValidity
        (here the validation service's `test_block_validity`, on the chain writer thread)."""
        if not isinstance(data, str):
            raise RPCError(RPC_TYPE_ERROR, "Missing data String key for proposal")
        try:
            block = Block.from_bytes(bytes.fromhex(data))
        except (ValueError, DecodeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        known = await self._w(lambda: self._cs().get_entry(block.hash))
        if known is not None:
            if known.status & BlockStatus.VALID_SCRIPTS:
                return "duplicate"
            if known.failed:
                return "duplicate-invalid"
            return "duplicate-inconclusive"
        return await self.node.service.test_block_validity(block)

    def _longpoll_state(self) -> tuple[bytes, int]:
        mp = self.node.mempool
        return self.node.writer.snapshot.tip_hash, (mp.sequence if mp is not None else 0)

    async def _longpoll(self, lpval: Any) -> None:
        """BIP22 long polling as Core: `longpollid` is <tip hash><mempool update count>; answer
        when the tip differs from that hash at once, or when the pool changed (checked after a
        minute, then every 10 s). Ends with an error when the node stops."""
        if isinstance(lpval, str):
            watched = hex_to_hash(_hash_hex(lpval[:64], "longpollid"))
            digits = lpval[64:]
            seq = int(digits) if digits.isdigit() else 0
        else:
            watched, seq = self._longpoll_state()
        changed = asyncio.Event()

        def on_event(_ev: Any) -> None:
            changed.set()
        self.node.service.subscribe_async(on_event)
        try:
            wait = _LONGPOLL_FIRST_TX_CHECK
            deadline = time.monotonic() + wait
            while self.node.rpc is not None:   # Core IsRPCRunning()
                tip, cur_seq = self._longpoll_state()
                if tip != watched:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    if cur_seq != seq:
                        return
                    deadline = time.monotonic() + _LONGPOLL_TX_CHECK
                    continue
                changed.clear()
                try:
                    await asyncio.wait_for(changed.wait(), timeout=left)
                except TimeoutError:
                    pass
        finally:
            self.node.service.unsubscribe_async(on_event)
        raise RPCError(RPC_CLIENT_NOT_CONNECTED, "Shutting down")

    def _template_json(self, now: int, client_rules: frozenset[str] = frozenset()) -> dict:
        """Core getblocktemplate's answer from the validation service's template (Core
        `BlockAssembler::CreateNewBlock`), read with the pool's fee and sigop cost per tx in the
        same writer job. The template's coinbase pays to an empty script; only its value
        ("coinbasevalue") and its witness commitment output ("default_witness_commitment") are
        shown, as Core."""
        cs = self._cs()
        svc = self.node.service
        mp = self.node.mempool
        tip = cs.tip
        template = svc.template_now(b"", now)
        candidates = mp.mining_candidates() if mp is not None else {}
        block = template.block
        height = tip.height + 1
        pre_segwit = height < self._params.segwit_height
        mintime = cs.median_time_past(tip) + 1     # Core GetMinimumTime (BIP94 on every network)
        if height % self._params.retarget_window == 0:
            mintime = max(mintime, tip.header.time - MAX_TIMEWARP)
        curtime = max(mintime, now)                 # Core UpdateTime
        bits = template.header.bits
        index: dict[bytes, int] = {}
        txs = []
        for i, tx in enumerate(block.txs):
            index[tx.txid] = i
            if i == 0:
                continue
            c = candidates[tx.txid]
            sigops = c.sigops // 4 if pre_segwit else c.sigops
            txs.append({"data": tx.serialize().hex(), "txid": tx.txid_hex, "hash": hash_to_hex(tx.wtxid),
                        "depends": [index[txin.prevout.txid] for txin in tx.vin if txin.prevout.txid in index],
                        "fee": c.fee, "sigops": sigops, "weight": tx.weight})
        rules = ["csv"] if pre_segwit else ["csv", "!segwit", "taproot"]
        # Core: BIP9 deployments from GBTStatus; "!"-rules (none today) need the client's support
        version = template.header.version
        vbavailable: dict[str, int] = {}
        status = svc.versionbits.gbt_status(tip, deployments_for(self._params))
        for state in (ThresholdState.STARTED, ThresholdState.LOCKED_IN):
            for dep in status[state]:
                if state is ThresholdState.LOCKED_IN:
                    version |= dep.mask
                vbavailable[_gbt_rule(dep)] = dep.bit
                if not dep.gbt_optional_rule and dep.name not in client_rules:
                    version &= ~dep.mask
        for dep in status[ThresholdState.ACTIVE]:
            rules.append(_gbt_rule(dep))
            if not dep.gbt_optional_rule and dep.name not in client_rules:
                raise RPCError(RPC_INVALID_PARAMETER, f"Support for '{dep.name}' rule requires explicit client support")
        mp_seq = mp.sequence if mp is not None else 0
        out: dict[str, Any] = {
            "capabilities": ["proposal"], "version": version, "rules": rules,
            "vbavailable": vbavailable, "vbrequired": 0, "previousblockhash": hash_to_hex(tip.hash),
            "transactions": txs, "coinbaseaux": {}, "coinbasevalue": block.txs[0].vout[0].value,
            "longpollid": hash_to_hex(tip.hash) + str(mp_seq), "target": _target_hex(bits),
            "mintime": mintime, "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": self._params.max_block_sigops_cost // (4 if pre_segwit else 1),
            "sizelimit": MAX_BLOCK_SERIALIZED_SIZE // (4 if pre_segwit else 1),
        }
        if not pre_segwit:
            out["weightlimit"] = self._params.max_block_weight
        out.update({"curtime": curtime, "bits": f"{bits:08x}", "height": height})
        ci = witness_commitment_index(block)
        if ci is not None:
            out["default_witness_commitment"] = block.txs[0].vout[ci].script_pubkey.hex()
        return out

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

    async def m_generatetodescriptor(self, num_blocks, descriptor, maxtries=1000000) -> list:
        """generatetodescriptor num_blocks "descriptor" ( maxtries )
Mine to a specified descriptor and return the block hashes. The descriptor has fixed keys
(raw, addr, pk, pkh, wpkh, sh(wpkh), combo, tr, rawtr); combo mines to its P2WPKH script for a
compressed key, else to its P2PKH script, as Core."""
        n = _int(num_blocks, "num_blocks")
        _int(maxtries, "maxtries")
        spk = _descriptor_script(_str(descriptor, "descriptor"), self._params)
        if spk is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, self._desc_error(descriptor))
        if n < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "nblocks must be non-negative")
        if self.node.miner is None:
            raise RPCError(RPC_MISC_ERROR, "mining is not available")
        hashes = await self.node.miner.generate(n, spk)
        return [hash_to_hex(h) for h in hashes]

    def _desc_error(self, descriptor: str) -> str:
        from ..script.scan_descriptor import DescriptorError, expand_descriptor
        try:
            expand_descriptor(descriptor, self._params)
        except DescriptorError as e:
            return str(e)
        return "Invalid descriptor"

    async def m_submitheader(self, hexdata) -> None:
        """submitheader "hexdata"
Decode the given hexdata as a header and submit it as a candidate chain tip if valid.
Throws when the header is invalid."""
        text = _str(hexdata, "hexdata")
        try:
            raw = bytes.fromhex(text)
            if len(raw) < 80:
                raise ValueError("short")
            header = BlockHeader.from_bytes(raw[:80])   # Core DecodeHexBlockHeader
        except (ValueError, DecodeError):
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block header decode failed") from None
        parent = await self._w(lambda: self._cs().get_entry(header.prev_hash))
        if parent is None:
            raise RPCError(RPC_VERIFY_ERROR, f"Must submit previous header ({hash_to_hex(header.prev_hash)}) first")
        try:
            await self.node.service.submit_headers([header])   # Core ProcessNewBlockHeaders
        except ValidationError as err:
            raise RPCError(RPC_VERIFY_ERROR, err.reject_string) from None
        return None

    async def m_generateblock(self, output, transactions, submit=True) -> dict:
        """generateblock "output" ["rawtx/txid",...] ( submit )
Mine a block with exactly the given transactions (mempool txids or raw hex), in that order.
output is an address or a descriptor with fixed keys (addr(ADDRESS), raw(HEX), pk/pkh/wpkh/
sh(wpkh)/combo/tr/rawtr(KEY)), the #checksum optional. With submit false the block is
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
            svc = self.node.service
            opts = svc.assembler_options
            t = template_with_txs(self._cs(), txs, spk, int(self.node.clock()), params=self._params,
                                  version=opts.block_version if opts is not None else None,
                                  versionbits=svc.versionbits)
            # Core checks the block before grinding it (TestBlockValidity without proof of
            # work); a bad block is never mined, stored nor marked invalid
            err = self.node.service.test_block_validity_state_now(t.block)
            if err is not None:
                raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {err.state_string}")
            return t
        template = await self._w(build)
        try:
            block = await miner.solve(template)  # the miner's worker pool, not this process
        except MiningError:
            raise RPCError(RPC_MISC_ERROR, "Failed to make block.") from None
        if do_submit:
            res = await self.node.service.submit_block(block)
            if not res.ok:
                raise RPCError(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {res.error.state_string}")
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
        if parent is not None and parent.height + 1 >= self._params.segwit_height:
            block = _with_default_witness_nonce(block)   # Core UpdateUncommittedBlockStructures
        if known is not None or parent is None:
            # Core ProcessNewBlock runs CheckBlock (proof of work, merkle root, sizes, coinbase,
            # each tx) before AcceptBlock looks the block and its parent up
            try:
                await self._w(lambda: check_block(block, self._params))
            except ValidationError as err:
                return err.reject_string
        if known is not None:  # then AcceptBlockHeader: the hash is already known
            if known.failed:
                return "duplicate-invalid"
            if known.status & BlockStatus.VALID_SCRIPTS and known.have_data:   # Core IsValid(BLOCK_VALID_SCRIPTS)
                return "duplicate"
        # a connected block whose data was pruned is stored again (Core AcceptBlock with
        # fRequested); nothing is connected, so Core's BlockChecked never fires: "inconclusive"
        restoring = known is not None and bool(known.status & BlockStatus.VALID_SCRIPTS)
        if parent is None:  # Core keeps no block whose parent it lacks (AcceptBlockHeader)
            return "prev-blk-not-found"
        parent_failed = parent.failed
        res = await self.node.service.submit_block(block)  # Core submitblock + BIP22ValidationResult
        if res.status == "connected":
            return "inconclusive" if restoring else None
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
        _check_number_args((1, "nblocks", nblocks), (2, "height", height))
        n, h = _int(nblocks, "nblocks"), _int(height, "height")
        return await self._w(lambda: self._network_hashps(n, h))

    async def m_setgenerate(self, generate, genproclimit=None) -> None:
        """setgenerate generate ( genproclimit )
Switch continuous mining on or off while the node runs (Bitcoin Core's setgenerate, removed
from Core in v0.13; tinynode keeps it as its runtime mining switch). genproclimit: mining
processes (-1: the default, half the cores; 0: off). Mining pays --mine-to, else the default
wallet's stored mining address."""
        on = _bool(generate, "generate")
        miner = self.node.miner
        if miner is None:
            raise RPCError(RPC_MISC_ERROR, "mining is not available")
        if genproclimit is not None:
            limit = _int(genproclimit, "genproclimit")
            if limit == 0:
                on = False
            else:
                from ..config import default_workers
                await miner.set_workers(default_workers() if limit < 0 else limit)
        if not on:
            await miner.pause()
            return None
        payout = await self.node.mining_payout()
        if payout is None:
            raise RPCError(RPC_MISC_ERROR, "There is no wallet to mine to: load a wallet, or start "
                                           "tinynode with --mine-to ADDRESS")
        await miner.resume(payout)
        return None

    async def m_getmininginfo(self) -> dict:
        """getmininginfo
Returns a json object containing mining-related information."""
        miner = self.node.miner
        mp = self.node.mempool

        def work():
            cs = self._cs()
            tip = cs.tip
            next_time = max(cs.median_time_past(tip) + 1, int(self.node.clock()))
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
        out = await self._w(work)
        # Core: the last assembled block's weight and tx count (only once one was assembled),
        # and the assembler's -blockmintxfee
        svc = self.node.service
        stats = getattr(svc, "last_block_stats", None)
        if stats is not None:
            out["currentblockweight"], out["currentblocktx"] = stats
        opts = getattr(svc, "assembler_options", None)
        out["blockmintxfee"] = amount_to_json(opts.block_min_fee_rate if opts is not None else 1)
        return out


def _with_default_witness_nonce(block: Block) -> Block:
    """Core `UpdateUncommittedBlockStructures`: a block with a witness commitment whose coinbase
    has no witness gets the default 32-zero-byte reserved value as its coinbase witness (the
    txids, so the header, stay the same)."""
    cb = block.txs[0] if block.txs else None
    if cb is None or not cb.vin or cb.has_witness() or witness_commitment_index(block) is None:
        return block
    vin = (replace(cb.vin[0], witness=(bytes(32),)),) + cb.vin[1:]
    return Block(block.header, (Tx(cb.version, vin, cb.vout, cb.locktime),) + tuple(block.txs[1:]))


def _gbt_rule(dep: BIP9Deployment) -> str:
    """Core `gbt_rule_value`: the deployment's name, "!"-prefixed when not optional (BIP9)."""
    return dep.name if dep.gbt_optional_rule else "!" + dep.name


def _hash_hex(text: str, name: str) -> str:
    """Core ParseHashV: 64 hex digits."""
    if len(text) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(text)}, for '{text}')"
                       if len(text) != 64 else f"{name} must be hexadecimal string (not '{text}')")
    return text


def _descriptor_script(text: str, params) -> bytes | None:
    """Core `getScriptFromDescriptor`: the one script of a fixed-key descriptor (the #checksum
    optional); of a combo's scripts the P2WPKH one when there are four, else the P2PKH one.
    None when `text` is no descriptor tinynode can read."""
    from ..script.scan_descriptor import DescriptorError, expand_descriptor
    try:
        scripts = expand_descriptor(text, params)
    except DescriptorError:
        return None
    if len(scripts) == 1:
        return scripts[0].script_pubkey
    return scripts[2].script_pubkey if len(scripts) == 4 else scripts[1].script_pubkey


def _output_script(output: Any, params) -> bytes:
    """generateblock's `output` (Core's `getScriptFromDescriptor`, then `DecodeDestination`): a
    descriptor (`addr(ADDRESS)`, `raw(HEX)`, key descriptors), with or without its `#checksum`,
    or an address."""
    text = _str(output, "output")
    spk = _descriptor_script(text, params)
    if spk is not None:
        return spk
    try:
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


def _check_number_args(*args: tuple[int, str, Any]) -> None:
    """Core `RPCHelpMan::HandleRequest`'s argument type check for number arguments: every
    mismatch, by position and name, in one -3 error ("Wrong type passed:" and a JSON object
    written with 4-space indents, as UniValue::write(4))."""
    import json
    errors = {}
    for pos, name, value in args:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            errors[f"Position {pos} ({name})"] = (f"JSON value of type {_jtype(value)} is not of "
                                                 "expected type number")
    if errors:
        raise RPCError(RPC_TYPE_ERROR, "Wrong type passed:\n" + json.dumps(errors, indent=4))
