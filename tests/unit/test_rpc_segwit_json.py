"""RPC JSON of segwit data as Core v31's TxToUniv / ScriptToUniv / DescribeAddress."""

from types import SimpleNamespace

from tinynode.params import REGTEST
from tinynode.primitives.tx import OutPoint, Tx, TxIn, TxOut
from tinynode.rpc.rawtx import RawTxRPC
from tinynode.rpc.util import RPCArea, _script_pubkey_json

WIT = (b"\x30" * 71, b"\x02" * 33)
TX = Tx(2, (TxIn(OutPoint(b"\x11" * 32, 0), b"", 0xFFFFFFFE, witness=WIT),
            TxIn(OutPoint(b"\x22" * 32, 1), b"", 0xFFFFFFFE)),
        (TxOut(1000, b"\x00\x14" + bytes(20)),), 0)


def test_tx_to_json_segwit_fields():
    j = RPCArea(SimpleNamespace(params=REGTEST)).tx_to_json(TX)
    assert j["txid"] == TX.txid_hex and j["hash"] == TX.wtxid_hex != TX.txid_hex
    assert (j["size"], j["vsize"], j["weight"]) == (TX.size, TX.vsize, TX.weight)
    assert j["weight"] == TX.base_size * 3 + TX.size and j["vsize"] == (j["weight"] + 3) // 4
    assert list(j["vin"][0]) == ["txid", "vout", "scriptSig", "txinwitness", "sequence"]
    assert j["vin"][0]["txinwitness"] == [w.hex() for w in WIT]
    assert "txinwitness" not in j["vin"][1]
    assert j["hex"] == TX.raw.hex()


def test_witness_script_pubkey_types_and_addresses():
    cases = {
        "0014" + "11" * 20: ("witness_v0_keyhash", "bcrt1q"),
        "0020" + "22" * 32: ("witness_v0_scripthash", "bcrt1q"),
        "5120" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798": ("witness_v1_taproot", "bcrt1p"),
        "5202" + "abcd": ("witness_unknown", "bcrt1z"),
        "51024e73": ("anchor", "bcrt1p"),
    }
    for spk, (kind, prefix) in cases.items():
        j = _script_pubkey_json(bytes.fromhex(spk), REGTEST)
        assert j["type"] == kind and j["address"].startswith(prefix), (spk, j)
    assert _script_pubkey_json(bytes.fromhex("0015" + "11" * 21), REGTEST)["type"] == "nonstandard"
    j = _script_pubkey_json(bytes.fromhex("0014" + "11" * 20), REGTEST)
    assert j["desc"].startswith(f"addr({j['address']})#")


async def test_validateaddress_bech32():
    rpc = RawTxRPC(SimpleNamespace(params=REGTEST))
    j = await rpc.m_validateaddress("bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9")
    assert j == {"isvalid": True, "address": "bcrt1qdavt4j2sd7dlhqsavtnfxvzppw6k7qy97tmnu9",
                 "scriptPubKey": "00146f58bac9506f9bfb821d62e69330410bb56f0085", "isscript": False,
                 "iswitness": True, "witness_version": 0,
                 "witness_program": "6f58bac9506f9bfb821d62e69330410bb56f0085"}
    j = await rpc.m_validateaddress("BCRT1QAN8GNTAC7Z7ME2EJT4HPRU42AD2F759FMY0M3EJVS98656ZNV7EQGA4UHV")
    assert j["address"] == "bcrt1qan8gntac7z7me2ejt4hpru42ad2f759fmy0m3ejvs98656znv7eqga4uhv"
    assert j["isscript"] is True and j["witness_version"] == 0
    j = await rpc.m_validateaddress("bcrt1sx6p8njlx7h9mc2agz4yg82dzne23050ncq72cneeecez2pst8mahn8xecsf8g6hzx94420")
    assert "isscript" not in j and j["witness_version"] == 16
    j = await rpc.m_validateaddress("bcrt1q65nhlm4hf2ptg3t264al57p7wjxj2c3s6kyt84")
    assert j["isvalid"] is False and "checksum" in j["error"]
