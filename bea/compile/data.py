r"""Losses that are means over a data set: E(θ) = (1/N) Σ_i e(θ, x_i), compiled without unrolling.

A user's loss is usually a sum over data. Written out as one sympy expression, every data point
becomes a copy of the per-sample expression, so derivation, code generation and numba's compile time
all grow with N (issue #12). :func:`data_loss` keeps the per-sample expression ``e(θ, x)`` symbolic
and the data numeric:

* **Per-sample kernels, derived once.** The directional derivatives

      K_m(θ, x; u_1, …, u_m) = ∇_θ D^m_θ e(θ, x)[u_1, …, u_m]     (m = 0: the gradient)

  are derived with vector symbols u_k by differentiating e(θ + Σ_k s_k u_k, x) in the scalars s_k at
  s = 0 (the chain rule keeps inner sums such as w·x as one sum, so K_m stays O(size of e) after
  cse instead of O(n^m)), and compiled by :func:`bea.compile.codegen.compile_exprs` (disk cache). Their size
  does not depend on N.
* **Data loops.** The loss kernels (value, g, H, T(g, g)) and the modified field are numba functions
  that loop over the rows of the data, accumulating means. Each contraction of a derivative tensor of
  E is the mean of the per-sample contractions with the *global* vectors:
  D^{m+1}E[v_1..v_m] = (1/N) Σ_i K_m(θ, x_i; v_1..v_m). The modified field is evaluated as its tree
  series: F(•) = −g, F([t_1..t_m]) = −(1/N) Σ_i K_m(θ, x_i; F(t_1), …, F(t_m)), one pass over the
  data per tree height (children are complete means before their parent's pass), combined with the
  exact coefficients c(t) of :func:`bea.modified_series` (rounded once to float64). Note that f_1 =
  −½ H g = −½ (mean H_i)(mean g_i) is not a mean of per-sample quantities; the tree recursion is what
  makes it exact. A call costs O(N · (number of trees) · size of K_m): linear in N.
* **Binding the data.** The data-loop kernels are generic in the data array and cached on disk; the
  kernels a :class:`DataLoss` hands out (``loss.grad(θ)``, ``field(θ, h)``) are small numba closures
  that bind the loss's own (read-only, contiguous) copy of the data by address, so numba does not
  freeze an N-row constant into the machine code and the compile time stays flat in N.

What still grows with N: :attr:`DataLoss.expr` — the exact unrolled mean, data as sympy Rationals of
the float values — is built lazily for the symbolic and rigorous routes that need an expression
(:func:`bea.certify` with interval arithmetic, ``ModifiedField.terms`` of a data field, the cache
keys of flows that read ``loss.expr``). It is correct, but its cost is that of the unrolled loss.
"""

from __future__ import annotations

import hashlib
import threading
from fractions import Fraction
from functools import cached_property
from typing import Sequence

import numba
import numpy as np
import sympy as sp
from numba import types
from numba.extending import intrinsic

from bea.compile.codegen import CODEGEN_VERSION, accept_array_likes, cache_dir, compile_exprs, load_module, source_key
from bea.errors import InvalidInputError, InvalidMethodError, InvalidOrderError, InvalidParamsError
from bea.compile.loss import CompiledLoss
from bea.derive.trees import canonical, child_blocks
from bea.derive.differentials import (
    check_simplify,
    field_from_series,
    scalar_expression,
    step_symbol,
    symbol_sequence,
    validate_loss,
)
from bea.derive.series import modified_series

__all__ = ["DataLoss", "data_loss", "per_sample_directional_gradient"]

DATA_CODEGEN_VERSION = "1"
_LOCK = threading.RLock()
_DRIVERS: dict = {}


# --------------------------------------------------------------------------- binding data by address
@intrinsic
def _f8_pointer(typingctx, addr):
    """The integer address ``addr`` as a float64 pointer (for :func:`numba.carray`)."""
    if not isinstance(addr, types.Integer):
        return None
    sig = types.CPointer(types.float64)(addr)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(types.float64)))

    return sig, codegen


def _bind(driver, data: np.ndarray, n_scalars: int, name: str):
    """A numba kernel ``k(theta[, h])`` = ``driver(theta[, h], data)`` with ``data`` bound by address."""
    addr = int(data.ctypes.data)
    N, d = data.shape
    if n_scalars == 0:

        @numba.njit(error_model="numpy", nogil=True)
        def kern(theta):
            return driver(theta, numba.carray(_f8_pointer(addr), (N, d)))

    else:

        @numba.njit(error_model="numpy", nogil=True)
        def kern(theta, h):
            return driver(theta, h, numba.carray(_f8_pointer(addr), (N, d)))

    kern = accept_array_likes(kern, 1)
    kern._bea_data = data  # keep the bound buffer alive as long as the kernel
    kern.driver = driver
    return kern


# --------------------------------------------------------------------------- per-sample derivatives
def _u_symbols(m: int, n: int) -> list[list[sp.Symbol]]:
    return [[sp.Symbol(f"_bea_u{k}_{j}") for j in range(n)] for k in range(m)]


def per_sample_directional_gradient(e: sp.Expr, params: Sequence[sp.Symbol], us: Sequence[Sequence[sp.Symbol]]) -> list:
    r"""∇_θ D^m e[u_1, …, u_m] as a list of n expressions (m = len(us); m = 0 gives ∇e).

    D^m e[u_1..u_m] = ∂^m/∂s_1..∂s_m e(θ + Σ s_k u_k)|_{s=0}, which sympy's chain rule builds
    without expanding inner sums over the parameters."""
    params = list(params)
    if not us:
        return [sp.diff(e, p) for p in params]
    s = [sp.Symbol(f"_bea_s{k}") for k in range(len(us))]
    shifted = e.xreplace({p: p + sp.Add(*[s[k] * us[k][j] for k in range(len(us))]) for j, p in enumerate(params)})
    d = shifted
    for sk in s:
        d = sp.diff(d, sk)
    d = d.xreplace({sk: sp.S.Zero for sk in s})
    return [sp.diff(d, p) for p in params]


# --------------------------------------------------------------------------- driver generation
_HEADER = f'''\
# Generated by bea.compile.data {DATA_CODEGEN_VERSION} / bea.compile.codegen {CODEGEN_VERSION} (numba {numba.__version__}); do not edit.
import numpy
from numba import njit
from bea.compile.codegen import _inexact
'''
_OPTS = 'cache=True, error_model="numpy", boundscheck=False, nogil=True'


def _imports(kernels: dict) -> str:
    """``from <module> import <name>_into as K...`` lines of the per-sample kernels."""
    lines = []
    for alias, kern in kernels.items():
        mod = kern.py_func.__module__
        lines.append(f"from {mod} import {kern.py_func.__name__}_into as {alias}")
    return "\n".join(lines) + "\n"


def _prologue(n: int, d: int, with_h: bool) -> list[str]:
    return [
        f"    if theta.shape[0] != {n}:",
        f'        raise ValueError("theta must have length {n}")',
        f"    if X.shape[1] != {d}:",
        f'        raise ValueError("data must have {d} columns")',
        "    theta = _inexact(theta)",
        *(["    h = _inexact(h)"] if with_h else []),
        "    N = X.shape[0]",
        "    inv = 1.0 / N",
        f"    tmp = numpy.empty({n}, dtype=theta.dtype)",
    ]


def _buffer(lines, name: str, n: int, d: int, m: int, vectors: Sequence[str]):
    """z = (θ, x, u_1..u_m) buffer ``name`` with θ and the u's filled."""
    lines.append(f"    {name} = numpy.zeros({n + d + m * n}, dtype=theta.dtype)")
    lines.append(f"    for j in range({n}):")
    lines.append(f"        {name}[j] = theta[j]")
    for k, v in enumerate(vectors):  # explicit loops: slice assignment costs numba ~0.5 s of compile time
        a = n + d + k * n
        lines.append(f"    for j in range({n}):")
        lines.append(f"        {name}[{a} + j] = {v}[j]")


def _data_pass(lines, n: int, d: int, jobs: list[tuple[str, str, str, str]]):
    """One loop over the rows: for each (kernel, buffer, accumulator, sign) acc += K(z_i)."""
    lines.append("    for i in range(N):")
    for kern, buf, acc, _ in jobs:
        lines.append(f"        for j in range({d}):")
        lines.append(f"            {buf}[{n} + j] = X[i, j]")
        lines.append(f"        {kern}({buf}, tmp)")
        lines.append(f"        for j in range({n}):")
        lines.append(f"            {acc}[j] += tmp[j]")
    for _, _, acc, sign in jobs:
        lines.append(f"    for j in range({n}):")
        lines.append(f"        {acc}[j] *= {sign}inv")


def _load_driver(source: str, name: str):
    key = source_key(source)
    with _LOCK:
        disp = _DRIVERS.get(key)
        if disp is None:
            module, _, _ = load_module(source, key, name, cache_dir())
            disp = getattr(module, name)
            disp.source = source
            _DRIVERS[key] = disp
    return disp


# --------------------------------------------------------------------------- the loss
def _check_inputs(inputs, params):
    inputs = symbol_sequence(inputs, "inputs", "give the per-sample symbols (one per data column)")
    out = []
    for s in inputs:
        if isinstance(s, str):
            s = sp.Symbol(s)
        if not isinstance(s, sp.Symbol):
            raise InvalidParamsError(f"every input must be a sympy Symbol, got {s!r} ({type(s).__name__})")
        out.append(s)
    seen = set()
    dups = [s for s in out if s in seen or seen.add(s)]
    if dups:
        raise InvalidParamsError(f"duplicated inputs: {sorted(set(map(str, dups)))}")
    return out


def _check_data(data, d: int) -> np.ndarray:
    try:
        arr = np.array(data, dtype=np.float64, order="C")
    except (TypeError, ValueError):
        raise InvalidInputError(f"data must be an (N, {d}) array of real numbers, got {type(data).__name__}") from None
    if arr.ndim == 1 and d == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise InvalidInputError(
            f"data must have shape (N, {d}) (one column per input symbol), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InvalidInputError("data has no rows: the mean over an empty data set is not defined")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InvalidInputError(
            f"data must be finite: {rows.size} row(s) contain NaN or inf, first row {int(rows[0])}: {arr[rows[0]]}")
    arr.setflags(write=False)
    return arr


class DataLoss(CompiledLoss):
    r"""E(θ) = (1/N) Σ_i e(θ, x_i) with the data kept numeric (see the module docstring).

    A :class:`bea.compile.loss.CompiledLoss`: ``value``, ``grad``, ``hess``, ``tgg`` are numba kernels of θ
    that loop over the data (per-sample Hessians summed in the loop for ``hess``, column by column
    from the directional kernel K_1); ``gd``,
    ``trajectory``, ``certify``, ``max_step`` and ``modified_field`` accept it wherever they accept a
    sympy loss. Attributes: ``per_sample``, ``params``, ``inputs``, ``data`` (read-only float64
    (N, d)), ``n``, ``N``; :attr:`expr` is the exact unrolled mean, built lazily (cost grows with N).
    """

    def __init__(self, per_sample, params, inputs, data):
        params = symbol_sequence(params, "params", "give the parameter symbols of the per-sample loss")
        inputs = _check_inputs(inputs, params)
        pnames = {p if isinstance(p, sp.Symbol) else sp.Symbol(p) for p in params}
        overlap = sorted(str(s) for s in inputs if s in pnames)
        if overlap:
            raise InvalidParamsError(f"inputs {overlap} are also in params: a symbol is either a parameter or a data column")
        e = scalar_expression(per_sample, what="the per-sample loss")
        known = {p.name if isinstance(p, sp.Symbol) else str(p) for p in params + inputs}
        missing = sorted(str(s) for s in e.free_symbols if getattr(s, "name", None) not in known)
        if missing:
            raise InvalidParamsError(
                f"the per-sample loss depends on {missing}, which are neither params {[str(p) for p in params]} "
                f"nor inputs {[str(s) for s in inputs]} (substitute numbers for constants)")
        try:
            e, syms = validate_loss(e, params + inputs)
        except InvalidParamsError as exc:
            raise InvalidParamsError(f"per-sample loss: {exc} (params and inputs together)") from None
        self.per_sample = e
        self.params = syms[: len(params)]
        self.inputs = tuple(syms[len(params):])
        self.n = len(self.params)
        self.d = len(self.inputs)
        self.data = _check_data(data, self.d)
        self.N = self.data.shape[0]
        self._kernels: dict = {}

    # ---------------------------------------------------------------- identity
    @cached_property
    def data_digest(self) -> str:
        return hashlib.sha256(self.data.tobytes() + str(self.data.shape).encode()).hexdigest()

    @cached_property
    def key(self):
        """A cheap hashable identity (per-sample expression, symbols, data digest)."""
        return ("DataLoss", self.per_sample, self.params, self.inputs, self.data_digest)

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, DataLoss) and self.key == other.key

    # ---------------------------------------------------------------- unrolled (lazy)
    @cached_property
    def expr(self) -> sp.Expr:
        """The exact unrolled mean (1/N) Σ_i e(θ, x_i), data as sympy Rationals of the floats.

        For the symbolic and interval routes; built on first use, cost (and size) linear in N."""
        rows = [[sp.Rational(float(v)) for v in row] for row in self.data]
        terms = [self.per_sample.xreplace(dict(zip(self.inputs, r))) for r in rows]
        return sp.Add(*terms) * sp.Rational(1, self.N)

    @cached_property
    def is_quadratic(self) -> bool:
        """Whether E is quadratic in θ: the per-sample Hessian does not depend on θ."""
        params = set(self.params)
        g = [sp.diff(self.per_sample, p) for p in self.params]
        return all(not (sp.diff(gi, p).free_symbols & params) for gi in g for p in self.params)

    # ---------------------------------------------------------------- per-sample kernels
    def _zsyms(self, m: int):
        return list(self.params) + list(self.inputs) + [s for u in _u_symbols(m, self.n) for s in u]

    def per_sample_kernel(self, m: int):
        """The compiled K_m(z) = ∇_θ D^m e[u_1..u_m], z = (θ, x, u_1, …, u_m) (cached)."""
        kern = self._kernels.get(("K", m))
        if kern is None:
            us = _u_symbols(m, self.n)
            exprs = per_sample_directional_gradient(self.per_sample, self.params, us)
            kern = compile_exprs(exprs, self._zsyms(m), name=f"sample_k{m}")
            self._kernels[("K", m)] = kern
        return kern

    def _sample_value(self):
        return compile_exprs([self.per_sample], self._zsyms(0), name="sample_value")

    # ---------------------------------------------------------------- data-loop kernels
    def _driver_value(self):
        n, d = self.n, self.d
        k = self._sample_value()
        lines = [_HEADER, _imports({"KV": k}), "", f"@njit({_OPTS})", "def data_value(theta, X):"]
        lines += _prologue(n, d, False)
        lines += ["    one = numpy.empty(1, dtype=theta.dtype)", "    acc = numpy.zeros(1, dtype=theta.dtype)"]
        _buffer(lines, "z", n, d, 0, [])
        lines += ["    for i in range(N):", f"        for j in range({d}):", f"            z[{n} + j] = X[i, j]",
                  "        KV(z, one)", "        acc[0] += one[0]", "    acc[0] *= inv", "    return acc", ""]
        return _load_driver("\n".join(lines), "data_value")

    def _driver_grad(self):
        n, d = self.n, self.d
        lines = [_HEADER, _imports({"K0": self.per_sample_kernel(0)}), "", f"@njit({_OPTS})", "def data_grad(theta, X):"]
        lines += _prologue(n, d, False)
        lines.append(f"    g = numpy.zeros({n}, dtype=theta.dtype)")
        _buffer(lines, "z", n, d, 0, [])
        _data_pass(lines, n, d, [("K0", "z", "g", "")])
        lines += ["    return g", ""]
        return _load_driver("\n".join(lines), "data_grad")

    def _driver_hess(self):
        # H_i e_j = K_1(θ, x_i; e_j): the per-sample Hessian column by column from the directional kernel
        # (n² work per sample, like an explicit n(n+1)/2-entry kernel, whose numba compile time grows
        # like n²: 20 s at n = 31), symmetrised once after the data loop
        n, d = self.n, self.d
        lines = [_HEADER, _imports({"K1": self.per_sample_kernel(1)}), "", f"@njit({_OPTS})", "def data_hess(theta, X):"]
        lines += _prologue(n, d, False)
        lines.append(f"    S = numpy.zeros(({n}, {n}), dtype=theta.dtype)")
        _buffer(lines, "z", n, d, 1, [])
        lines += ["    for i in range(N):", f"        for j in range({d}):", f"            z[{n} + j] = X[i, j]",
                  f"        for c in range({n}):", f"            z[{n + d} + c] = 1.0", "            K1(z, tmp)",
                  f"            z[{n + d} + c] = 0.0", f"            for a in range({n}):", "                S[a, c] += tmp[a]"]
        lines += [f"    H = numpy.empty(({n}, {n}), dtype=theta.dtype)",
                  f"    for a in range({n}):", f"        for c in range({n}):",
                  "            H[a, c] = 0.5 * inv * (S[a, c] + S[c, a])",
                  "    return H", ""]
        return _load_driver("\n".join(lines), "data_hess")

    def _driver_tgg(self):
        n, d = self.n, self.d
        ks = {"K0": self.per_sample_kernel(0), "K2": self.per_sample_kernel(2)}
        lines = [_HEADER, _imports(ks), "", f"@njit({_OPTS})", "def data_tgg(theta, X):"]
        lines += _prologue(n, d, False)
        lines += [f"    g = numpy.zeros({n}, dtype=theta.dtype)", f"    t = numpy.zeros({n}, dtype=theta.dtype)"]
        _buffer(lines, "z", n, d, 0, [])
        _data_pass(lines, n, d, [("K0", "z", "g", "")])
        _buffer(lines, "w", n, d, 2, ["g", "g"])
        _data_pass(lines, n, d, [("K2", "w", "t", "")])
        lines += ["    return t", ""]
        return _load_driver("\n".join(lines), "data_tgg")

    def _bound(self, what: str, n_scalars: int = 0):
        kern = self._kernels.get(("bound", what))
        if kern is None:
            driver = getattr(self, f"_driver_{what}")()
            kern = self._kernels[("bound", what)] = _bind(driver, self.data, n_scalars, f"data_{what}")
        return kern

    @cached_property
    def value_kernel(self):
        return self._bound("value")

    @cached_property
    def grad(self):
        """g(θ) = (1/N) Σ_i ∇e(θ, x_i), shape (n,)."""
        return self._bound("grad")

    @cached_property
    def hess(self):
        """H(θ) = (1/N) Σ_i ∇²e(θ, x_i), shape (n, n): per-sample Hessians (columns K_1(θ, x_i; e_j))
        summed in the data loop."""
        return self._bound("hess")

    @cached_property
    def tgg(self):
        """T(g, g) = (1/N) Σ_i ∇D²e(θ, x_i)[g, g] with g the mean gradient, shape (n,)."""
        return self._bound("tgg")

    def field_from_series(self, series, params=None, *, simplify="auto", h=None) -> "DataModifiedField":
        """The modified field of ``series`` on this data loss: a :class:`DataModifiedField` whose
        kernel loops over the data (nothing is unrolled; ``simplify`` is accepted and checked)."""
        self._check_params(params)
        check_simplify(simplify)
        return DataModifiedField(self, series, step_symbol() if h is None else h)

    def field_kernel(self, series):
        """The numba kernel f(θ, h) of the modified field of ``series`` on this loss (cached)."""
        key = ("field", series.method.name if hasattr(series.method, "name") else repr(series.method), series.order)
        kern = self._kernels.get(key)
        if kern is None:
            driver = _field_driver(self, series)
            kern = self._kernels[key] = _bind(driver, self.data, 1, "data_modified_field")
        return kern

    def __repr__(self) -> str:
        return (f"DataLoss(mean over N={self.N} of {self.per_sample}, params={self.params}, "
                f"inputs={self.inputs})")


# --------------------------------------------------------------------------- the modified field
def _field_plan(series):
    """(nodes, roots): nodes = [(seq, children indices, height)] in dependency order, roots =
    [(node index, power of h, Fraction c)] for the trees with c(t) != 0."""

    index: dict = {}
    nodes: list = []

    def visit(seq):
        seq = canonical(seq)
        if seq in index:
            return index[seq]
        kids = [visit(c) for c in child_blocks(seq)]
        height = 1 + max((nodes[k][2] for k in kids), default=-1)
        index[seq] = len(nodes)
        nodes.append((seq, kids, height))
        return index[seq]

    roots = []
    for k in range(series.order + 1):
        for tree, c in series.terms(k) if k else [(None, series.coefficient((1,)))]:
            if not isinstance(c, Fraction):
                try:
                    c = Fraction(c)
                except (TypeError, ValueError):
                    raise InvalidMethodError(
                        f"data losses need numeric series coefficients; c(t) = {c} is symbolic "
                        "(give the method's parameters as numbers)") from None
            if c == 0:
                continue
            seq = (1,) if tree is None else tuple(tree.level_sequence)
            roots.append((visit(seq), k, c))
    return nodes, roots


def _field_driver(loss: DataLoss, series):
    n, d = loss.n, loss.d
    nodes, roots = _field_plan(series)
    ms = sorted({len(kids) for _, kids, _ in nodes})
    ks = {f"K{m}": loss.per_sample_kernel(m) for m in ms}
    lines = [_HEADER, _imports(ks), "", f"@njit({_OPTS})", "def data_field(theta, h, X):"]
    lines += _prologue(n, d, True)
    for i in range(len(nodes)):
        lines.append(f"    F{i} = numpy.zeros({n}, dtype=theta.dtype)")
    for height in range(max((nd[2] for nd in nodes), default=0) + 1):
        jobs = []
        for i, (_, kids, hgt) in enumerate(nodes):
            if hgt != height:
                continue
            _buffer(lines, f"z{i}", n, d, len(kids), [f"F{k}" for k in kids])
            jobs.append((f"K{len(kids)}", f"z{i}", f"F{i}", "-"))
        _data_pass(lines, n, d, jobs)
    lines.append(f"    out = numpy.zeros({n}, dtype=theta.dtype)")
    by_power: dict = {}
    for i, k, c in roots:
        by_power.setdefault(k, []).append((i, c))
    for k in sorted(by_power):
        hk = "1.0" if k == 0 else "*".join(["h"] * k)
        lines.append(f"    hk = {hk}")
        for i, c in by_power[k]:
            lines.append(f"    for j in range({n}):")
            lines.append(f"        out[j] += ({float(c)!r} * hk) * F{i}[j]")
    lines += ["    return out", ""]
    return _load_driver("\n".join(lines), "data_field")


def data_loss(per_sample, params, inputs, data) -> DataLoss:
    r"""The loss E(θ) = (1/N) Σ_i e(θ, x_i) over the rows x_i of ``data``, without unrolling the data.

    Parameters
    ----------
    per_sample : scalar sympy expression e in ``params`` and ``inputs`` (e.g. a logistic loss of one
        labelled sample)
    params : sequence of sympy Symbols — the parameters θ, in this order
    inputs : sequence of sympy Symbols — the per-sample variables, one per column of ``data``
    data : (N, len(inputs)) array of finite reals (a 1-D array when there is one input)

    Returns
    -------
    DataLoss
        accepted by :func:`bea.modified_field`, :func:`bea.gd`, :func:`bea.trajectory`,
        :func:`bea.certify` and :func:`bea.max_step` in place of a sympy expression. Derivation and
        compile time do not depend on N, each call is linear in N (module docstring).

    Raises
    ------
    InvalidParamsError : inputs overlap params, are empty/duplicated/not symbols, or e has symbols
        that are in neither.
    InvalidLossError, NonSmoothLossError : e is not a finite smooth scalar expression.
    InvalidInputError : data of the wrong shape, empty, or with NaN/inf entries.
    """
    return DataLoss(per_sample, params, inputs, data)


# --------------------------------------------------------------------------- ModifiedField of a data loss
class DataModifiedField:
    r"""The modified field of a method on a :class:`DataLoss`, evaluated numerically by its tree series.

    The same interface as :class:`bea.derive.symbolic.ModifiedField` where it matters: ``order``, ``h``,
    ``params``, ``series``, ``method``, ``loss`` and ``compile()`` → a numba kernel ``kern(θ, h)``
    whose derivation and compile time do not depend on N. ``terms`` and ``field`` (sympy) are built
    lazily from the *unrolled* loss :attr:`DataLoss.expr` — exact, but their cost grows with N: meant
    for small data sets (display, checks).
    """

    def __init__(self, loss: DataLoss, series, h):
        self.loss = loss
        self.params = loss.params
        self.h = h
        self.series = series
        self.order = series.order
        self.method = series.method

    @cached_property
    def _symbolic(self):
        return field_from_series(self.series, self.loss.expr, self.params, h=self.h)

    @property
    def terms(self) -> list:
        """f_0..f_order as sympy column Matrices, from the unrolled loss (cost grows with N)."""
        return self._symbolic.terms

    @property
    def field(self) -> sp.Matrix:
        return self._symbolic.field

    def compile(self, *, cse: bool = True):
        """The numba kernel ``kern(theta, h) -> ndarray`` (loops over the data; see :mod:`bea.compile.data`)."""
        return self.loss.field_kernel(self.series)

    def truncated(self, order: int) -> "DataModifiedField":
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= self.order:
            raise InvalidOrderError(f"can truncate to orders 0..{self.order}, got {order!r}")
        return DataModifiedField(self.loss, modified_series(order, self.method), self.h)

    def gradient_notation(self, k: int, style: str = "ascii") -> str:
        if not 0 <= k <= self.order:
            raise InvalidOrderError(f"this field has terms f_0..f_{self.order}, asked for f_{k}")
        return self.series.gradient_notation(k, style)

    def __repr__(self) -> str:
        return f"DataModifiedField({self.loss!r}, order={self.order}, method={self.method.name!r})"
