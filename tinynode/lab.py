"""`tinynode lab`: a network of real tinynode daemons on one machine, as a CLI and a Python API.

A lab is a directory (default `./.tinynode-lab`) holding one data directory per node and a lab
file, `lab.json`, that records every node it started: name, pid (each daemon leads its own
process group), P2P port, RPC socket and the exact command line. Every verb reads that file, so
`lab up` in one shell and `lab tips` in another work together, and `lab down` signals only the
process groups recorded there.

    lab = Lab("/tmp/mylab")
    lab.up(4, topology="line")
    lab.mine(0, 5)
    lab.sync(timeout=30)
    lab.partition([[0, 1], [2, 3]]); ...; lab.heal()
    lab.down()

All nodes share 127.0.0.1, so a partition cannot be an IP ban: each node gets a deny-list of
the other side's `127.0.0.1:port` listening addresses through RPC (`denypeer` / `allowpeer`),
which cuts the connections and keeps them cut until `heal`. Every wait here has a deadline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .rpc.client import ConnectionFailed, RPCClient
from .rpc.protocol import RPCError

log = logging.getLogger(__name__)

__all__ = ["Lab", "LabError", "LabNode", "lab_main", "render_fork_tree", "topology_edges", "TOPOLOGIES"]

LAB_FILE = "lab.json"
TOPOLOGIES = ("line", "star", "mesh", "random")
#: A Unix socket path must fit sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100
HOST = "127.0.0.1"


class LabError(Exception):
    """Something a person can fix: printed as one line by `lab_main`, exit status 1."""


@dataclass(frozen=True, slots=True)
class LabNode:
    """One daemon of the lab as recorded in the lab file."""

    index: int
    name: str
    port: int
    socket: str
    datadir: str
    log: str
    argv: tuple[str, ...]
    miner: bool = False
    pid: int | None = None

    @property
    def address(self) -> str:
        """Its listening address, `127.0.0.1:port` (what peers and deny-lists use)."""
        return f"{HOST}:{self.port}"

    def to_json(self) -> dict:
        d = asdict(self)
        d["argv"] = list(self.argv)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "LabNode":
        return cls(index=int(d["index"]), name=str(d["name"]), port=int(d["port"]),
                   socket=str(d["socket"]), datadir=str(d["datadir"]), log=str(d["log"]),
                   argv=tuple(d["argv"]), miner=bool(d.get("miner", False)),
                   pid=None if d.get("pid") is None else int(d["pid"]))


@dataclass(slots=True)
class _State:
    network: str = "regtest"
    topology: str = "line"
    nodes: list[LabNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    partition: list[list[int]] | None = None
    sockdir: str = ""


# ------------------------------------------------------------------------------- processes

def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child (a zombie still answers kill(pid, 0))."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] == b"Z"


def pid_alive(pid: int) -> bool:
    """True while `pid` is a live (non-zombie) process."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _owned(pid: int, node: LabNode) -> bool:
    """Is `pid` still the daemon we started (not a recycled pid)? Checked by its command line."""
    cmd = _cmdline(pid)
    if cmd is None:                      # no /proc (macOS): trust the lab file
        return pid_alive(pid)
    return node.datadir in cmd


def _group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (Linux /proc; [] elsewhere)."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2:].split()
        # fields after comm: state ppid pgrp session ...
        if len(rest) >= 4 and int(rest[2]) == pgid and int(rest[3]) == pgid and rest[0] != b"Z":
            out.append(int(e))
    return out


def _wait_gone(pids: Iterable[int], timeout: float) -> bool:
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        if not any(pid_alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _wait_reaped(pids: Iterable[int], timeout: float) -> bool:
    """Wait until the pids no longer exist at all (an orphan's zombie is reaped by init)."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for p in pids:
            _reap(p)
            try:
                os.kill(p, 0)
                left.append(p)
            except ProcessLookupError:
                pass
            except PermissionError:
                left.append(p)
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _ephemeral_low() -> int:
    """The first port the kernel hands out for outgoing connections (Linux's default 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nobody listens on right now (bound briefly, then released).

    Drawn below the kernel's ephemeral range when there is room, so an outgoing connection
    (which gets an ephemeral source port) cannot take it between this probe and the bind."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    if low > 11000:
        for _ in range(50):
            port = rng.randrange(10000, low - 1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def topology_edges(n: int, topology: str, seed: int | None = None) -> list[tuple[int, int]]:
    """Edges (i, j), i > j: node i dials node j at start. Every topology is connected."""
    if topology == "line":
        return [(i, i - 1) for i in range(1, n)]
    if topology == "star":
        return [(i, 0) for i in range(1, n)]
    if topology == "mesh":
        return [(i, j) for i in range(1, n) for j in range(i)]
    if topology == "random":
        rng = random.Random(seed)
        edges = {(i, rng.randrange(i)) for i in range(1, n)}          # a random spanning tree
        for _ in range(n // 2):                                         # plus a few chords
            i = rng.randrange(1, n) if n > 1 else 0
            if i:
                edges.add((i, rng.randrange(i)))
        return sorted(edges)
    raise LabError(f"unknown topology {topology!r} (choose {', '.join(TOPOLOGIES)})")


def render_fork_tree(tips: Sequence[tuple[int, Sequence[str]]], hash_at: Callable[[int, int], str]) -> str:
    """Draw the fork tree of distinct chain tips.

    `tips[k]` is (height, names of the nodes on that tip); `hash_at(k, h)` is the hash at
    height h of tip k's chain (a node's `getblockhash`). The first line is the last block all
    tips share; each branch is drawn at its own fork point or tip, with the nodes sitting there.
    Fork points are found by binary search, so a deep chain costs O(log height) lookups.
    """
    cache: dict[tuple[int, int], str] = {}

    def at(k: int, height: int) -> str:
        key = (k, height)
        if key not in cache:
            cache[key] = hash_at(k, height)
        return cache[key]

    def fork_height(a: int, b: int) -> int:
        """Highest height where tips a and b share a block."""
        lo, hi = 0, min(tips[a][0], tips[b][0])
        if at(a, hi) == at(b, hi):
            return hi
        while hi - lo > 1:                     # invariant: same at lo, different at hi
            mid = (lo + hi) // 2
            if at(a, mid) == at(b, mid):
                lo = mid
            else:
                hi = mid
        return lo

    lines: list[str] = []

    def render(group: list[int], base: int, prefix: str, last: bool, top: bool) -> None:
        """`group` shares the block at `base`; draw it, then its branches above it."""
        names = [n for k in group if tips[k][0] == base for n in tips[k][1]]
        text = f"height {base}  {at(group[0], base)[:16]}" + (f"  <- {' '.join(names)}" if names else "")
        if top:
            lines.append(text)
            child_prefix = ""
        else:
            lines.append(prefix + ("└── " if last else "├── ") + text)
            child_prefix = prefix + ("    " if last else "│   ")
        branches: dict[str, list[int]] = {}
        for k in group:
            if tips[k][0] > base:
                branches.setdefault(at(k, base + 1), []).append(k)
        items = sorted(branches.values(), key=lambda g: (-max(tips[k][0] for k in g), g[0]))
        for i, g in enumerate(items):
            nb = min([tips[k][0] for k in g] + [fork_height(g[0], k) for k in g[1:]])
            render(g, nb, child_prefix, i == len(items) - 1, False)

    if not tips:
        return ""
    everyone = list(range(len(tips)))
    root = tips[0][0] if len(tips) == 1 else min(fork_height(0, k) for k in everyone[1:])
    render(everyone, root, "", True, True)
    return "\n".join(lines)


# ------------------------------------------------------------------------------- the lab

class Lab:
    """A lab directory and the daemons recorded in it. Every method has a bounded wait."""

    def __init__(self, dir: str | os.PathLike = ".tinynode-lab", *, python: str | None = None,
                 rpc_timeout: float = 30.0, view_timeout: float = 5.0) -> None:
        self.dir = Path(dir).absolute()
        self.python = python or sys.executable
        self.rpc_timeout = rpc_timeout
        self.view_timeout = view_timeout       # per call in tips/sync/tree: a hung node is "down"
        self._procs: dict[int, subprocess.Popen] = {}   # children of this process, to reap

    # --- lab file -------------------------------------------------------------------------------
    @property
    def lab_file(self) -> Path:
        return self.dir / LAB_FILE

    def _load(self) -> _State:
        try:
            d = json.loads(self.lab_file.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab in {self.dir}; start one with `tinynode lab up N`") from None
        except ValueError as e:
            raise LabError(f"lab file {self.lab_file} is unreadable: {e}") from None
        return _State(network=d["network"], topology=d.get("topology", "line"),
                      nodes=[LabNode.from_json(x) for x in d["nodes"]],
                      edges=[(int(a), int(b)) for a, b in d.get("edges", [])],
                      partition=d.get("partition"), sockdir=d.get("sockdir", ""))

    def _save(self, st: _State) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        d = {"version": 1, "network": st.network, "topology": st.topology,
             "nodes": [n.to_json() for n in st.nodes], "edges": [list(e) for e in st.edges],
             "partition": st.partition, "sockdir": st.sockdir}
        tmp = self.lab_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(d, indent=2) + "\n")
        os.replace(tmp, self.lab_file)

    def exists(self) -> bool:
        return self.lab_file.exists()

    @property
    def nodes(self) -> list[LabNode]:
        return self._load().nodes

    @property
    def network(self) -> str:
        return self._load().network

    def node(self, ref: int | str) -> LabNode:
        """A node by index (`2`), or name (`n2`, `node2`)."""
        nodes = self._load().nodes
        s = str(ref).strip()
        for prefix in ("node", "n"):
            if s.startswith(prefix) and s[len(prefix):].isdigit():
                s = s[len(prefix):]
                break
        if not s.isdigit() or int(s) >= len(nodes):
            names = ", ".join(str(n.index) for n in nodes)
            raise LabError(f"no node {ref!r} in this lab (nodes: {names})")
        return nodes[int(s)]

    def client(self, ref: int | str, timeout: float | None = None) -> RPCClient:
        return RPCClient(self.node(ref).socket, timeout=timeout or self.rpc_timeout)

    def rpc(self, ref: int | str, method: str, *params: Any, timeout: float | None = None) -> Any:
        """Call one RPC method on a node and return its result (raises RPCError / ConnectionFailed)."""
        return self.client(ref, timeout).call(method, *params)

    def alive(self, ref: int | str) -> bool:
        n = self.node(ref)
        return n.pid is not None and pid_alive(n.pid) and _owned(n.pid, n)

    def pids(self) -> list[int]:
        return [n.pid for n in self._load().nodes if n.pid is not None]

    # --- up -------------------------------------------------------------------------------------
    def _sockdir(self) -> Path:
        """Where RPC sockets go: inside the lab if the path is short enough, else a short /tmp dir."""
        inside = self.dir / "s"
        if len(os.fsencode(str(inside / "n999.sock"))) <= MAX_SOCKET_PATH:
            return inside
        tag = hashlib.sha256(os.fsencode(str(self.dir))).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"tnlab-{os.getuid()}-{tag}"

    def _argv(self, st: _State, node: LabNode, peers: Sequence[str]) -> tuple[str, ...]:
        argv = [self.python, "-m", "tinynode", "--network", st.network, "--datadir", node.datadir,
                "--port", str(node.port), "--bind", HOST, "--rpc-socket", node.socket,
                "--mine-workers", "1", "--log-level", "info"]
        argv.append("--mine" if node.miner else "--no-mine")
        if peers:
            argv += ["--peers", ",".join(peers)]
        return tuple(argv)

    def _spawn(self, node: LabNode) -> LabNode:
        Path(node.datadir).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TC_")}
        # The daemons run the same tinynode as this lab (not whatever an install points at).
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        with open(node.log, "ab") as logf:
            proc = subprocess.Popen(node.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                    start_new_session=True, env=env, close_fds=True)
        self._procs[proc.pid] = proc
        return replace(node, pid=proc.pid)

    def _wait_ready(self, nodes: Sequence[LabNode], timeout: float) -> list[LabNode]:
        """Wait until every node answers RPC; return the ones whose process died instead."""
        deadline = time.monotonic() + timeout
        pending = {n.index: n for n in nodes}
        dead: list[LabNode] = []
        while pending:
            for i, n in list(pending.items()):
                if n.pid is None or not pid_alive(n.pid):
                    dead.append(n)
                    del pending[i]
                    continue
                try:
                    RPCClient(n.socket, timeout=5.0).call("getblockcount")
                    del pending[i]
                except (ConnectionFailed, OSError):
                    pass
                except RPCError:
                    pass                          # warming up
            if not pending:
                break
            if time.monotonic() >= deadline:
                names = ", ".join(n.name for n in pending.values())
                raise LabError(f"{names} did not answer RPC within {timeout:g} s (see their daemon.log)")
            time.sleep(0.1)
        return dead

    def up(self, n: int, *, topology: str = "line", miners: Iterable[int] | None = None,
           network: str = "regtest", seed: int | None = None, timeout: float = 60.0,
           wait_peers: bool = True) -> list[LabNode]:
        """Start `n` daemons, connect them per `topology`, record them; return once all answer RPC.

        Miners default to none on regtest and all on tinynet. With `wait_peers`, also wait (within
        `timeout`) until every node has at least one peer.
        """
        if n < 1:
            raise LabError("a lab needs at least one node")
        if network not in ("regtest", "tinynet"):
            raise LabError(f"unknown network {network!r} (choose regtest or tinynet)")
        if topology not in TOPOLOGIES:
            raise LabError(f"unknown topology {topology!r} (choose {', '.join(TOPOLOGIES)})")
        if self.exists():
            old = self._load()
            running = [x.name for x in old.nodes if x.pid is not None and pid_alive(x.pid) and _owned(x.pid, x)]
            if running:
                raise LabError(f"a lab is already running in {self.dir} ({', '.join(running)}); "
                               f"`tinynode lab down` first")
        miner_set = set(range(n)) if miners is None and network == "tinynet" else set(miners or ())
        bad = sorted(i for i in miner_set if not 0 <= i < n)
        if bad:
            raise LabError(f"--miners names nodes that do not exist: {bad}")
        sockdir = self._sockdir()
        sockdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = _State(network=network, topology=topology, edges=topology_edges(n, topology, seed),
                    sockdir=str(sockdir))
        ports = self._distinct_ports(n)
        for i in range(n):
            datadir = self.dir / f"n{i}"
            st.nodes.append(LabNode(index=i, name=f"n{i}", port=ports[i],
                                    socket=str(sockdir / f"n{i}.sock"), datadir=str(datadir),
                                    log=str(datadir / "daemon.log"), argv=(), miner=i in miner_set))
        st.nodes = [replace(x, argv=self._argv(st, x, self._peers_of(st, x.index))) for x in st.nodes]
        self._save(st)
        st.nodes = [self._spawn(x) for x in st.nodes]
        self._save(st)
        try:
            for _attempt in range(3):
                dead = self._wait_ready(st.nodes, timeout)
                if not dead:
                    break
                # Most likely a port somebody took between our probe and the daemon's bind.
                for d in dead:
                    log.warning("%s exited during start; retrying on a new port", d.name)
                    newport = self._distinct_ports(1, exclude={x.port for x in st.nodes})[0]
                    st.nodes[d.index] = replace(d, port=newport)
                for d in dead:
                    x = st.nodes[d.index]
                    st.nodes[d.index] = self._spawn(replace(x, argv=self._argv(st, x, self._peers_of(st, x.index))))
                self._save(st)
            else:
                raise LabError(f"{', '.join(d.name for d in dead)} would not start; see {dead[0].log}")
            if wait_peers and n > 1:
                self._wait_for(lambda: all(self._peer_count(x) > 0 for x in self._load().nodes),
                               timeout, "every node to have a peer")
        except BaseException:
            self.down(keep_data=True)
            raise
        return st.nodes

    @staticmethod
    def _distinct_ports(n: int, exclude: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
        ports: list[int] = []
        for _ in range(50 * n + 50):
            if len(ports) == n:
                break
            p = free_port()
            if p not in ports and p not in exclude:
                ports.append(p)
        if len(ports) < n:
            raise LabError("could not find free loopback ports")
        return ports

    @staticmethod
    def _peers_of(st: _State, i: int) -> list[str]:
        return [st.nodes[j].address for a, j in st.edges if a == i]

    def _peer_count(self, node: LabNode) -> int:
        try:
            return int(RPCClient(node.socket, timeout=5.0).call("getconnectioncount"))
        except (ConnectionFailed, OSError, RPCError):
            return 0

    @staticmethod
    def _wait_for(pred, timeout: float, what: str, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                raise LabError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(interval)

    # --- down / stop / restart ------------------------------------------------------------------
    def _stop_nodes(self, nodes: Sequence[LabNode], graceful_timeout: float = 10.0,
                    term_timeout: float = 5.0) -> None:
        """RPC `stop`, then SIGTERM to each process group, then SIGKILL; only pids we recorded.

        All nodes are asked at once and waited for together, so a lab of hung daemons still
        goes down within about graceful_timeout + term_timeout seconds.
        """
        mine = [n for n in nodes if n.pid is not None and pid_alive(n.pid) and _owned(n.pid, n)]
        for node in mine:
            try:
                RPCClient(node.socket, timeout=2.0).call("stop")
            except (ConnectionFailed, OSError, RPCError):
                pass
        pids = [n.pid for n in mine]
        if not _wait_gone(pids, graceful_timeout):
            for node in mine:
                self._signal_group(node.pid, node, signal.SIGTERM)
            if not _wait_gone(pids, term_timeout):
                for node in mine:
                    self._signal_group(node.pid, node, signal.SIGKILL)
                _wait_gone(pids, 15.0)      # a big process takes a moment to be torn down
        gone: list[int] = [n.pid for n in mine]
        for node in nodes:
            if node.pid is None:
                continue
            # Leftovers of the group (mining workers) after the leader is gone.
            members = _group_members(node.pid)
            gone += members
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not members:
                    break
                for m in members:
                    try:
                        os.kill(m, sig)
                    except ProcessLookupError:
                        pass
                if _wait_gone(members, 3.0):
                    break
            proc = self._procs.pop(node.pid, None)
            if proc is not None:
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    pass
            _reap(node.pid)
        # Dead is not enough for `kill(pid, 0)`: wait (bounded) until the zombies are reaped too.
        _wait_reaped(gone, 10.0)

    def _stop_node(self, node: LabNode) -> None:
        self._stop_nodes([node])

    @staticmethod
    def _signal_group(pid: int, node: LabNode, sig: int) -> None:
        if not (pid_alive(pid) and _owned(pid, node)):
            return
        try:
            os.killpg(pid, sig)           # start_new_session: the daemon leads group `pid`
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    def down(self, keep_data: bool = False) -> None:
        """Stop every recorded node (gracefully, then firmly); remove the lab unless keep_data."""
        if not self.exists():
            return
        st = self._load()
        self._stop_nodes(st.nodes)
        left = [n.pid for n in st.nodes if n.pid is not None and pid_alive(n.pid) and _owned(n.pid, n)]
        if left:
            raise LabError(f"processes {left} did not exit even after SIGKILL; lab file kept")
        st.nodes = [replace(x, pid=None) for x in st.nodes]
        if keep_data:
            st.partition = None
            self._save(st)
            return
        if st.sockdir and Path(st.sockdir) != self.dir / "s":
            shutil.rmtree(st.sockdir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self, ref: int | str, sig: int = signal.SIGKILL) -> None:
        """Signal one node's process group (tests: `kill -9`); the record keeps its pid."""
        node = self.node(ref)
        if node.pid is None:
            return
        self._signal_group(node.pid, node, sig)
        if sig == signal.SIGKILL:
            _wait_gone([node.pid], 5.0)
            for m in _group_members(node.pid):
                try:
                    os.kill(m, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc = self._procs.pop(node.pid, None)
            if proc is not None:
                proc.wait(timeout=5.0)

    def stop(self, ref: int | str) -> None:
        """Stop one node; it stays in the lab file (start it again with `restart`)."""
        st = self._load()
        node = self.node(ref)
        self._stop_node(node)
        st.nodes[node.index] = replace(node, pid=None)
        self._save(st)

    def restart(self, ref: int | str, timeout: float = 60.0) -> LabNode:
        """Stop a node (if running) and start it again on the same port and data directory."""
        node = self.node(ref)
        self._stop_node(node)
        st = self._load()
        new = self._spawn(replace(node, pid=None))
        st.nodes[node.index] = new
        self._save(st)
        dead = self._wait_ready([new], timeout)
        if dead:
            raise LabError(f"{node.name} exited while restarting; see {node.log}")
        # A partition in force applies to the restarted node too.
        if st.partition:
            self._apply_partition(st, [new.index])
        return new

    # --- views ----------------------------------------------------------------------------------
    def _row(self, node: LabNode) -> dict:
        row: dict[str, Any] = {"node": node.name, "index": node.index, "pid": node.pid, "alive": False,
                               "height": None, "tip": None, "chainwork": None, "peers": None,
                               "mempool": None, "mempool_txids": None}
        if node.pid is not None and pid_alive(node.pid):
            try:
                c = RPCClient(node.socket, timeout=self.view_timeout)
                info = c.call("getblockchaininfo")
                pool = c.call("getrawmempool")
                row.update(alive=True, height=info["blocks"], tip=info["bestblockhash"],
                           chainwork=info["chainwork"], peers=c.call("getconnectioncount"),
                           mempool=len(pool), mempool_txids=sorted(pool))
            except (ConnectionFailed, OSError, RPCError):
                pass
        return row

    def tips(self) -> list[dict]:
        """One row per node: node, alive, height, tip, chainwork, peers, mempool (count and txids).

        Nodes are asked in parallel, each call bounded by `view_timeout`; a node that does not
        answer in time is shown as not alive.
        """
        from concurrent.futures import ThreadPoolExecutor

        nodes = self._load().nodes
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(nodes)))) as ex:
            return list(ex.map(self._row, nodes))

    def mempools(self) -> dict[str, set[str]]:
        return {r["node"]: set(r["mempool_txids"]) for r in self.tips() if r["alive"]}

    def in_sync(self) -> tuple[bool, str]:
        """(all live nodes share one tip and one mempool?, a description of the difference)."""
        rows = [r for r in self.tips()]
        live = [r for r in rows if r["alive"]]
        problems = []
        down = [r["node"] for r in rows if not r["alive"] and r["pid"] is not None]   # not `stop`ped
        if down:
            problems.append(f"not answering: {', '.join(down)}")
        tips: dict[str, list[str]] = {}
        for r in live:
            tips.setdefault(r["tip"], []).append(f"{r['node']}@{r['height']}")
        if len(tips) > 1:
            problems.append("tips differ: " + "; ".join(f"{t[:16]}… {' '.join(ns)}" for t, ns in tips.items()))
        pools = {r["node"]: set(r["mempool_txids"]) for r in live}
        if len({frozenset(p) for p in pools.values()}) > 1:
            union = set().union(*pools.values())
            parts = []
            for name, p in pools.items():
                missing = union - p
                if missing:
                    parts.append(f"{name} lacks {', '.join(sorted(t[:16] + '…' for t in missing))}")
            problems.append("mempools differ: " + "; ".join(parts))
        return (not problems, "\n".join(problems))

    def sync(self, timeout: float = 60.0) -> tuple[bool, str]:
        """Wait until every node has the same tip and mempool; (ok, difference if not)."""
        deadline = time.monotonic() + timeout
        while True:
            ok, diff = self.in_sync()
            if ok or time.monotonic() >= deadline:
                return ok, diff
            time.sleep(0.2)

    def tree(self) -> str:
        """An ASCII fork tree: the branches the live nodes' active chains form, who sits where."""
        live = []
        for node in self._load().nodes:
            if node.pid is None or not pid_alive(node.pid):
                continue
            try:
                c = RPCClient(node.socket, timeout=self.view_timeout)
                info = c.call("getblockchaininfo")
                live.append((node, c, info["blocks"], info["bestblockhash"]))
            except (ConnectionFailed, OSError, RPCError):
                continue
        if not live:
            return "no node is answering"
        # One representative client per distinct tip.
        tips: dict[str, dict] = {}
        for node, c, h, t in live:
            tips.setdefault(t, {"client": c, "height": h, "hash": t, "nodes": []})["nodes"].append(node.name)
        reps = list(tips.values())
        try:
            return render_fork_tree([(r["height"], r["nodes"]) for r in reps],
                                    lambda k, height: reps[k]["client"].call("getblockhash", height))
        except (ConnectionFailed, OSError, RPCError) as e:
            raise LabError(f"a node changed or stopped answering while drawing the tree ({e}); try again") from None

    def tree_text(self) -> str:
        """`tree()`, or why it cannot be drawn now (for the live view)."""
        try:
            return self.tree()
        except LabError as e:
            return str(e)

    # --- actions --------------------------------------------------------------------------------
    def mine(self, ref: int | str, n: int, address: str | None = None) -> list[str]:
        """Mine `n` blocks on a node to `address` (default a fresh address of its wallet)."""
        if n < 0:
            raise LabError("the number of blocks must not be negative")
        c = self.client(ref, timeout=max(self.rpc_timeout, 30.0 + 2.0 * n))
        addr = address or c.call("getnewaddress", "lab")
        return c.call("generatetoaddress", n, addr)

    def _apply_partition(self, st: _State, only: Sequence[int] | None = None) -> None:
        groups = st.partition or []
        side = {i: g for g, members in enumerate(groups) for i in members}
        for node in st.nodes:
            if only is not None and node.index not in only:
                continue
            for other in st.nodes:
                if other.index != node.index and side.get(other.index) != side.get(node.index):
                    self._deny(node, other.address)

    def _deny(self, node: LabNode, address: str) -> None:
        try:
            RPCClient(node.socket, timeout=self.rpc_timeout).call("denypeer", address)
        except RPCError as e:
            if e.code == -32601:
                raise LabError(f"{node.name} has no `denypeer` RPC (an older tinynode?), so the lab "
                               "cannot partition it") from None
            raise

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Cut the lab into groups that cannot talk to each other (per-node deny-lists).

        Nodes named in no group form one more group of their own.
        """
        st = self._load()
        n = len(st.nodes)
        seen: set[int] = set()
        norm: list[list[int]] = []
        for g in groups:
            members = sorted({int(x) for x in g})
            for i in members:
                if not 0 <= i < n:
                    raise LabError(f"no node {i} in this lab (nodes 0..{n - 1})")
                if i in seen:
                    raise LabError(f"node {i} is in two groups")
                seen.add(i)
            if members:
                norm.append(members)
        rest = [i for i in range(n) if i not in seen]
        if rest:
            norm.append(rest)
        if len(norm) < 2:
            raise LabError("a partition needs at least two groups, e.g. `lab partition 0,1 2,3`")
        if st.partition:
            self._allow_all(st)
        st.partition = norm
        self._save(st)
        self._apply_partition(st)
        side = {i: g for g, members in enumerate(norm) for i in members}

        def cut() -> bool:
            for node in st.nodes:
                if node.pid is None or not pid_alive(node.pid):
                    continue
                try:
                    peers = RPCClient(node.socket, timeout=5.0).call("getpeerinfo")
                except (ConnectionFailed, OSError, RPCError):
                    continue
                addrs = {p.get("addrlisten") or p.get("addr") for p in peers}
                for other in st.nodes:
                    if side[other.index] != side[node.index] and other.address in addrs:
                        return False
            return True
        self._wait_for(cut, 15.0, "the partition's connections to close")

    def _allow_all(self, st: _State) -> None:
        for node in st.nodes:
            if node.pid is None or not pid_alive(node.pid):
                continue
            for other in st.nodes:
                if other.index != node.index:
                    try:
                        RPCClient(node.socket, timeout=self.rpc_timeout).call("allowpeer", other.address)
                    except RPCError as e:
                        if e.code == -32601:
                            raise LabError(f"{node.name} has no `allowpeer` RPC (an older tinynode?)") from None
                        raise
                    except (ConnectionFailed, OSError):
                        pass

    def heal(self, timeout: float = 30.0) -> None:
        """Lift the partition: clear the deny-lists and redial the topology's edges at once."""
        st = self._load()
        self._allow_all(st)
        st.partition = None
        self._save(st)
        for a, b in st.edges:
            na, nb = st.nodes[a], st.nodes[b]
            if na.pid is None or not pid_alive(na.pid):
                continue
            try:
                RPCClient(na.socket, timeout=self.rpc_timeout).call("addnode", nb.address, "onetry")
            except (ConnectionFailed, OSError, RPCError):
                pass
        live = [x for x in st.nodes if x.pid is not None and pid_alive(x.pid)]
        if len(live) > 1:
            self._wait_for(lambda: all(self._peer_count(x) > 0 for x in live), timeout,
                           "every node to have a peer again")

    def cli_argv(self, ref: int | str, args: Sequence[str]) -> list[str]:
        """The `tinynode-cli` arguments that talk to one node (its network and RPC socket)."""
        node = self.node(ref)
        return ["--network", self.network, "--rpc-socket", node.socket, *args]


# ------------------------------------------------------------------------------- the CLI

LAB_HELP = """usage: tinynode lab <command> [args...]   (lab directory: --dir D, default ./.tinynode-lab)

Run a network of tinynode daemons on this machine (127.0.0.1, free ports).

  up N [--topology line|star|mesh|random] [--miners 0,2] [--network regtest|tinynet]
                     start N nodes and connect them (regtest by default; miners default
                     to none on regtest, all on tinynet)
  down [--keep-data] stop every node and remove the lab (or keep the data directories)
  tips               node, height, tip, chainwork, peers, mempool
  tree               the fork tree: which node sits on which branch
  sync [--timeout S] wait until all tips and mempools agree (exit 1 with the difference)
  partition 0,1 2,3  split the nodes into groups that cannot reach each other
  heal               join them again
  mine NODE N        mine N blocks on NODE
  restart NODE       stop NODE and start it again (same port and data)
  cli NODE ARGS...   run tinynode-cli against NODE, e.g. `lab cli 1 balance`
  nodes              where each node lives (pid, port, socket, log)
  view [--port N]    a live picture in the browser at http://127.0.0.1:N/ (nodes, links,
                     each node's tip, the fork tree), until Ctrl-C
"""


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LabError(f"{what} must be comma-separated node numbers like 0,2, not {text!r}") from None


def _take(args: list[str], name: str, has_value: bool = True) -> str | bool | None:
    """Remove `--name V` / `--name=V` / `--name` from args; return its value."""
    for i, a in enumerate(args):
        if a == f"--{name}":
            if not has_value:
                del args[i]
                return True
            if i + 1 >= len(args):
                raise LabError(f"--{name} needs a value")
            v = args[i + 1]
            del args[i:i + 2]
            return v
        if has_value and a.startswith(f"--{name}="):
            del args[i]
            return a.split("=", 1)[1]
    return None


def _short(h: str | None, n: int = 16) -> str:
    return "-" if h is None else h[:n]


def _print_tips(rows: list[dict]) -> None:
    print(f"{'node':<5} {'height':>6}  {'tip':<16}  {'chainwork':>9}  {'peers':>5}  {'mempool':>7}")
    for r in rows:
        if not r["alive"]:
            print(f"{r['node']:<5} {'down':>6}")
            continue
        work = r["chainwork"].lstrip("0") or "0"
        print(f"{r['node']:<5} {r['height']:>6}  {_short(r['tip']):<16}  {work:>9}  {r['peers']:>5}  {r['mempool']:>7}")


def lab_main(argv: Sequence[str] | None = None,
             run_cli: Callable[[list[str]], int] | None = None) -> int:
    """`tinynode lab ...`; returns the exit status.

    `run_cli` runs `tinynode-cli` with the given arguments (`tinynode lab cli NODE ...`); the
    daemon's entry point passes it, so the lab depends only on the RPC client, not on the CLI.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(LAB_HELP)
        return 0
    try:
        d = _take(args, "dir")
        lab = Lab(d if isinstance(d, str) else ".tinynode-lab")
        verb, rest = args[0], args[1:]
        if verb == "cli":
            if not rest:
                raise LabError("usage: tinynode lab cli NODE <command> [args...]")
            if run_cli is None:
                raise LabError("tinynode lab cli is only available from the tinynode command")
            return run_cli(lab.cli_argv(rest[0], rest[1:]))
        if verb == "up":
            topo = _take(rest, "topology") or "line"
            miners_s = _take(rest, "miners")
            network = _take(rest, "network") or "regtest"
            seed_s = _take(rest, "seed")
            if len(rest) != 1 or not rest[0].isdigit():
                raise LabError("usage: tinynode lab up N [--topology T] [--miners 0,2] [--network NET]")
            miners = None if miners_s is None else _int_list(str(miners_s), "--miners")
            nodes = lab.up(int(rest[0]), topology=str(topo), miners=miners, network=str(network),
                           seed=None if seed_s is None else int(str(seed_s)))
            print(f"lab up in {lab.dir}: {len(nodes)} {network} node{'s' if len(nodes) != 1 else ''}, "
                  f"{topo} topology")
            for x in nodes:
                print(f"  {x.name}  pid {x.pid:<7}  port {x.port:<5}  {'miner' if x.miner else ''}")
            print("see them with `tinynode lab tips`; stop them with `tinynode lab down`")
            return 0
        if verb == "down":
            keep = bool(_take(rest, "keep-data", has_value=False))
            if rest:
                raise LabError("usage: tinynode lab down [--keep-data]")
            if not lab.exists():
                print(f"no lab in {lab.dir}")
                return 0
            n = len(lab.nodes)
            lab.down(keep_data=keep)
            print(f"stopped {n} node{'s' if n != 1 else ''}" + (f"; data kept in {lab.dir}" if keep else ""))
            return 0
        if verb == "tips":
            _print_tips(lab.tips())
            return 0
        if verb == "tree":
            print(lab.tree())
            return 0
        if verb == "view":
            port_s = _take(rest, "port")
            if rest or (port_s is not None and not str(port_s).isdigit()):
                raise LabError("usage: tinynode lab view [--port N]")
            if not lab.exists():
                raise LabError(f"no lab in {lab.dir}; start one with `tinynode lab up N`")
            from .labview import serve
            server = serve(lab, int(str(port_s)) if port_s is not None else 0)
            print(f"lab view on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
            finally:
                server.shutdown()
            return 0
        if verb == "nodes":
            for x in lab.nodes:
                state = "up" if lab.alive(x.index) else "down"
                print(f"{x.name}  {state:<4}  pid {x.pid}  port {x.port}  socket {x.socket}  log {x.log}")
            return 0
        if verb == "sync":
            t = _take(rest, "timeout")
            try:
                timeout = 60.0 if t is None else float(str(t))
            except ValueError:
                raise LabError("--timeout needs a number of seconds") from None
            ok, diff = lab.sync(timeout)
            if ok:
                rows = lab.tips()
                r = next((r for r in rows if r["alive"]), None)
                if r:
                    print(f"in sync: {len(rows)} nodes at height {r['height']} tip {_short(r['tip'])}, "
                          f"{r['mempool']} in mempool")
                return 0
            print(f"not in sync after {timeout:g} s:\n{diff}")
            return 1
        if verb == "partition":
            if len(rest) < 1:
                raise LabError("usage: tinynode lab partition 0,1 2,3")
            groups = [_int_list(g, "a group") for g in rest]
            lab.partition(groups)
            st = lab._load()
            print("partitioned: " + " | ".join(",".join(str(i) for i in g) for g in st.partition or []))
            return 0
        if verb == "heal":
            lab.heal()
            print("healed: every node may talk to every other again")
            return 0
        if verb == "mine":
            if len(rest) != 2 or not rest[1].isdigit():
                raise LabError("usage: tinynode lab mine NODE N")
            hashes = lab.mine(rest[0], int(rest[1]))
            node = lab.node(rest[0])
            height = lab.rpc(node.index, "getblockcount")
            print(f"{node.name} mined {len(hashes)} block{'s' if len(hashes) != 1 else ''}; height {height}"
                  + (f", tip {hashes[-1][:16]}" if hashes else ""))
            return 0
        if verb == "restart":
            if len(rest) != 1:
                raise LabError("usage: tinynode lab restart NODE")
            x = lab.restart(rest[0])
            print(f"{x.name} restarted: pid {x.pid}, height {lab.rpc(x.index, 'getblockcount')}")
            return 0
        raise LabError(f"unknown lab command {verb!r}; see `tinynode lab --help`")
    except LabError as e:
        print(f"tinynode lab: {e}", file=sys.stderr)
        return 1
    except ConnectionFailed as e:
        print(f"tinynode lab: a node is not answering: {e}", file=sys.stderr)
        return 1
    except RPCError as e:
        print(f"tinynode lab: error code {e.code}: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    raise SystemExit(lab_main())
