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
