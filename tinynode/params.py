"""Network parameters: one frozen `ChainParams` per network, passed everywhere.

`REGTEST` is Bitcoin Core's regtest (same genesis, magic, port, prefixes, no retargeting), so
tinynode interoperates with other regtest software. `TINYNET` is the demo network: blocks every
10 s, Bitcoin's retarget algorithm over a 60-block window, coinbases spendable after 10 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .primitives.block import Block, BlockHeader, bits_to_target, merkle_root
from .primitives.tx import COIN, Tx, TxIn, TxOut, NULL_OUTPOINT

__all__ = ["ChainParams", "REGTEST", "TINYNET", "NETWORKS", "build_genesis", "get_params",
           "parse_activation_height"]

#: Satoshi's genesis coinbase scriptSig and output script (shared by mainnet, testnet3, regtest).
_SATOSHI_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20"
    "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
_SATOSHI_OUTPUT_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f355"
    "04e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac"
)


def build_genesis(script_sig: bytes, output_script: bytes, time: int, bits: int, nonce: int,
                  version: int = 1, reward: int = 50 * COIN) -> Block:
    """Core's `CreateGenesisBlock`: one coinbase paying `reward` to `output_script`."""
    coinbase = Tx(1, (TxIn(NULL_OUTPOINT, script_sig, 0xFFFFFFFF),), (TxOut(reward, output_script),), 0)
    root, _ = merkle_root([coinbase.txid])
    header = BlockHeader(version, bytes(32), root, time, bits, nonce)
    return Block(header, (coinbase,))


#: Core `GetBuriedDeployment` names (-testactivationheight) -> ChainParams field
_DEPLOYMENT_FIELDS = {"segwit": "segwit_height", "bip34": "bip34_height", "dersig": "bip66_height",
                      "cltv": "bip65_height", "csv": "csv_height"}


@dataclass(frozen=True, slots=True)
class ChainParams:
    name: str
    magic: bytes
    default_port: int
    genesis: Block = field(repr=False)
    pow_limit_bits: int
    pow_target_spacing: int          # seconds
    retarget_window: int             # blocks per difficulty period
    no_retargeting: bool
    allow_min_difficulty: bool
    subsidy_halving_interval: int
    coinbase_maturity: int
    pubkey_prefix: int
    script_prefix: int
    wif_prefix: int
    bech32_hrp: str                  # BIP173 human-readable part of segwit addresses
    max_block_weight: int = 4_000_000       # Core MAX_BLOCK_WEIGHT (BIP141)
    max_block_sigops_cost: int = 80_000     # Core MAX_BLOCK_SIGOPS_COST (BIP141)
    max_future_block_time: int = 2 * 60 * 60
    enforce_bip94: bool = False              # Core consensus.enforce_BIP94 (regtest: -test=bip94)
    default_bind: str = "127.0.0.1"
    mine_by_default: bool = False
    # Buried soft-fork activation heights (Core `Consensus::Params` BIP34Height, BIP65Height,
    # BIP66Height, CSVHeight, SegwitHeight); Core's regtest defaults, movable on test chains with
    # `--testactivationheight NAME@H` (Core -testactivationheight, `with_activation_heights`).
    bip34_height: int = 1
    bip65_height: int = 1
    bip66_height: int = 1
    csv_height: int = 1
    segwit_height: int = 0
    #: Core `nMinimumChainWork` (-minimumchainwork): below it we are in IBD, and headers/blocks
    #: of chains with less work are not stored (AcceptBlockHeader's anti-DoS threshold)
    minimum_chain_work: int = 0
    #: Core `IsTestChain()`: test-only options (-acceptnonstdtxn, -testactivationheight) allowed
    is_test_chain: bool = False
    #: Core `-acceptnonstdtxn` negated (mempool `require_standard`): off only on test chains
    require_standard: bool = True

    @property
    def pow_limit(self) -> int:
        return bits_to_target(self.pow_limit_bits)[0]

    @property
    def pow_target_timespan(self) -> int:
        return self.pow_target_spacing * self.retarget_window

    @property
    def genesis_hash(self) -> bytes:
        return self.genesis.hash

    def activation_height(self, name: str) -> int:
        """Height of a buried deployment by Core's `-testactivationheight` name."""
        return getattr(self, _DEPLOYMENT_FIELDS[name])

    def with_activation_heights(self, heights: dict[str, int]) -> "ChainParams":
        """Core `ReadRegTestArgs(-testactivationheight)`: these params with some buried
        deployments moved (names: segwit, bip34, dersig, cltv, csv)."""
        for name in heights:
            if name not in _DEPLOYMENT_FIELDS:
                raise ValueError(f"Invalid name ({name}) for -testactivationheight=name@height.")
        return replace(self, **{_DEPLOYMENT_FIELDS[n]: h for n, h in heights.items()})

    def block_subsidy(self, height: int) -> int:
        """Core's `GetBlockSubsidy`."""
        halvings = height // self.subsidy_halving_interval
        if halvings >= 64:
            return 0
        return (50 * COIN) >> halvings


REGTEST = ChainParams(
    name="regtest",
    magic=bytes.fromhex("fabfb5da"),
    default_port=18444,
    genesis=build_genesis(_SATOSHI_SCRIPT_SIG, _SATOSHI_OUTPUT_SCRIPT, 1296688602, 0x207FFFFF, 2),
    pow_limit_bits=0x207FFFFF,
    pow_target_spacing=600,
    retarget_window=144,
    no_retargeting=True,
    allow_min_difficulty=True,
    subsidy_halving_interval=150,
    coinbase_maturity=100,
    pubkey_prefix=111,
    script_prefix=196,
    wif_prefix=239,
    bech32_hrp="bcrt",
    is_test_chain=True,
)

#: tinynet's genesis, mined once by `contrib/mine_genesis.py` (constants committed below).
TINYNET_GENESIS_MESSAGE = b"tinynode 2026-11-23: a pocket-sized Bitcoin node"
TINYNET_GENESIS_TIME = 1795435200
TINYNET_GENESIS_BITS = 0x1E015798
TINYNET_GENESIS_NONCE = 5991803
TINYNET_GENESIS_HASH_HEX = "000000ab27d1123624fb229219c1536a225862ec5f6620ec42e67a40b109738a"


def tinynet_genesis_script_sig() -> bytes:
    """Genesis coinbase scriptSig: `<bits> <4> <message>`, shaped like Satoshi's."""
    msg = TINYNET_GENESIS_MESSAGE
    return (bytes((4,)) + TINYNET_GENESIS_BITS.to_bytes(4, "little") + b"\x01\x04"
            + bytes((len(msg),)) + msg)


TINYNET = ChainParams(
    name="tinynet",
    magic=b"tiny",
    default_port=9999,
    genesis=build_genesis(tinynet_genesis_script_sig(), b"\x6a", TINYNET_GENESIS_TIME,
                          TINYNET_GENESIS_BITS, TINYNET_GENESIS_NONCE),
    pow_limit_bits=0x1F00FFFF,
    pow_target_spacing=10,
    retarget_window=60,
    no_retargeting=False,
    allow_min_difficulty=False,
    subsidy_halving_interval=210_000,
    coinbase_maturity=10,
    pubkey_prefix=65,
    script_prefix=127,
    wif_prefix=193,
    bech32_hrp="tn0",                # never a prefix of a tinynet base58 address (no "0" in base58)
    default_bind="0.0.0.0",
    mine_by_default=True,
)

NETWORKS: dict[str, ChainParams] = {"regtest": REGTEST, "tinynet": TINYNET}


def get_params(name: str) -> ChainParams:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r} (choose from {', '.join(NETWORKS)})") from None


def parse_activation_height(text: str) -> tuple[str, int]:
    """One `-testactivationheight=name@height` value (Core ReadRegTestArgs); ValueError with
    Core's wording when it cannot be read."""
    name, sep, value = text.partition("@")
    if not sep:
        raise ValueError(f"Invalid format ({text}) for -testactivationheight=name@height.")
    try:
        height = int(value, 10)
    except ValueError:
        height = -1
    if not 0 <= height < 2**31 - 1 or not value.strip().isdigit():
        raise ValueError(f"Invalid height value ({text}) for -testactivationheight=name@height.")
    if name not in _DEPLOYMENT_FIELDS:
        raise ValueError(f"Invalid name ({text}) for -testactivationheight=name@height.")
    return name, height
