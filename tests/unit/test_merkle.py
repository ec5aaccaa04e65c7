"""RFC 6962/9162 Merkle trees: known roots, every proof verifies, any altered proof fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import merkle
from infra.merkle import Tree, empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion


def mth(entries: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1, recursively, for comparison."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(entries[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(entries[:k]), mth(entries[k:]))


def entries_of(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


def tree_of(entries: list[bytes]) -> Tree:
    return Tree(leaf_hash(e) for e in entries)


def test_roots_match_the_rfc_definition_for_small_trees() -> None:
    for n in range(0, 70):
        entries = entries_of(n)
        assert tree_of(entries).root() == mth(entries)
    assert Tree([]).root() == empty_root()


def test_known_rfc6962_test_vector() -> None:
    # The 8-leaf tree of the certificate-transparency-go test vectors.
    leaves = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
    assert tree_of(leaves).root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    changed = list(proof)
    item = bytearray(changed[which])
    item[bit // 8] ^= 1 << (bit % 8)
    changed[which] = bytes(item)
    return changed


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=80))
def test_every_inclusion_proof_of_every_leaf_verifies(n: int) -> None:
    entries = entries_of(n)
    tree = tree_of(entries)
    root = tree.root()
    for i in range(n):
        proof = tree.inclusion_proof(i)
        assert verify_inclusion(leaf_hash(entries[i]), i, n, proof, root)
        assert not verify_inclusion(leaf_hash(b"other"), i, n, proof, root)
        if n > 1:
            assert not verify_inclusion(leaf_hash(entries[i]), (i + 1) % n, n, proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=80), st.data())
def test_consistency_between_any_sizes(n: int, data: st.DataObject) -> None:
    entries = entries_of(n)
    tree = tree_of(entries)
    for m in range(1, n + 1):
        old = mth(entries[:m])
        proof = tree.consistency_proof(m)
        assert verify_consistency(m, n, old, tree.root(), proof)
        if m < n:
            assert not verify_consistency(m, n, mth(entries_of(m - 1) + [b"rewritten"]), tree.root(), proof)
            assert not verify_consistency(m, n, old, mth(entries[:-1] + [b"rewritten"]), proof)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=2, max_value=64), st.data())
def test_any_altered_proof_fails(n: int, data: st.DataObject) -> None:
    entries = entries_of(n)
    tree = tree_of(entries)
    i = data.draw(st.integers(0, n - 1))
    proof = tree.inclusion_proof(i)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(leaf_hash(entries[i]), i, n, flip(proof, which, bit), tree.root())
    assert not verify_inclusion(leaf_hash(entries[i]), i, n, proof[:-1], tree.root())
    assert not verify_inclusion(leaf_hash(entries[i]), i, n, [*proof, proof[0]], tree.root())
    m = data.draw(st.integers(1, n - 1))
    cproof = tree.consistency_proof(m)
    which = data.draw(st.integers(0, len(cproof) - 1))
    assert not verify_consistency(m, n, mth(entries[:m]), tree.root(), flip(cproof, which, bit))
    assert not verify_consistency(m, n, mth(entries[:m]), tree.root(), cproof[:-1])


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_a_streamed_root_is_the_trees_root(n: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    builder = merkle.RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    assert builder.size == n
    assert builder.root() == merkle.Tree(leaves).root()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=300), data=st.data())
def test_a_proof_from_leaves_read_once_is_the_proof_of_the_tree_kept_whole(n: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    leaves = [leaf_hash(e) for e in entries_of(n)]
    streamed = merkle.streamed_inclusion_proof(iter(leaves), index, n)
    assert streamed == Tree(leaves).inclusion_proof(index)
    assert verify_inclusion(leaves[index], index, n, streamed, Tree(leaves).root())


def test_a_proof_from_leaves_read_once_refuses_a_wrong_count() -> None:
    leaves = [leaf_hash(e) for e in entries_of(5)]
    for size in (4, 6):
        with pytest.raises(RuntimeError, match=f"5 leaves read for a tree of size {size}"):
            merkle.streamed_inclusion_proof(iter(leaves), 0, size)
