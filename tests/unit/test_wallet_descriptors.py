"""issues 16/18, the wallet part of Core's functional tests: p2sh-segwit addresses and imported
combo() descriptors.

- `getnewaddress p2sh-segwit` (Core `OutputType::P2SH_SEGWIT`, `sh(wpkh(KEY))`): the wallet's
  P2SH-P2WPKH script, ours (and not the key's bare P2WPKH), spent with the P2WPKH witness and a
  scriptSig pushing the redeem script, by the wallet and by `sign_transaction` over the wallet's
  signing provider (`signrawtransactionwithwallet`);
- `import_descriptor` of Core's combo(KEY): P2PK, P2PKH, P2WPKH and P2SH-P2WPKH of one key, all
  watched; a rescan from height 0 finds coins paid to each before the import, in chain order,
  and each of them is spent (signed as its type) and verifies."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tinynode.params import REGTEST
from tinynode.primitives.address import decode_address, encode_wif, p2sh_script, witness_script
from tinynode.primitives.hashes import hash160
from tinynode.primitives.keys import PrivateKey
from tinynode.primitives.tx import COIN, Tx, TxIn, TxOut
from tinynode.script.flags import STANDARD_FLAGS
from tinynode.script.interpreter import verify_script
from tinynode.script.sighash import PrecomputedTxData
from tinynode.script.scan_descriptor import expand_descriptor
from tinynode.script.script import core_push
from tinynode.script.sign import sign_transaction
from tinynode.storage.wallet import WalletStore
from tinynode.wallet.provider import WalletSigningProvider
from tinynode.wallet.wallet import CONFIRMED, Wallet
from tests.unit.test_wallet import OTHER, FakeChain

P = REGTEST
KEY = PrivateKey((0x51).to_bytes(32, "big"), True)


@pytest.fixture
def wallet(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "wallet.sqlite"), keypool_size=3)
    yield w
    w.close()


def verify_all(tx: Tx, spent: list[TxOut]) -> None:
    txdata = PrecomputedTxData.for_tx(tx, spent, force=False)
    for i, txin in enumerate(tx.vin):
        verify_script(txin.script_sig, spent[i].script_pubkey, tx, i, STANDARD_FLAGS,
                      amount=spent[i].value, txdata=txdata)


class ChainView:
    """The part of ChainState a rescan reads, over a FakeChain's blocks."""

    def __init__(self, chain: FakeChain):
        self.chain = chain

    @property
    def tip(self):
        return SimpleNamespace(height=len(self.chain.blocks))

    def get_block_hash(self, h):
        return self.chain.blocks[h - 1].hash if 1 <= h <= len(self.chain.blocks) else None

    def get_block(self, bhash):
        return next(b for b in self.chain.blocks if b.hash == bhash)


def test_p2sh_segwit_address_is_ours_and_spent_with_redeem_script_and_witness(wallet):
    addr = wallet.keys.new_address("wrapped", addr_type="p2sh-segwit")
    assert addr[0] == "2"                                    # regtest P2SH (prefix 196)
    spk = decode_address(addr, P).script_pubkey
    pub = wallet.keys.pubkey(spk)
    redeem = witness_script(0, hash160(pub))
    assert spk == p2sh_script(hash160(redeem)) and wallet.keys.redeem_script(spk) == redeem
    assert wallet.keys.address_type(spk) == "p2sh-segwit" and wallet.keys.label_of(spk) == "wrapped"
    assert wallet.keys.is_mine(spk) and not wallet.keys.is_mine(redeem)
    chain = FakeChain(wallet)
    chain.mine(spk)
    for _ in range(100):
        chain.mine(OTHER)
    assert wallet.balances().trusted == 50 * COIN
    c = wallet.create_transaction([(OTHER, 10 * COIN)], fee_rate=1000)
    txin = c.tx.vin[0]
    assert txin.script_sig == core_push(redeem)
    assert len(txin.witness) == 2 and txin.witness[1] == pub
    verify_all(c.tx, [TxOut(50 * COIN, spk)])
    # the same coin through Core's SignTransaction over the wallet's provider
    unsigned = Tx(2, (TxIn(txin.prevout, b"", 0xFFFFFFFD),), (TxOut(49 * COIN, OTHER),), 0)
    res = sign_transaction(unsigned, [TxOut(50 * COIN, spk)], WalletSigningProvider(wallet.keys))
    assert res.complete and res.errors == {}
    assert res.tx.vin[0].script_sig == core_push(redeem)
    verify_all(res.tx, [TxOut(50 * COIN, spk)])


def test_change_to_a_p2sh_recipient_is_p2sh_segwit(wallet):
    chain = FakeChain(wallet)
    chain.mine(decode_address(wallet.keys.new_address(), P).script_pubkey)
    for _ in range(100):
        chain.mine(OTHER)
    assert wallet.transaction_change_type([(p2sh_script(bytes(20)), 1)]) == "p2sh-segwit"


def test_combo_import_watches_four_scripts_and_rescan_finds_and_spends_them(wallet):
    wif = encode_wif(KEY.secret, True, P)
    scripts = [e.script_pubkey for e in expand_descriptor(f"combo({wif})", P)]
    kinds = ["pk", "legacy", "bech32", "p2sh-segwit"]
    chain = FakeChain(wallet)
    for spk in scripts:                       # paid before the wallet knows the key
        chain.mine(spk)
    for _ in range(100):
        chain.mine(OTHER)
    assert wallet.balances().total == 0
    added = wallet.keys.import_descriptor(KEY.secret, True, list(zip(scripts, kinds)), "coinbase")
    assert added == 4
    assert [wallet.keys.address_type(s) for s in scripts] == kinds
    assert wallet.keys.label_of(scripts[1]) == "coinbase" and wallet.keys.label_of(scripts[0]) == ""
    # a second import of the same descriptor adds nothing
    assert wallet.keys.import_descriptor(KEY.secret, True, list(zip(scripts, kinds)), "coinbase") == 0
    assert wallet.rescan(ChainView(chain), 0) == len(chain.blocks)
    coins = sorted(wallet.coins(), key=lambda c: c.confirmations, reverse=True)
    assert [c.script_pubkey for c in coins] == scripts
    assert all(c.mature and c.trusted for c in coins)
    assert coins[0].address is None                        # P2PK has no address
    assert all(wallet.get_tx(c.outpoint.txid).state == CONFIRMED for c in coins)
    assert wallet.balances().trusted == 200 * COIN
    # the wallet spends all four in one tx, each input signed as its type
    c = wallet.create_transaction([(OTHER, 199 * COIN)], fee_rate=1000)
    spent = [wallet.is_mine_output(i.prevout) for i in c.tx.vin]
    assert sorted(o.script_pubkey for o in spent) == sorted(scripts)
    verify_all(c.tx, spent)
    chain.mine(OTHER, txs=(c.tx,))
    assert wallet.balances().total == 200 * COIN - 199 * COIN - c.fee


def test_rescan_records_spends_of_coins_found_earlier(tmp_path, wallet):
    scripts = [e.script_pubkey for e in expand_descriptor(f"combo({encode_wif(KEY.secret, True, P)})", P)]
    kinds = ["pk", "legacy", "bech32", "p2sh-segwit"]
    chain = FakeChain(wallet)
    wallet.keys.import_descriptor(KEY.secret, True, list(zip(scripts, kinds)))
    chain.mine(scripts[2])
    for _ in range(100):
        chain.mine(OTHER)
    c = wallet.create_transaction([(OTHER, 20 * COIN)], fee_rate=1000)
    chain.mine(OTHER, txs=(c.tx,))
    # another wallet imports the key afterwards and rescans: the coin and its spend
    w2 = Wallet(P, WalletStore(tmp_path / "w2.sqlite"), keypool_size=1)
    try:
        w2._set_tip(len(chain.blocks), chain.blocks[-1].hash)
        w2.keys.import_descriptor(KEY.secret, True, list(zip(scripts, kinds)))
        w2.rescan(ChainView(chain), 0)
        # the coin is found, then its spend (the change went to the first wallet's own key)
        assert w2.balances().total == 0 and len(w2.transactions()) == 2
        assert w2.get_tx(c.tx.txid).state == CONFIRMED
    finally:
        w2.close()
