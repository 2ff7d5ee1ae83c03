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

from bea.errors import InvalidOrderError, InvalidTreeError

__all__ = ["RootedTree", "rooted_trees", "count_trees", "canonical_sequence"]

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


def _child_blocks(seq: LevelSequence) -> list[LevelSequence]:
    """Split a valid level sequence into the level sequences of its root's children (levels from 1)."""
    starts = [i for i, v in enumerate(seq) if v == 2]
    ends = starts[1:] + [len(seq)]
    return [tuple(v - 1 for v in seq[a:b]) for a, b in zip(starts, ends)]


@lru_cache(maxsize=None)
def _canonical(seq: LevelSequence) -> LevelSequence:
    children = sorted((_canonical(c) for c in _child_blocks(seq)), reverse=True)
    out = [1]
    for c in children:
        out.extend(v + 1 for v in c)
    return tuple(out)


def canonical_sequence(seq: Sequence[int]) -> LevelSequence:
    """The canonical (lexicographically largest) level sequence of the tree described by ``seq``."""
    return _canonical(_validate_sequence(seq))


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
        return tuple(RootedTree._from_canonical(c) for c in _child_blocks(self._seq))

    @property
    def sigma(self) -> int:
        """Symmetry coefficient σ(t), the order of the tree's automorphism group."""
        return _sigma(self._seq)

    @property
    def gamma(self) -> int:
        """Density γ(t); the exact flow has B-series coefficients 1/γ(t)."""
        return _gamma(self._seq)

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
def _sigma(seq: LevelSequence) -> int:
    counts = Counter(_child_blocks(seq))  # children blocks of a canonical tree are canonical
    out = 1
    for child, k in counts.items():
        out *= factorial(k) * _sigma(child) ** k
    return out


@lru_cache(maxsize=None)
def _gamma(seq: LevelSequence) -> int:
    out = len(seq)
    for child in _child_blocks(seq):
        out *= _gamma(child)
    return out


def _bracket(seq: LevelSequence) -> str:
    if len(seq) == 1:
        return "•"
    return "[" + ",".join(_bracket(c) for c in _child_blocks(seq)) + "]"


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
def _trees_of_order(order: int) -> tuple[LevelSequence, ...]:
    seq = list(range(1, order + 1))
    out = [tuple(seq)]
    if order > 2:
        while _successor(seq):
            out.append(tuple(seq))
    return tuple(out)


def _check_order(order: int, minimum: int = 1) -> int:
    if isinstance(order, bool) or not isinstance(order, int):
        try:
            is_int = int(order) == order
        except (TypeError, ValueError):
            is_int = False
        if not is_int:
            raise InvalidOrderError(f"the order must be an integer, got {order!r}")
        order = int(order)
    if order < minimum:
        raise InvalidOrderError(f"the order must be >= {minimum}, got {order}")
    return order


def rooted_trees(order: int) -> tuple[RootedTree, ...]:
    """All rooted trees with ``order`` nodes, canonical, in decreasing lexicographic order.

    The first is the ladder (1, 2, ..., n), the last the bushy tree (1, 2, 2, ..., 2).
    Their numbers for order 1..12 are 1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766 (OEIS A000081).
    """
    order = _check_order(order)
    return tuple(RootedTree._from_canonical(s) for s in _trees_of_order(order))


def count_trees(order: int) -> int:
    """Number of rooted trees with ``order`` nodes (computed by generating them)."""
    return len(_trees_of_order(_check_order(order)))


# -- decompositions used by the B-series algebra -------------------------------------------------


@lru_cache(maxsize=None)
def _subtree_splits(seq: LevelSequence) -> tuple[tuple[LevelSequence, LevelSequence, int], ...]:
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
        trunk = _canonical(seq[:i] + seq[j:])
        counts[(sub, trunk)] += 1
    return tuple((sub, trunk, k) for (sub, trunk), k in counts.items())
