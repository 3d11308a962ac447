"""A small block explorer served by the daemon (`--explorer`, opt-in, on the loopback TCP RPC
port beside the REST interface): one plain HTML page with a little JavaScript, no build step.

The page reads Core's REST endpoints (`rest.py`) for chain, blocks, txs and the mempool, and two
tinynode JSON endpoints for what REST does not have:

    /explorer/                                  the page (hash routes: #/, #/block/H, #/tx/T,
                                                #/address/A?confirmations=N, #/mempool)
    /explorer/api/address/<addr>.json?confirmations=N
                                                balance at >= N confirmations (0 = with the
                                                mempool; `getaddressbalance`), its unspent
                                                outputs, and mempool txs paying or spending it
    /explorer/api/peers.json                    `getpeerinfo`, the fields the page shows
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..primitives.hashes import hash_to_hex
from .protocol import RPCError, dumps
from .rest import RESTReply, parse_data_format, query_parameter

if TYPE_CHECKING:  # pragma: no cover
    from .methods import RPCMethods

__all__ = ["ExplorerHandler", "EXPLORER_HTML"]

log = logging.getLogger(__name__)


def _json(obj: Any, status: int = 200) -> RESTReply:
    return RESTReply(status, "application/json", (dumps(obj) + "\n").encode())


def _text(status: int, message: str) -> RESTReply:
    return RESTReply(status, "text/plain", (message + "\r\n").encode())


class ExplorerHandler:
    """The explorer's page and its two JSON endpoints over one node's RPC method table."""

    def __init__(self, methods: "RPCMethods"):
        self.methods = methods
        self.node = methods.node

    async def serve(self, method: str, uri: str, body: bytes, warmup: str | None) -> RESTReply:
        if method not in ("GET", "HEAD"):
            return _text(405, "The explorer only answers GET")
        path = uri.split("?", 1)[0]
        if path in ("/explorer", "/explorer/", "/explorer/index.html"):
            return RESTReply(200, "text/html; charset=utf-8", EXPLORER_HTML.encode())
        if warmup is not None:
            return _text(503, f"Service temporarily unavailable: {warmup}")
        if path == "/explorer/api/peers.json":
            peers = await self.methods.m_getpeerinfo()
            keep = ("id", "addr", "inbound", "subver", "synced_blocks", "startingheight", "pingtime",
                    "conntime")
            return _json([{k: p[k] for k in keep if k in p} for p in peers])
        prefix = "/explorer/api/address/"
        if path.startswith(prefix):
            address, rf = parse_data_format(uri[len(prefix):])
            if rf != "json":
                return _text(404, "output format not found (available: json)")
            raw = query_parameter(uri, "confirmations")
            try:
                minconf = int(raw) if raw is not None else 1
            except ValueError:
                return _text(400, f"Invalid confirmations: {raw}")
            if minconf < 0:
                return _text(400, f"Invalid confirmations: {raw}")
            try:
                return _json(await self._address(address, minconf))
            except RPCError as e:
                return _text(400, e.message)
        return _text(404, f"{path} not found")

    async def _address(self, address: str, minconf: int) -> dict:
        bal = await self.methods.m_getaddressbalance(address, minconf)
        spk = self.methods._decode_address(address)

        def work():
            cs = self.node.writer.chainstate
            tip = cs.height
            utxos = sorted(({"txid": hash_to_hex(op.txid), "vout": op.n, "value": _amount(c.value),
                             "height": c.height, "confirmations": tip - c.height + 1,
                             "coinbase": c.is_coinbase}
                            for op, c in cs.coins_for_script(spk)),
                           key=lambda u: (-u["height"], u["txid"], u["vout"]))
            mp = self.node.mempool
            mine = {(u["txid"], u["vout"]) for u in utxos}
            pending = []
            for e in (mp.entries() if mp is not None else ()):
                tx = e.tx
                pays = any(o.script_pubkey == spk for o in tx.vout)
                spends = any((hash_to_hex(i.prevout.txid), i.prevout.n) in mine for i in tx.vin)
                if pays or spends:
                    pending.append(tx.txid_hex)
            return {"height": tip, "utxos": utxos, "mempool": pending}
        extra = await self.node.writer.call(work)
        return {**bal, "confirmations": minconf, **extra}


def _amount(sats: int) -> Any:
    from .util import amount_to_json
    return amount_to_json(sats)


EXPLORER_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tinynode explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
  header { background: #1d232a; color: #fff; padding: .7em 1.2em; display: flex; gap: 1.5em; align-items: center; }
  header a { color: #fff; text-decoration: none; font-weight: 600; }
  header form { margin-left: auto; }
  header input { width: 34em; max-width: 60vw; padding: .3em .5em; border-radius: 4px; border: 0; }
  main { padding: 1em 1.2em; max-width: 72em; }
  h1 { font-size: 1.3em; margin: .2em 0 .6em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
  th { background: #eef0f3; font-weight: 600; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1.2em; background: #fff; padding: .8em; }
  dt { color: #5a6570; } dd { margin: 0; }
  .hash { font-family: ui-monospace, monospace; font-size: .92em; word-break: break-all; }
  .error { color: #a11; background: #fff0f0; padding: .8em; }
  .muted { color: #6b7680; }
</style>
</head>
<body>
<header>
  <a href="#/">tinynode explorer</a><a href="#/mempool">mempool</a>
  <form id="search"><input id="q" placeholder="height, block hash, txid or address"></form>
</header>
<main id="page" data-state="loading">Loading…</main>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const link = (kind, id, text) => `<a class="hash" href="#/${kind}/${encodeURIComponent(id)}">${esc(text === undefined ? id : text)}</a>`;
const coins = (v) => Number(v).toFixed(8);
const when = (t) => new Date(t * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC");

async function get(path) {
  const r = await fetch(path);
  const body = await r.text();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${body.trim()}`);
  return JSON.parse(body);
}

function show(html, state) {
  const page = $("#page");
  page.innerHTML = html;
  page.dataset.state = state || "ready";
}

async function home() {
  const info = await get("/rest/chaininfo.json");
  const first = Math.max(0, info.blocks - 9);
  const start = (await get(`/rest/blockhashbyheight/${first}.json`)).blockhash;
  const headers = (await get(`/rest/headers/${start}.json?count=10`)).reverse();
  const pool = await get("/rest/mempool/info.json");
  const peers = await get("/explorer/api/peers.json");
  const rows = headers.map((h) => `<tr><td data-height="${h.height}">${h.height}</td><td>${link("block", h.hash)}</td>` +
    `<td>${h.nTx}</td><td>${when(h.time)}</td></tr>`).join("");
  const peerRows = peers.map((p) => `<tr><td>${esc(p.id)}</td><td>${esc(p.addr)}</td><td>${p.inbound ? "in" : "out"}</td>` +
    `<td>${esc(p.subver || "")}</td><td>${esc(p.synced_blocks ?? "")}</td></tr>`).join("");
  show(`<h1>${esc(info.chain)} at height <span id="height">${info.blocks}</span></h1>
    <dl><dt>tip</dt><dd id="tip">${link("block", info.bestblockhash)}</dd>
    <dt>headers</dt><dd>${info.headers}</dd><dt>difficulty</dt><dd>${info.difficulty}</dd>
    <dt>mempool</dt><dd id="mempool-size"><a href="#/mempool">${pool.size} txs, ${pool.bytes} bytes</a></dd></dl>
    <h2>Recent blocks</h2><table id="blocks"><tr><th>height</th><th>hash</th><th>txs</th><th>time</th></tr>${rows}</table>
    <h2>Peers</h2><table id="peers"><tr><th>id</th><th>address</th><th>dir</th><th>version</th><th>synced</th></tr>${peerRows ||
      '<tr><td colspan="5" class="muted">no peers</td></tr>'}</table>`);
}

async function block(hash) {
  const b = await get(`/rest/block/notxdetails/${hash}.json`);
  const nav = [b.previousblockhash ? link("block", b.previousblockhash, "← previous") : "",
               b.nextblockhash ? link("block", b.nextblockhash, "next →") : ""].join(" ");
  show(`<h1>Block <span id="block-height">${b.height}</span></h1>
    <dl><dt>hash</dt><dd class="hash" id="block-hash">${esc(b.hash)}</dd>
    <dt>confirmations</dt><dd id="confirmations">${b.confirmations}</dd><dt>time</dt><dd>${when(b.time)}</dd>
    <dt>transactions</dt><dd id="ntx">${b.nTx}</dd><dt>size</dt><dd>${b.size} bytes</dd>
    <dt>merkle root</dt><dd class="hash">${esc(b.merkleroot)}</dd><dt>bits</dt><dd>${esc(b.bits)}</dd>
    <dt>chainwork</dt><dd class="hash">${esc(b.chainwork)}</dd></dl><p>${nav}</p>
    <h2>Transactions</h2><table id="txs">${b.tx.map((t, i) => `<tr><td>${i}</td><td>${link("tx", t)}</td></tr>`).join("")}</table>`);
}

async function tx(txid) {
  const t = await get(`/rest/tx/${txid}.json`);
  let conf = 0, where = "in the mempool";
  if (t.blockhash) {
    const [h] = await get(`/rest/headers/${t.blockhash}.json?count=1`);
    conf = h ? h.confirmations : 0;
    where = `in block ${link("block", t.blockhash, h ? h.height : t.blockhash)}`;
  }
  const addr = (spk) => spk.address ? link("address", spk.address) : `<span class="muted">${esc(spk.type)}</span>`;
  const vin = t.vin.map((i) => i.coinbase ? `<tr><td colspan="2">coinbase</td></tr>` :
    `<tr><td>${link("tx", i.txid, i.txid + ":" + i.vout)}</td><td></td></tr>`).join("");
  const vout = t.vout.map((o) => `<tr><td>${o.n}</td><td>${addr(o.scriptPubKey)}</td><td class="value">${coins(o.value)}</td></tr>`).join("");
  show(`<h1>Transaction</h1><dl><dt>txid</dt><dd class="hash" id="txid">${esc(t.txid)}</dd>
    <dt>status</dt><dd>${where}</dd><dt>confirmations</dt><dd id="confirmations">${conf}</dd>
    <dt>size</dt><dd>${t.size} bytes</dd></dl>
    <h2>Inputs</h2><table id="vin">${vin}</table>
    <h2>Outputs</h2><table id="vout"><tr><th>n</th><th>to</th><th>value</th></tr>${vout}</table>`);
}

async function address(addr, query) {
  const n = Number(new URLSearchParams(query).get("confirmations") ?? 1);
  const a = await get(`/explorer/api/address/${encodeURIComponent(addr)}.json?confirmations=${n}`);
  const rows = a.utxos.map((u) => `<tr><td>${link("tx", u.txid, u.txid + ":" + u.vout)}</td><td>${coins(u.value)}</td>` +
    `<td>${u.confirmations}</td></tr>`).join("");
  show(`<h1>Address</h1><dl><dt>address</dt><dd class="hash" id="address">${esc(a.address)}</dd>
    <dt>balance</dt><dd><span id="balance">${coins(a.balance)}</span> at ≥ <form id="conf-form" style="display:inline">
      <input id="conf" type="number" min="0" value="${n}" style="width:4em"></form> confirmations
      <span class="muted">(0 = with the mempool)</span></dd>
    <dt>immature</dt><dd>${coins(a.immature)}</dd><dt>pending</dt><dd>+${coins(a.pending_in)} / −${coins(a.pending_out)}</dd></dl>
    <h2>Unspent outputs</h2><table id="utxos"><tr><th>outpoint</th><th>value</th><th>confirmations</th></tr>${rows}</table>
    <h2>In the mempool</h2><table id="addr-mempool">${a.mempool.map((t) => `<tr><td>${link("tx", t)}</td></tr>`).join("")}</table>`);
  $("#conf-form").addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/address/${encodeURIComponent(addr)}?confirmations=${Number($("#conf").value)}`;
  });
}

async function mempool() {
  const c = await get("/rest/mempool/contents.json");
  const rows = Object.entries(c).map(([t, e]) => `<tr><td>${link("tx", t)}</td><td>${e.vsize}</td><td>${coins(e.fees.base)}</td></tr>`).join("");
  show(`<h1>Mempool: <span id="pool-count">${Object.keys(c).length}</span> transactions</h1>
    <table id="pool"><tr><th>txid</th><th>vsize</th><th>fee</th></tr>${rows}</table>`);
}

async function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  $("#page").dataset.state = "loading";
  try {
    if (parts[0] === "block") await block(parts[1]);
    else if (parts[0] === "tx") await tx(parts[1]);
    else if (parts[0] === "address") await address(parts[1], query || "");
    else if (parts[0] === "mempool") await mempool();
    else await home();
  } catch (e) {
    show(`<p class="error" id="error">${esc(e.message)}</p>`, "error");
  }
}

$("#search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("#q").value.trim();
  if (/^\d+$/.test(q)) {
    try { location.hash = `#/block/${(await get(`/rest/blockhashbyheight/${q}.json`)).blockhash}`; }
    catch (err) { show(`<p class="error" id="error">${esc(err.message)}</p>`, "error"); }
  } else if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const r = await fetch(`/rest/headers/${q}.json?count=1`);
    const found = r.ok && (await r.json()).length > 0;
    location.hash = found ? `#/block/${q}` : `#/tx/${q}`;
  } else {
    location.hash = `#/address/${encodeURIComponent(q)}`;
  }
});
window.addEventListener("hashchange", route);
route();
</script>
</body>
</html>
"""
