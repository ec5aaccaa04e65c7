"""Merkle trees as in Certificate Transparency (RFC 6962 §2.1, RFC 9162 §2.1).

Pure functions, no I/O. A tree over n leaves has the RFC's shape: the root of
D[0:n] is H(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])) with k the largest power of two
smaller than n; a leaf hashes as H(0x00 ‖ data). `Tree` keeps every level as one
flat byte string (32 bytes a node), built bottom-up with an unpaired last node
promoted unchanged — which yields exactly the RFC's nodes, so any node of the
RFC tree is looked up, never recomputed. Proofs are generated with the RFC's
PATH and PROOF/SUBPROOF and checked with the verification algorithms of
RFC 9162 §2.1.3.2 and §2.1.4.2, written from the text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    return _sha256(b"").digest()


class Tree:
    """The Merkle tree over already-hashed leaves (`leaf_hash` of each entry), in order."""

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level = b"".join(leaf_hashes)
        if len(level) % HASH_SIZE:
            raise ValueError("leaf hashes must be 32 bytes each")
        self.size = len(level) // HASH_SIZE
        self.levels: list[bytes] = [level]
        while len(level) > HASH_SIZE:
            count = len(level) // HASH_SIZE
            parts = [
                _sha256(b"\x01" + level[i : i + 2 * HASH_SIZE]).digest()
                for i in range(0, (count - count % 2) * HASH_SIZE, 2 * HASH_SIZE)
            ]
            if count % 2:
                parts.append(level[-HASH_SIZE:])
            level = b"".join(parts)
            self.levels.append(level)

    def root(self) -> bytes:
        return self.levels[-1] if self.size else empty_root()

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE]

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of this tree (an aligned range, possibly cut by the right edge)."""
        height = (hi - lo - 1).bit_length()
        index = lo >> height
        level = self.levels[height]
        return level[index * HASH_SIZE : (index + 1) * HASH_SIZE]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[0:size]) — RFC 6962 §2.1.1."""
        return [self._mth(lo, hi) for lo, hi in path_ranges(index, self.size)]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:size]) — RFC 6962 §2.1.2."""
        if not 0 < old_size <= self.size:
            raise ValueError(f"no consistency proof from size {old_size} to {self.size}")
        proof: list[bytes] = []
        lo, hi, m, complete = 0, self.size, old_size, True
        while True:
            if m == hi - lo:
                if not complete:
                    proof.append(self._mth(lo, hi))
                break
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._mth(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._mth(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        proof.reverse()
        return proof


class RootBuilder:
    """The root of the tree over leaf hashes fed one at a time, in O(log n) memory: equal to
    `Tree(leaves).root()` (the stack holds the roots of the perfect subtrees so far, largest
    first; the RFC's root folds them from the right)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, root of a perfect subtree)

    def add(self, leaf: bytes) -> None:
        node, height = leaf, 0
        stack = self._stack
        while stack and stack[-1][0] == height:
            node = _sha256(b"\x01" + stack.pop()[1] + node).digest()
            height += 1
        stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return empty_root()
        node = self._stack[-1][1]
        for _height, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) whose tree hashes are PATH(index, D[0:size]) (RFC 6962 §2.1.1), in
    the proof's order: the sibling next to the leaf first, the root's other half last."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def streamed_inclusion_proof(leaf_hashes: Iterable[bytes], index: int, size: int) -> list[bytes]:
    """`Tree(leaf_hashes).inclusion_proof(index)` from the leaves read once, in order, in O(log n)
    memory: the proof's ranges are disjoint, each one's tree hash built as its leaves go by."""
    ranges = path_ranges(index, size)
    builders = {span: RootBuilder() for span in ranges}
    ahead = sorted(ranges)
    at = count = 0
    for count, leaf in enumerate(leaf_hashes, start=1):
        n = count - 1
        while at < len(ahead) and n >= ahead[at][1]:
            at += 1
        if at < len(ahead) and ahead[at][0] <= n:
            builders[ahead[at]].add(leaf)
    if count != size:
        raise RuntimeError(f"{count} leaves read for a tree of size {size}")  # a programming error
    return [builders[span].root() for span in ranges]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    return Tree(leaf_hashes).root()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show the leaf hash `leaf` at `index` in the tree `root` of `size`?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree `new_root` of `new_size` an append-only extension of `old_root`?"""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if not path or any(len(p) != HASH_SIZE for p in path):
        return False
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
