"""Wallet RPCs (Core's wallet/rpc/*.cpp) and tinynode's friendly verbs behind `tinynode-cli
balance/send/status/newaddress`: addresses, balances, coins, sends, wallet transactions, key
import/export, any address's balance and any transaction's status. Argument parsing and JSON over
the wallet, on the chain writer thread.

Methods tinynode adds are marked "(tinynode)" in `help`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..primitives.address import AddressError, address_from_script, decode_address
from ..primitives.hashes import hash_to_hex
from ..validation import TxOrigin
from .protocol import (
    RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER, RPC_METHOD_NOT_FOUND, RPC_TYPE_ERROR,
    RPC_WALLET_ERROR, RPC_WALLET_INSUFFICIENT_FUNDS, RPCError,
)
from .util import _bool, _fee_rate_kvb, _hash, _int, _str, amount_from_json, amount_to_json
from .walletmgmt import RPC_WALLET_UNLOCK_NEEDED, UNLOCK_NEEDED, WalletManagementRPC, ensure_unlocked

if TYPE_CHECKING:  # pragma: no cover
    from ..node import Node

log = logging.getLogger(__name__)

#: Core's RPC_WALLET_KEYPOOL_RAN_OUT: the wallet cannot hand out an address of that type.
RPC_WALLET_KEYPOOL_RAN_OUT = -12
#: Core's `ParseOutputType` names; this wallet makes all four: "legacy" (P2PKH), "p2sh-segwit"
#: (P2SH-P2WPKH), "bech32" (P2WPKH) and "bech32m" (P2TR key path, BIP86).
_OUTPUT_TYPES = ("legacy", "p2sh-segwit", "bech32", "bech32m")
#: Core's TIMESTAMP_WINDOW (chain.h): a rescan starts this many seconds before the import time
TIMESTAMP_WINDOW = 2 * 60 * 60


def _address_type(address_type, default: str) -> str:
    """Core getnewaddress/getrawchangeaddress: parse `address_type`; unknown names answer -5
    "Unknown address type"."""
    if address_type is None:
        return default
    t = _str(address_type, "address_type")
    if t not in _OUTPUT_TYPES:
        raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, f"Unknown address type '{t}'")
    return t


def _key_descriptor(pubkey: bytes, addr_type: str) -> str:
    """Core `InferDescriptor` for a script whose key the wallet holds (no HD origin in this
    wallet): `wpkh(<key>)` for P2WPKH, `sh(wpkh(<key>))` for P2SH-P2WPKH, `tr(<x-only internal
    key>)` for P2TR (BIP86, no script tree), `pk(<key>)` for P2PK, `pkh(<key>)` for P2PKH, with
    the checksum."""
    from ..script.descriptor import add_checksum
    if addr_type == "bech32m":
        return add_checksum(f"tr({pubkey[1:33].hex()})")
    if addr_type == "p2sh-segwit":
        return add_checksum(f"sh(wpkh({pubkey.hex()}))")
    if addr_type == "pk":
        return add_checksum(f"pk({pubkey.hex()})")
    return add_checksum(f"{'wpkh' if addr_type == 'bech32' else 'pkh'}({pubkey.hex()})")


def _descriptor_key_text(desc: str) -> str:
    """The key expression inside a fixed-key descriptor (`combo(KEY)`, `sh(wpkh(KEY))`, ...)."""
    inner = desc
    for _ in range(4):       # bounded: the deepest supported nesting is sh(wpkh(KEY))
        open_at = inner.find("(")
        if open_at < 0 or not inner.endswith(")"):
            break
        inner = inner[open_at + 1:-1]
    return inner


def _script_kind(spk: bytes) -> str:
    """The wallet's address type for one script of an expanded descriptor."""
    if len(spk) in (35, 67) and spk[-1] == 0xAC:
        return "pk"
    if len(spk) == 25 and spk[:3] == b"\x76\xa9\x14":
        return "legacy"
    if len(spk) == 23 and spk[:2] == b"\xa9\x14":
        return "p2sh-segwit"
    if len(spk) == 22 and spk[:2] == b"\x00\x14":
        return "bech32"
    return "bech32m"


def _new_key(take, *args):
    """Writer thread: hand out a key; Core's errors when there is none (-4 for a wallet without
    keys, -12 when an encrypted wallet's keypool ran out while locked)."""
    from ..wallet.keystore import KeypoolRanOut
    try:
        return take(*args)
    except KeypoolRanOut as e:
        code = RPC_WALLET_ERROR if "no available keys" in str(e) else RPC_WALLET_KEYPOOL_RAN_OUT
        raise RPCError(code, str(e)) from None


class WalletRPC(WalletManagementRPC):
    """Wallet methods; -32601 (wallet is disabled) when the node runs without one. Each works
    on the wallet the request names (`WalletManagementRPC._wallet`)."""

    def __init__(self, node: "Node"):
        super().__init__(node)
        self._mempool_seen: tuple = ()

    def _sync_mempool(self, w) -> None:
        """Writer thread: let wallet `w` see the mempool (skipped while the pool is unchanged)."""
        mp = self.node.mempool
        if w is None:
            return
        seq = (getattr(mp, "sequence", None), id(w), w.tx_count, len(w.keys))
        if seq[0] is not None and seq == self._mempool_seen:
            return
        w.sync_mempool(self._mempool_txs())
        self._mempool_seen = (getattr(mp, "sequence", None), id(w), w.tx_count, len(w.keys))

    async def m_getnewaddress(self, label="", address_type=None) -> str:
        """getnewaddress ( "label" "address_type" )
Returns a new address for receiving payments. address_type is "bech32" (P2WPKH, the default),
"bech32m" (P2TR, key path only), "p2sh-segwit" (P2SH-P2WPKH) or "legacy" (P2PKH)."""
        lbl = _str(label, "label")
        t = _address_type(address_type, "bech32")
        w = self._wallet()
        return await self._w(_new_key, w.keys.new_address, lbl, t)

    async def m_getrawchangeaddress(self, address_type=None) -> str:
        """getrawchangeaddress ( "address_type" )
Returns a new address for receiving change, for use with raw transactions (default type as
-changetype: bech32)."""
        w = self._wallet()
        t = _address_type(address_type, w.change_type)

        def work():
            return w.keys.address_of(_new_key(w.keys.new_change_script, t))
        return await self._w(work)

    async def m_getbalance(self, dummy=None, minconf=0, include_watchonly=None, avoid_reuse=None) -> float:
        """getbalance ( "*" minconf include_watchonly avoid_reuse )
Returns the total available balance: confirmed coins with at least minconf confirmations plus
the change of this wallet's own unconfirmed sends (Core's trusted balance)."""
        if dummy is not None and dummy != "*":
            raise RPCError(RPC_METHOD_NOT_FOUND, 'dummy first argument must be excluded or set to "*".')
        mc = _int(minconf, "minconf")
        w = self._wallet()

        def work():
            self._sync_mempool(w)
            return w.balances(mc).trusted
        return amount_to_json(await self._w(work))

    async def m_getbalances(self) -> dict:
        """getbalances
Returns an object with all balances in coins: trusted, untrusted_pending, immature."""
        w = self._wallet()

        def work():
            self._sync_mempool(w)
            return w.balances(), w.tip_hash, w.tip_height
        b, tip_hash, tip_height = await self._w(work)
        return {"mine": {"trusted": amount_to_json(b.trusted),
                         "untrusted_pending": amount_to_json(b.untrusted_pending),
                         "immature": amount_to_json(b.immature)},
                "lastprocessedblock": {"hash": hash_to_hex(tip_hash) if tip_hash else None,
                                       "height": tip_height}}

    async def m_listunspent(self, minconf=1, maxconf=9999999, addresses=None, include_unsafe=True,
                            query_options=None) -> list:
        """listunspent ( minconf maxconf ["address",...] include_unsafe query_options )
Returns array of unspent transaction outputs with between minconf and maxconf (inclusive) confirmations."""
        lo, hi = _int(minconf, "minconf"), _int(maxconf, "maxconf")
        want: set[bytes] | None = None
        if addresses is not None:
            if not isinstance(addresses, list):
                raise RPCError(RPC_TYPE_ERROR, "addresses must be an array")
            want = set()
            for a in addresses:
                spk = self._decode_address(a)
                if spk in want:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Invalid parameter, duplicated address: {a}")
                want.add(spk)
        unsafe = _bool(include_unsafe, "include_unsafe")
        w = self._wallet()

        def work():
            self._sync_mempool(w)
            out = []
            for c in sorted(w.coins(), key=lambda c: (-c.confirmations, c.outpoint.txid, c.outpoint.n)):
                if not lo <= c.confirmations <= hi:
                    continue
                if want is not None and c.script_pubkey not in want:
                    continue
                if not c.trusted and not unsafe:
                    continue
                if not c.mature:
                    continue
                j = {"txid": hash_to_hex(c.outpoint.txid), "vout": c.outpoint.n}
                if c.address is not None:      # Core: only for a script with an address
                    j["address"] = c.address
                    j["label"] = w.keys.label_of(c.script_pubkey)
                redeem = w.keys.redeem_script(c.script_pubkey)
                if redeem is not None:
                    j["redeemScript"] = redeem.hex()
                j.update({"scriptPubKey": c.script_pubkey.hex(), "amount": amount_to_json(c.value),
                          "confirmations": c.confirmations, "spendable": True, "solvable": True,
                          "desc": _key_descriptor(w.keys.pubkey(c.script_pubkey),
                                                  w.keys.address_type(c.script_pubkey)),
                          "safe": c.trusted})
                out.append(j)
            return out
        return await self._w(work)

    async def m_sendtoaddress(self, address, amount, comment=None, comment_to=None,
                              subtractfeefromamount=False, replaceable=None, conf_target=None,
                              estimate_mode=None, avoid_reuse=None, fee_rate=None, verbose=False,
                              from_address=None, data=None) -> Any:
        """sendtoaddress "address" amount ( "comment" "comment_to" subtractfeefromamount replaceable conf_target "estimate_mode" avoid_reuse fee_rate verbose from_address )
Send an amount to a given address. fee_rate is in sat/vB (default 2). from_address (tinynode)
spends only that wallet address's coins and returns the change to it. data (tinynode) adds an
OP_RETURN output carrying those hex bytes. With verbose, also (tinynode) amount (what address
receives), fee, and change {address, amount, vout} (null without change): with from_address the
change returns to that address, so the outputs alone cannot tell it from a payment."""
        spk = self._decode_address(address)
        sats = amount_from_json(amount)
        if sats <= 0:
            raise RPCError(RPC_TYPE_ERROR, "Invalid amount for send")
        subtract = _bool(subtractfeefromamount, "subtractfeefromamount")
        from ..wallet.wallet import DEFAULT_FEE_RATE
        rate = DEFAULT_FEE_RATE if fee_rate is None else _fee_rate_kvb(fee_rate)
        from_spk = self._decode_address(from_address) if from_address is not None else None
        outputs = [(spk, sats)]
        if data is not None:
            try:
                payload = bytes.fromhex(_str(data, "data"))
            except ValueError:
                raise RPCError(RPC_INVALID_PARAMETER, "Data must be hexadecimal string") from None
            from ..script.script import nulldata_script
            outputs.append((nulldata_script(payload), 0))
        w = self._wallet()
        created, res = await self._w(self._send, w, outputs, rate, [0] if subtract else [], from_spk)
        await self.node.service.publish(res, TxOrigin.wallet())   # relayed to peers
        log.info("wallet sent %s: %.8f to %s, fee %.8f", created.tx.txid_hex, amount_to_json(created.amounts[0]),
                 address, amount_to_json(created.fee))
        if _bool(verbose, "verbose"):
            change = None
            if created.change_index is not None:
                out = created.tx.vout[created.change_index]
                change = {"address": address_from_script(out.script_pubkey, self._params),
                          "amount": amount_to_json(out.value), "vout": created.change_index}
            return {"txid": created.tx.txid_hex,
                    "fee_reason": "Fallback fee" if fee_rate is None else "User-specified fee rate",
                    "amount": amount_to_json(created.amounts[0]), "fee": amount_to_json(created.fee),
                    "change": change}
        return created.tx.txid_hex

    def _send(self, w, outputs, rate, subtract, from_spk):
        """Writer thread: build, sign, hand to the mempool, record as pending — atomically."""
        from ..wallet.coinselect import InsufficientFunds
        from ..wallet.crypter import WalletLocked
        from ..wallet.wallet import WalletError
        self._sync_mempool(w)
        ensure_unlocked(w)
        if from_spk is not None and not w.keys.is_mine(from_spk):
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "The from address is not in this wallet")
        try:
            created = w.create_transaction(outputs, fee_rate=rate, subtract_fee_from=subtract,
                                           from_script=from_spk)
        except InsufficientFunds:
            raise RPCError(RPC_WALLET_INSUFFICIENT_FUNDS, "Insufficient funds") from None
        except WalletLocked:
            raise RPCError(RPC_WALLET_UNLOCK_NEEDED, UNLOCK_NEEDED) from None
        except WalletError as e:
            raise RPCError(RPC_WALLET_ERROR, str(e)) from None
        res = self._accept(created.tx, TxOrigin.wallet())
        w.add_tx(created.tx, from_me=True, fee=created.fee)
        return created, res

    async def m_gettransaction(self, txid, include_watchonly=None, verbose=False) -> dict:
        """gettransaction "txid" ( include_watchonly verbose )
Get detailed information about in-wallet transaction <txid>."""
        t = _hash(txid, "txid")
        w = self._wallet()
        verbose = _bool(verbose, "verbose")

        def work():
            self._sync_mempool(w)
            wtx = w.get_tx(t)
            if wtx is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid or non-wallet transaction id")
            return self._wallet_tx_json(w, wtx, verbose)
        return await self._w(work)

    def _wallet_tx_json(self, w, wtx, verbose: bool = False) -> dict:
        credit, debit, fee = w.tx_amounts(wtx)
        conf = w.confirmations(wtx)
        j: dict[str, Any] = {"amount": amount_to_json(credit - debit + fee)}
        if debit > 0:
            j["fee"] = amount_to_json(-fee)
        j["confirmations"] = conf
        if wtx.tx.is_coinbase():
            j["generated"] = True
        if wtx.state == "confirmed":
            j["blockhash"] = hash_to_hex(wtx.block_hash)
            j["blockheight"] = wtx.height
            j["blocktime"] = wtx.block_time
        j["trusted"] = wtx.state == "confirmed" or (wtx.state == "pending" and wtx.from_me)
        j["txid"] = wtx.tx.txid_hex
        j["wtxid"] = wtx.tx.txid_hex
        j["walletconflicts"] = []
        j["time"] = wtx.block_time if wtx.block_time and wtx.block_time < wtx.time_received else wtx.time_received
        j["timereceived"] = wtx.time_received
        j["bip125-replaceable"] = "yes" if wtx.state == "pending" else "no"
        j["status"] = wtx.state  # (tinynode) confirmed | pending | conflicted
        details = []
        maturity = self._params.coinbase_maturity
        for n, out in enumerate(wtx.tx.vout):
            addr = address_from_script(out.script_pubkey, self._params)
            mine = w.keys.is_mine(out.script_pubkey)
            if debit > 0 and not mine:
                d = {"address": addr, "category": "send", "amount": amount_to_json(-out.value),
                     "vout": n, "fee": amount_to_json(-fee), "abandoned": False}
                details.append(d)
            elif mine:
                if debit > 0 and w.keys.is_change(out.script_pubkey):
                    continue
                if debit > 0:  # a payment to ourselves: Core lists the send and the receive
                    details.append({"address": addr, "category": "send", "amount": amount_to_json(-out.value),
                                    "vout": n, "fee": amount_to_json(-fee), "abandoned": False})
                if wtx.tx.is_coinbase():
                    if conf < 1:
                        cat = "orphan"
                    elif conf < maturity + 1:
                        cat = "immature"
                    else:
                        cat = "generate"
                else:
                    cat = "receive"
                details.append({"address": addr, "category": cat, "amount": amount_to_json(out.value),
                                "label": w.keys.label_of(out.script_pubkey), "vout": n})
        j["details"] = details
        j["hex"] = wtx.tx.raw.hex()
        if verbose:
            j["decoded"] = self.tx_to_json(wtx.tx)
        return j

    async def m_listtransactions(self, label=None, count=10, skip=0, include_watchonly=None) -> list:
        """listtransactions ( "label" count skip include_watchonly )
Returns up to 'count' most recent wallet transactions skipping the first 'skip'."""
        c, sk = _int(count, "count"), _int(skip, "skip")
        if c < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Negative count")
        if sk < 0:
            raise RPCError(RPC_INVALID_PARAMETER, "Negative from")
        w = self._wallet()

        def work():
            self._sync_mempool(w)
            rows = []
            for wtx in w.transactions():
                j = self._wallet_tx_json(w, wtx)
                for d in j["details"]:
                    if label not in (None, "*") and d.get("label", "") != label:
                        continue
                    row = dict(d)
                    for k in ("confirmations", "generated", "trusted", "blockhash", "blockheight",
                              "blocktime", "txid", "wtxid", "walletconflicts", "time", "timereceived",
                              "bip125-replaceable"):
                        if k in j:
                            row[k] = j[k]
                    rows.append(row)
            end = len(rows) - sk
            return rows[max(0, end - c):max(0, end)]
        return await self._w(work)

    async def m_listaddresses(self) -> list:
        """listaddresses
(tinynode) The wallet's handed-out addresses with their kind, label and balances: balance
(confirmed, mature), immature (mined coins not yet spendable), pending (unconfirmed: change of our
sends and incoming), spendable (what a send from it may use: mature, confirmed or our own change),
incoming (unconfirmed payments from others)."""
        w = self._wallet()

        def work():
            self._sync_mempool(w)
            sums: dict[tuple[bytes, str], int] = {}

            def add(spk: bytes, kind: str, value: int) -> None:
                sums[(spk, kind)] = sums.get((spk, kind), 0) + value
            for c in w.coins():
                if not c.mature:
                    add(c.script_pubkey, "immature", c.value)
                    continue
                add(c.script_pubkey, "balance" if c.confirmations > 0 else "pending", c.value)
                if c.trusted:
                    add(c.script_pubkey, "spendable", c.value)
                else:
                    add(c.script_pubkey, "incoming", c.value)
            kinds = ("balance", "immature", "pending", "spendable", "incoming")
            return [{"address": a.address, "kind": a.chain, "used": a.used, "label": a.label,
                     **{k: amount_to_json(sums.get((a.script_pubkey, k), 0)) for k in kinds}}
                    for a in w.keys.addresses()]
        return await self._w(work)

    async def m_backupwallet(self, destination) -> None:
        """backupwallet "destination"
Safely copies the wallet file (DIR/<network>/wallets/[<name>/]wallet.sqlite) to destination, which can be a
directory or a path with filename (relative paths are relative to the daemon's working directory)."""
        dest = _str(destination, "destination")
        w = self._wallet()

        def work():
            try:
                path = w.store.backup(dest)
            except (OSError, ValueError) as e:
                log.warning("backupwallet to %s failed: %s", dest, e)
                raise RPCError(RPC_WALLET_ERROR, f"Error: Wallet backup failed! ({e})") from None
            log.info("wallet backed up to %s", path)
        await self._w(work)

    async def m_getaddressinfo(self, address) -> dict:
        """getaddressinfo "address"
Return information about the given address (ismine, labels, ...)."""
        spk = self._decode_address(address)
        w = self.node.wallet

        def work():
            # Core getaddressinfo: address (re-encoded), scriptPubKey, ismine, solvable, desc
            # (ours: pkh()/wpkh() of the key), iswatchonly, isscript, iswitness (+ version and
            # program), pubkey/iscompressed for our keys, ischange, labels
            from ..primitives.address import witness_program
            mine = bool(w is not None and w.keys.is_mine(spk))
            j: dict[str, Any] = {"address": address_from_script(spk, self._params) or address,
                                 "scriptPubKey": spk.hex(), "ismine": mine, "solvable": mine}
            if mine:
                j["desc"] = _key_descriptor(w.keys.pubkey(spk), w.keys.address_type(spk))
            j["iswatchonly"] = False
            wp = witness_program(spk)
            j["isscript"] = spk[0] == 0xA9 or (wp is not None and not (wp[0] == 0 and len(wp[1]) == 20))
            j["iswitness"] = wp is not None
            if wp is not None:
                j["witness_version"] = wp[0]
                j["witness_program"] = wp[1].hex()
            kind = w.keys.address_type(spk) if mine else None
            if kind == "p2sh-segwit":
                # Core DescribeWalletAddress of a ScriptHash: the redeem script's type and hex,
                # the P2WPKH inside as "embedded", and its pubkey also at the top
                redeem = w.keys.redeem_script(spk)
                pub = w.keys.pubkey(spk)
                j["script"] = "witness_v0_keyhash"
                j["hex"] = redeem.hex()
                j["pubkey"] = pub.hex()
                j["embedded"] = {"isscript": False, "iswitness": True, "witness_version": 0,
                                 "witness_program": redeem[2:].hex(), "pubkey": pub.hex(),
                                 "iscompressed": True,
                                 "address": address_from_script(redeem, self._params),
                                 "scriptPubKey": redeem.hex()}
            elif mine and kind != "bech32m":
                # Core shows no pubkey for a taproot output (its output key is a tweak); the
                # public key is known even while an encrypted wallet is locked
                pub = w.keys.pubkey(spk)
                j["pubkey"] = pub.hex()
                j["iscompressed"] = len(pub) == 33
            j["ischange"] = bool(mine and w.keys.is_change(spk))
            j["labels"] = [w.keys.label_of(spk)] if mine else []
            return j
        return await self._w(work)

    async def m_dumpprivkey(self, address) -> str:
        """dumpprivkey "address"
Reveals the private key (WIF) corresponding to 'address'."""
        self._decode_address(address)
        w = self._wallet()
        ensure_unlocked(w)
        try:
            return await self._w(w.keys.export_wif, address)
        except AddressError:
            raise RPCError(RPC_WALLET_ERROR, f"Private key for address {address} is not known") from None

    async def m_importprivkey(self, privkey, label="", rescan=True) -> None:
        """importprivkey "privkey" ( "label" rescan )
Adds a private key (WIF) to the wallet; with rescan, its unspent coins are found in the UTXO set."""
        wif = _str(privkey, "privkey")
        w = self._wallet()
        ensure_unlocked(w)
        do_rescan = _bool(rescan, "rescan")

        def work():
            from ..primitives.address import AddressError as AE
            try:
                addr = w.keys.import_wif(wif, _str(label, "label"))
            except (AE, ValueError):
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Invalid private key encoding") from None
            if do_rescan:
                cs = self._cs()
                spk = decode_address(addr, self._params).script_pubkey
                for op, coin in cs.coins_for_script(spk):
                    found = cs.get_tx(op.txid)
                    if found is not None:
                        tx, bh, height = found
                        w.add_confirmed_tx(tx, bh, height, cs.get_entry(bh).header.time)
            return None
        return await self._w(work)

    async def m_importdescriptors(self, requests) -> list:
        """importdescriptors requests
Import descriptors (fixed keys with their WIF private key: combo(), pkh(), wpkh(), sh(wpkh()),
tr() without a script tree). This triggers a rescan of the blockchain from the earliest
timestamp of all descriptors imported (0: the whole chain, "now": none), 2 hours earlier.
Result: one {"success", "warnings"?, "error"?} per request, in order."""
        if not isinstance(requests, list):
            raise RPCError(RPC_TYPE_ERROR, "JSON value of type "
                           f"{type(requests).__name__} is not of expected type array")
        w = self._wallet()
        ensure_unlocked(w)

        def work():
            cs = self._cs()
            wallet_tip = cs.get_entry(w.tip_hash) if w.tip_hash is not None else cs.tip
            now = cs.median_time_past(wallet_tip)
            lowest = wallet_tip.header.time
            rescan = False
            response = []
            for req in requests:
                ts = max(_import_timestamp(req, now), 1)    # Core: minimum_timestamp 1
                result = self._import_one(w, req)
                response.append(result)
                lowest = min(lowest, ts)
                rescan = rescan or result["success"]
            if rescan:
                start = _first_height_at_time(cs, lowest - TIMESTAMP_WINDOW)
                if start is not None:
                    n = w.rescan(cs, start)
                    log.info("wallet rescan from height %d: %d blocks", start, n)
                self._mempool_seen = ()
                self._sync_mempool(w)
            return response
        return await self._w(work)

    def _import_one(self, w, req) -> dict:
        """Core `ProcessDescriptorImport` for one request (writer thread)."""
        from ..primitives.address import AddressError as AE, decode_wif
        from ..script.scan_descriptor import DescriptorError, check_checksum, expand_descriptor
        warnings: list[str] = []
        try:
            if not isinstance(req, dict) or "desc" not in req:
                raise RPCError(RPC_INVALID_PARAMETER, "Descriptor not found.")
            text = _str(req["desc"], "desc")
            active = _bool(req.get("active", False), "active")
            label = _str(req.get("label", ""), "label")
            if label == "*":
                raise RPCError(RPC_WALLET_INVALID_LABEL_NAME, "Invalid label name")
            try:
                desc = check_checksum(text, require=True)
                scripts = expand_descriptor(text, self._params)
            except DescriptorError as e:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(e)) from None
            internal = _bool(req["internal"], "internal") if "internal" in req else False
            if "range" in req:   # every descriptor tinynode parses is un-ranged
                raise RPCError(RPC_INVALID_PARAMETER, "Range should not be specified for an un-ranged descriptor")
            if active:
                raise RPCError(RPC_INVALID_PARAMETER, "Active descriptors must be ranged")
            if internal and "label" in req:
                raise RPCError(RPC_INVALID_PARAMETER, "Internal addresses should not have a label")
            try:
                secret, compressed = decode_wif(_descriptor_key_text(desc), self._params)
            except (AE, ValueError):
                secret = None
            if not w.keys.private_keys_enabled:
                if secret is not None:
                    raise RPCError(RPC_WALLET_ERROR, "Cannot import private keys to a wallet with "
                                                     "private keys disabled")
                raise RPCError(RPC_WALLET_ERROR, "Watch-only descriptors are not supported by this "
                                                 "wallet (it keeps keys, not scripts)")
            if secret is None:
                raise RPCError(RPC_WALLET_ERROR, "Cannot import descriptor without private keys to a "
                                                 "wallet with private keys enabled")
            if desc.startswith("rawtr("):
                raise RPCError(RPC_WALLET_ERROR, f"Could not add descriptor '{text}': rawtr() "
                                                 "descriptors are not supported by this wallet")
            kinds = [(e.script_pubkey, _script_kind(e.script_pubkey)) for e in scripts]
            w.keys.import_descriptor(secret, compressed, kinds, "" if internal else label)
            result: dict[str, Any] = {"success": True}
        except RPCError as e:
            result = {"success": False, "error": e.to_json()}
        if warnings:
            result["warnings"] = warnings
        return result

    async def m_getaddressbalance(self, address, minconf=1) -> dict:
        """getaddressbalance "address" ( minconf )
(tinynode) Any address's balance from the chain's script index. minconf 0 adds mempool
receipts and subtracts mempool spends."""
        spk = self._decode_address(address)
        mc = _int(minconf, "minconf")

        def work():
            cs = self._cs()
            tip = cs.height
            maturity = self._params.coinbase_maturity
            confirmed = immature = 0
            outpoints = set()
            for op, coin in cs.coins_for_script(spk):
                conf = tip - coin.height + 1
                outpoints.add(op)
                if coin.is_coinbase and conf < maturity + 1:
                    immature += coin.value
                elif conf >= max(mc, 1):
                    confirmed += coin.value
            pending_in = pending_out = 0
            for tx in self._mempool_txs():
                for out in tx.vout:
                    if out.script_pubkey == spk:
                        pending_in += out.value
                for txin in tx.vin:
                    if txin.prevout in outpoints:
                        c = cs.get_coin(txin.prevout)
                        if c is not None:
                            pending_out += c.value
            total = confirmed + (pending_in - pending_out if mc == 0 else 0)
            return {"address": address, "balance": amount_to_json(total),
                    "confirmed": amount_to_json(confirmed), "immature": amount_to_json(immature),
                    "pending_in": amount_to_json(pending_in), "pending_out": amount_to_json(pending_out)}
        return await self._w(work)

    async def m_gettxstatus(self, txid) -> dict:
        """gettxstatus "txid"
(tinynode) Where any transaction stands: mempool, confirmed (confirmations, block, height),
conflicted (a wallet transaction that lost a double spend), or not found."""
        t = _hash(txid, "txid")
        w = self.node.wallet       # the request's wallet (None: none, or not named)

        def work():
            cs = self._cs()
            mp = self.node.mempool
            res: dict[str, Any] = {"txid": txid}
            found = cs.get_tx(t)
            if found is not None:
                _, bh, height = found
                res.update(status="confirmed", confirmations=cs.height - height + 1,
                           blockhash=hash_to_hex(bh), height=height,
                           blocktime=cs.get_entry(bh).header.time)
                return res
            if mp is not None and t in mp:
                res.update(status="mempool", confirmations=0)
                return res
            wtx = w.get_tx(t) if w is not None else None
            if wtx is not None and wtx.state == "conflicted":
                res.update(status="conflicted", confirmations=-1)
            elif wtx is not None:
                res.update(status="pending", confirmations=0)
            else:
                res.update(status="not found")
            return res
        return await self._w(work)


#: Core's RPC_WALLET_INVALID_LABEL_NAME
RPC_WALLET_INVALID_LABEL_NAME = -11


def _import_timestamp(req, now: int) -> int:
    """Core `GetImportTimestamp`: a number, or "now" for the wallet tip's median time past."""
    if isinstance(req, dict) and "timestamp" in req:
        ts = req["timestamp"]
        if isinstance(ts, int) and not isinstance(ts, bool):
            return ts
        if isinstance(ts, float) and ts.is_integer():
            return int(ts)
        if ts == "now":
            return now
        kind = {str: "string", bool: "bool", dict: "object", list: "array", type(None): "null"}.get(type(ts), "number")
        raise RPCError(RPC_TYPE_ERROR, f'Expected number or "now" timestamp value for key. got type {kind}')
    raise RPCError(RPC_TYPE_ERROR, "Missing required timestamp field for key")


def _first_height_at_time(cs, t: int) -> int | None:
    """Core `FindFirstBlockWithTimeAndHeight` from genesis: the first block of the active chain
    whose time, or any earlier block's (Core's nTimeMax), is at least `t`; None if none is."""
    best = -1
    for h in range(cs.tip.height + 1):
        bhash = cs.get_block_hash(h)
        entry = cs.get_entry(bhash) if bhash is not None else None
        if entry is None:
            continue
        best = max(best, entry.header.time)
        if best >= t:
            return h
    return None
