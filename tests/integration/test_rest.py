"""Issue 20: Bitcoin Core's REST interface (`--rest`, rest.cpp) on a real node over HTTP on
127.0.0.1. Every JSON answer is compared with the RPC's answer for the same object (REST reuses
the RPC's builders); bin answers are parsed with tinynode's Block/Tx/header parsers and must
equal the hex answers; errors carry Core's status codes and sentences."""
import struct

import aiohttp
import pytest

from tests.framework.nodes import start_node
from tinynode.config import ConfigError, NodeConfig
from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.hashes import hash_to_hex
from tinynode.primitives.serialize import ByteReader, ser_compact_size
from tinynode.primitives.tx import Tx
from tinynode.rpc.protocol import loads

pytestmark = pytest.mark.slow

Z64 = "00" * 32


class Rest:
    def __init__(self, port: int, session: aiohttp.ClientSession):
        self.base = f"http://127.0.0.1:{port}"
        self.s = session

    async def get(self, path: str, method: str = "GET", data: bytes | None = None):
        async with self.s.request(method, self.base + path, data=data) as r:
            return r.status, r.headers.get("Content-Type"), await r.read()

    async def json(self, path: str):
        status, ctype, body = await self.get(path)
        assert (status, ctype) == (200, "application/json"), (path, status, body)
        assert body.endswith(b"\n")
        return loads(body)

    async def hex(self, path: str) -> bytes:
        status, ctype, body = await self.get(path)
        assert (status, ctype) == (200, "text/plain"), (path, status, body)
        assert body.endswith(b"\n")
        return bytes.fromhex(body[:-1].decode())

    async def bin(self, path: str) -> bytes:
        status, ctype, body = await self.get(path)
        assert (status, ctype) == (200, "application/octet-stream"), (path, status, body)
        return body

    async def error(self, path: str, status: int, text: str, method: str = "GET", data=None):
        got, ctype, body = await self.get(path, method, data)
        assert (got, ctype, body) == (status, "text/plain", (text + "\r\n").encode()), (path, got, body)


@pytest.fixture
async def rest_node():
    t = await start_node(txindex=True, rpc_port=0, rest=True)
    try:
        async with aiohttp.ClientSession() as s:
            yield t, Rest(t.node.rpc_port, s)
    finally:
        await t.stop()


async def _chain_with_txs(t):
    """101 blocks, a block with a wallet spend, and one more spend in the mempool."""
    addr = await t.rpc.call("getnewaddress")
    await t.rpc.call("generatetoaddress", 101, addr)
    confirmed = await t.rpc.call("sendtoaddress", await t.rpc.call("getnewaddress"), 10)
    [bh] = await t.rpc.call("generatetoaddress", 1, addr)
    pending = await t.rpc.call("sendtoaddress", await t.rpc.call("getnewaddress"), 3)
    return bh, confirmed, pending


async def test_rest_answers_equal_the_rpc(rest_node):
    t, rest = rest_node
    bh, confirmed, pending = await _chain_with_txs(t)
    rpc = t.rpc.call

    # chaininfo = getblockchaininfo
    info = await rest.json("/rest/chaininfo.json")
    want = await rpc("getblockchaininfo")
    for j in (info, want):
        j.pop("size_on_disk")
    assert info == want and info["blocks"] == 102

    # block: json = getblock 3 (prevouts and fees), notxdetails = getblock 1, bin/hex = getblock 0
    assert await rest.json(f"/rest/block/{bh}.json") == await rpc("getblock", bh, 3)
    j = await rest.json(f"/rest/block/notxdetails/{bh}.json")
    assert j == await rpc("getblock", bh, 1) and confirmed in j["tx"]
    raw = await rest.bin(f"/rest/block/{bh}.bin")
    assert raw == await rest.hex(f"/rest/block/{bh}.hex") == bytes.fromhex(await rpc("getblock", bh, 0))
    assert raw == await rest.bin(f"/rest/block/notxdetails/{bh}.bin")
    block = Block.from_bytes(raw)
    assert hash_to_hex(block.header.hash) == bh and confirmed in [tx.txid_hex for tx in block.txs]
    # blockpart: a slice of the same bytes
    assert await rest.bin(f"/rest/blockpart/{bh}.bin?offset=4&size=32") == raw[4:36]
    assert await rest.hex(f"/rest/blockpart/{bh}.hex?offset=80&size={len(raw) - 80}") == raw[80:]

    # headers from height 100: three of them; the old /<count>/<hash> form gives the same
    h100 = await rpc("getblockhash", 100)
    hdrs = await rest.json(f"/rest/headers/{h100}.json?count=3")
    assert hdrs == [await rpc("getblockheader", h) for h in (h100, await rpc("getblockhash", 101), bh)]
    assert await rest.json(f"/rest/headers/3/{h100}.json") == hdrs
    hb = await rest.bin(f"/rest/headers/{h100}.bin?count=3")
    assert hb == await rest.hex(f"/rest/headers/{h100}.hex?count=3") and len(hb) == 3 * 80
    assert [hash_to_hex(BlockHeader.from_bytes(hb[i:i + 80]).hash) for i in (0, 80, 160)] == \
        [h["hash"] for h in hdrs]
    assert len(await rest.json(f"/rest/headers/{h100}.json?count=2000")) == 3   # the tip ends it
    assert len(await rest.json(f"/rest/headers/{h100}.json")) == 3              # default count 5
    assert await rest.json(f"/rest/headers/{Z64}.json") == []                   # unknown: empty

    # blockhashbyheight
    assert await rest.json("/rest/blockhashbyheight/102.json") == {"blockhash": bh}
    assert (await rest.hex("/rest/blockhashbyheight/102.hex")).hex() == bh   # GetHex: display order
    assert hash_to_hex(await rest.bin("/rest/blockhashbyheight/102.bin")) == bh

    # tx: confirmed (tx index) and pending (mempool); json = TxToUniv + blockhash, hex last
    for txid, in_block in ((confirmed, True), (pending, False)):
        j = await rest.json(f"/rest/tx/{txid}.json")
        want = await rpc("getrawtransaction", txid, True)
        for k in ("confirmations", "time", "blocktime", "in_active_chain"):
            want.pop(k, None)
        assert j == want and list(j)[-1] == "hex" and ("blockhash" in j) == in_block
        tb = await rest.bin(f"/rest/tx/{txid}.bin")
        assert tb == await rest.hex(f"/rest/tx/{txid}.hex") == bytes.fromhex(j["hex"])
        assert Tx.from_bytes(tb).txid_hex == txid

    # spenttxouts: the prevouts getblock 3 shows, per tx (coinbase: none)
    spent = await rest.json(f"/rest/spenttxouts/{bh}.json")
    full = await rpc("getblock", bh, 3)
    assert spent == [[]] + [[{"value": v["prevout"]["value"], "scriptPubKey": v["prevout"]["scriptPubKey"]}
                             for v in tx["vin"]] for tx in full["tx"][1:]]
    sb = await rest.bin(f"/rest/spenttxouts/{bh}.bin")
    assert sb == await rest.hex(f"/rest/spenttxouts/{bh}.hex") and sb[:2] == bytes((len(full["tx"]), 0))
    assert await rest.json(f"/rest/spenttxouts/{await rpc('getblockhash', 0)}.json") == [[]]

    # mempool
    mi = await rest.json("/rest/mempool/info.json")
    assert mi == await rpc("getmempoolinfo") and mi["size"] == 1
    assert await rest.json("/rest/mempool/contents.json") == await rpc("getrawmempool", True)
    assert await rest.json("/rest/mempool/contents.json?verbose=false") == [pending]
    seq = await rest.json("/rest/mempool/contents.json?verbose=false&mempool_sequence=true")
    assert seq["txids"] == [pending] and isinstance(seq["mempool_sequence"], int) and seq["mempool_sequence"] > 0


async def test_rest_getutxos(rest_node):
    t, rest = rest_node
    bh, confirmed, pending = await _chain_with_txs(t)
    rpc = t.rpc.call
    tip = await rpc("getbestblockhash")
    ptx = await rpc("getrawtransaction", pending, True)
    spent_by_pending = f"{ptx['vin'][0]['txid']}-{ptx['vin'][0]['vout']}"
    coinbase = (await rpc("getblock", bh, 1))["tx"][0]     # immature: the wallet cannot spend it
    outs = [f"{coinbase}-0", f"{confirmed}-7", spent_by_pending, f"{pending}-0"]
    path = "/".join(outs)

    # chain only: the pending tx's input is still unspent, its outputs unknown
    j = await rest.json(f"/rest/getutxos/{path}.json")
    assert j["chainHeight"] == 102 and j["chaintipHash"] == tip and j["bitmap"] == "1010"
    want = [await rpc("gettxout", *o.split("-")[:1], int(o.split("-")[1]), False) for o in (outs[0], outs[2])]
    assert [u["value"] for u in j["utxos"]] == [w["value"] for w in want]
    assert [u["scriptPubKey"] for u in j["utxos"]] == [w["scriptPubKey"] for w in want]
    assert [u["height"] for u in j["utxos"]] == [102, 102 - want[1]["confirmations"] + 1]

    # with the mempool: the pending spend hides its input, its output has Core's MEMPOOL_HEIGHT
    j = await rest.json(f"/rest/getutxos/checkmempool/{path}.json")
    assert j["bitmap"] == "1001" and j["utxos"][1]["height"] == 0x7FFFFFFF
    assert j["utxos"][1]["value"] == ptx["vout"][0]["value"]

    # bin: BIP64's layout, parsed by hand; hex is the same bytes
    b = await rest.bin(f"/rest/getutxos/checkmempool/{path}.bin")
    assert b == await rest.hex(f"/rest/getutxos/checkmempool/{path}.hex")
    r = ByteReader(b)
    assert r.i32() == 102 and hash_to_hex(r.read(32)) == tip
    assert r.compact_size() == 1 and r.u8() == 0b1001
    assert r.compact_size() == 2
    coins = []
    for _ in range(2):
        assert r.u32() == 0
        coins.append((r.u32(), r.i64(), r.var_bytes(10_000)))
    r.expect_end()
    assert coins[1][0] == 0x7FFFFFFF and coins[0][2].hex() == j["utxos"][0]["scriptPubKey"]["hex"]

    # outpoints in a POSTed body (read as Core reads it: the body's length byte is the
    # checkmempool flag, the outpoint vector follows)
    from tinynode.primitives.hashes import hex_to_hash
    ops = [(hex_to_hash(coinbase), 0), (hex_to_hash(pending), 0)]
    body = ser_compact_size(len(ops)) + b"".join(h + struct.pack("<I", n) for h, n in ops)
    st, ct, posted = await rest.get("/rest/getutxos.bin", "POST", body)
    assert st == 200 and posted[36:38] == b"\x01\x03"        # mempool seen: both unspent
    st, ct, posted_hex = await rest.get("/rest/getutxos.hex", "POST", body.hex().encode())
    assert st == 200 and bytes.fromhex(posted_hex.decode()) == posted

    # Core's errors
    await rest.error("/rest/getutxos.json", 400, "Error: empty request")
    await rest.error("/rest/getutxos/checkmempool.json", 400, "Error: empty request")
    await rest.error(f"/rest/getutxos/{confirmed}.json", 400, "Parse error")
    await rest.error(f"/rest/getutxos/{confirmed}-x.json", 400, "Parse error")
    await rest.error(f"/rest/getutxos/{confirmed[:-1]}-0.json", 400, "Parse error")
    await rest.error("/rest/getutxos/" + "/".join([f"{confirmed}-0"] * 16) + ".json", 400,
                     "Error: max outpoints exceeded (max: 15, tried: 16)")
    assert (await rest.json("/rest/getutxos/" + "/".join([f"{confirmed}-0"] * 15) + ".json"))["bitmap"] == "1" * 15
    await rest.error(f"/rest/getutxos/{confirmed}-0.bin", 400,
                     "Combination of URI scheme inputs and raw post data is not allowed", "POST", body)
    await rest.error("/rest/getutxos.bin", 400, "Parse error", "POST", b"\x05\x01")
    await rest.error(f"/rest/getutxos/{confirmed}-0", 404,
                     "output format not found (available: .bin, .hex, .json)")


async def test_rest_errors_as_core(rest_node):
    t, rest = rest_node
    await t.rpc.call("generatetoaddress", 2, await t.rpc.call("getnewaddress"))
    g = await t.rpc.call("getblockhash", 0)
    ff = "ff" * 32
    fmt = "output format not found (available: .bin, .hex, .json)"
    await rest.error(f"/rest/block/{ff}.json", 404, f"{ff} not found")
    await rest.error(f"/rest/block/notxdetails/{ff}.bin", 404, f"{ff} not found")
    await rest.error("/rest/block/abc.json", 400, "Invalid hash: abc")
    await rest.error(f"/rest/block/{g}", 404, fmt)
    await rest.error(f"/rest/block/{g}.xml", 400, f"Invalid hash: {g}.xml")
    await rest.error(f"/rest/blockpart/{g}.json?offset=0&size=1", 400,
                     "JSON output is not supported for this request type")
    await rest.error(f"/rest/blockpart/{g}.bin?offset=0", 400, "Block part size missing or invalid")
    await rest.error(f"/rest/blockpart/{g}.bin?size=1", 400, "Block part offset missing or invalid")
    await rest.error(f"/rest/blockpart/{g}.bin?offset=285&size=1", 400, f"Bad block part offset/size 285/1 for {g}")
    await rest.error(f"/rest/tx/{ff}.json", 404, f"{ff} not found")
    await rest.error("/rest/tx/zz.hex", 400, "Invalid hash: zz")
    await rest.error(f"/rest/headers/{g}.json?count=0", 400,
                     "Header count is invalid or out of acceptable range (1-2000): 0")
    await rest.error(f"/rest/headers/{g}.json?count=2001", 400,
                     "Header count is invalid or out of acceptable range (1-2000): 2001")
    await rest.error(f"/rest/headers/x/{g}.json", 400,
                     "Header count is invalid or out of acceptable range (1-2000): x")
    await rest.error(f"/rest/headers/1/2/{g}.json", 400,
                     "Invalid URI format. Expected /rest/headers/<hash>.<ext>?count=<count>")
    await rest.error(f"/rest/headers/{g}?count=1", 404, fmt)
    await rest.error("/rest/blockhashbyheight/3.json", 404, "Block height out of range")
    await rest.error("/rest/blockhashbyheight/-1.json", 400, "Invalid height: -1")
    # the client sends <> percent-encoded; Core sees (and echoes, sanitized) the raw URI
    await rest.error("/rest/blockhashbyheight/1x<>.json", 400, "Invalid height: 1x%3C%3E")
    await rest.error("/rest/blockhashbyheight/1", 404, fmt)
    await rest.error("/rest/chaininfo.bin", 404, "output format not found (available: json)")
    await rest.error("/rest/mempool/info.hex", 404, "output format not found (available: json)")
    await rest.error("/rest/mempool/other.json", 400,
                     "Invalid URI format. Expected /rest/mempool/<info|contents>.json")
    await rest.error("/rest/mempool/contents.json?verbose=yes", 400,
                     'The "verbose" query parameter must be either "true" or "false".')
    await rest.error("/rest/mempool/contents.json?mempool_sequence=1", 400,
                     'The "mempool_sequence" query parameter must be either "true" or "false".')
    await rest.error("/rest/mempool/contents.json?mempool_sequence=true", 400,
                     'Verbose results cannot contain mempool sequence values. (hint: set "verbose=false")')
    await rest.error(f"/rest/spenttxouts/{ff}.json", 404, f"{ff} not found")
    await rest.error(f"/rest/blockfilter/basic/{g}.json", 400, "Index is not enabled for filtertype basic")
    await rest.error(f"/rest/blockfilter/extended/{g}.json", 400, "Unknown filtertype extended")
    await rest.error(f"/rest/blockfilterheaders/basic/{g}.json", 400, "Index is not enabled for filtertype basic")
    # an unknown REST path is Core's bare 404; an unknown method 405; RPC still wants its cookie
    assert (await rest.get("/rest/nothing"))[0] == 404
    assert (await rest.get("/rest/chaininfo.json", "DELETE"))[0] == 405
    assert (await rest.get("/", "POST", b"{}"))[0] == 401
    # REST answers HEAD and POST as Core's server does (the handlers ignore the method)
    assert (await rest.get("/rest/chaininfo.json", "POST"))[0] == 200


async def test_rest_is_off_by_default_and_needs_the_tcp_port():
    t = await start_node(txindex=True, rpc_port=0)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{t.node.rpc_port}/rest/chaininfo.json") as r:
                assert r.status == 404        # Core without -rest: no handler, no auth asked
    finally:
        await t.stop()
    with pytest.raises(ConfigError, match="--rest serves on the TCP RPC port"):
        NodeConfig(datadir=t.datadir, rest=True).validate()


async def test_rest_answers_503_while_warming_up(rest_node):
    t, rest = rest_node
    t.node.rpc.warmup = "Loading block index..."
    try:
        await rest.error("/rest/chaininfo.json", 503, "Service temporarily unavailable: Loading block index...")
    finally:
        t.node.rpc.warmup = None
    assert (await rest.json("/rest/chaininfo.json"))["blocks"] == 0
