"""Rooted trees: counts, canonical forms, σ and γ against brute-force definitions."""

import itertools
import random
from math import prod

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bea import InvalidOrderError, InvalidTreeError, RootedTree, count_trees, rooted_trees
from bea.derive.trees import subtree_splits, canonical_sequence

A000081 = [1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766]


def test_counts_match_oeis_a000081():
    assert [count_trees(k) for k in range(1, 13)] == A000081


def _parents(seq):
    """Parent index of every node of a level sequence (root: None)."""
    parents, stack = [None], [0]
    for i, lev in enumerate(seq[1:], start=1):
        del stack[lev - 1 :]
        parents.append(stack[-1])
        stack.append(i)
    return parents


def _random_relabelled(seq, rng):
    """An equivalent level sequence: the children of every node shuffled."""
    parents = _parents(seq)
    kids = {i: [j for j, p in enumerate(parents) if p == i] for i in range(len(seq))}

    def emit(v, level):
        out = [level]
        order = kids[v][:]
        rng.shuffle(order)
        for c in order:
            out += emit(c, level + 1)
        return out

    return tuple(emit(0, 1))


@pytest.mark.parametrize("order", range(1, 8))
def test_generated_trees_are_canonical_distinct_and_complete(order):
    trees = rooted_trees(order)
    seqs = [tuple(t) for t in trees]
    assert len(set(seqs)) == len(seqs) == A000081[order - 1]
    assert all(canonical_sequence(s) == s for s in seqs)
    assert seqs == sorted(seqs, reverse=True)
    # completeness: every level sequence of this length canonicalises into the generated set
    allseqs = {s for s in itertools.product(range(1, order + 1), repeat=order) if _valid(s)}
    assert {canonical_sequence(s) for s in allseqs} == set(seqs)


def _valid(s):
    return s[0] == 1 and all(2 <= b <= a + 1 for a, b in zip(s, s[1:]))


@given(st.integers(1, 9).flatmap(lambda n: st.sampled_from(rooted_trees(n))), st.integers(0, 10**6))
def test_equivalent_sequences_give_the_same_tree(tree, seed):
    other = _random_relabelled(tuple(tree), random.Random(seed))
    assert RootedTree(other) == tree
    assert hash(RootedTree(other)) == hash(tree)
    assert tuple(RootedTree(other)) == tuple(tree)


def _automorphisms(seq):
    """Brute force: permutations of the nodes preserving the parent map and fixing the root."""
    parents = _parents(seq)
    n = len(seq)
    count = 0
    for perm in itertools.permutations(range(1, n)):
        p = (0,) + perm
        if all(seq[p[i]] == seq[i] for i in range(n)) and all(
            parents[p[i]] == (None if parents[i] is None else p[parents[i]]) for i in range(n)
        ):
            count += 1
    return count


@pytest.mark.parametrize("tree", [t for k in range(1, 7) for t in rooted_trees(k)], ids=str)
def test_sigma_is_the_number_of_automorphisms(tree):
    assert tree.sigma == _automorphisms(tuple(tree))


@pytest.mark.parametrize("tree", [t for k in range(1, 8) for t in rooted_trees(k)], ids=str)
def test_gamma_is_the_product_of_subtree_sizes(tree):
    seq = tuple(tree)
    parents = _parents(seq)

    def size(v):
        return 1 + sum(size(c) for c, p in enumerate(parents) if p == v)

    assert tree.gamma == prod(size(v) for v in range(len(seq)))


def test_number_of_labellings_identity():
    # Σ_{|t|=n} n!/(σ(t)γ(t)) ... counts increasing labellings; Σ_t n!/σ(t) = n^{n-1} (labelled rooted trees)
    from math import factorial

    for n in range(1, 9):
        assert sum(factorial(n) // t.sigma for t in rooted_trees(n)) == n ** (n - 1)


@pytest.mark.parametrize("tree", [t for k in range(2, 7) for t in rooted_trees(k)], ids=str)
def test_subtree_splits_partition_the_nodes(tree):
    splits = subtree_splits(tuple(tree))
    assert sum(m for _, _, m in splits) == tree.order - 1
    for sub, trunk, _ in splits:
        assert len(sub) + len(trunk) == tree.order
        assert canonical_sequence(trunk) == trunk and canonical_sequence(sub) == sub


def test_tree_api():
    t = RootedTree([1, 2, 2, 3])
    assert tuple(t) == (1, 2, 3, 2) and t.order == len(t) == 4
    assert str(t) == "[[•],•]"
    assert t.children == (RootedTree((1, 2)), RootedTree((1,)))
    assert RootedTree.from_children(t.children) == t
    assert RootedTree((1, 2, 3)).is_ladder() and not t.is_ladder()


@pytest.mark.parametrize("bad", [(), (2, 3), (1, 3), (1, 2, 4), (1, 1), ("a",), None])
def test_invalid_sequences_raise(bad):
    with pytest.raises(InvalidTreeError):
        RootedTree(bad if bad is not None else [None])


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_invalid_orders_raise(bad):
    with pytest.raises(InvalidOrderError):
        rooted_trees(bad)
