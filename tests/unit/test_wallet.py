"""Wallet: keys and keypool, maturity, pending spends, unconfirmed change, dust, fee rate,
--from, subtract-fee, reorgs and restart. Blocks are fed straight to the wallet's event hooks."""
import os
import stat
from dataclasses import replace

import pytest

from tinynode.params import REGTEST
from tinynode.primitives.address import AddressError, decode_address, encode_wif
from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.hashes import hash160, sha256d
from tinynode.primitives.keys import PrivateKey, der_decode_signature
from tinynode.primitives.tx import COIN, NULL_OUTPOINT, OutPoint, Tx, TxIn, TxOut
from tinynode.storage.wallet import WalletStore
from tinynode.wallet.coinselect import InsufficientFunds
from tinynode.script.flags import STANDARD_FLAGS
from tinynode.script.interpreter import verify_script
from tinynode.wallet.wallet import CONFLICTED, CONFIRMED, PENDING, Wallet, WalletError

P = REGTEST
OTHER = decode_address("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", P).script_pubkey  # not ours


class FakeChain:
    """A list of blocks fed to one wallet; supports reorgs by disconnecting from the top."""

    def __init__(self, wallet):
        self.wallet = wallet
        self.blocks = []
        self.nonce = 0

    def mine(self, spk=None, txs=(), value=50 * COIN):
        self.nonce += 1
        height = len(self.blocks) + 1
        cb = Tx(1, (TxIn(NULL_OUTPOINT, bytes([3]) + height.to_bytes(3, "little") + self.nonce.to_bytes(4, "little")),),
                (TxOut(value, spk if spk is not None else OTHER),), 0)
        prev = self.blocks[-1].hash if self.blocks else P.genesis.hash
        block = Block(BlockHeader(4, prev, bytes(32), 1700000000 + height, 0x207FFFFF, self.nonce), (cb,) + tuple(txs))
        self.blocks.append(block)
        self.wallet.block_connected(block, height)
        return block

    def disconnect(self):
        block = self.blocks.pop()
        self.wallet.block_disconnected(block, len(self.blocks) + 1)
        return block


@pytest.fixture
def wallet(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "wallet.sqlite"), keypool_size=3)
    yield w
    w.close()


def mine_to_wallet(chain, wallet, n):
    spk = decode_address(wallet.keys.new_address(), P).script_pubkey
    for _ in range(n):
        chain.mine(spk)
    return spk


def verify_signed(wallet, tx):
    """Every input passes the script interpreter with the standard flags (WITNESS included):
    P2PKH inputs by scriptSig, P2WPKH inputs by witness [sig, pubkey] with an empty scriptSig."""
    for i, txin in enumerate(tx.vin):
        out = wallet.is_mine_output(txin.prevout)
        assert out is not None
        if out.script_pubkey[:2] == b"\x00\x14":
            assert txin.script_sig == b"" and len(txin.witness) == 2
            assert hash160(txin.witness[1]) == out.script_pubkey[2:]
        else:
            assert txin.witness == ()
        verify_script(txin.script_sig, out.script_pubkey, tx, i, STANDARD_FLAGS, amount=out.value)


def test_wallet_file_is_private_and_addresses_are_fresh(tmp_path, wallet):
    assert stat.S_IMODE(os.stat(tmp_path / "wallet.sqlite").st_mode) == 0o600
    a1, a2 = wallet.keys.new_address(), wallet.keys.new_address()
    assert a1 != a2 and a1.startswith("bcrt1q")     # bech32 (P2WPKH) is the default type
    assert [a.address for a in wallet.keys.addresses()] == [a1, a2]
    assert len(wallet.keys.addresses(include_unissued=True)) >= 2 + 3 + 3


def test_wif_import_export_roundtrip(wallet):
    key = PrivateKey(bytes(31) + b"\x07")
    wif = encode_wif(key.secret, True, P)
    addr = wallet.keys.import_wif(wif, label="seven")
    assert wallet.keys.export_wif(addr) == wif
    assert wallet.keys.is_mine(decode_address(addr, P).script_pubkey)
    with pytest.raises(AddressError):
        wallet.keys.export_wif("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn")
    with pytest.raises(AddressError):
        wallet.keys.import_wif("notawif")


def test_coinbase_maturity_is_cores_after_101_blocks_balance_is_50(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 100)
    b = wallet.balances()
    assert (b.trusted, b.immature) == (0, 100 * 50 * COIN)
    chain.mine(OTHER)  # block 101 pays someone else: our first coinbase now has 101 confirmations
    b = wallet.balances()
    assert b.trusted == 50 * COIN and b.immature == 99 * 50 * COIN and b.untrusted_pending == 0


def test_send_builds_valid_signed_tx_with_change_and_fee(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    created = wallet.create_transaction([(OTHER, 150_000_000)], fee_rate=2000)
    tx = created.tx
    assert len(tx.vin) == 1 and len(tx.vout) == 2
    # a P2WPKH coin: estimate 10 overhead + 34 (P2PKH recipient) + 68 input + 1 marker/flag
    # + 34 (P2PKH change) = 147 vB at 2 sat/vB; the signed tx is within 1 vB of it
    assert tx.has_witness() and tx.wtxid != tx.txid
    assert created.fee == 147 * 2 and tx.vsize in (146, 147)
    change = tx.vout[created.change_index]
    assert wallet.keys.is_change(change.script_pubkey)
    assert change.script_pubkey[:3] == b"\x76\xa9\x14"    # like the P2PKH recipient (Core)
    assert change.value == 50 * COIN - 150_000_000 - created.fee
    verify_signed(wallet, tx)
    wallet.add_tx(tx, from_me=True, fee=created.fee)
    # getbalance counts our own unconfirmed change at once (Core: trusted)
    assert wallet.balances().trusted == change.value
    assert wallet.balances(minconf=1).trusted == 0


def test_never_double_spends_own_pending_and_spends_unconfirmed_change(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)        # exactly one mature coin
    spent = set()
    for _ in range(3):
        c = wallet.create_transaction([(OTHER, COIN)])
        for txin in c.tx.vin:
            assert txin.prevout not in spent
            spent.add(txin.prevout)
        wallet.add_tx(c.tx, from_me=True, fee=c.fee)
    assert len(wallet.pending_own_txs()) == 3
    assert 46 * COIN < wallet.balances().trusted < 47 * COIN


def test_unconfirmed_receipts_are_pending_not_spendable(wallet):
    chain = FakeChain(wallet)
    addr = wallet.keys.new_address()
    spk = decode_address(addr, P).script_pubkey
    incoming = Tx(2, (TxIn(OutPoint(b"\x11" * 32, 0), b"\x51"),), (TxOut(3 * COIN, spk),), 0)
    wallet.sync_mempool([incoming])
    b = wallet.balances()
    assert (b.trusted, b.untrusted_pending) == (0, 3 * COIN)
    with pytest.raises(InsufficientFunds):
        wallet.create_transaction([(OTHER, COIN)])
    chain.mine(OTHER, txs=(incoming,))
    assert wallet.balances().trusted == 3 * COIN
    assert wallet.get_tx(incoming.txid).state == CONFIRMED
    # a receipt that vanishes from the mempool unconfirmed is forgotten
    other = Tx(2, (TxIn(OutPoint(b"\x12" * 32, 0), b"\x51"),), (TxOut(COIN, spk),), 0)
    wallet.sync_mempool([other])
    assert wallet.balances().untrusted_pending == COIN
    wallet.sync_mempool([])
    assert wallet.balances().untrusted_pending == 0 and wallet.get_tx(other.txid) is None


def test_dust_fee_rate_insufficient_funds(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    with pytest.raises(WalletError, match="too small"):
        wallet.create_transaction([(OTHER, 545)])
    with pytest.raises(InsufficientFunds):
        wallet.create_transaction([(OTHER, 50 * COIN)])
    cheap = wallet.create_transaction([(OTHER, COIN)], fee_rate=1000)
    dear = wallet.create_transaction([(OTHER, COIN)], fee_rate=10_000)
    assert dear.fee > cheap.fee * 9
    # change that would be dust goes to the fee instead: no change output
    # (no-change size 113 vB: fee 226; change would be 226 + 200 - 288 = 138 < 294 P2WPKH dust)
    almost_all = 50 * COIN - 113 * 2 - 200
    c = wallet.create_transaction([(OTHER, almost_all)], fee_rate=2000)
    assert c.change_index is None and len(c.tx.vout) == 1 and c.fee == 50 * COIN - almost_all


def test_subtract_fee_from_amount_sends_everything(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    c = wallet.create_transaction([(OTHER, 50 * COIN)], subtract_fee_from=[0])
    assert c.change_index is None
    assert c.tx.vout[0].value == 50 * COIN - c.fee and c.amounts == (50 * COIN - c.fee,)
    verify_signed(wallet, c.tx)


def test_from_address_spends_only_its_coins(wallet):
    chain = FakeChain(wallet)
    spk_a = mine_to_wallet(chain, wallet, 1)
    spk_b = mine_to_wallet(chain, wallet, 1)
    for _ in range(100):
        chain.mine(OTHER)
    with pytest.raises(InsufficientFunds):
        wallet.create_transaction([(OTHER, 60 * COIN)], from_script=spk_b)
    c = wallet.create_transaction([(OTHER, COIN)], from_script=spk_b)
    assert all(wallet.is_mine_output(i.prevout).script_pubkey == spk_b for i in c.tx.vin)
    assert c.tx.vout[c.change_index].script_pubkey == spk_b      # change back to the same address
    with pytest.raises(WalletError):
        wallet.create_transaction([(OTHER, COIN)], from_script=OTHER)
    assert spk_a != spk_b


def test_reorg_unconfirms_then_conflicts(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    c = wallet.create_transaction([(OTHER, COIN)])
    wallet.add_tx(c.tx, from_me=True, fee=c.fee)
    chain.mine(OTHER, txs=(c.tx,))
    assert wallet.get_tx(c.tx.txid).state == CONFIRMED and wallet.confirmations(wallet.get_tx(c.tx.txid)) == 1
    # the block leaves the chain: our send is pending again, its change still trusted
    chain.disconnect()
    assert wallet.get_tx(c.tx.txid).state == PENDING
    assert wallet.pending_own_txs() == [c.tx]
    # the other branch holds a double spend of the same coin: ours is conflicted, coin gone
    double = Tx(2, c.tx.vin, (TxOut(49 * COIN, OTHER),), 0)
    chain.mine(OTHER, txs=(double,))
    assert wallet.get_tx(c.tx.txid).state == CONFLICTED
    assert wallet.get_tx(double.txid).state == CONFIRMED
    coins = {x.outpoint for x in wallet.coins()}
    assert c.tx.vin[0].prevout not in coins and not any(op.txid == c.tx.txid for op in coins)
    assert wallet.balances().trusted == 50 * COIN      # only block 2's coinbase, matured at height 102
    # a coinbase whose block leaves the chain is conflicted too
    spk = mine_to_wallet(chain, wallet, 1)
    cb = chain.blocks[-1].txs[0]
    chain.disconnect()
    assert wallet.get_tx(cb.txid).state == CONFLICTED and spk


def test_restart_restores_everything(tmp_path):
    path = tmp_path / "w.sqlite"
    w = Wallet(P, WalletStore(path), keypool_size=3)
    chain = FakeChain(w)
    mine_to_wallet(chain, w, 101)
    c = w.create_transaction([(OTHER, COIN)])
    w.add_tx(c.tx, from_me=True, fee=c.fee)
    addrs = [a.address for a in w.keys.addresses()]
    before = (w.balances(), w.tip_height, w.tip_hash)
    w.close()
    w2 = Wallet(P, WalletStore(path), keypool_size=3)
    assert (w2.balances(), w2.tip_height, w2.tip_hash) == before
    assert [a.address for a in w2.keys.addresses()] == addrs
    assert w2.pending_own_txs() == [c.tx]
    assert w2.get_tx(c.tx.txid).fee == c.fee
    # and it still refuses to double-spend the pending send's coin
    c2 = w2.create_transaction([(OTHER, COIN)])
    assert not {i.prevout for i in c2.tx.vin} & {i.prevout for i in c.tx.vin}
    w2.close()


def test_tx_amounts_match_cores_gettransaction(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    c = wallet.create_transaction([(OTHER, 150_000_000)])
    wtx = wallet.add_tx(c.tx, from_me=True, fee=c.fee)
    credit, debit, fee = wallet.tx_amounts(wtx)
    assert debit == 50 * COIN and fee == c.fee
    assert credit - debit + fee == -150_000_000


class _Entry:
    def __init__(self, block, height, prev):
        self.hash, self.height, self.prev = block.hash, height, prev


class FakeChainState:
    """What `Wallet.sync_with_chain` reads: tip, get_entry, get_block_hash, get_block."""

    def __init__(self):
        self.entries, self.blocks, self.active = {}, {}, []

    def set_active(self, blocks):
        prev = None
        self.active = []
        for h, b in enumerate(blocks, start=1):
            e = self.entries.get(b.hash) or _Entry(b, h, prev)
            self.entries[b.hash], self.blocks[b.hash] = e, b
            self.active.append(b.hash)
            prev = e

    @property
    def tip(self):
        return self.entries[self.active[-1]]

    def get_entry(self, h):
        return self.entries.get(h)

    def get_block_hash(self, height):
        return self.active[height - 1] if 1 <= height <= len(self.active) else None

    def get_block(self, h):
        return self.blocks.get(h)


def test_restart_after_a_reorg_while_stopped(tmp_path):
    path = tmp_path / "w.sqlite"
    w = Wallet(P, WalletStore(path), keypool_size=3)
    chain = FakeChain(w)
    spk = mine_to_wallet(chain, w, 3)            # blocks x1..x3 pay us
    x = list(chain.blocks)
    w.close()
    # while we were stopped the chain moved to y2..y4 on top of x1 (y blocks pay someone else)
    other = FakeChain(Wallet(P, WalletStore(tmp_path / "o.sqlite"), keypool_size=1))
    other.blocks = [x[0]]
    other.nonce = 100
    for _ in range(3):
        other.mine(OTHER)
    cs = FakeChainState()
    cs.set_active(x)
    cs.set_active(other.blocks)
    w2 = Wallet(P, WalletStore(path), keypool_size=3)
    assert w2.tip_hash == x[2].hash
    scanned = w2.sync_with_chain(cs)
    assert scanned == 3 and w2.tip_height == 4 and w2.tip_hash == other.blocks[-1].hash
    assert w2.get_tx(x[0].txs[0].txid).state == CONFIRMED
    assert w2.get_tx(x[1].txs[0].txid).state == CONFLICTED
    assert w2.get_tx(x[2].txs[0].txid).state == CONFLICTED
    assert w2.balances().immature == 50 * COIN and spk
    w2.close()


def test_new_wallet_starts_at_the_tip(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=1)
    chain = FakeChain(Wallet(P, WalletStore(tmp_path / "o.sqlite"), keypool_size=1))
    for _ in range(3):
        chain.mine(OTHER)
    cs = FakeChainState()
    cs.set_active(chain.blocks)
    assert w.sync_with_chain(cs) == 0 and w.tip_height == 3


def test_restart_when_the_chain_lost_blocks_the_wallet_saw(tmp_path):
    """Power cut: the chain kept x1 and then followed y2 (x3 is unknown to it) while the wallet
    recorded x1..x3: x2's coinbase must not stay confirmed."""
    path = tmp_path / "w.sqlite"
    w = Wallet(P, WalletStore(path), keypool_size=3)
    chain = FakeChain(w)
    mine_to_wallet(chain, w, 3)
    x = list(chain.blocks)
    w.close()
    other = FakeChain(Wallet(P, WalletStore(tmp_path / "o.sqlite"), keypool_size=1))
    other.blocks, other.nonce = [x[0]], 100
    other.mine(OTHER)
    cs = FakeChainState()
    cs.set_active(other.blocks)
    w2 = Wallet(P, WalletStore(path), keypool_size=3)
    assert w2.sync_with_chain(cs) == 1 and w2.tip_height == 2
    assert [w2.get_tx(b.txs[0].txid).state for b in x] == [CONFIRMED, CONFLICTED, CONFLICTED]
    w2.close()


def test_unconfirmed_tx_spending_our_coins_is_trusted_even_if_built_elsewhere(wallet):
    """Core's IsTrusted: an unconfirmed tx that spends our coins (signed by another tool with our
    key, then seen in the mempool) makes its change spendable like our own sends."""
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    c = wallet.create_transaction([(OTHER, COIN)])
    wallet.sync_mempool([c.tx])                     # not add_tx(from_me=True): seen in the mempool
    assert wallet.get_tx(c.tx.txid).from_me is False
    change = c.tx.vout[c.change_index].value
    assert wallet.balances().trusted == change and wallet.balances().untrusted_pending == 0


def test_blocks_without_our_txs_write_nothing_and_a_stale_tip_is_caught_up(tmp_path):
    """IBD cost: a block touching nothing of ours opens no SQLite transaction; the tip is written
    with the next block that does, every TIP_SAVE_BLOCKS blocks, and at close. After a crash the
    stored tip is older than the chain's: the start-up rescan catches up exactly."""
    path = tmp_path / "w.sqlite"
    w = Wallet(P, WalletStore(path), keypool_size=3)
    chain = FakeChain(w)
    spk = mine_to_wallet(chain, w, 2)                          # 2 blocks pay us: tip stored at 2
    for _ in range(5):
        chain.mine(OTHER)                                       # 5 blocks for someone else
    assert w.tip_height == 7 and w.tip_hash == chain.blocks[-1].hash
    crashed = Wallet(P, WalletStore(path), keypool_size=3)     # what a power cut leaves on disk
    assert crashed.tip_height == 2 and crashed.tip_hash == chain.blocks[1].hash
    cs = FakeChainState()
    cs.set_active(chain.blocks)
    assert crashed.sync_with_chain(cs) == 5 and crashed.tip_height == 7
    assert crashed.balances() == w.balances() and crashed.balances().immature == 100 * COIN
    crashed.close()

    chain.mine(spk)                                             # ours again: the tip is written
    assert Wallet(P, WalletStore(path), keypool_size=3).tip_height == 8
    w.TIP_SAVE_BLOCKS = 3
    for _ in range(4):
        chain.mine(OTHER)
    assert Wallet(P, WalletStore(path), keypool_size=3).tip_height == 11   # written after 3
    w.close()                                                   # close writes the rest
    again = Wallet(P, WalletStore(path), keypool_size=3)
    assert (again.tip_height, again.tip_hash) == (12, chain.blocks[-1].hash)
    again.close()


def test_a_block_spending_our_pending_txs_coin_is_still_seen(wallet):
    chain = FakeChain(wallet)
    mine_to_wallet(chain, wallet, 101)
    c = wallet.create_transaction([(OTHER, COIN)])
    wallet.add_tx(c.tx, from_me=True, fee=c.fee)
    # someone else's tx spending the same coin (it need not be valid for the wallet's bookkeeping)
    rival = Tx(1, (TxIn(c.tx.vin[0].prevout, b""),), (TxOut(COIN, OTHER),), 0)
    chain.mine(OTHER, txs=(rival,))
    assert wallet.get_tx(c.tx.txid).state == CONFLICTED


# --- segwit wallet (issue 15): address types, a schema-1 file, mixed inputs ---------------------

def test_address_types_bech32_default_legacy_on_request(wallet):
    seg = wallet.keys.new_address()
    leg = wallet.keys.new_address(addr_type="legacy")
    assert seg.startswith("bcrt1q") and leg[0] in "mn"
    seg_spk, leg_spk = decode_address(seg, P).script_pubkey, decode_address(leg, P).script_pubkey
    assert seg_spk[:2] == b"\x00\x14" and len(seg_spk) == 22
    assert wallet.keys.address_type(seg_spk) == "bech32" and wallet.keys.address_type(leg_spk) == "legacy"
    # exactly the script handed out is ours, not the key's other script
    other_of_seg = b"\x76\xa9\x14" + seg_spk[2:] + b"\x88\xac"
    assert wallet.keys.is_mine(seg_spk) and not wallet.keys.is_mine(other_of_seg)
    assert wallet.keys.new_change_script()[:2] == b"\x00\x14"
    with pytest.raises(ValueError, match="Unknown address type 'p2sh'"):
        wallet.keys.new_address(addr_type="p2sh")
    # dumpprivkey of a bech32 address: the WIF of the key behind it
    from tinynode.primitives.address import decode_wif
    secret, compressed = decode_wif(wallet.keys.export_wif(seg), P)
    assert compressed and PrivateKey(secret, True).public_key.sec == wallet.keys.pubkey(seg_spk)


def test_address_type_persists_across_restart(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2)
    seg, leg = w.keys.new_address(), w.keys.new_address(addr_type="legacy")
    w.close()
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2)
    types = {a.address: a.addr_type for a in w.keys.addresses()}
    assert types == {seg: "bech32", leg: "legacy"}
    assert w.store.get_meta("schema_version") == b"2"
    w.close()


_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE keys (id INTEGER PRIMARY KEY, secret BLOB NOT NULL, compressed INTEGER NOT NULL,
    pubkey BLOB NOT NULL, script_pubkey BLOB NOT NULL UNIQUE, chain INTEGER NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0,
    label TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);
CREATE TABLE txs (txid BLOB PRIMARY KEY, raw BLOB NOT NULL, state TEXT NOT NULL, block_hash BLOB,
    height INTEGER, block_time INTEGER, time_received INTEGER NOT NULL, from_me INTEGER NOT NULL,
    fee INTEGER, seq INTEGER NOT NULL);
"""


def _schema1_wallet(path, keys):
    """A wallet.sqlite as the legacy-only wallet wrote it (schema 1: no addr_type column)."""
    import sqlite3
    db = sqlite3.connect(str(path))
    db.executescript(_SCHEMA_1)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (b"1",))
    for n, (key, chain, issued) in enumerate(keys, 1):
        pub = key.public_key.sec
        db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, 0, '', 1700000000)",
                   (n, key.secret, 1, pub, b"\x76\xa9\x14" + hash160(pub) + b"\x88\xac", chain, int(issued)))
    db.commit()
    db.close()


def test_schema1_wallet_migrates_and_spends_legacy_and_segwit_coins_in_one_tx(tmp_path):
    old_key = PrivateKey(bytes(31) + b"\x2a")
    pool_key = PrivateKey(bytes(31) + b"\x2b")
    path = tmp_path / "wallet.sqlite"
    _schema1_wallet(path, [(old_key, 0, True), (pool_key, 0, False)])
    w = Wallet(P, WalletStore(path), keypool_size=2)
    try:
        assert w.store.get_meta("schema_version") == b"2"
        old_spk = b"\x76\xa9\x14" + hash160(old_key.public_key.sec) + b"\x88\xac"
        assert w.keys.is_mine(old_spk) and w.keys.address_type(old_spk) == "legacy"
        # the unissued pool key of the old file is handed out as bech32 now
        seg = w.keys.new_address()
        seg_spk = decode_address(seg, P).script_pubkey
        assert seg_spk == b"\x00\x14" + hash160(pool_key.public_key.sec)
        chain = FakeChain(w)
        chain.mine(old_spk)
        chain.mine(seg_spk)
        for _ in range(100):
            chain.mine(OTHER)
        assert w.balances().trusted == 100 * COIN
        # 60 coins need both coinbases: one P2PKH and one P2WPKH input
        c = w.create_transaction([(OTHER, 60 * COIN)], fee_rate=1000)
        tx = c.tx
        kinds = sorted("wit" if i.witness else "legacy" for i in tx.vin)
        assert kinds == ["legacy", "wit"]
        verify_signed(w, tx)
        assert tx.vout[c.change_index].script_pubkey[:3] == b"\x76\xa9\x14"   # like the recipient
        # estimate at 1 sat/vB: 10 + 34 + 148 + 68 + 1 + 34 = 295 vB (72-byte signatures); the real
        # tx is up to 2 vB smaller: low-R signatures are 71 bytes, 70 when S has a zero top byte
        assert c.fee == 295 and 293 <= tx.vsize <= 295
        w.add_tx(tx, from_me=True, fee=c.fee)
        assert w.balances().trusted == 40 * COIN - c.fee
    finally:
        w.close()
    # the migrated file reopens as schema 2 with its types kept
    w = Wallet(P, WalletStore(path), keypool_size=2)
    assert {a.address: a.addr_type for a in w.keys.addresses()}[seg] == "bech32"
    w.close()
