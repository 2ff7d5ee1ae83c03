r"""Rooted trees as canonical level sequences.

A rooted tree is stored as its *level sequence*: the depths of its nodes in depth-first (pre-)order,
the root having level 1 (the convention of RootedTrees.jl). Many level sequences describe the same
tree; the canonical one is the lexicographically largest, obtained by ordering the children of every
node by decreasing level sequence. Trees are generated directly in canonical form, in decreasing
lexicographic order, by the constant-amortised-time successor rule of

    T. Beyer and S. M. Hedetniemi, "Constant time generation of rooted trees",
    SIAM J. Comput. 9 (1980) 706-712.

Butcher's notation: ``•`` is the single node, ``[t1, ..., tm]`` grafts the trees t1..tm on a new
root. The two combinatorial weights of B-series are

* the symmetry  σ(•) = 1,  σ([t1^k1 ... tq^kq]) = Π k_i! σ(t_i)^k_i  (t_i distinct), and
* the density   γ(•) = 1,  γ([t1, ..., tm]) = |t| Π γ(t_i).

This module knows nothing about sympy, vector fields or numerical methods (style.md).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from math import factorial
from typing import Iterable, Iterator, Sequence

from bea._checks import check_order
from bea.errors import InvalidTreeError

__all__ = [
    "RootedTree", "rooted_trees", "count_trees", "canonical_sequence",
    # primitives on (valid) level sequences, shared by the B-series algebra and the evaluators
    "LevelSequence", "child_blocks", "canonical", "symmetry", "density", "level_sequences", "subtree_splits",
]

LevelSequence = tuple[int, ...]


def _validate_sequence(seq: Sequence[int]) -> LevelSequence:
    try:
        seq = tuple(int(v) for v in seq)
    except (TypeError, ValueError):
        raise InvalidTreeError(f"a level sequence must be a sequence of integers, got {seq!r}") from None
    if not seq:
        raise InvalidTreeError("the empty level sequence is not a rooted tree")
    if seq[0] != 1:
        raise InvalidTreeError(f"a level sequence starts at the root, level 1; got {seq!r}")
    for prev, cur in zip(seq, seq[1:]):
        if cur < 2 or cur > prev + 1:
            raise InvalidTreeError(
                f"invalid level sequence {seq!r}: after level {prev} the next node must have a level "
                f"between 2 and {prev + 1}, got {cur}"
            )
    return seq


def child_blocks(seq: LevelSequence) -> list[LevelSequence]:
    """Split a valid level sequence into the level sequences of its root's children (levels from 1)."""
    starts = [i for i, v in enumerate(seq) if v == 2]
    ends = starts[1:] + [len(seq)]
    return [tuple(v - 1 for v in seq[a:b]) for a, b in zip(starts, ends)]


@lru_cache(maxsize=None)
def canonical(seq: LevelSequence) -> LevelSequence:
    """The canonical form of a *valid* level sequence (children sorted decreasingly at every node);
    :func:`canonical_sequence` validates its input first."""
    children = sorted((canonical(c) for c in child_blocks(seq)), reverse=True)
    out = [1]
    for c in children:
        out.extend(v + 1 for v in c)
    return tuple(out)


def canonical_sequence(seq: Sequence[int]) -> LevelSequence:
    """The canonical (lexicographically largest) level sequence of the tree described by ``seq``."""
    return canonical(_validate_sequence(seq))


class RootedTree:
    """An unlabelled rooted tree, immutable and hashable, in canonical level-sequence form.

    ``tuple(tree)`` is the canonical level sequence; equal trees compare and hash equal whatever
    equivalent level sequence they were built from.

    >>> t = RootedTree((1, 2, 2, 3))
    >>> tuple(t), t.order, t.sigma, t.gamma
    ((1, 2, 3, 2), 4, 1, 8)
    >>> str(t)
    '[[•],•]'
    """

    __slots__ = ("_seq",)

    def __init__(self, level_sequence: Iterable[int]):
        self._seq = canonical_sequence(tuple(level_sequence))

    @classmethod
    def _from_canonical(cls, seq: LevelSequence) -> "RootedTree":
        tree = object.__new__(cls)
        tree._seq = seq
        return tree

    @classmethod
    def from_children(cls, children: Iterable["RootedTree"]) -> "RootedTree":
        """The tree [t1, ..., tm] obtained by grafting ``children`` on a new root."""
        seq = [1]
        for c in children:
            seq.extend(v + 1 for v in c._seq)
        return cls(seq)

    # -- sequence protocol -------------------------------------------------------------------
    def __iter__(self) -> Iterator[int]:
        return iter(self._seq)

    def __len__(self) -> int:
        return len(self._seq)

    @property
    def level_sequence(self) -> LevelSequence:
        return self._seq

    @property
    def order(self) -> int:
        """Number of nodes |t|."""
        return len(self._seq)

    @property
    def children(self) -> tuple["RootedTree", ...]:
        """The subtrees grafted on the root, in canonical (decreasing) order."""
        return tuple(RootedTree._from_canonical(c) for c in child_blocks(self._seq))

    @property
    def sigma(self) -> int:
        """Symmetry coefficient σ(t), the order of the tree's automorphism group."""
        return symmetry(self._seq)

    @property
    def gamma(self) -> int:
        """Density γ(t); the exact flow has B-series coefficients 1/γ(t)."""
        return density(self._seq)

    def is_ladder(self) -> bool:
        """True for the tall tree (1, 2, ..., n), whose elementary differential is (f')^{n-1} f."""
        return self._seq == tuple(range(1, len(self._seq) + 1))

    # -- comparison, hashing, printing ----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, RootedTree):
            return self._seq == other._seq
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("RootedTree", self._seq))

    def __lt__(self, other: "RootedTree") -> bool:
        """Order by number of nodes, then by *decreasing* level sequence (generation order)."""
        return (len(self._seq), tuple(-v for v in self._seq)) < (
            len(other._seq),
            tuple(-v for v in other._seq),
        )

    def __repr__(self) -> str:
        return f"RootedTree({self._seq!r})"

    def __str__(self) -> str:
        return _bracket(self._seq)


@lru_cache(maxsize=None)
def symmetry(seq: LevelSequence) -> int:
    """σ(t) of a canonical level sequence: the order of the tree's automorphism group."""
    counts = Counter(child_blocks(seq))  # children blocks of a canonical tree are canonical
    out = 1
    for child, k in counts.items():
        out *= factorial(k) * symmetry(child) ** k
    return out


@lru_cache(maxsize=None)
def density(seq: LevelSequence) -> int:
    """γ(t) of a level sequence: the product of the sizes of all its subtrees (1/γ(t) = exact flow's b(t))."""
    out = len(seq)
    for child in child_blocks(seq):
        out *= density(child)
    return out


def _bracket(seq: LevelSequence) -> str:
    if len(seq) == 1:
        return "•"
    return "[" + ",".join(_bracket(c) for c in child_blocks(seq)) + "]"


def _successor(seq: list[int]) -> bool:
    """Beyer–Hedetniemi: replace ``seq`` by the next canonical sequence; False when done."""
    n = len(seq)
    p = n - 1
    while p > 0 and seq[p] == 2:
        p -= 1
    if p == 0:
        return False
    q = p - 1
    while seq[q] != seq[p] - 1:
        q -= 1
    shift = p - q
    for i in range(p, n):
        seq[i] = seq[i - shift]
    return True


@lru_cache(maxsize=None)
def level_sequences(order: int) -> tuple[LevelSequence, ...]:
    """The canonical level sequences of all rooted trees with ``order`` ≥ 1 nodes (unchecked),
    in decreasing lexicographic order (Beyer–Hedetniemi)."""
    seq = list(range(1, order + 1))
    out = [tuple(seq)]
    if order > 2:
        while _successor(seq):
            out.append(tuple(seq))
    return tuple(out)


def rooted_trees(order: int) -> tuple[RootedTree, ...]:
    """All rooted trees with ``order`` nodes, canonical, in decreasing lexicographic order.

    The first is the ladder (1, 2, ..., n), the last the bushy tree (1, 2, 2, ..., 2).
    Their numbers for order 1..12 are 1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766 (OEIS A000081).
    """
    order = check_order(order)
    return tuple(RootedTree._from_canonical(s) for s in level_sequences(order))


def count_trees(order: int) -> int:
    """Number of rooted trees with ``order`` nodes (computed by generating them)."""
    return len(level_sequences(check_order(order)))


# -- decompositions used by the B-series algebra -------------------------------------------------


@lru_cache(maxsize=None)
def subtree_splits(seq: LevelSequence) -> tuple[tuple[LevelSequence, LevelSequence, int], ...]:
    """For every non-root node v: (the subtree rooted at v, the tree left when it is removed).

    Identical pairs are merged and returned with their multiplicity. Both trees are canonical.
    These are the terms of the left convolution (b * φ)(t) = Σ_v b(t_v) φ(t \\ t_v) with an
    infinitesimal character b, i.e. the admissible cuts that prune exactly one subtree.
    """
    counts: Counter = Counter()
    n = len(seq)
    for i in range(1, n):
        j = i + 1
        while j < n and seq[j] > seq[i]:
            j += 1
        # a subtree of a canonical tree is canonical; the trunk has to be re-sorted
        sub = tuple(v - seq[i] + 1 for v in seq[i:j])
        trunk = canonical(seq[:i] + seq[j:])
        counts[(sub, trunk)] += 1
    return tuple((sub, trunk, k) for (sub, trunk), k in counts.items())
