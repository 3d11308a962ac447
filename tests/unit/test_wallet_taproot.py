"""issue 16, the wallet part: bech32m (P2TR key path, BIP86) addresses in the wallet.

The address type is stored per key and survives a restart (and a schema-1 file still opens);
P2TR outputs are the wallet's own; the wallet spends them by the key path with one 64-byte
Schnorr signature (SIGHASH_DEFAULT) over the BIP341 sighash of ALL spent outputs, alone and
mixed with P2WPKH and P2PKH inputs; every input verifies under the consensus flags with
TAPROOT (and the standard ones); fees follow Core's P2TR sizes (58-vB input, 43-byte output)."""
from __future__ import annotations

import pytest

from tinynode.params import REGTEST
from tinynode.primitives.address import decode_address, witness_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey, taproot_tweak_pubkey
from tinynode.primitives.tx import COIN, TxOut
from tinynode.script.flags import STANDARD_FLAGS, TAPROOT_FLAGS
from tinynode.script.interpreter import ScriptError, verify_script
from tinynode.script.sighash import PrecomputedTxData, taproot_sighash
from tinynode.script.sign import sign_p2tr_keypath
from tinynode.storage.wallet import WalletStore
from tinynode.wallet.coinselect import P2TR_INPUT_SIZE, P2TR_OUTPUT_SIZE
from tinynode.wallet.keystore import script_for_key
from tinynode.wallet.wallet import Wallet, WalletError
from tests.framework.taproot_spends import TAPROOT_CONSENSUS
from tests.unit.test_wallet import OTHER, FakeChain, _schema1_wallet

P = REGTEST


@pytest.fixture
def wallet(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "wallet.sqlite"), keypool_size=3)
    yield w
    w.close()


def spent_outputs(wallet, tx) -> list[TxOut]:
    outs = [wallet.is_mine_output(i.prevout) for i in tx.vin]
    assert all(o is not None for o in outs)
    return outs


def verify_all(wallet, tx) -> None:
    """Every input verifies with the spent outputs of the whole tx, under the consensus flags
    with TAPROOT and under the standard flags plus the taproot policy flags."""
    spent = spent_outputs(wallet, tx)
    txdata = PrecomputedTxData.for_tx(tx, spent, force=False)
    for flags in (TAPROOT_CONSENSUS, STANDARD_FLAGS | TAPROOT_FLAGS):
        for i, txin in enumerate(tx.vin):
            verify_script(txin.script_sig, spent[i].script_pubkey, tx, i, flags,
                          amount=spent[i].value, txdata=txdata)


def test_bech32m_address_is_bip86_output_of_the_key_and_ours(wallet):
    addr = wallet.keys.new_address("tr", addr_type="bech32m")
    assert addr.startswith("bcrt1p") and len(addr) == 64
    spk = decode_address(addr, P).script_pubkey
    assert spk[:2] == b"\x51\x20" and len(spk) == 34
    pub = wallet.keys.pubkey(spk)
    # BIP86: output key = internal (x-only) key tweaked with no script tree
    assert spk[2:] == taproot_tweak_pubkey(pub[1:], None)[0]
    assert spk == script_for_key(pub, "bech32m")
    key = wallet.keys.private_key(spk)
    assert key.xonly_public_key == pub[1:] and key.taproot_tweaked(None).xonly_public_key == spk[2:]
    assert wallet.keys.is_mine(spk) and wallet.keys.address_type(spk) == "bech32m"
    # only the script handed out is ours: not the key's P2WPKH, not the untweaked key as P2TR
    assert not wallet.keys.is_mine(b"\x00\x14" + hash160(pub))
    assert not wallet.keys.is_mine(b"\x51\x20" + pub[1:])
    # the default stays bech32 (P2WPKH), change too
    assert wallet.keys.new_address().startswith("bcrt1q")
    assert wallet.keys.new_change_script()[:2] == b"\x00\x14"
    assert wallet.keys.new_change_script("bech32m")[:2] == b"\x51\x20"


def test_bech32m_type_persists_and_old_files_still_open(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2)
    tr, seg = w.keys.new_address(addr_type="bech32m"), w.keys.new_address()
    w.close()
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2)
    assert {a.address: a.addr_type for a in w.keys.addresses()} == {tr: "bech32m", seg: "bech32"}
    assert w.keys.is_mine(decode_address(tr, P).script_pubkey)
    w.close()
    # a schema-1 (legacy-only) file migrates; its unissued pool key can become a P2TR address
    pool_key = PrivateKey(bytes(31) + b"\x2b")
    path = tmp_path / "old.sqlite"
    _schema1_wallet(path, [(PrivateKey(bytes(31) + b"\x2a"), 0, True), (pool_key, 0, False)])
    w = Wallet(P, WalletStore(path), keypool_size=2)
    tr = w.keys.new_address(addr_type="bech32m")
    assert decode_address(tr, P).script_pubkey[2:] == taproot_tweak_pubkey(pool_key.xonly_public_key)[0]
    w.close()
    w = Wallet(P, WalletStore(path), keypool_size=2)
    assert {a.address: a.addr_type for a in w.keys.addresses()}[tr] == "bech32m"
    assert w.store.get_meta("schema_version") == b"2"
    w.close()


def test_sign_p2tr_keypath_is_64_bytes_and_commits_to_all_spent_outputs(wallet):
    spk = decode_address(wallet.keys.new_address(addr_type="bech32m"), P).script_pubkey
    chain = FakeChain(wallet)
    chain.mine(spk)
    for _ in range(100):
        chain.mine(OTHER)
    c = wallet.create_transaction([(OTHER, 10 * COIN)], fee_rate=1000)
    tx = c.tx
    assert len(tx.vin) == 1 and tx.vin[0].script_sig == b""
    assert len(tx.vin[0].witness) == 1 and len(tx.vin[0].witness[0]) == 64
    verify_all(wallet, tx)
    # a signature made over other spent outputs (another amount) fails: it signs them all
    key = wallet.keys.private_key(spk)
    wrong = PrecomputedTxData.for_tx(tx, [TxOut(50 * COIN - 1, spk)])
    bad = sign_p2tr_keypath(tx, 0, key, wrong)
    from dataclasses import replace
    from tinynode.primitives.tx import TxIn
    bad_tx = replace(tx, vin=(TxIn(tx.vin[0].prevout, b"", tx.vin[0].sequence, bad),))
    with pytest.raises(ScriptError) as e:
        verify_script(b"", spk, bad_tx, 0, TAPROOT_CONSENSUS, amount=50 * COIN,
                      txdata=PrecomputedTxData.for_tx(bad_tx, [TxOut(50 * COIN, spk)]))
    assert e.value.code == "SCHNORR_SIG"
    # with a hash type other than DEFAULT the signature carries its byte (65 bytes)
    txdata = PrecomputedTxData.for_tx(tx, [TxOut(50 * COIN, spk)])
    (sig,) = sign_p2tr_keypath(tx, 0, key, txdata, hash_type=1, aux=bytes(32))
    assert len(sig) == 65 and sig[64] == 1
    digest = taproot_sighash(tx, 0, 1, txdata)
    assert sig[:64] == key.taproot_tweaked(None).sign_schnorr(digest, bytes(32))


def test_mixed_p2wpkh_p2tr_p2pkh_spend_verifies_every_input(wallet):
    chain = FakeChain(wallet)
    spks = {t: decode_address(wallet.keys.new_address(addr_type=t), P).script_pubkey
            for t in ("bech32m", "bech32", "legacy")}
    for t in ("bech32m", "bech32", "legacy"):
        chain.mine(spks[t])
    for _ in range(100):
        chain.mine(OTHER)
    assert wallet.balances().trusted == 150 * COIN
    # 140 coins need all three coinbases
    c = wallet.create_transaction([(OTHER, 140 * COIN)], fee_rate=1000)
    tx = c.tx
    by_type = {wallet.keys.address_type(wallet.is_mine_output(i.prevout).script_pubkey): i
               for i in tx.vin}
    assert set(by_type) == {"bech32m", "bech32", "legacy"}
    assert len(by_type["bech32m"].witness) == 1 and len(by_type["bech32m"].witness[0]) == 64
    assert len(by_type["bech32"].witness) == 2 and by_type["legacy"].witness == ()
    verify_all(wallet, tx)
    # a P2PKH recipient gets P2PKH change (Core TransactionChangeType: change like a recipient)
    assert wallet.keys.address_type(tx.vout[c.change_index].script_pubkey) == "legacy"
    # estimate at 1 sat/vB: 10 + 34 (P2PKH recipient) + 58 + 68 + 148 + 1 + 34 (P2PKH change)
    assert c.fee == 353 and 351 <= tx.vsize <= 353


def test_p2tr_sizes_and_change_type_bech32m(tmp_path):
    assert (P2TR_INPUT_SIZE, P2TR_OUTPUT_SIZE) == (58, 43)
    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2, change_type="bech32m")
    try:
        spk = decode_address(w.keys.new_address(addr_type="bech32m"), P).script_pubkey
        chain = FakeChain(w)
        chain.mine(spk)
        for _ in range(100):
            chain.mine(OTHER)
        c = w.create_transaction([(spk, 10 * COIN)], fee_rate=1000)
        tx = c.tx
        assert tx.vout[c.change_index].script_pubkey[:2] == b"\x51\x20"
        assert w.keys.address_type(tx.vout[c.change_index].script_pubkey) == "bech32m"
        # 10 + 43 + 58 + 1 (marker, flag) + 43 (P2TR change) = 155 vB; the real tx: 154.5 → 154
        assert c.fee == 155 and tx.vsize == 154
        verify_all(w, tx)
    finally:
        w.close()


def test_change_type_follows_core_transaction_change_type(tmp_path):
    """issue 16: Core `CWallet::TransactionChangeType` on the change output's script: a P2TR
    recipient → P2TR change, P2WPKH → P2WPKH, P2SH → P2SH-P2WPKH, P2PKH → P2PKH, anything else
    (P2WSH) → P2TR (the newest type the wallet makes); -changetype or the call's change_type wins, and a
    legacy -addresstype wallet makes legacy change."""
    from tinynode.primitives.address import p2sh_script
    tr_dest = witness_script(1, bytes(range(32)))
    wpkh_dest = witness_script(0, bytes(20))
    wsh_dest = witness_script(0, bytes(32))
    sh_dest = p2sh_script(bytes(20))

    def change_of(w, outputs, **kw):
        c = w.create_transaction(outputs, fee_rate=1000, **kw)
        spk = c.tx.vout[c.change_index].script_pubkey
        assert w.keys.is_change(spk)
        verify_all(w, c.tx)
        return spk

    w = Wallet(P, WalletStore(tmp_path / "w.sqlite"), keypool_size=2)
    try:
        chain = FakeChain(w)
        chain.mine(decode_address(w.keys.new_address(), P).script_pubkey)
        for _ in range(100):
            chain.mine(OTHER)
        assert w.transaction_change_type([(OTHER, 1)]) == "legacy"
        assert change_of(w, [(tr_dest, COIN)])[:2] == b"\x51\x20"
        assert change_of(w, [(wpkh_dest, COIN)])[:2] == b"\x00\x14"
        assert change_of(w, [(OTHER, COIN)])[:3] == b"\x76\xa9\x14"
        assert change_of(w, [(wsh_dest, COIN)])[:2] == b"\x51\x20"
        assert change_of(w, [(sh_dest, COIN)])[:2] == b"\xa9\x14"        # p2sh-segwit
        # P2TR beats P2WPKH beats P2PKH among several recipients
        assert change_of(w, [(OTHER, COIN), (wpkh_dest, COIN), (tr_dest, COIN)])[:2] == b"\x51\x20"
        assert change_of(w, [(OTHER, COIN), (wpkh_dest, COIN)])[:2] == b"\x00\x14"
        # an explicit change type wins
        assert change_of(w, [(tr_dest, COIN)], change_type="legacy")[:3] == b"\x76\xa9\x14"
        assert change_of(w, [(tr_dest, COIN)], change_type="p2sh-segwit")[:2] == b"\xa9\x14"
        with pytest.raises(WalletError, match="No p2sh addresses available"):
            w.create_transaction([(tr_dest, COIN)], change_type="p2sh")
    finally:
        w.close()
    w = Wallet(P, WalletStore(tmp_path / "w2.sqlite"), keypool_size=2, change_type="bech32")
    try:
        assert w.transaction_change_type([(tr_dest, 1)]) == "bech32"       # -changetype wins
        assert w.change_type == "bech32"
    finally:
        w.close()
    w = Wallet(P, WalletStore(tmp_path / "w3.sqlite"), keypool_size=2, address_type="legacy")
    try:
        assert w.transaction_change_type([(tr_dest, 1)]) == "legacy"       # legacy wallet
        assert w.change_type == "legacy"                                    # getrawchangeaddress
    finally:
        w.close()
