"""Many in-process nodes on loopback (issue 10, "Many-node tests", in-process part).

Nodes come from tests/framework/netnodes.py (`NetNode`: the real ChainState + ChainWriter,
optional Mempool, SyncManager and ConnMan on 127.0.0.1:0; SQLite store when given a datadir).
The last two tests repeat the tx and restart cases with complete `tinynode.node.Node`s
(tests/framework/nodes.py: wallet, miner and RPC).
Topologies are drawn from a seeded `random.Random`, so a failure replays exactly. Every wait is
bounded and every node is stopped in `finally`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.framework.miniwallet import MiniWallet, Utxo
from tests.framework.netnodes import (NetNode, chainstate_available, start_nodes, stop_nodes,
                                      sync_blocks, sync_config)
from tests.framework.wait import wait_until
from tinynode.params import REGTEST
from tinynode.primitives.hashes import hash_to_hex
from tinynode.primitives.tx import OutPoint

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not chainstate_available(), reason="needs the real ChainState")]

FEE = 10_000


# ------------------------------------------------------------------------------------ helpers
def random_topology(n: int, rng: random.Random, min_degree: int = 2, max_degree: int = 4) -> set[tuple[int, int]]:
    """A connected undirected graph on `n` nodes with every degree in [min_degree, max_degree]:
    a random spanning tree (which keeps it connected), then random extra edges until every node
    has `min_degree` neighbours."""
    edges: set[tuple[int, int]] = set()
    deg = [0] * n

    def add(a: int, b: int) -> None:
        edges.add((min(a, b), max(a, b)))
        deg[a] += 1
        deg[b] += 1

    order = list(range(n))
    rng.shuffle(order)
    for i in range(1, n):
        choices = [order[j] for j in range(i) if deg[order[j]] < max_degree]
        add(order[i], rng.choice(choices))
    for _ in range(100 * n):                       # bounded; the loop normally ends in a few rounds
        low = [v for v in range(n) if deg[v] < min_degree]
        if not low:
            break
        a = rng.choice(low)
        cands = [b for b in range(n) if b != a and deg[b] < max_degree
                 and (min(a, b), max(a, b)) not in edges]
        if not cands:
            continue
        add(a, rng.choice(cands))
    assert all(min_degree <= d <= max_degree for d in deg), deg
    assert _connected(n, edges)
    return edges


def _connected(n: int, edges: set[tuple[int, int]]) -> bool:
    adj: dict[int, set[int]] = {v: set() for v in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen = {0}
    stack = [0]
    while stack:
        for w in adj[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return len(seen) == n


async def connect_edges(nodes: list[NetNode], edges: set[tuple[int, int]]) -> None:
    """The lower index dials the higher one, for every edge (several dials at a time)."""
    sem = asyncio.Semaphore(6)

    async def one(a: int, b: int) -> None:
        async with sem:
            await nodes[a].connect(nodes[b])
    await asyncio.gather(*(one(a, b) for a, b in sorted(edges)))


async def start_many(n: int, **kw) -> list[NetNode]:
    """Start `n` nodes; on a failure part-way, stop the ones already running."""
    nodes: list[NetNode] = []
    try:
        for i in range(n):
            nodes.append(await NetNode(REGTEST, name=f"n{i}", **kw).start())
    except BaseException:
        await stop_nodes(nodes)
        raise
    return nodes


def payout(i: int) -> bytes:
    """A distinct anyone-can-spend-ish script per miner so concurrent blocks never coincide."""
    return MiniWallet(1000 + i).script_pubkey


async def all_tips(nodes: list[NetNode]) -> dict[bytes, int]:
    """hash -> chainwork of every chain tip (getchaintips) any node knows."""
    out: dict[bytes, int] = {}
    for nd in nodes:
        tips = await nd.writer.call(nd.writer.chainstate.chain_tips)
        for entry, _status in tips:
            out[entry.hash] = entry.chainwork
    return out


async def is_active(node: NetNode, block_hash: bytes) -> bool:
    def check() -> bool:
        cs = node.writer.chainstate
        e = cs.get_entry(block_hash)
        return e is not None and cs.is_active(e)
    return await node.writer.call(check)


async def settle_on_most_work(nodes: list[NetNode], timeout: float = 20.0) -> None:
    """Wait until every node's active tip carries the most chainwork any node has (ties allowed)."""
    def done() -> bool:
        works = [nd.writer.snapshot.chainwork for nd in nodes]
        best = max(works)
        # (A node's best header may be another equal-work header than its tip: that is fine.)
        return all(w == best for w in works) and all(
            nd.writer.snapshot.best_header_height == nd.height for nd in nodes)
    await wait_until(done, timeout=timeout, message=lambda: " ".join(repr(nd) for nd in nodes))


# ------------------------------------------------------------------------------------ tests
async def test_twenty_nodes_random_topology_converge_after_concurrent_mining():
    rng = random.Random(20261123)
    n = 20
    edges = random_topology(n, rng)
    nodes = await start_many(n)
    try:
        await connect_edges(nodes, edges)
        # Three rounds; in each, four random nodes mine 1-3 blocks at the same time (no waiting
        # between rounds): competing branches appear, miners reorganise while mining.
        for _round in range(3):
            miners = rng.sample(range(n), 4)
            await asyncio.gather(*(nodes[i].mine(rng.randint(1, 3), payout=payout(i)) for i in miners))
        await settle_on_most_work(nodes, timeout=25)
        if len({nd.tip for nd in nodes}) > 1:
            # Equal-work branches are a legitimate steady state (first seen wins): one more
            # block on any node makes one branch strictly heavier.
            await nodes[miners[0]].mine(1, payout=payout(miners[0]))
        await sync_blocks(nodes, timeout=25)
        tip = nodes[0].tip
        assert all(nd.tip == tip for nd in nodes)
        tips = await all_tips(nodes)
        best_work = tips[tip]
        assert nodes[0].writer.snapshot.chainwork == best_work
        assert all(w < best_work for h, w in tips.items() if h != tip), \
            {hash_to_hex(h)[:16]: w for h, w in tips.items()}
        assert nodes[0].height >= 3
    finally:
        await stop_nodes(nodes)


async def test_two_islands_heal_and_the_lighter_one_reorganises():
    rng = random.Random(612)
    nodes = await start_many(12)
    left, right = nodes[:6], nodes[6:]
    try:
        # Each island is a small random graph; two bridges join them.
        for island, off in ((left, 0), (right, 6)):
            await connect_edges(nodes, {(a + off, b + off) for a, b in random_topology(6, rng, 2, 3)})
        bridges = [(left[0], right[0]), (left[3], right[4])]
        for a, b in bridges:
            await a.connect(b)
        await nodes[0].mine(5, payout=payout(0))
        await sync_blocks(nodes)
        base = nodes[0].tip

        # Partition: every node refuses every node of the other island.
        for mine_side, other in ((left, right), (right, left)):
            for a in mine_side:
                for b in other:
                    a.connman.deny(b.addr)

        def cut() -> bool:
            ports = {("127.0.0.1", b.port) for b in right}
            return not any(p.listen_addr in ports or p.addr_str in {b.addr for b in right}
                           for a in left for p in a.connman.all_peers())
        await wait_until(cut, timeout=10, message="the islands are still connected")

        await left[2].mine(3, payout=payout(2))        # light side
        await right[1].mine(6, payout=payout(7))       # heavy side
        await sync_blocks(left)
        await sync_blocks(right)
        light_tip, heavy_tip = left[0].tip, right[0].tip
        assert light_tip != heavy_tip
        assert left[0].height == 8 and right[0].height == 11
        reorgs: list[int] = []
        for nd in left:
            nd.writer.subscribe_async(
                lambda ev: reorgs.append(ev.disconnected) if type(ev).__name__ == "TipChanged" else None)

        # Heal.
        for mine_side, other in ((left, right), (right, left)):
            for a in mine_side:
                for b in other:
                    a.connman.allow(b.addr)
        for a, b in bridges:
            await a.connect(b)
        await sync_blocks(nodes, timeout=20)
        assert all(nd.tip == heavy_tip and nd.height == 11 for nd in nodes)
        for nd in nodes:
            assert not await is_active(nd, light_tip), nd
            assert await is_active(nd, base)
        # The light island's nodes still know their old tip, as a stale fork.
        for nd in left:
            tips = dict((e.hash, status) for e, status in
                        await nd.writer.call(nd.writer.chainstate.chain_tips))
            assert tips.get(light_tip) in ("valid-fork", "valid-headers"), tips
        # Every light-side node disconnected its three blocks in one reorg.
        assert reorgs.count(3) >= len(left), reorgs
    finally:
        await stop_nodes(nodes)


async def test_late_joiner_syncs_headers_first_to_the_same_tip():
    rng = random.Random(7)
    nodes = await start_many(6)
    late: NetNode | None = None
    try:
        await connect_edges(nodes, random_topology(6, rng, 2, 3))
        for i in (0, 3, 5):                               # 120 blocks mined in several places
            await nodes[i].mine(40, payout=payout(i))
            await sync_blocks(nodes, timeout=20)
        assert nodes[0].height == 120
        late = await NetNode(REGTEST, name="late", config=sync_config(blocks_per_peer=4)).start()
        header_ahead: list[int] = []

        submit = late.writer.submit_block

        async def watch(block):  # chain events wait for commits: look as each block arrives
            snap = late.writer.snapshot
            if snap.best_header_height > snap.height:
                header_ahead.append(snap.best_header_height)
            return await submit(block)
        late.writer.submit_block = watch
        for i in rng.sample(range(6), 3):
            await late.connect(nodes[i])
        await sync_blocks([*nodes, late], timeout=20)
        assert late.tip == nodes[0].tip and late.height == 120
        # Headers first: the whole header chain was known while blocks were still arriving.
        assert header_ahead and max(header_ahead) == 120
    finally:
        if late is not None:
            await late.stop()
        await stop_nodes(nodes)


async def test_node_restarted_mid_sync_resumes_on_sqlite(tmp_path):
    src = await NetNode(REGTEST, name="src").start()
    bdir = tmp_path / "b"
    bdir.mkdir()
    cfg = sync_config(blocks_per_peer=2)
    b: NetNode | None = None
    try:
        await src.mine(400, payout=payout(0))
        b = await NetNode(REGTEST, name="b", datadir=bdir, config=cfg).start()
        await b.connect(src)
        await wait_until(lambda: b.height >= 40, timeout=20, message=lambda: repr(b))
        await b.stop()
        stopped_at = b.height
        assert 40 <= stopped_at < 400, f"not stopped mid-sync: {stopped_at}"
        b = None
        b = await NetNode(REGTEST, name="b", datadir=bdir, config=cfg).start()
        # What was connected before the stop survived it (SQLite store).
        assert b.height == stopped_at
        assert b.tip == await src.writer.call(src.writer.chainstate.get_block_hash, stopped_at)
        await b.connect(src)
        await sync_blocks([src, b], timeout=25)
        assert b.height == 400 and b.tip == src.tip
        assert await b.writer.call(b.writer.chainstate.utxo_set_hash) == \
            await src.writer.call(src.writer.chainstate.utxo_set_hash)
    finally:
        if b is not None:
            await b.stop()
        await src.stop()


async def test_txs_from_every_node_reach_every_mempool_and_are_mined_once():
    rng = random.Random(5)
    n = 6
    nodes = await start_many(n, mempool=True)
    wallets = [MiniWallet(300 + i) for i in range(n)]
    try:
        await connect_edges(nodes, random_topology(n, rng, 2, 3))
        # One coinbase per node's wallet, then maturity, mined in different places.
        coins: list[Utxo] = []
        for i, w in enumerate(wallets):
            (h,) = await nodes[i].mine(1, payout=w.script_pubkey)
            await sync_blocks(nodes)
            block = await nodes[i].writer.call(nodes[i].writer.chainstate.get_block, h)
            cb = block.txs[0]
            coins.append(Utxo(OutPoint(cb.txid, 0), cb.vout[0].value, w.key, nodes[i].height, True))
        await nodes[0].mine(REGTEST.coinbase_maturity)
        await sync_blocks(nodes, timeout=20)

        txs = [w.create_spend(c, fee=FEE) for w, c in zip(wallets, coins)]
        await asyncio.gather(*(nd.sync.accept_tx(tx) for nd, tx in zip(nodes, txs)))
        want = {tx.txid for tx in txs}

        async def pools() -> list[set[bytes]]:
            return [set(await nd.writer.call(lambda nd=nd: [e.tx.txid for e in nd.mempool.entries()]))
                    for nd in nodes]

        async def everywhere() -> bool:
            return all(p == want for p in await pools())
        await wait_until(everywhere, timeout=20, message="a mempool lacks some tx")

        (h,) = await nodes[rng.randrange(n)].mine(1)
        await sync_blocks(nodes, timeout=20)
        block = await nodes[0].writer.call(nodes[0].writer.chainstate.get_block, h)
        counts = Counter(tx.txid for tx in block.txs[1:])
        assert set(counts) == want and all(c == 1 for c in counts.values()), counts
        await wait_until(lambda: pools_empty(nodes), timeout=10, message="mempools not empty")
        hashes = {await nd.writer.call(nd.writer.chainstate.utxo_set_hash) for nd in nodes}
        assert len(hashes) == 1
        # Every spent coinbase is gone and every new output is there, on every node.
        for nd in nodes:
            for tx in txs:
                assert await nd.writer.call(nd.writer.chainstate.get_coin, tx.vin[0].prevout) is None
                assert await nd.writer.call(nd.writer.chainstate.get_coin, OutPoint(tx.txid, 0)) is not None
    finally:
        await stop_nodes(nodes)


async def pools_empty(nodes: list[NetNode]) -> bool:
    for nd in nodes:
        if await nd.writer.call(lambda nd=nd: len(list(nd.mempool.entries()))):
            return False
    return True


# ------------------------------------------------------------------ the same with full Nodes
# tests/framework/nodes.py: complete `tinynode.node.Node`s (SQLite chain + wallet, miner, RPC).

async def _full_utxo_hash(t) -> bytes:
    return await t.node.writer.call(t.node.writer.chainstate.utxo_set_hash)


def _linked(x, y) -> bool:
    """x has a live connection to y (either direction; y known by its listening address)."""
    target = ("127.0.0.1", y.node.p2p_port)
    return any(p.addr_str == y.p2p_addr or p.listen_addr == target
               for p in x.node.connman.connected_peers())


async def _full_connect(a, b, timeout: float = 15.0) -> None:
    """a dials b unless they are already connected (full Nodes also dial addresses they hear
    of, so a pair may have met already); returns once both ends see the link."""
    if not (_linked(a, b) and _linked(b, a)):
        await a.node.connman.connect("127.0.0.1", b.node.p2p_port)
    await wait_until(lambda: _linked(a, b) and _linked(b, a), timeout,
                     message=f"{a.p2p_addr} -> {b.p2p_addr} did not connect")


async def test_full_nodes_wallet_sends_from_every_node_are_mined_once():
    from tests.framework.nodes import running_nodes, sync_blocks as full_sync

    rng = random.Random(55)
    n = 5
    async with running_nodes(n) as nodes:
        for a, b in sorted(random_topology(n, rng, 2, 3)):
            await _full_connect(nodes[a], nodes[b])
        addrs = [await t.rpc.call("getnewaddress") for t in nodes]
        for t, addr in zip(nodes, addrs):            # one coinbase per node, mined by that node
            await t.rpc.call("generatetoaddress", 1, addr)
            await full_sync(nodes)
        await nodes[0].rpc.call("generatetoaddress", REGTEST.coinbase_maturity,
                                await nodes[0].rpc.call("getnewaddress"))
        await full_sync(nodes, timeout=30)
        for t in nodes:
            assert await t.rpc.call("getbalance") == 50
        txids = await asyncio.gather(*(t.rpc.call("sendtoaddress", addrs[(i + 1) % n], 1 + i)
                                       for i, t in enumerate(nodes)))
        want = set(txids)
        assert len(want) == n

        async def everywhere() -> bool:
            pools = [set(await t.rpc.call("getrawmempool")) for t in nodes]
            return all(p == want for p in pools)
        await wait_until(everywhere, timeout=20, message="a mempool lacks some tx")

        miner = nodes[rng.randrange(n)]
        (bh,) = await miner.rpc.call("generatetoaddress", 1, await miner.rpc.call("getnewaddress"))
        await full_sync(nodes, timeout=20)
        block = await nodes[0].rpc.call("getblock", bh)
        counts = Counter(block["tx"][1:])
        assert set(counts) == want and all(c == 1 for c in counts.values()), counts

        async def empty() -> bool:
            pools = [await t.rpc.call("getrawmempool") for t in nodes]
            return not any(pools)
        await wait_until(empty, timeout=10, message="mempools not empty")
        assert len({await _full_utxo_hash(t) for t in nodes}) == 1
        for t in nodes:
            st = await t.rpc.call("gettxstatus", txids[0])
            assert st["status"] == "confirmed" and st["confirmations"] == 1


async def test_full_node_restarted_mid_sync_resumes():
    from tests.framework.nodes import running_nodes, sync_blocks as full_sync
    from tinynode.rpc.protocol import RPCError

    async with running_nodes(2) as (a, b):
        total = 400
        await a.rpc.call("generatetoaddress", total, await a.rpc.call("getnewaddress"))
        await b.rpc.call("addnode", a.p2p_addr, "onetry")
        await wait_until(lambda: b.node.writer.snapshot.height >= 40, timeout=20,
                         message=lambda: f"b at {b.node.writer.snapshot.height}")
        await b.restart()                            # same datadir (chain.sqlite)
        resumed_at = b.node.writer.snapshot.height
        assert 40 <= resumed_at < total, f"not restarted mid-sync: {resumed_at}"
        assert await b.rpc.call("getblockhash", resumed_at) == await a.rpc.call("getblockhash", resumed_at)
        try:
            await b.rpc.call("addnode", a.p2p_addr, "onetry")
        except RPCError:                             # it may already have redialled A itself
            pass
        await full_sync([a, b], timeout=25)
        assert await b.rpc.call("getblockcount") == total
        assert await b.rpc.call("getbestblockhash") == await a.rpc.call("getbestblockhash")
        assert await _full_utxo_hash(a) == await _full_utxo_hash(b)
