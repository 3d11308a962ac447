"""BIP341 script trees: leaf and branch hashes, merkle roots from control blocks, output keys and
control blocks for a tree (Core `ComputeTapleafHash`, `ComputeTapbranchHash`,
`ComputeTaprootMerkleRoot`, `VerifyTaprootCommitment`, and what `TaprootBuilder` produces).

A script tree is given as BIP341's wallet vectors write it: None (no scripts), a leaf
`(leaf_version, script)`, or a list `[left, right]` of two subtrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..primitives.hashes import tagged_hasher
from ..primitives.keys import check_tap_tweak, taproot_tweak_pubkey
from ..primitives.serialize import ser_compact_size

__all__ = [
    "TAPROOT_LEAF_TAPSCRIPT", "TAPROOT_LEAF_MASK", "TAPROOT_CONTROL_BASE_SIZE",
    "TAPROOT_CONTROL_NODE_SIZE", "TAPROOT_CONTROL_MAX_NODE_COUNT", "TAPROOT_CONTROL_MAX_SIZE",
    "ANNEX_TAG", "tapleaf_hash", "tapbranch_hash", "merkle_root_from_control",
    "verify_taproot_commitment", "TaprootInfo", "taproot_tree",
]

TAPROOT_LEAF_MASK = 0xFE
TAPROOT_LEAF_TAPSCRIPT = 0xC0
TAPROOT_CONTROL_BASE_SIZE = 33
TAPROOT_CONTROL_NODE_SIZE = 32
TAPROOT_CONTROL_MAX_NODE_COUNT = 128
TAPROOT_CONTROL_MAX_SIZE = TAPROOT_CONTROL_BASE_SIZE + TAPROOT_CONTROL_NODE_SIZE * TAPROOT_CONTROL_MAX_NODE_COUNT
ANNEX_TAG = 0x50


def tapleaf_hash(leaf_version: int, script: bytes) -> bytes:
    """Core `ComputeTapleafHash`: hash_TapLeaf(leaf_version || compact size || script)."""
    h = tagged_hasher("TapLeaf")
    h.update(bytes((leaf_version,)) + ser_compact_size(len(script)))
    h.update(script)
    return h.digest()


def tapbranch_hash(a: bytes, b: bytes) -> bytes:
    """Core `ComputeTapbranchHash`: hash_TapBranch of the two children, smaller first."""
    h = tagged_hasher("TapBranch")
    h.update(a + b if a < b else b + a)
    return h.digest()


def merkle_root_from_control(control: bytes, leaf_hash: bytes) -> bytes:
    """Core `ComputeTaprootMerkleRoot`: fold the control block's 32-byte path nodes into the
    leaf hash. `control` must already have a valid size."""
    k = leaf_hash
    for pos in range(TAPROOT_CONTROL_BASE_SIZE, len(control), TAPROOT_CONTROL_NODE_SIZE):
        k = tapbranch_hash(k, control[pos:pos + TAPROOT_CONTROL_NODE_SIZE])
    return k


def verify_taproot_commitment(control: bytes, program: bytes, leaf_hash: bytes) -> bool:
    """Core `VerifyTaprootCommitment`: the output key `program` is the internal key of the
    control block tweaked with the merkle root of the leaf and path, with the parity bit of
    the control block's first byte."""
    root = merkle_root_from_control(control, leaf_hash)
    return check_tap_tweak(control[1:TAPROOT_CONTROL_BASE_SIZE], program, root, control[0] & 1)


@dataclass(frozen=True, slots=True)
class TaprootInfo:
    """An output built from an internal key and a script tree (Core `TaprootSpendData`)."""

    internal_key: bytes
    merkle_root: bytes | None
    output_key: bytes
    parity: int
    leaves: tuple[tuple[int, bytes, bytes], ...]       # (leaf_version, script, leaf_hash), DFS order
    control_blocks: tuple[bytes, ...]                   # one per leaf, same order

    @property
    def script_pubkey(self) -> bytes:
        return b"\x51\x20" + self.output_key


def _walk(tree) -> tuple[bytes, list[tuple[int, bytes, bytes, list[bytes]]]]:
    """(hash of the subtree, leaves with their paths so far) in depth-first order."""
    if isinstance(tree, tuple):
        version, script = tree
        h = tapleaf_hash(version, script)
        return h, [(version, script, h, [])]
    if isinstance(tree, list) and len(tree) == 2:
        lh, left = _walk(tree[0])
        rh, right = _walk(tree[1])
        for leaf in left:
            leaf[3].append(rh)
        for leaf in right:
            leaf[3].append(lh)
        return tapbranch_hash(lh, rh), left + right
    raise ValueError("a script tree is a (leaf_version, script) leaf or a [left, right] list")


def taproot_tree(internal_key: bytes, tree=None) -> TaprootInfo:
    """BIP341 `taproot_output_script` plus every leaf's control block: the output key
    (internal key tweaked by the tree's merkle root, none for an empty tree) and, per leaf,
    (leaf_version | parity) || internal key || path."""
    if tree is None:
        out, parity = taproot_tweak_pubkey(internal_key, None)
        return TaprootInfo(internal_key, None, out, parity, (), ())
    root, leaves = _walk(tree)
    out, parity = taproot_tweak_pubkey(internal_key, root)
    controls = tuple(bytes((version | parity,)) + internal_key + b"".join(path)
                     for version, _s, _h, path in leaves)
    return TaprootInfo(internal_key, root, out, parity,
                       tuple((v, s, h) for v, s, h, _p in leaves), controls)
