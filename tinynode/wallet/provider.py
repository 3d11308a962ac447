"""The wallet as a signing provider for `script.sign.sign_transaction` (Core's wallet
`SignTransaction` over its script pub key managers), used by `signrawtransactionwithwallet`.

The wallet signs the scripts it handed out, each as its type: P2PKH, P2WPKH, and P2TR by the
key path with the BIP86 tweak (Core's `tr(KEY)` descriptor: internal key, no script tree). Also a
bare P2PK of a key it holds as P2PKH (as before), and P2SH-P2WPKH wrapping one of its P2WPKH
scripts or its own p2sh-segwit scripts (the redeem script is found from the wallet's own
scripts, as Core's `sh(wpkh())`).
"""

from __future__ import annotations

from ..primitives.address import p2pkh_script, p2sh_script, witness_script
from ..primitives.hashes import hash160
from ..primitives.keys import PrivateKey
from .keystore import BECH32M, KeyStore

__all__ = ["WalletSigningProvider"]


class WalletSigningProvider:
    """Answers `SigningProvider` questions from one `KeyStore` (read only; one signing call)."""

    def __init__(self, keys: KeyStore):
        self._keys = keys
        self._wrapped: dict[bytes, bytes] | None = None

    def key_for(self, keyid: bytes, script_pubkey: bytes) -> PrivateKey | None:
        """The key behind `script_pubkey` if the wallet handed that script out; for a bare P2PK,
        the key of the wallet's P2PKH script of the same key."""
        spk = script_pubkey
        if spk[-1:] == b"\xac" and len(spk) in (35, 67) and not self._keys.is_mine(spk):
            spk = p2pkh_script(keyid)       # P2PK of a key held as P2PKH
        elif len(spk) == 22 and spk[:2] == b"\x00\x14" and not self._keys.is_mine(spk):
            spk = p2sh_script(hash160(spk))  # the P2WPKH inside one of our p2sh-segwit scripts
        key = self._keys.private_key(spk)
        if key is None or hash160(key.public_key.sec) != keyid:
            return None
        return key

    def redeem_script(self, scriptid: bytes) -> bytes | None:
        """The wallet's P2WPKH script whose hash160 is `scriptid` (the P2SH-P2WPKH redeem script)."""
        if self._wrapped is None:
            self._wrapped = {hash160(spk): spk for spk in self._keys.scripts()
                             if len(spk) == 22 and spk[:2] == b"\x00\x14"}
            for spk in self._keys.scripts():
                redeem = self._keys.redeem_script(spk)
                if redeem is not None:
                    self._wrapped[spk[2:22]] = redeem
        return self._wrapped.get(scriptid)

    def taproot_key(self, output_key: bytes) -> tuple[PrivateKey, bool] | None:
        """The internal key of one of the wallet's bech32m scripts, to be tweaked (BIP86)."""
        spk = witness_script(1, output_key)
        if self._keys.address_type(spk) != BECH32M:
            return None
        key = self._keys.private_key(spk)
        return (key, True) if key is not None else None
