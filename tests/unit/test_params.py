"""Network parameters: genesis blocks hash to the published values and meet their own PoW."""
from tinynode.params import REGTEST, TINYNET, TINYNET_GENESIS_HASH_HEX


def test_regtest_genesis_is_bitcoin_cores():
    assert REGTEST.genesis.hash_hex == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert REGTEST.magic == bytes.fromhex("fabfb5da") and REGTEST.default_port == 18444


def test_tinynet_genesis_constants_and_pow():
    g = TINYNET.genesis
    assert g.hash_hex == TINYNET_GENESIS_HASH_HEX
    assert g.header.check_pow(TINYNET.pow_limit)
    assert TINYNET.magic == b"tiny" and TINYNET.default_port == 9999
    assert (TINYNET.pubkey_prefix, TINYNET.script_prefix, TINYNET.wif_prefix) == (65, 127, 193)
    assert TINYNET.pow_target_spacing == 10 and TINYNET.retarget_window == 60
    assert TINYNET.coinbase_maturity == 10


import json
from pathlib import Path

import pytest

from tinynode.params import build_genesis, get_params
from tinynode.primitives.block import Block, bits_to_target
from tinynode.primitives.hashes import hash_to_hex

GENESIS = json.loads((Path(__file__).resolve().parents[1] / "data" / "genesis.json").read_text())


@pytest.mark.parametrize("net", ["main", "testnet3", "regtest", "testnet4"])
def test_genesis_rebuilt_from_core_fields(net):
    g = GENESIS["networks"][net]
    h = g["header"]
    block = build_genesis(bytes.fromhex(g["coinbase_scriptSig_hex"]),
                          bytes.fromhex(g["coinbase_output_scriptPubKey_hex"]),
                          h["nTime"], h["nBits_int"], h["nNonce"], version=h["nVersion"],
                          reward=g["coinbase_output_value_sat"])
    assert block.hash_hex == g["block_hash"]
    assert block.hash.hex() == g["block_hash_internal_byte_order"]
    assert hash_to_hex(block.header.merkle_root) == g["merkle_root"] == g["coinbase_txid"]
    assert block.txs[0].raw.hex() == g["coinbase_tx_hex"]
    assert block.header.serialize().hex() == g["header_hex"]
    assert block.serialize().hex() == g["block_hex"] and block.size == g["block_size"]
    assert Block.from_bytes(bytes.fromhex(g["block_hex"])) == block
    pow_limit = int(g["params"]["powLimit"], 16)
    assert bits_to_target(int(g["params"]["powLimit_compact"], 16))[0] <= pow_limit
    assert block.header.check_pow(pow_limit)


def test_regtest_matches_core_params():
    p = GENESIS["networks"]["regtest"]["params"]
    assert REGTEST.magic.hex() == p["message_start"] and REGTEST.default_port == p["default_port"]
    assert REGTEST.subsidy_halving_interval == p["nSubsidyHalvingInterval"]
    assert REGTEST.pow_limit_bits == int(p["powLimit_compact"], 16)
    assert REGTEST.pow_target_spacing == p["nPowTargetSpacing"]
    assert REGTEST.pow_target_timespan == p["nPowTargetTimespan"]
    assert REGTEST.retarget_window == p["DifficultyAdjustmentInterval"]
    assert REGTEST.no_retargeting == p["fPowNoRetargeting"]
    assert REGTEST.allow_min_difficulty == p["fPowAllowMinDifficultyBlocks"]
    assert REGTEST.coinbase_maturity == p["COINBASE_MATURITY"]
    pre = p["base58_prefixes"]
    assert (REGTEST.pubkey_prefix, REGTEST.script_prefix, REGTEST.wif_prefix) == (
        pre["PUBKEY_ADDRESS"], pre["SCRIPT_ADDRESS"], pre["SECRET_KEY"])
    assert REGTEST.genesis.hash_hex == GENESIS["networks"]["regtest"]["block_hash"]


def test_subsidy_and_lookup():
    assert REGTEST.block_subsidy(0) == 50 * 10**8
    assert REGTEST.block_subsidy(150) == 25 * 10**8
    assert REGTEST.block_subsidy(150 * 64) == 0
    assert TINYNET.block_subsidy(209_999) == 50 * 10**8
    assert get_params("regtest") is REGTEST and get_params("tinynet") is TINYNET
    with pytest.raises(ValueError):
        get_params("mainnet")
