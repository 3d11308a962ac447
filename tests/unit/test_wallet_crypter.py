"""Wallet encryption (wallet/crypter.py, KeyStore): secrets sealed at rest under a master key
wrapped by scrypt + AES-256-GCM, the unlock deadline read from an injected clock, the
passphrase changed without touching the keys."""
import sqlite3

import pytest

from tinynode.params import REGTEST as P
from tinynode.primitives.address import decode_address, decode_wif, encode_wif
from tinynode.storage.wallet import WalletStore
from tinynode.wallet.crypter import MasterKey, WalletLocked, WrongPassphrase
from tinynode.wallet.keystore import KeypoolRanOut
from tinynode.wallet.wallet import Wallet

FAST = 1 << 10          # a cheap scrypt cost for tests (the stored cost is what unlock uses)


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _secret_columns(path) -> list[bytes]:
    with sqlite3.connect(str(path)) as db:
        return [bytes(r[0]) for r in db.execute("SELECT secret FROM keys")]


def test_master_key_round_trip_and_wrong_passphrase():
    mk = MasterKey.wrap(b"\x11" * 32, "correct horse", n=FAST)
    again = MasterKey.from_bytes(mk.to_bytes())
    assert again == mk and again.unwrap("correct horse") == b"\x11" * 32
    with pytest.raises(WrongPassphrase, match="^Error: The wallet passphrase entered was incorrect.$"):
        again.unwrap("wrong")


def test_encrypt_seals_every_secret_on_disk_and_the_deadline_relocks(tmp_path):
    clock = Clock()
    path = tmp_path / "wallet.sqlite"
    w = Wallet(P, WalletStore(path), keypool_size=3, now=clock)
    addr = w.keys.new_address("a")
    secret, _ = decode_wif(w.keys.export_wif(addr), P)
    clear = set(_secret_columns(path))
    assert secret in clear and all(len(s) == 32 for s in clear)

    w.keys.encrypt("pw", kdf_n=FAST)
    assert w.keys.locked
    stored = _secret_columns(path)
    assert len(stored) == len(clear) and not clear & set(stored)
    assert all(len(s) == 12 + 32 + 16 for s in stored)           # nonce, ciphertext, GCM tag
    assert secret not in path.read_bytes()                       # no page of the clear key left
    spk = decode_address(addr, P).script_pubkey
    with pytest.raises(WalletLocked, match="walletpassphrase first"):
        w.keys.private_key(spk)

    with pytest.raises(WrongPassphrase):
        w.keys.crypter.unlock("nope", 60)
    relock = w.keys.crypter.unlock("pw", 60)
    assert relock == int(clock.t) + 60 and not w.keys.locked
    assert w.keys.private_key(spk).secret == secret
    clock.t += 59.5
    assert not w.keys.locked
    clock.t += 0.5                                               # the deadline: locked, keys forgotten
    assert w.keys.locked and w.keys.crypter.relock_time == 0
    with pytest.raises(WalletLocked):
        w.keys.private_key(spk)

    # change the passphrase: same keys, old one refused
    w.keys.change_passphrase("pw", "pw2")
    with pytest.raises(WrongPassphrase):
        w.keys.crypter.unlock("pw", 10)
    w.close()
    w2 = Wallet(P, WalletStore(path), keypool_size=3, now=clock)   # reopens locked
    assert w2.keys.locked and w2.keys.is_mine(spk)
    w2.keys.crypter.unlock("pw2", 10)
    assert w2.keys.private_key(spk).secret == secret
    w2.keys.crypter.lock()
    with pytest.raises(WalletLocked):
        w2.keys.import_wif(encode_wif(bytes(31) + b"\x07", True, P))   # a new key needs the master key
    w2.close()


def test_locked_wallet_hands_out_its_pool_then_runs_out(tmp_path):
    w = Wallet(P, WalletStore(tmp_path / "wallet.sqlite"), keypool_size=2)
    w.keys.encrypt("pw", kdf_n=FAST)
    got = {w.keys.new_address() for _ in range(2)}       # the pool made before encrypting
    assert len(got) == 2
    with pytest.raises(KeypoolRanOut, match="^Error: Keypool ran out, please call keypoolrefill first$"):
        w.keys.new_address()
    w.keys.crypter.unlock("pw", 100)
    w.keys.top_up()                                       # new keys sealed with the master key
    assert w.keys.new_address() not in got
    w.close()
