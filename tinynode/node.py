"""The composition root: one `Node` = store, chain, mempool, wallet, miner, P2P and RPC.

Start order (each step can fail with a sentence, and undoes what came before):

    lock file  <datadir>/<network>/.lock     a second daemon on the same datadir is refused
    RPC server <network dir>/rpc.sock (0600) answers -28 "warming up" while the chain loads
    chain      ChainWriter(ChainState(SQLiteChainStore(chain.sqlite, blocks/))) on its own thread;
               blocks/ holds Core's blk*.dat/rev*.dat (under --blocksdir if given)
    mempool    Mempool on the writer thread
    wallets    wallets/[<name>/]wallet.sqlite (wallet/manager.py); catch up with the chain; rebroadcast pending sends
    P2P        ConnMan (listener + dialer) and SyncManager (headers-first sync, relay)
    miner      continuous mining when configured, else on demand (generatetoaddress)

`stop()` runs the other way as DESIGN.md §3 wants: listeners (RPC, P2P) → peers → miner →
chain writer drains → stores close → lock released. `run()` owns a TaskGroup, installs the
SIGINT/SIGTERM handlers, and returns when `request_stop()` is called (the RPC `stop` method,
a signal, or a test). Many nodes run in one process: nothing here is global.
A fatal storage error in the chain writer (Core's AbortNode) requests the stop by itself, and
`run()` then returns exit status 1 (`exit_status`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .clock import NodeClock
from .config import NodeConfig
from .primitives.address import decode_address
from .primitives.hashes import hash_to_hex
from .storage.blockfiles import disk_usage
from .validation import TxOrigin

__all__ = ["Node", "NodeError", "ChainstateLoadError", "FUTURE_TIP_ERROR"]

log = logging.getLogger(__name__)


class NodeError(RuntimeError):
    """The node cannot start; the message says why and what to do. `caption` goes before it on
    stderr (Core's noui message box: "Error: " for an InitError)."""

    caption = "Error: "


class ChainstateLoadError(NodeError):
    """Core's chainstate load failure (`ChainstateLoadStatus::FAILURE` without -reindex): the
    question "rebuild the databases?" that a daemon answers no to, written to stderr without a
    caption (Core's `noui_ThreadSafeQuestion`: style MSG_ERROR|BTN_ABORT has none) and ending with
    Core's advice to restart with -reindex or -reindex-chainstate."""

    caption = ""

    def __init__(self, error: str) -> None:
        super().__init__(error + ".\nPlease restart with -reindex or -reindex-chainstate to recover.")


#: Core VerifyLoadedChainstate's error for a tip more than MAX_FUTURE_BLOCK_TIME ahead of the clock
FUTURE_TIP_ERROR = ("The block database contains a block which appears to be from the future. "
                    "This may be due to your computer's date and time being set incorrectly. "
                    "Only rebuild the block database if you are sure that your computer's date "
                    "and time are correct")


class _LockFile:
    """An exclusive `flock` on <network dir>/.lock, held while the node runs (Core's .lock)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            try:
                pid = self.path.read_text().strip()
            except OSError:
                pid = ""
            raise NodeError(
                f"Cannot obtain a lock on data directory {self.path.parent}. tinynode is probably "
                f"already running{f' (pid {pid})' if pid else ''}; stop it with `tinynode-cli stop` "
                f"or choose another --datadir.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            import fcntl
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


class Node:
    """One tinynode. `await start()` / `await stop()` for tests, `await run()` for the daemon."""

    def __init__(self, config: NodeConfig, *, net_config: Any = None, wallet: bool = True) -> None:
        self.config = config
        self.params = config.params
        self.net_config = net_config
        self.enable_wallet = wallet and config.wallet
        self.network_dir: Path = config.network_dir
        self.rpc_socket: Path = config.rpc_socket_path
        self.start_time = time.time()
        #: this node's time: the system clock, or Core's mock time (`setmocktime`, --mocktime)
        self.clock = NodeClock(config.mocktime)
        self.writer: Any = None
        self.service: Any = None        # tinynode.validation.ValidationService: the one way in
        self.mempool: Any = None
        self.wallets: Any = None        # tinynode.wallet.manager.WalletManager (None: no wallets)
        self.miner: Any = None
        self.connman: Any = None
        self.sync: Any = None
        self.rpc: Any = None
        self.methods: Any = None
        self.payout_script: bytes | None = None
        self._lock = _LockFile(self.network_dir / ".lock")
        self._locked = False
        self._started = False
        self._stop_event = asyncio.Event()
        #: set with the stop request, for work on other threads (a reindex at start polls it)
        self._interrupt = threading.Event()
        #: what the start-up reindex did (chain/reindex.py ReindexResult), or None
        self.reindex_result: Any = None
        #: 0, or 1 once a fatal error stopped the node (the daemon's exit code)
        self.exit_status = 0

    # --- facade used by RPC --------------------------------------------------------------------
    @property
    def wallet(self) -> Any:
        """The wallet in play: in an RPC request, the one its URI names (`/wallet/<name>`) or,
        for `/`, the only one loaded (None when that is ambiguous: the RPC says why); outside a
        request, the default wallet "" (or the only one loaded)."""
        m = self.wallets
        if m is None:
            return None
        from .rpc.server import NOT_IN_REQUEST, REQUEST_WALLET
        name = REQUEST_WALLET.get()
        if name is NOT_IN_REQUEST:
            return m.default()
        if name is None:
            loaded = m.loaded()
            return loaded[0] if len(loaded) == 1 else None
        return m.get(name)

    @property
    def rpc_port(self) -> int | None:
        """The loopback TCP RPC port actually bound (None when TCP RPC is off)."""
        return self.rpc.tcp_port if self.rpc is not None else None

    @property
    def p2p_port(self) -> int:
        return self.connman.port if self.connman is not None else 0

    def request_stop(self) -> None:
        """Ask `run()` to shut down (RPC stop, signals). Safe to call more than once."""
        self._stop_event.set()
        self._interrupt.set()

    def _on_fatal(self, error: BaseException) -> None:
        """The chain writer stopped on a storage failure (Core `AbortNode`): shut down, exit 1."""
        log.critical("Error: %s; shutting down (the chain stays at its last committed block)", error)
        self.exit_status = 1
        self.request_stop()

    def relay_tx(self, tx: Any) -> None:
        """Announce a tx of ours again (the wallet's rebroadcast; new txs are relayed by the sync
        manager when the service reports them accepted)."""
        sync = self.sync
        if sync is not None:
            try:
                sync.relay_txid(tx.txid)
            except Exception:
                log.exception("relaying %s failed", tx.txid_hex)

    def in_ibd(self) -> bool:
        snap = self.writer.snapshot
        if snap.chainwork < self.params.minimum_chain_work:   # Core: tip below -minimumchainwork
            return True
        if snap.best_header_height > snap.height + 6:
            return True
        return snap.tip_time < self.clock() - 24 * 3600 and snap.height > 0 and snap.best_header_height > snap.height

    def size_on_disk(self) -> int:
        """Core's `CalculateCurrentUsage` (the block files) plus the chain database."""
        total = 0
        for name in ("chain.sqlite", "chain.sqlite-wal"):
            try:
                total += (self.network_dir / name).stat().st_size
            except OSError:
                pass
        total += disk_usage(self.config.blocks_dir)
        return total

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bring every part up; on failure, take down what started and raise NodeError."""
        if self._started:
            return
        self.config.validate()
        self.network_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.network_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            os.chmod(self.network_dir, 0o700)
        except OSError:
            pass
        self._lock.acquire()
        self._locked = True
        try:
            await self._start_parts()
        except BaseException:
            await self._stop_parts()
            raise
        self._started = True

    async def _start_parts(self) -> None:
        from .rpc.methods import RPCMethods
        from .rpc.server import RPCServer, SocketInUseError

        cfg = self.config
        log.info("tinynode starting on %s, data in %s", self.params.name, self.network_dir)
        # RPC first, so `tinynode-cli -rpcwait` sees -28 while the chain loads
        self.methods = RPCMethods(self)
        rest = explorer = None
        if cfg.rest or cfg.explorer:
            from .rpc.rest import RESTHandler
            rest = RESTHandler(self.methods).serve
        if cfg.explorer:
            from .rpc.explorer import ExplorerHandler
            explorer = ExplorerHandler(self.methods).serve
        self.rpc = RPCServer(self.rpc_socket, self.methods.dispatch, max_body=cfg.rpc_max_body,
                             timeout=cfg.rpc_timeout, timeout_for=self.methods.timeout_for,
                             tcp_port=cfg.rpc_port, cookie_path=cfg.rpc_cookie_path,
                             rest=rest, explorer=explorer)
        self.rpc.warmup = "Loading block index..."
        try:
            await self.rpc.start()
        except SocketInUseError as e:
            self.rpc = None
            raise NodeError(str(e)) from None
        except OSError as e:
            self.rpc = None
            raise NodeError(f"cannot open the RPC socket {self.rpc_socket}: {e}; choose --rpc-socket") from None

        await self._start_chain()
        self.rpc.warmup = "Loading wallet..."
        await self._start_mempool()
        if self.enable_wallet:
            await self._start_wallet()
        self.payout_script = await self._choose_payout()
        self._start_miner_object()
        await self._start_p2p()
        if cfg.mine and self.miner is not None and self.payout_script is None:
            log.warning("not mining: there is no wallet to pay to; give --mine-to ADDR")
            await self.miner.start()
        elif cfg.mine and self.miner is not None:
            self.miner.payout_script = self.payout_script
            await self.miner.start()
            where = cfg.mine_to or self.wallet.keys.address_of(self.payout_script)
            log.info("mining with %d worker%s to %s", self.miner.workers,
                     "" if self.miner.workers == 1 else "s", where)
        elif self.miner is not None:
            await self.miner.start()
            log.info("mining off: blocks come from peers, or on demand with `tinynode-cli mine N`; "
                     "start with --mine to mine continuously")
        self.rpc.warmup = None
        snap = self.writer.snapshot
        log.info("ready: height %d, tip %s; talk to me with `%s`", snap.height,
                 hash_to_hex(snap.tip_hash)[:16], self.cli_hint())

    def cli_hint(self) -> str:
        """The tinynode-cli command line that reaches this node."""
        cfg = self.config
        parts = ["tinynode-cli"]
        if cfg.network != "tinynet":
            parts += ["--network", cfg.network]
        if cfg.rpc_socket is not None:
            parts += ["--rpc-socket", str(cfg.rpc_socket)]
        elif cfg.datadir != Path.home() / ".tinynode":
            parts += ["--datadir", str(cfg.datadir)]
        return " ".join(parts + ["info"])

    async def _start_chain(self) -> None:
        from .chain.chainstate import ChainState
        from .chain.writer import ChainWriter
        from .storage.blockfiles import FASTPRUNE_BLOCKFILE_SIZE, MAX_BLOCKFILE_SIZE
        from .storage.sqlite import SQLiteChainStore

        path = self.network_dir / "chain.sqlite"
        params = self.params
        cfg = self.config
        clock = self.clock
        # Core's nPruneAfterHeight on regtest: 1000, 100 with -fastprune
        prune_after = 100 if cfg.fastprune else 1000

        from .chain.reindex import prepare_reindex, run_reindex

        def make_chainstate():
            store = SQLiteChainStore(path, txospenderindex=cfg.txospenderindex,
                                     blocks_dir=cfg.blocks_dir, magic=params.magic,
                                     max_file_size=FASTPRUNE_BLOCKFILE_SIZE if cfg.fastprune
                                     else MAX_BLOCKFILE_SIZE)
            try:
                mode = prepare_reindex(store, reindex=cfg.reindex,
                                       reindex_chainstate=cfg.reindex_chainstate)
            except BaseException:
                store.close()
                raise
            cs = ChainState(params, store, now=clock, dbcache=cfg.dbcache_bytes,
                            activate=mode is None, script_check_threads=cfg.script_check_workers,
                            script_check_mode=cfg.scriptcheck_mode)
            cs.configure_prune(cfg.prune_target_bytes, prune_after)
            if mode is not None:   # Core ImportBlocks (-reindex) / ActivateBestChain (-reindex-chainstate)
                self.reindex_result = run_reindex(cs, mode, self._interrupt.is_set,
                                                  file_name=path.name)
            else:
                try:
                    self._verify_loaded_chainstate(cs)
                except BaseException:
                    cs.close()
                    raise
            return cs
        self.writer = ChainWriter(make_chainstate, on_fatal=self._on_fatal)
        await self.writer.start()
        self.writer.subscribe_async(self._on_chain_event)
        snap = self.writer.snapshot
        log.info("chain loaded: height %d, best header %d", snap.height, snap.best_header_height)

    def _verify_loaded_chainstate(self, cs: Any) -> None:
        """Core `VerifyLoadedChainstate` (writer thread; skipped after a reindex, whose coins
        view was wiped: is_coinsview_empty): a tip more than 2 h ahead of the clock, then
        `VerifyDB` of the last -checkblocks blocks at -checklevel."""
        from .chain.verify import VerifyDBResult, verify_db
        if cs.tip.header.time > self.clock() + self.params.max_future_block_time:
            raise ChainstateLoadError(FUTURE_TIP_ERROR)
        result = verify_db(cs, self.config.check_level, self.config.check_blocks,
                           self._interrupt.is_set)
        if result is VerifyDBResult.CORRUPTED_BLOCK_DB:
            raise ChainstateLoadError("Corrupted block database detected")
        if result is VerifyDBResult.INTERRUPTED:
            raise NodeError("Block verification was interrupted")

    async def _start_mempool(self) -> None:
        from .mempool.pool import Mempool
        from .validation import ValidationService
        params = self.params

        policy = self._policy_config()

        def make():
            return Mempool(params, self.writer.chainstate, policy, clock=self.clock)
        self.mempool = await self.writer.call(make)
        self.service = ValidationService(self.writer, params, self.mempool, clock=self.clock)
        self.service.assembler_options = self._assembler_options()
        await self.writer.call(self.mempool.fee_estimator.load, self._fee_estimates_path)
        accepted = failed = 0
        if self.config.persist_mempool:   # Core -persistmempool=0: no LoadMempool
            accepted, failed = await self.writer.call(self.mempool.load, self._mempool_path)
        if accepted or failed:
            log.info("mempool loaded: %d txs back from %s (%d no longer valid)",
                     accepted, self._mempool_path.name, failed)

    def _policy_config(self) -> Any:
        """Core's -minrelaytxfee and -permitbaremultisig on the relay policy."""
        from dataclasses import replace as _replace
        from .mempool.policy import FeeRate, PolicyConfig
        cfg = self.config
        policy = PolicyConfig(permit_bare_multisig=cfg.permit_bare_multisig)
        if cfg.min_relay_tx_fee is not None:
            policy = _replace(policy, min_relay_fee=FeeRate(cfg.min_relay_tx_fee))
        return policy

    def _assembler_options(self) -> Any:
        """Core's BlockAssembler options from -blockmaxweight, -blockreservedweight,
        -blockmintxfee and -blockversion (regtest only, validated by the config)."""
        from .mining.template import AssemblerOptions
        cfg = self.config
        return AssemblerOptions(block_max_weight=cfg.block_max_weight,
                                block_reserved_weight=cfg.block_reserved_weight,
                                block_min_fee_rate=cfg.block_min_tx_fee,
                                block_version=cfg.block_version)

    @property
    def _mempool_path(self) -> Path:
        """Where the pool is kept across restarts (Core's mempool.dat)."""
        return self.network_dir / "mempool.dat"

    @property
    def _fee_estimates_path(self) -> Path:
        """The fee estimator's state across restarts (Core's fee_estimates.dat)."""
        return self.network_dir / "fee_estimates.json"

    async def _start_wallet(self) -> None:
        """The wallets (`wallet/manager.py`): a pre-multiwallet `wallet.sqlite` moves to
        `wallets/` as the default wallet "", which is loaded (made on first run), then the
        wallets settings.json lists for start. Each catches up with the chain; our pending sends
        go back to the mempool."""
        from .wallet.manager import WalletManager, WalletManagerError, migrate_legacy_layout

        params = self.params

        def make():
            migrate_legacy_layout(self.network_dir)
            m = WalletManager(params, self.network_dir, self.writer.chainstate, now=self.clock)
            if self.config.default_wallet:
                m.load_or_create_default()
            for name in m.startup_names():
                if name in m.names():
                    continue
                try:
                    m.load(name)
                except WalletManagerError as e:
                    log.warning("wallet \"%s\" not loaded at start: %s", name, e.message)
            self.wallets = m
            resent = self._resend_wallet_txs() if self.mempool is not None else 0
            summary = [(name, w.balances(), len(w.keys.addresses())) for name, w in zip(m.names(), m.loaded())]
            return resent, summary
        resent, summary = await self.writer.call(make)
        for name, b, n_addr in summary:
            log.info("wallet %sloaded: %d addresses, balance %s (+%s immature)%s",
                     f'"{name}" ' if name else "", n_addr, _coins(b.trusted), _coins(b.immature),
                     f", re-sent {resent} pending txs" if resent and name == "" else "")

    async def _choose_payout(self) -> bytes | None:
        """--mine-to, else the default wallet's one mining address (made once, stored in the
        wallet, reused at every start: `wallet.manager.mining_script`)."""
        cfg = self.config
        if cfg.mine_to:
            return decode_address(cfg.mine_to, self.params).script_pubkey
        w = self.wallet
        if w is not None and cfg.mine:
            from .wallet.manager import mining_script
            return await self.writer.call(mining_script, w)
        return None

    async def mining_payout(self) -> bytes | None:
        """Where continuous mining pays: --mine-to, else the default wallet's one stored mining
        address (made once), else None (no wallet)."""
        if self.payout_script is not None:
            return self.payout_script
        if self.config.mine_to:
            return decode_address(self.config.mine_to, self.params).script_pubkey
        w = self.wallet
        if w is None:
            return None
        from .wallet.manager import mining_script
        self.payout_script = await self.writer.call(mining_script, w)
        return self.payout_script

    def _start_miner_object(self) -> None:
        from .mining.miner import Miner
        # templates through the service: Core's BlockAssembler options and its last-block stats
        self.miner = Miner(self.service, self.params, None, self.config.mine_workers, self.mempool,
                           template_fn=self.service.template_now, clock=self.clock)

    async def _start_p2p(self) -> None:
        from .net.connman import ConnMan
        from .net.peer import NetConfig

        cfg = self.config
        netcfg = self.net_config or NetConfig()
        if not cfg.autoconnect:   # Core -connect=0: no outbound connections from the address book
            from dataclasses import replace
            netcfg = replace(netcfg, max_outbound=0)
        if cfg.uacomments:   # Core -uacomment: strSubVersion for version and getnetworkinfo
            from dataclasses import replace
            from .net.peer import format_sub_version
            netcfg = replace(netcfg, user_agent=format_sub_version(cfg.uacomments))
        if cfg.blocks_only and not netcfg.blocks_only:   # Core -blocksonly: relay=0 in our version
            from dataclasses import replace as _replace
            netcfg = _replace(netcfg, blocks_only=True)
        if cfg.prune and not netcfg.pruned:
            from dataclasses import replace as _replace
            netcfg = _replace(netcfg, pruned=True)   # Core: NODE_NETWORK_LIMITED when pruning
        seeds = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in cfg.peers]
        self.connman = ConnMan(self.params, netcfg, listen=cfg.listen, bind_host=cfg.bind,
                               bind_port=cfg.port, seeds=seeds,
                               start_height=lambda: self.writer.snapshot.height,
                               datadir=self.network_dir, whitelist=cfg.whitelist,
                               whitebind=cfg.whitebind, binds=cfg.binds, clock=self.clock)
        from .net.sync import SyncManager
        self.sync = SyncManager(self.params, netcfg, self.service, now=self.clock)
        self.sync.attach(self.connman)
        await self.sync.start()
        try:
            await self.connman.start()
        except OSError as e:
            raise NodeError(f"cannot listen on {cfg.bind}:{cfg.port}: {e.strerror or e}; "
                            f"choose another --port (or TC_PORT), or --no-listen") from None
        if cfg.peers:
            log.info("connecting to %s", ", ".join(seeds))

    async def stop(self) -> None:
        """Listeners → peers → miner → chain writer drains → stores close → lock released."""
        await self._stop_parts()
        self._started = False
        self._stop_event = asyncio.Event()

    async def _stop_parts(self) -> None:
        rpc, self.rpc = self.rpc, None
        if rpc is not None:
            await _quietly(rpc.stop(), "RPC server")
        sync, self.sync = self.sync, None
        if sync is not None and hasattr(sync, "stop"):
            await _quietly(sync.stop(), "sync")
        connman, self.connman = self.connman, None
        if connman is not None:
            await _quietly(connman.stop(), "P2P")
        miner, self.miner = self.miner, None
        if miner is not None:
            await _quietly(miner.stop(), "miner")
        writer = self.writer
        if writer is not None and writer.running:  # a failed start already stopped it
            mempool = self.mempool
            if mempool is not None and self.config.persist_mempool:   # Core DumpMempool
                try:
                    n = await writer.call(mempool.save, self._mempool_path)
                    log.info("mempool saved: %d txs", n)
                except Exception:
                    log.exception("saving the mempool failed")
                try:   # Core CBlockPolicyEstimator::Flush at shutdown
                    await writer.call(mempool.fee_estimator.save, self._fee_estimates_path)
                except Exception:
                    log.exception("saving the fee estimates failed")
            wallets = self.wallets
            if wallets is not None:
                try:
                    await writer.call(wallets.close_all)
                except Exception:
                    log.exception("closing the wallets failed")
        elif writer is not None and writer.fatal_error is not None:
            log.warning("after the fatal error the mempool is not saved (it may hold the state "
                        "of blocks that were never written)")
        if writer is not None:  # a no-op when a failed start already stopped it
            await _quietly(writer.stop(), "chain writer")
        self.wallets = None
        if self._locked:
            self._lock.release()
            self._locked = False
        if self._started:  # after a failed start the caller reports the error: no "stopped" before it
            log.info("tinynode stopped")

    async def run(self) -> int:
        """Start, serve until `request_stop()` or SIGINT/SIGTERM, then stop in order. Returns
        the exit status: 0, or 1 after a fatal error (Core's AbortNode).

        The signal handlers go in first, so a signal while the chain is still loading also
        shuts down in order."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        stop_requested = False
        try:
            start = asyncio.ensure_future(self.start())
            waiter = asyncio.ensure_future(self._stop_event.wait())
            try:
                await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if not start.done():
                # stopping while starting: let the current step finish, then undo everything
                stop_requested = True
                await start
            start.result()
            if self._stop_event.is_set():
                stop_requested = True
            if not stop_requested:
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._progress_loop(), name="progress")
                        tg.create_task(self._rebroadcast_loop(), name="wallet-rebroadcast")
                        await self._stop_event.wait()
                        raise _Shutdown
                except* _Shutdown:
                    pass
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()
        return self.exit_status

    def _on_signal(self, sig: int) -> None:
        log.info("received %s, shutting down", signal.Signals(sig).name)
        self.request_stop()

    # --- logs a person can follow ---------------------------------------------------------------
    async def _on_chain_event(self, event: Any) -> None:
        from .chain.events import TipChanged
        stop_at = self.config.stop_at_height
        if stop_at and isinstance(event, TipChanged) and event.new_tip.height >= stop_at:
            # Core KernelNotifications::blockTip: -stopatheight reached, shut down
            log.info("reached -stopatheight %d (tip height %d): shutting down", stop_at,
                     event.new_tip.height)
            self.request_stop()
        if isinstance(event, TipChanged) and event.disconnected:
            log.warning("reorg: %d block%s disconnected, %s (height %d) -> %s (height %d)",
                        event.disconnected, "" if event.disconnected == 1 else "s",
                        hash_to_hex(event.old_tip.hash)[:16], event.old_tip.height,
                        hash_to_hex(event.new_tip.hash)[:16], event.new_tip.height)
            if self.wallets is not None and self.mempool is not None:
                try:
                    await self.writer.call(self._wallet_after_reorg)
                except RuntimeError:  # writer stopping
                    pass

    def _wallet_after_reorg(self) -> None:
        self._resend_wallet_txs()

    def _resend_wallet_txs(self) -> int:
        """Writer thread (Core `ResendWalletTransactions` + conflict detection): our pending
        sends missing from the mempool go back into it; one whose inputs are gone from both the
        chain and the mempool lost a double spend and is marked conflicted. Returns how many
        went back."""
        mp, cs = self.mempool, self.writer.chainstate
        back = 0
        for w in (self.wallets.loaded() if self.wallets is not None else ()):
            def lost(op, w=w) -> bool:
                parent = w.get_tx(op.txid)
                if parent is not None and parent.state != "conflicted":
                    return False
                return cs.get_coin(op) is None and mp.get(op.txid) is None

            for tx in w.pending_own_txs():
                if tx.txid in mp:
                    continue
                res = self.service.submit_tx_now(tx, TxOrigin.wallet())
                if res.accepted:
                    back += 1
                    continue
                # conflicted while we were away, or not valid any more
                if any(lost(i.prevout) for i in tx.vin):
                    w.mark_conflicted(tx.txid)
                log.info("wallet tx %s not re-accepted: %s", tx.txid_hex, res.error)
        return back

    async def _rebroadcast_loop(self, interval: float = 30.0) -> None:
        """Announce our unconfirmed sends again now and then, so peers that joined after a send
        (or lost it) hear of it (Core `ResendWalletTransactions`; relay skips peers that know it)."""
        while True:
            await asyncio.sleep(interval)
            if self.wallets is None or self.mempool is None or self.sync is None:
                continue
            try:
                txs = await self.writer.call(self._pending_in_mempool)
            except RuntimeError:  # writer stopping
                return
            for tx in txs:
                self.relay_tx(tx)

    def _pending_in_mempool(self) -> list:
        return [tx for w in self.wallets.loaded() for tx in w.pending_own_txs() if tx.txid in self.mempool]

    async def _progress_loop(self) -> None:
        """A one-line heartbeat every minute when something changed: height, peers, mempool,
        wallet balance (sync, mining and peers log their own events as they happen)."""
        last: tuple = ()
        while True:
            await asyncio.sleep(60)
            snap = self.writer.snapshot
            peers = len(self.connman.connected_peers()) if self.connman is not None else 0
            pool = len(self.mempool) if self.mempool is not None else 0
            state = (snap.tip_hash, peers, pool)
            if state == last:
                continue
            last = state
            bal = ""
            if self.wallet is not None:
                try:
                    b = await self.writer.call(self.wallet.balances)
                    bal = f", balance {_coins(b.trusted)} (+{_coins(b.immature)} immature)"
                except RuntimeError:
                    return
            log.info("status: height %d, %d peer%s, %d mempool tx%s%s", snap.height, peers,
                     "" if peers == 1 else "s", pool, "" if pool == 1 else "s", bal)


class _Shutdown(Exception):
    pass


def _coins(sats: int) -> str:
    return f"{sats / 1e8:.8f}".rstrip("0").rstrip(".") if sats else "0"


async def _quietly(aw: Any, what: str) -> None:
    try:
        async with asyncio.timeout(15):
            await aw
    except Exception:
        log.exception("stopping %s failed", what)

