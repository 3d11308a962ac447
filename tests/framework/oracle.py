"""Bitcoin Core's own consensus engine as a test oracle (libbitcoinkernel via PyPI py-bitcoinkernel).

Two differential checks, used by the script-vector, property, chain-scenario and BIP68 tests:

- `kernel_verify(...)`: Core's `VerifyScript` through `btck_script_pubkey_verify` for one input,
  with the consensus flags the kernel exposes (P2SH, DERSIG, NULLDUMMY, CHECKLOCKTIMEVERIFY,
  CHECKSEQUENCEVERIFY, WITNESS, TAPROOT), the spent amount (BIP143 signs it) and every spent
  output (the kernel requires them with TAPROOT: a one-input tx's is the checked output itself;
  for a multi-input tx without them the comparison drops TAPROOT). Policy-only flags (STRICTENC,
  LOW_S, ...) are not part of the kernel's API, so a caller compares verdicts on
  `consensus_part(flags)` and runs tinynode with exactly that set too.
- `KernelChain`: a regtest `ChainstateManager` (in-memory databases, a temporary blocks dir)
  fed the same blocks as a tinynode `ChainState`; `OracleChainState` wraps a ChainState so every
  `process_block` / `process_headers` also goes to the kernel and the verdict (accepted or
  rejected) and the active tip must be equal after each call.

The kernel is optional for a developer machine (the module reports why it is missing); CI
installs it with the test extra, and `require_kernel()` makes a missing kernel a test failure
there (TINYNODE_ORACLE=1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import pytest

from tinynode.primitives.block import Block, BlockHeader
from tinynode.primitives.hashes import hash_to_hex
from tinynode.script.flags import ScriptFlags, format_flags

try:  # pragma: no cover - depends on the platform's wheel
    import pbk
    KERNEL_ERROR: str | None = None
except Exception as e:  # ImportError, or the shared library failing to load
    pbk = None
    KERNEL_ERROR = f"py-bitcoinkernel is not importable: {e}"

__all__ = ["pbk", "KERNEL_ERROR", "KERNEL_FLAGS", "require_kernel", "require_kernel_if_ci",
           "consensus_part", "kernel_verify", "same_verdict", "oracle_checked",
           "verify_script_checked_by_core", "KernelChain", "OracleChainState", "with_oracle",
           "restarted", "MAX_FUTURE_BLOCK_TIME"]

#: The script flags libbitcoinkernel takes that tinynode implements (Core's bit values).
KERNEL_FLAGS = (ScriptFlags.P2SH | ScriptFlags.DERSIG | ScriptFlags.NULLDUMMY
                | ScriptFlags.CHECKLOCKTIMEVERIFY | ScriptFlags.CHECKSEQUENCEVERIFY
                | ScriptFlags.WITNESS | ScriptFlags.TAPROOT)


def require_kernel_if_ci() -> None:
    """Fail when CI asked for the oracle (TINYNODE_ORACLE=1) and it is missing; else nothing."""
    if KERNEL_ERROR is not None and os.environ.get("TINYNODE_ORACLE") == "1":
        pytest.fail(KERNEL_ERROR + " (TINYNODE_ORACLE=1 requires it)")


def require_kernel() -> None:
    """Skip (developer machine) or fail (CI sets TINYNODE_ORACLE=1) when the kernel is missing."""
    require_kernel_if_ci()
    if KERNEL_ERROR is not None:
        pytest.skip(KERNEL_ERROR)


def consensus_part(flags: int) -> int:
    """The part of `flags` the kernel can be asked about: its flags, with WITNESS only beside
    P2SH (Core's `is_valid_flag_combination`, as its tests' TrimFlags: WITNESS needs P2SH)."""
    f = int(flags) & int(KERNEL_FLAGS)
    if not f & ScriptFlags.P2SH:
        f &= ~int(ScriptFlags.WITNESS)
    return f


def kernel_verify(tx_bytes: bytes, input_index: int, script_pubkey: bytes, amount: int,
                  flags: int, spent_outputs: list[tuple[bytes, int]] | None = None) -> bool:
    """Core `VerifyScript` (via the kernel) for input `input_index` of the serialized tx (the
    kernel reads scriptSig and witness from it). `amount` is the spent output's value;
    `spent_outputs` ((script_pubkey, amount) for every input), when given, goes to the
    kernel's PrecomputedTransactionData as Core's validation passes it."""
    assert int(flags) & ~int(KERNEL_FLAGS) == 0, "only kernel flags can be compared"
    assert not (int(flags) & ScriptFlags.TAPROOT and spent_outputs is None), \
        "the kernel needs every spent output with TAPROOT"
    ktx = pbk.Transaction(tx_bytes)
    spk = pbk.ScriptPubkey(script_pubkey)
    txdata = None
    if spent_outputs is not None:
        outs = [pbk.TransactionOutput(pbk.ScriptPubkey(s), a) for s, a in spent_outputs]
        txdata = pbk.script.PrecomputedTransactionData(ktx, outs)
    try:
        return bool(spk.verify(amount, ktx, txdata, input_index,
                               pbk.ScriptVerificationFlags(int(flags))))
    except pbk.ScriptVerifyException as e:  # invalid flag combination / missing spent outputs
        raise AssertionError(f"kernel refused the call itself: {e}") from e


def same_verdict(verify_script, script_pubkey: bytes, tx, input_index: int, flags: int,
                 amount: int = 0, what: str = "",
                 spent_outputs: list[tuple[bytes, int]] | None = None) -> bool:
    """Run input `input_index` of `tx` (its scriptSig and witness) through tinynode's
    `verify_script` and Core's kernel on the consensus part of `flags` with the spent `amount`
    and, when known, every spent output (both engines get them); assert both give the same
    verdict and return it. A one-input tx's spent output is (script_pubkey, amount); without
    spent outputs a multi-input tx is compared without TAPROOT."""
    from tinynode.primitives.tx import TxOut
    from tinynode.script.interpreter import ScriptError
    from tinynode.script.sighash import PrecomputedTxData

    cflags = consensus_part(flags)
    if spent_outputs is None and len(tx.vin) == 1:
        spent_outputs = [(script_pubkey, amount)]
    txdata = None
    if spent_outputs is None:
        cflags &= ~int(ScriptFlags.TAPROOT)
    else:
        txdata = PrecomputedTxData.for_tx(tx, [TxOut(a, s) for s, a in spent_outputs])
    try:
        verify_script(tx.vin[input_index].script_sig, script_pubkey, tx, input_index, cflags,
                      amount=amount, txdata=txdata)
        mine = True
    except ScriptError:
        mine = False
    core = kernel_verify(tx.serialize(), input_index, script_pubkey, amount, cflags, spent_outputs)
    assert mine == core, (
        f"{what}: tinynode {'OK' if mine else 'fails'}, Core {'OK' if core else 'fails'} with "
        f"{format_flags(cflags)}: spk={script_pubkey.hex()} tx={tx.serialize().hex()}")
    return core


def oracle_checked(verify_script):
    """`verify_script` that also asks Core about every call it can (`same_verdict`), then runs
    the call as asked (all flags) and returns or raises as the real one does.

    Calls whose scriptSig or witness is not the one in the tx (the kernel reads them from the
    tx) are only run, not compared; `checked.compared_witness` / `compared_taproot` count
    compared calls with the WITNESS / TAPROOT flag on."""
    def checked(script_sig, script_pubkey, tx, input_index, flags=0, amount=0, witness=None,
                txdata=None):
        txin = tx.vin[input_index]
        if txin.script_sig == script_sig and (witness is None or tuple(witness) == txin.witness):
            spent = None
            if txdata is not None and txdata.spent_outputs is not None:
                spent = [(o.script_pubkey, o.value) for o in txdata.spent_outputs]
            same_verdict(verify_script, script_pubkey, tx, input_index, flags, amount=amount,
                         what="verify_script", spent_outputs=spent)
            checked.compared += 1
            if consensus_part(flags) & ScriptFlags.WITNESS:
                checked.compared_witness += 1
            if consensus_part(flags) & ScriptFlags.TAPROOT:
                checked.compared_taproot += 1
        return verify_script(script_sig, script_pubkey, tx, input_index, flags, amount=amount,
                             witness=witness, txdata=txdata)

    checked.compared = 0
    checked.compared_witness = 0
    checked.compared_taproot = 0
    return checked


@contextlib.contextmanager
def verify_script_checked_by_core(namespace: dict):
    """For a test module's module-scoped autouse fixture: while it is active, the module's
    `verify_script` (in `namespace`, its globals) is `oracle_checked`, so the module's own cases
    and property tests go to Core too; at the end at least one call must have been compared.
    Without a kernel nothing changes (and CI, TINYNODE_ORACLE=1, fails)."""
    if KERNEL_ERROR is not None:
        require_kernel_if_ci()
        yield None
        return
    real = namespace["verify_script"]
    checked = namespace["verify_script"] = oracle_checked(real)
    try:
        yield checked
    finally:
        namespace["verify_script"] = real
    assert checked.compared > 0, "no call was compared with Core"


class KernelChain:
    """A regtest libbitcoinkernel chainstate with in-memory databases.

    `submit(block)` → True if Core accepted the block (stored, valid so far), False if Core
    rejected it (ProcessNewBlock failed, or connecting it or a block it activated failed).
    Blocks whose parent Core does not know wait in a pool bounded like the tinynode node's
    unconnected-blocks store (`max_orphans`, oldest evicted first; Core itself keeps none, its
    net layer asks for the parent first), and are retried after each accepted block. Before
    pooling, Core's context-free `CheckBlock` (PoW, merkle root, size, coinbase, txs) runs on
    the block, as `ProcessNewBlock` does before it looks for the parent. The pool is adopted in
    the order tinynode adopts its own unconnected blocks (children of a parent by ascending
    hash, depth-first from the last one): that order decides which of several equal-work tips
    formed in one call is "first seen", a choice of the node's (Core has no such pool), so the
    kernel is made to see the blocks in that order. A block Core cannot even deserialize (e.g.
    a tx with no inputs, which Core reads as a segwit marker) counts as rejected.
    """

    def __init__(self, max_orphans: int = 100) -> None:
        require_kernel()
        self.max_orphans = max_orphans
        self._dir = tempfile.mkdtemp(prefix="tinynode-kernel-")
        self._verdicts: dict[bytes, bool] = {}   # the kernel's block_checked reports of one call
        verdicts = self._verdicts

        def on_checked(_user, block, state) -> None:
            verdicts[bytes(block.block_hash)] = (
                state.validation_mode == pbk.ValidationMode.VALID)

        self._callbacks = pbk.ValidationInterfaceCallbacks(block_checked=on_checked)
        self._context = pbk.make_context(pbk.ChainType.REGTEST, validation_callbacks=self._callbacks)
        opts = pbk.ChainstateManagerOptions(self._context, self._dir, os.path.join(self._dir, "blocks"))
        opts.update_block_tree_db_in_memory(True)
        opts.update_chainstate_db_in_memory(True)
        self.chainman = pbk.ChainstateManager(opts)
        self._chain_params = pbk.ChainParameters(pbk.ChainType.REGTEST)
        self._consensus_params = self._chain_params.consensus_params
        self.orphans: dict[bytes, Block] = {}   # block hash → block waiting for its parent
        self.rejected: set[bytes] = set()       # pooled blocks refused under a refused parent
        self.failed: set[bytes] = set()         # blocks a block_checked verdict found invalid

    def knows(self, block_hash: bytes) -> bool:
        return pbk.BlockHash(block_hash) in self.chainman.block_tree_entries

    def tip_hash(self) -> bytes:
        chain = self.chainman.get_active_chain()
        return bytes(chain._get_by_height(chain.height).block_hash)

    def submit(self, block: Block, stored_by_node: bool = False) -> tuple[bool, dict[bytes, bool]]:
        """Hand `block` to Core. Returns (accepted, every block_checked verdict of the call).

        `stored_by_node`: tinynode stored the block (so it adopts its waiting children even
        when connecting them fails); the pool then does the same."""
        self._verdicts.clear()
        if not self.knows(block.header.prev_hash):
            if block.header.prev_hash in self.rejected:      # Core: bad-prevblk
                self.rejected.add(block.hash)
                return False, {block.hash: False}
            if not self._context_free_ok(block):
                return False, {block.hash: False}
            if block.hash not in self.orphans:
                while len(self.orphans) >= self.max_orphans:
                    del self.orphans[next(iter(self.orphans))]
                self.orphans[block.hash] = block
            return True, {}
        accepted = self._process(block)
        verdicts = dict(self._verdicts)
        if accepted:
            self._adopt_orphans(block.hash, verdicts)
            # connecting an adopted child's branch may have failed at this very block
            accepted = verdicts.get(block.hash, True)
        elif stored_by_node and self.knows(block.hash):
            self._adopt_orphans(block.hash, verdicts, failed=True)
        self.failed.update(h for h, ok in verdicts.items() if ok is False and self.knows(h))
        return accepted, verdicts

    def _context_free_ok(self, block: Block) -> bool:
        """Core `CheckBlock` with PoW and merkle checks, on regtest's consensus params."""
        try:
            kblock = pbk.Block(block.serialize())
        except RuntimeError:
            return False
        state = kblock.check(self._consensus_params, pbk.BlockCheckFlags.ALL)
        return state.validation_mode == pbk.ValidationMode.VALID

    def _adopt_orphans(self, parent: bytes, verdicts: dict[bytes, bool], failed: bool = False) -> None:
        """Hand Core the pooled descendants of `parent`. Under a parent Core refused
        (`failed`), tinynode still stores them, as failed children; Core would refuse each
        (bad-prevblk, not indexed), so they are refused here and remembered in `rejected`,
        whose children are refused too."""
        todo = [(parent, failed)]
        while todo:
            p, p_failed = todo.pop()
            children = sorted(h for h, blk in self.orphans.items() if blk.header.prev_hash == p)
            for h in children:
                blk = self.orphans.pop(h)
                if p_failed:
                    self.rejected.add(h)
                    verdicts[h] = False
                    todo.append((h, True))
                    continue
                self._verdicts.clear()
                ok = self._process(blk)
                verdicts.update(self._verdicts)
                verdicts[h] = ok
                if ok:
                    todo.append((h, False))
                elif self.knows(h):
                    todo.append((h, True))

    def _process(self, block: Block) -> bool:
        try:
            kblock = pbk.Block(block.serialize())
        except RuntimeError:          # Core's deserializer refuses it
            return False
        try:
            self.chainman.process_block(kblock)
            ok = self._verdicts.get(block.hash, True)
        except pbk.ProcessBlockException:
            ok = False
        return ok

    def judged_invalid(self, block_hash: bytes) -> bool:
        """Core found the block invalid in an earlier call (a block_checked verdict)."""
        return block_hash in self.failed

    def submit_header(self, header: BlockHeader) -> bool:
        try:
            state = self.chainman.process_block_header(pbk.BlockHeader(header.serialize()))
        except pbk.ProcessBlockHeaderException:
            return False
        return state.validation_mode == pbk.ValidationMode.VALID

    def close(self) -> None:
        self.chainman = None
        self._context = None
        shutil.rmtree(self._dir, ignore_errors=True)


#: Core's MAX_FUTURE_BLOCK_TIME (validation.h/chain.h): a header more than 2 h ahead of the
#: node's clock is `time-too-new`.
MAX_FUTURE_BLOCK_TIME = 2 * 60 * 60


class OracleChainState:
    """A tinynode `ChainState` whose every block also goes to Core's kernel.

    After each `process_block` the two must agree on whether the delivered block was rejected
    and on the active tip; `process_headers` feeds the kernel the same headers. Everything else
    is the wrapped ChainState's. `calls` counts compared deliveries (a test can assert the
    oracle really ran).

    Three things the kernel's API cannot follow, handled here:

    - Its clock is the system clock (no mock time through the C API). A block tinynode refuses
      as `time-too-new` is not handed to the kernel; instead Core's rule (`ContextualCheckBlockHeader`:
      time > now + MAX_FUTURE_BLOCK_TIME) is checked against tinynode's own clock, so a test's
      frozen clock never makes the two disagree by accident.
    - It has no `invalidateblock`/`reconsiderblock`. `invalidate_block` suspends the comparison
      (blocks still go to the kernel) until `reconsider_block` has undone every invalidation.
      Then the tips must be equal again, or tied: the kernel, which never left the first-seen
      branch, may be on another tip of equal work (regtest: equal height) than the one
      tinynode moved to meanwhile; verdicts are compared at once, tips from the first block
      that ends the tie.
    - A restart: `kernel=` hands an existing `KernelChain` to the reopened chainstate
      (`close(keep_kernel=True)` keeps it); the two tips must be equal from the start.
    """

    def __init__(self, chainstate, kernel: "KernelChain | None" = None) -> None:
        self._cs = chainstate
        self.kernel = kernel or KernelChain(getattr(chainstate, "_max_unconnected", 100))
        self.calls = 0
        self.invalidated: set[bytes] = set()
        self.tied = False          # after a reconsider: different tips of equal work allowed
        assert self._cs.tip.hash == self.kernel.tip_hash(), "tinynode and Core start on different tips"

    def __getattr__(self, name):
        if name.startswith("__") or name == "_cs":
            raise AttributeError(name)
        return getattr(self._cs, name)

    _OWN = frozenset({"_cs", "kernel", "calls", "invalidated", "tied", "_unjudged"})

    def __setattr__(self, name, value) -> None:
        """Settings a test changes (e.g. `flush_bytes`) go to the wrapped ChainState."""
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._cs, name, value)

    def __repr__(self) -> str:
        return f"OracleChainState({self._cs!r})"

    def process_headers(self, headers: list[BlockHeader]):
        out = self._cs.process_headers(headers)
        for h in headers:
            self.kernel.submit_header(h)
        return out

    def invalidate_block(self, block_hash: bytes) -> None:
        self._cs.invalidate_block(block_hash)
        self.invalidated.add(block_hash)

    def reconsider_block(self, block_hash: bytes) -> None:
        self._cs.reconsider_block(block_hash)
        if block_hash in self.invalidated:
            self.invalidated.discard(block_hash)
            if not self.invalidated:
                self.tied = True
                self._assert_same_tip(f"reconsider_block {hash_to_hex(block_hash)}")

    def _assert_same_tip(self, after: str) -> None:
        if self._cs.tip.hash == self.kernel.tip_hash():
            self.tied = False
            return
        if self.tied:
            assert self._cs.tip.height == self.kernel.chainman.get_active_chain().height, (
                f"after {after}: tinynode {self._cs.tip.hash_hex} h={self._cs.tip.height} and Core "
                f"{hash_to_hex(self.kernel.tip_hash())} are not tied")
            return
        assert self._cs.tip.hash == self.kernel.tip_hash(), (
            f"tips differ after {after}: tinynode {self._cs.tip.hash_hex}, "
            f"Core {hash_to_hex(self.kernel.tip_hash())}")

    def process_block(self, block: Block):
        from tinynode.consensus.errors import RejectReason, ValidationError
        self._unjudged = self._stored_unjudged(block.hash)
        try:
            res = self._cs.process_block(block)
            err = res.error
        except ValidationError as e:
            res, err = None, e
        if err is not None and err.reason == RejectReason.TIME_TOO_NEW:
            now = int(self._cs._now())
            assert block.header.time > now + MAX_FUTURE_BLOCK_TIME, (
                f"block {hash_to_hex(block.hash)}: tinynode says time-too-new at time "
                f"{block.header.time}, Core's rule needs more than {now} + {MAX_FUTURE_BLOCK_TIME}")
            self.calls += 1
        else:
            self._compare(block, err)
        if res is None:
            raise err
        return res

    def _stored_unjudged(self, block_hash: bytes) -> bool:
        """tinynode stores the block but has never connected it (its branch never had the most
        work): tinynode does not know yet whether it is valid."""
        from tinynode.chain.index import BlockStatus as S
        e = self._cs.get_entry(block_hash)
        return bool(e and e.have_data and not e.status & (S.VALID_SCRIPTS | S.FAILED_MASK))

    def _unjudged_ancestor_judged_by_core(self, block: Block) -> bool:
        """An ancestor tinynode stored but never connected that the kernel found invalid."""
        e = self._cs.get_entry(block.header.prev_hash)
        while e is not None and self._stored_unjudged(e.hash):
            if self.kernel.judged_invalid(e.hash):
                return True
            e = e.prev
        return False

    def _compare(self, block: Block, err) -> None:
        from tinynode.consensus.errors import RejectReason
        entry = self._cs.get_entry(block.hash)
        core_knew_invalid = ((self._unjudged and self.kernel.judged_invalid(block.hash))
                             or self._unjudged_ancestor_judged_by_core(block))
        accepted, verdicts = self.kernel.submit(block, stored_by_node=bool(entry and entry.have_data))
        if self.invalidated:            # tinynode follows an invalidateblock Core never saw
            return
        if err is None and not accepted and core_knew_invalid:
            # The block (delivered again) or a stored ancestor of it is one tinynode stored
            # unconnected (a same-work sibling came first), while the kernel's stand-in for the
            # unconnected-blocks pool, which activates after each adopted block, connected it
            # and found it invalid: Core answers from that earlier verdict (duplicate-invalid,
            # bad-prevblk), tinynode has none yet. Not a rule difference; the tips are still
            # compared.
            self.calls += 1
            self._assert_same_tip(hash_to_hex(block.hash))
            return
        self.calls += 1
        tiny_rejected = err is not None
        core_rejected = not accepted
        if err is not None and err.reason == RejectReason.BAD_PREVBLK and accepted:
            # The block is fine but activating its branch failed at a stored ancestor in this
            # same call: Core stores it (ProcessNewBlock true) and marks the ancestor invalid
            # (its block_checked), which leaves the block on an invalid branch, as tinynode says.
            core_rejected = any(v is False for h, v in verdicts.items() if h != block.hash)
        assert tiny_rejected == core_rejected, (
            f"block {hash_to_hex(block.hash)}: tinynode {'rejected ' + repr(err) if err else 'accepted'}"
            f", Core {'rejected' if core_rejected else 'accepted'} ({verdicts})")
        self._assert_same_tip(hash_to_hex(block.hash))

    def close(self, keep_kernel: bool = False) -> None:
        if not keep_kernel:
            self.kernel.close()
        self._cs.close()


def with_oracle(chainstate, kernel: "KernelChain | None" = None):
    """`chainstate` wrapped in `OracleChainState` when the kernel is importable; else itself
    (CI, TINYNODE_ORACLE=1, fails instead). For tests whose blocks are on Bitcoin's regtest."""
    if KERNEL_ERROR is not None:
        require_kernel_if_ci()
        return chainstate
    return OracleChainState(chainstate, kernel)


def restarted(old, reopen):
    """Close `old` and return `reopen()` (a new ChainState on the same store), checked by
    `old`'s kernel if `old` had one (the kernel's chainstate lives on; tinynode's restarts)."""
    if isinstance(old, OracleChainState):
        old.close(keep_kernel=True)
        return OracleChainState(reopen(), old.kernel)
    old.close()
    return reopen()
