"""`tinynode lab view`: a live picture of a lab network in the browser.

A small HTTP server on 127.0.0.1 serves one page and `/lab.json`. The page (plain HTML and a
little JavaScript, no build step) asks for `/lab.json` every second and draws each node as a
circle coloured by its tip (nodes on the same tip share a colour, so a fork shows as two colours
and its healing as one), the links between nodes, and the fork tree `tinynode lab tree` prints.

`/lab.json` is built from the nodes' RPC (getblockchaininfo, getrawmempool, getpeerinfo), each
call bounded by the lab's `view_timeout`; a node that does not answer is drawn grey.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .lab import Lab

log = logging.getLogger(__name__)


def lab_snapshot(lab: "Lab") -> dict[str, Any]:
    """Nodes (the `tips` rows plus port and miner flag), links (pairs of node indexes, from each
    node's outbound peers, whose address is the other node's listening port) and the fork tree."""
    from .rpc.client import ConnectionFailed, RPCClient
    from .rpc.protocol import RPCError

    nodes = lab.nodes
    by_port = {n.port: n.index for n in nodes}
    rows = {r["index"]: r for r in lab.tips()}
    links: set[tuple[int, int]] = set()
    out = []
    for n in nodes:
        row = dict(rows.get(n.index, {}))
        row.pop("mempool_txids", None)
        row.update(port=n.port, miner=n.miner)
        if row.get("alive"):
            try:
                peers = RPCClient(n.socket, timeout=lab.view_timeout).call("getpeerinfo")
            except (ConnectionFailed, OSError, RPCError):
                peers = []
            for p in peers:
                if p.get("inbound"):
                    continue
                port = int(str(p.get("addr", "")).rpartition(":")[2] or 0)
                other = by_port.get(port)
                if other is not None and other != n.index:
                    links.add((min(n.index, other), max(n.index, other)))
        out.append(row)
    return {"network": lab.network if lab.exists() else None, "nodes": out,
            "links": sorted([a, b] for a, b in links), "tree": lab.tree_text()}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tinynode lab</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#status { color: #666; font-size: .9em; }
svg { border: 1px solid #ddd; border-radius: 6px; background: #fbfbfb; }
.node text { font-size: 12px; text-anchor: middle; }
pre { background: #f4f4f4; padding: .8em; border-radius: 6px; }
table { border-collapse: collapse; font-size: .9em; }
td, th { padding: .2em .8em; border-bottom: 1px solid #eee; text-align: left; }
</style></head>
<body>
<h1>tinynode lab: live network</h1>
<div id="status">loading...</div>
<svg id="net" width="560" height="420" role="img" aria-label="nodes and links"></svg>
<h2>Fork tree</h2><pre id="tree"></pre>
<h2>Nodes</h2>
<table><thead><tr><th>node</th><th>height</th><th>tip</th><th>peers</th><th>mempool</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
function colour(tip) {
  if (!tip) return "#bbb";
  var h = parseInt(tip.slice(-6), 16) % 360;
  return "hsl(" + h + ", 65%, 55%)";
}
function draw(d) {
  var svg = document.getElementById("net"), n = d.nodes.length, pos = [];
  var cx = 280, cy = 210, r = n > 1 ? 150 : 0;
  for (var i = 0; i < n; i++) {
    var a = 2 * Math.PI * i / Math.max(n, 1) - Math.PI / 2;
    pos.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  }
  var idx = {};
  d.nodes.forEach(function (x, i) { idx[x.index] = i; });
  var s = "";
  d.links.forEach(function (l) {
    var a = pos[idx[l[0]]], b = pos[idx[l[1]]];
    if (a && b) s += '<line class="link" x1="' + a[0] + '" y1="' + a[1] + '" x2="' + b[0] +
                     '" y2="' + b[1] + '" stroke="#999" stroke-width="2"/>';
  });
  d.nodes.forEach(function (x, i) {
    var p = pos[i], label = x.alive ? "h " + x.height : "down";
    s += '<g class="node" data-node="' + x.node + '" data-tip="' + (x.tip || "") + '">' +
         '<circle cx="' + p[0] + '" cy="' + p[1] + '" r="30" fill="' + (x.alive ? colour(x.tip) : "#ccc") +
         '" stroke="#333"/><text x="' + p[0] + '" y="' + (p[1] - 3) + '">' + x.node + (x.miner ? " *" : "") +
         '</text><text x="' + p[0] + '" y="' + (p[1] + 12) + '">' + label + '</text></g>';
  });
  svg.innerHTML = s;
  document.getElementById("tree").textContent = d.tree;
  var tips = {};
  d.nodes.forEach(function (x) { if (x.alive) tips[x.tip] = 1; });
  var forks = Object.keys(tips).length;
  document.getElementById("status").textContent = (d.network || "") + ": " + n + " nodes, " +
    d.links.length + " links, " + (forks <= 1 ? "one tip" : forks + " tips (a fork)") +
    " - updated " + new Date().toLocaleTimeString();
  document.getElementById("rows").innerHTML = d.nodes.map(function (x) {
    return "<tr><td>" + x.node + "</td><td>" + (x.height === null ? "" : x.height) + "</td><td><code>" +
      (x.tip ? x.tip.slice(0, 16) + "..." : "") + "</code></td><td>" + (x.peers === null ? "" : x.peers) +
      "</td><td>" + (x.mempool === null ? "" : x.mempool) + "</td></tr>";
  }).join("");
}
function poll() {
  fetch("lab.json").then(function (r) { return r.json(); }).then(draw)
    .catch(function (e) { document.getElementById("status").textContent = "no answer: " + e; })
    .finally(function () { setTimeout(poll, 1000); });
}
poll();
</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    lab: "Lab"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            body, ctype = PAGE.encode(), "text/html; charset=utf-8"
        elif path == "/lab.json":
            body, ctype = json.dumps(lab_snapshot(self.lab)).encode(), "application/json"
        else:
            self.send_error(404, "not found")
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("lab view: " + fmt, *args)


def serve(lab: "Lab", port: int = 0) -> ThreadingHTTPServer:
    """Start the view on 127.0.0.1:`port` (0: any free port) in a thread; `.shutdown()` ends it."""
    handler = type("LabViewHandler", (_Handler,), {"lab": lab})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="lab-view", daemon=True).start()
    return server
