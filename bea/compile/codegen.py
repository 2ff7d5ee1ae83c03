r"""Compile sympy expressions into numba kernels, cached by content in memory and on disk.

Design: *generate once, cache by content, never regenerate in a loop.*

1. :func:`compile_exprs` turns a list (or Matrix) of sympy expressions into Python source text:
   common subexpressions are pulled out with :func:`sympy.cse` and every expression is printed by
   a :class:`~sympy.printing.numpy.NumPyPrinter` subclass that keeps IEEE float semantics: rationals
   become correctly rounded float literals (never integer division), integer powers stay integer
   (``x**2``; higher ones as squarings and products, ``x**5 -> ((x**2)**2*x)``, because numba
   sends complex ``x**5`` through the slow, inexact cpow), and elementary functions go through
   ``numpy`` so the same source runs on float64 and complex128.
2. The cache key is the sha256 of that source, the numba version and :data:`CODEGEN_VERSION`. The
   source is written (atomically, never overwriting) as ``<cache_dir()>/<name>_<key>.py`` and
   imported under a unique module name. Its functions are ``numba.njit(cache=True)``, so numba
   stores the machine code in ``__pycache__`` next to the file. A small index file, named by the
   sha256 of the pickled inputs, holds the key: a new process that compiles the same expressions
   finds the module without even running cse and the printer (0.1-0.3 s for big fields) and
   numba loads the machine code instead of compiling it (a few ms).
3. Within one process a dict keyed by the expressions returns the very same dispatcher, so calling
   ``compile_exprs`` again costs a dict lookup.

The kernel ``kern(theta, *scalars)`` is a plain numba ``CPUDispatcher``: other ``@njit`` code may
call it or take it as an argument. The module also holds ``kern.into(theta, *scalars, out)`` (the
same body, writing into ``out``) and ``kern.batch(thetas, *scalars)``, a ``prange`` loop over
``into``. numba compiles each function on its first call only, so code that never batches never
pays for ``parallel=True``; ``kern`` carries its own copy of the body rather than calling ``into``
because a second function costs ~0.1-0.2 s more of compile time.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import keyword
import os
import pickle
import re
import sys
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import numba
import numpy as np
import sympy as sp
from numba.core import types
from numba.extending import overload
from sympy.core.function import AppliedUndef
from sympy.printing.codeprinter import CodePrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence
from sympy.printing.pycode import AbstractPythonCodePrinter, PythonCodePrinter

from bea.errors import InvalidInputError, InvalidLossError, InvalidParamsError

__all__ = ["compile_exprs", "kernel_source", "cache_dir", "clear_memory_cache", "llvm_available", "CODEGEN_VERSION"]

#: Bump whenever the generated source or the helpers it imports change meaning (part of the key).
CODEGEN_VERSION = "3"  # 3: caches written by "2" may hold "<dynamic>" overloads (see clear_memory_cache)

_MODULE_PREFIX = "_bea_kernel_"
_MEMORY: dict = {}  # (exprs, shape, params, scalars, cse, name) -> kern, and cache key -> kern
# kernel modules to import afresh on their next load (see clear_memory_cache); they stay in
# sys.modules meanwhile so that older dispatchers still resolve their module by name
_STALE: set = set()
_LOCK = threading.RLock()
_RESERVED = {"theta", "thetas", "out", "numpy", "math", "njit", "prange", "i", "m", "_inexact"}


# --------------------------------------------------------------------------- numba helper
def _inexact(a):
    """Identity on float/complex values; integers become float64 (so 1/3 never truncates)."""
    return a


@overload(_inexact, inline="always")
def _ol_inexact(a):
    if isinstance(a, types.Array) and isinstance(a.dtype, (types.Integer, types.Boolean)):
        return lambda a: a.astype(np.float64)
    if isinstance(a, (types.Integer, types.Boolean)):
        return lambda a: np.float64(a)
    return lambda a: a


# --------------------------------------------------------------------------- printer
class _KernelPrinter(NumPyPrinter):
    """NumPyPrinter with float literals, unrolled integer powers and renamed symbols."""

    def __init__(self, names):
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self._names = names

    def _print_Symbol(self, expr):
        return self._names[expr]

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Rational(self, expr):
        # correctly rounded, never integer division, never an int64 overflow in numba
        return repr(float(Fraction(int(expr.p), int(expr.q))))

    def _print_Integer(self, expr):
        # float literals: numba types float*float directly (an int literal is typed twice, as a
        # literal and as int64), and huge integers cannot overflow int64. Exponents: see _print_Pow.
        return repr(float(expr.p))

    def _print_Pow(self, expr, rational=False):
        # Integer exponents become squarings and products: numba unrolls float x**k itself, but
        # complex x**k (k != 2) goes through cpow = exp(k log x), ~30x slower and less accurate.
        # (NumPyPrinter would even print x**-2 as the float power x**(-2.0).) The base is repeated,
        # so only short bases (cse temporaries, symbols) are expanded.
        k = expr.exp
        base = self.parenthesize(expr.base, precedence(expr), strict=False)
        if k.is_Integer and (2 < abs(k) <= 64 or k == -2) and len(base) <= 40:
            out = base
            for bit in bin(abs(int(k)))[3:]:  # binary powering, most significant bit first
                out = f"{out}**2" if out is base else f"({out})**2"
                out = f"{out}*{base}" if bit == "1" else out
            return f"({out})" if k > 0 else f"(1.0/({out}))"
        if k.is_Integer and k != -1:  # keep x**2 integer (numba: one multiplication, also complex)
            return f"{base}**{k}" if k > 0 else f"{base}**({k})"
        return self._hprint_Pow(expr, rational=rational, sqrt="numpy.sqrt")

    def _print_Max(self, expr):
        return self._nest("numpy.maximum", expr.args)

    def _print_Min(self, expr):
        return self._nest("numpy.minimum", expr.args)

    def _nest(self, func, args):
        out = self._print(args[-1])
        for a in reversed(args[:-1]):
            out = f"{func}({self._print(a)}, {out})"
        return out

    def _print_Piecewise(self, expr):  # numpy.select is array-only; numba wants a ternary
        out = "numpy.nan"
        for e, c in reversed(expr.args):
            out = self._print(e) if c == sp.true else f"({self._print(e)} if {self._print(c)} else {out})"
        return out

    # scalar (Python) logic instead of numpy.logical_and.reduce & co.
    _print_Relational = AbstractPythonCodePrinter._print_Relational
    _print_And, _print_Or = CodePrinter._print_And, CodePrinter._print_Or
    _print_Not = PythonCodePrinter._print_Not


# --------------------------------------------------------------------------- cache directory
def cache_dir() -> Path:
    """The kernel cache folder: ``$BEA_CACHE_DIR/kernels``, else ``$XDG_CACHE_HOME/bea/kernels`` or
    ``~/.cache/bea/kernels``; a temporary folder when none of them is writable. Created on demand."""
    root = os.environ.get("BEA_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bea"
    user = os.environ.get("USER") or str(os.getuid() if hasattr(os, "getuid") else "")
    for folder in (Path(root) / "kernels", Path(tempfile.gettempdir()) / f"bea-{user}" / "kernels"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK | os.X_OK):
                return folder
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="bea-kernels-"))


def clear_memory_cache() -> None:
    """Forget the kernels of this process (the disk cache stays): the next :func:`compile_exprs`
    imports the module file again and gets a new dispatcher, loading numba's cached machine code.

    The modules stay in ``sys.modules`` until that re-import replaces them: a dispatcher made
    before the clear (held, say, by a flow cache) may still compile a new signature, and numba
    then looks its module up by name. A module missing there would make numba compile it as a
    ``'<dynamic>'`` function and write that into the on-disk cache, which every later process
    loading the kernel would fail to unpickle.
    """
    with _LOCK:
        _MEMORY.clear()
        _STALE.update(m for m in sys.modules if m.startswith(_MODULE_PREFIX))


def kernel_source(kern) -> str:
    """The generated Python source of a kernel made by :func:`compile_exprs`."""
    try:
        return kern.source
    except AttributeError:
        raise InvalidInputError(f"{kern!r} is not a kernel made by bea.compile.codegen.compile_exprs") from None


# --------------------------------------------------------------------------- input checks
def _flatten(exprs):
    """(tuple of sympy expressions in C order, output shape)."""
    if isinstance(exprs, (sp.MatrixBase, sp.NDimArray)):
        shape = tuple(exprs.shape)
        if len(shape) == 2 and shape[1] == 1:
            shape = (shape[0],)
        if len(shape) not in (1, 2):
            raise InvalidLossError(f"exprs must be 1-D or 2-D, got shape {shape}")
        items = list(exprs) if isinstance(exprs, sp.MatrixBase) else list(sp.flatten(exprs.tolist()))
    elif isinstance(exprs, (sp.Basic, str)) or not hasattr(exprs, "__iter__"):
        raise InvalidLossError(
            f"exprs must be a sympy Matrix or a sequence of expressions, got {type(exprs).__name__}; "
            "wrap a single expression in a list")
    else:
        items = list(exprs)
        shape = (len(items),)
    flat = []
    for e in items:
        try:
            e = sp.sympify(e, strict=True)
        except (sp.SympifyError, TypeError):
            raise InvalidLossError(f"{e!r} is not a sympy expression") from None
        if not isinstance(e, sp.Expr) or e.is_Matrix:
            raise InvalidLossError(f"{e!r} is not a scalar sympy expression")
        flat.append(e)
    if not flat:
        raise InvalidLossError("exprs is empty")
    undefined = set().union(*(e.atoms(AppliedUndef) for e in flat))
    if undefined:
        raise InvalidLossError(f"cannot compile undefined functions: {sorted(map(str, undefined))}")
    return tuple(flat), shape


def _symbols(seq, what):
    if isinstance(seq, sp.Basic) or isinstance(seq, str) or not hasattr(seq, "__iter__"):
        raise InvalidParamsError(f"{what} must be a sequence of sympy Symbols, got {seq!r}")
    seq = tuple(seq)
    bad = [s for s in seq if not isinstance(s, sp.Symbol)]
    if bad:
        raise InvalidParamsError(f"{what} must be sympy Symbols; not symbols: {bad}")
    return seq


def _check(flat, params, scalars):
    params, scalars = _symbols(params, "params"), _symbols(scalars, "scalars")
    if not params:
        raise InvalidParamsError("params is empty")
    allsyms = params + scalars
    dups = sorted({str(s) for s in allsyms if allsyms.count(s) > 1})
    if dups:
        raise InvalidParamsError(f"duplicate symbols in params/scalars: {dups}")
    free = set().union(*(e.free_symbols for e in flat)) - set(allsyms)
    if free:
        same_name = sorted(str(s) for s in free if getattr(s, "name", None) in {p.name for p in allsyms})
        hint = (f"; {same_name} share a name with a param/scalar but differ in assumptions "
                "(e.g. positive=True)" if same_name else "")
        raise InvalidParamsError("expressions contain symbols that are neither params nor scalars: "
                                 f"{sorted(map(str, free))}{hint}")
    return params, scalars


# --------------------------------------------------------------------------- source generation
def _local_names(params, scalars, name):
    """Readable, collision-free Python names for the symbols."""
    taken = _RESERVED | {name, f"{name}_batch", f"{name}_into"}
    names = {}
    for prefix, syms in (("_p", params), ("_s", scalars)):
        for i, s in enumerate(syms):
            n = s.name
            if (not n.isidentifier() or keyword.iskeyword(n) or n in taken
                    or re.fullmatch(r"_[cps]\d+", n)):
                n = f"{prefix}{i}"
            taken.add(n)
            names[s] = n
    return names


def _generate(flat, shape, params, scalars, use_cse, name):
    names = _local_names(params, scalars, name)
    if use_cse:
        # canonical ordering keeps the source (hence the cache key) identical across processes
        repl, reduced = sp.cse(list(flat), symbols=sp.numbered_symbols("_cse"))
    else:
        repl, reduced = [], list(flat)
    for i, (s, _) in enumerate(repl):
        names[s] = f"_c{i}"
    printer = _KernelPrinter(names)
    try:
        body = [f"    {names[s]} = {printer.doprint(e)}" for s, e in repl]
        indices = [", ".join(map(str, ij)) for ij in np.ndindex(*shape)]
        body += [f"    out[{ij}] = {printer.doprint(e)}" for ij, e in zip(indices, reduced)]
    except Exception as exc:  # the printer's "not supported" errors
        raise InvalidLossError(f"cannot compile the expressions for numba: {exc}") from None

    n = len(params)
    sargs = "".join(f", {names[s]}" for s in scalars)
    cast = "".join(f"    {names[s]} = _inexact({names[s]})\n" for s in scalars)
    unpack = "".join(f"    {names[p]} = theta[{i}]\n" for i, p in enumerate(params))
    doc = ", ".join(f"theta[{i}]={p}" for i, p in enumerate(params))
    opts = 'cache=True, error_model="numpy", boundscheck=False'
    body = "\n".join(body)
    return f'''\
# Generated by bea.compile.codegen {CODEGEN_VERSION} (numba {numba.__version__}); do not edit.
# {doc}; scalars: {", ".join(map(str, scalars)) or "none"}
import math
import numpy
from numba import njit, prange
from bea.compile.codegen import _inexact


@njit({opts}, nogil=True)
def {name}(theta{sargs}):
    if theta.shape[0] != {n}:
        raise ValueError("{name}: theta must have length {n}")
    theta = _inexact(theta)
{cast}    out = numpy.empty({shape}, dtype=theta.dtype)
{unpack}{body}
    return out


# the same body writing into a given array: no allocation (batch rows, hot loops); compiled on first use
@njit({opts}, nogil=True)
def {name}_into(theta{sargs}, out):
{unpack}{body}


@njit({opts}, parallel=True)
def {name}_batch(thetas{sargs}):
    if thetas.shape[1] != {n}:
        raise ValueError("{name}_batch: thetas must have shape (m, {n})")
    thetas = _inexact(thetas)
{cast}    m = thetas.shape[0]
    out = numpy.empty((m,) + {shape}, dtype=thetas.dtype)
    for i in prange(m):
        {name}_into(thetas[i]{sargs}, out[i])
    return out
'''


# --------------------------------------------------------------------------- disk cache
def source_key(source: str) -> str:
    return hashlib.sha256(f"{source}\0{numba.__version__}\0{CODEGEN_VERSION}".encode()).hexdigest()


def _input_key(mem_key) -> str | None:
    """A content hash of the inputs themselves (pickles of sympy objects are canonical: args are
    sorted, symbols carry only their given assumptions), so that a new process can find the module
    without running cse and the printer. None when the inputs do not pickle."""
    try:
        data = pickle.dumps(mem_key, protocol=4)
    except Exception:
        return None
    return hashlib.sha256(data + f"\0{sp.__version__}\0{source_key('')}".encode()).hexdigest()


def _write_atomic(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``path`` through a temporary file. Without ``overwrite`` an existing file with the same
    text is left alone: numba's cache index is stamped with the module file's mtime."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # atomic create-if-absent
        except FileExistsError:
            if path.read_text(encoding="utf-8") != text:  # a damaged file: replace it
                os.replace(tmp, path)
        except OSError:  # no hard links on this file system
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _find_indexed(folder: Path, ikey: str | None, name: str):
    """(source, key) that an earlier process generated for the same inputs, or None."""
    try:
        key = (folder / f"{ikey[:40]}.key").read_text(encoding="utf-8").strip()
        source = (folder / f"{name}_{key[:32]}.py").read_text(encoding="utf-8")
    except (OSError, TypeError):
        return None
    return (source, key) if source_key(source) == key else None


def load_module(source: str, key: str, name: str, folder: Path):
    """Import the module of ``source`` from the disk cache, writing it first when needed."""
    modname = f"{_MODULE_PREFIX}{key[:32]}"
    path = folder / f"{name}_{key[:32]}.py"
    try:
        hit = path.read_text(encoding="utf-8") == source
    except OSError:
        hit = False
    if not hit:
        try:
            _write_atomic(path, source, overwrite=False)
        except OSError:  # cache not writable after all: compile from a private folder
            path = Path(tempfile.mkdtemp(prefix="bea-kernels-")) / path.name
            path.write_text(source, encoding="utf-8")
    module = sys.modules.get(modname)
    if module is None or modname in _STALE:
        spec = importlib.util.spec_from_file_location(modname, path)
        fresh = importlib.util.module_from_spec(spec)
        sys.modules[modname] = fresh  # numba pickles references to the kernel by module name
        try:
            spec.loader.exec_module(fresh)
        except BaseException:
            if module is None:
                del sys.modules[modname]
            else:  # keep the old module resolvable for the dispatchers made from it
                sys.modules[modname] = module
            raise
        _STALE.discard(modname)
        module = fresh
    return module, path, hit


# --------------------------------------------------------------------------- array-like arguments
def accept_array_likes(disp, ndim: int):
    """Let Python callers pass a list, tuple or any array-like θ, as ``lambdify`` does.

    numba types a list as a (deprecated, homogeneous-only) reflected list and then fails to type the
    kernel body. Its dispatcher asks ``_compile_for_args`` for a specialisation whenever no compiled
    signature matches the arguments; for a first argument that is not an ndarray this returns a small
    function that converts θ with :func:`numpy.asarray` (float64 unless complex) and calls the
    dispatcher again, which then takes its ordinary ndarray path. Arrays never reach it, so calls
    with arrays — and calls from ``@njit`` code — are exactly as before.
    """
    compile_for_args = disp._compile_for_args

    def call_with_array(theta, *scalars):
        try:
            arr = np.asarray(theta)
            arr = arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64, copy=False)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{disp.__name__}: theta must be an array of numbers, got {theta!r}") from None
        if arr.ndim != ndim:
            raise InvalidInputError(
                f"{disp.__name__}: theta must be {'a vector' if ndim == 1 else 'a 2-D array of rows'}, "
                f"got shape {arr.shape}")
        return disp(arr, *scalars)

    def dispatch(*args, **kws):
        if args and not kws and not isinstance(args[0], np.ndarray):
            return call_with_array
        return compile_for_args(*args, **kws)

    disp._compile_for_args = dispatch
    return disp


# --------------------------------------------------------------------------- LLVM backend (symengine)
@numba.extending.intrinsic
def _voidptr(typingctx, addr):
    """An integer address as a ``void*`` (for ctypes functions called from numba)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return types.voidptr(addr), codegen


def llvm_available() -> bool:
    """Whether symengine with its LLVM backend is importable (the ``backend="llvm"`` fast path)."""
    global _LLVM_OK
    if _LLVM_OK is None:
        try:
            import symengine as se

            x = se.Symbol("x")
            se.Lambdify([x], [x + 1], backend="llvm")
            _LLVM_OK = True
        except Exception:  # noqa: BLE001 - not installed, or built without LLVM
            _LLVM_OK = False
    return _LLVM_OK


_LLVM_OK = None
#: backend="auto" takes the LLVM route for kernels whose generated numba source is longer than this
#: (characters; ~300 lines of cse temporaries), where numba's compile time passes a few seconds
LLVM_AUTO_MIN_SOURCE = 15_000
_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _llvm_native(flat, params, scalars, store: Path | None = None):
    """(ctypes function out, in, user_data; user-data address; keep-alive) of symengine's LLVM code for ``flat``
    over the inputs (params, scalars), or None when symengine cannot take the expressions. ``store``: a
    file holding the pickled compiled object (symengine pickles the machine code), read when present and
    written otherwise, so a new process skips symengine's conversion and LLVM compile."""
    try:
        import symengine as se

        args = list(params) + list(scalars)
        if len({a.name for a in args}) != len(args):
            return None
        lam = None
        if store is not None:
            try:
                lam = pickle.loads(store.read_bytes())
            except Exception:  # noqa: BLE001 - absent or damaged: compile again
                lam = None
        if lam is None:
            sargs = [se.Symbol(a.name) for a in args]
            sexprs = [se.sympify(e) for e in flat]
            lam = se.Lambdify(sargs, sexprs, backend="llvm", cse=True, real=True)
            if store is not None:
                try:
                    fd, tmp = tempfile.mkstemp(dir=store.parent, prefix=f".{store.stem}.", suffix=".tmp")
                    with os.fdopen(fd, "wb") as f:
                        f.write(pickle.dumps(lam))
                    os.replace(tmp, store)
                except Exception:  # noqa: BLE001 - cache not writable: keep the compiled object in memory
                    pass
        fn, ud = lam.as_ctypes()
        native = _CFUNC(ctypes.cast(fn, ctypes.c_void_p).value)
        return native, int(ud.value or 0), (lam, fn, ud)
    except Exception:  # noqa: BLE001 - unsupported function, symengine error: the numba route serves
        return None


def _llvm_kernel(generic, flat, shape, params, scalars, name):
    """A numba kernel with the generic one's contract whose float64 path calls symengine's LLVM code (a
    C call from a small numba wrapper, compiled per process in ~0.2 s instead of numba's seconds for a
    large body); other dtypes (complex θ, complex scalars) go to the generic numba kernel, compiled on
    their first use. None when symengine cannot compile the expressions."""
    try:
        import symengine as se

        store = Path(generic.path).parent / f"{name}_{generic.cache_key[:32]}.symengine-{se.__version__}.llvm.pkl"
    except Exception:  # noqa: BLE001
        store = None
    got = _llvm_native(flat, params, scalars, store)
    if got is None:
        return None
    native, ud, keep = got
    n, ns, m = len(params), len(scalars), len(flat)
    sargs = "".join(f", s{i}" for i in range(ns))
    fill = "".join(f"            inp[{n + i}] = s{i}\n" for i in range(ns))
    real_scalars = " and ".join([f"isinstance(s{i}, (types.Float, types.Integer, types.Boolean))" for i in range(ns)] or ["True"])
    reshape = "" if len(shape) == 1 else f".reshape({shape})"
    src = f"""
def _select(theta{sargs}):
    pass


@overload(_select)
def _ol_select(theta{sargs}):
    if (isinstance(theta, types.Array) and theta.ndim == 1 and not isinstance(theta.dtype, types.Complex)
            and {real_scalars}):
        def impl(theta{sargs}):
            if theta.shape[0] != {n}:
                raise ValueError("{name}: theta must have length {n}")
            inp = np.empty({n + ns}, dtype=np.float64)
            for i in range({n}):
                inp[i] = theta[i]
{fill}            out = np.empty({m}, dtype=np.float64)
            native(_voidptr(out.ctypes.data), _voidptr(inp.ctypes.data), _voidptr(ud))
            return out{reshape}
        return impl
    return lambda theta{sargs}: generic(theta{sargs})


@njit(error_model="numpy", nogil=True)
def {name}(theta{sargs}):
    return _select(theta{sargs})


@njit(error_model="numpy", parallel=True)
def {name}_batch(thetas{sargs}):
    if thetas.shape[1] != {n}:
        raise ValueError("{name}_batch: thetas must have shape (k, {n})")
    k = thetas.shape[0]
    out = np.empty((k,) + {shape}, dtype=np.float64)
    for r in prange(k):
        out[r] = _select(thetas[r]{sargs})
    return out
"""
    env = dict(np=np, types=types, overload=overload, njit=numba.njit, prange=numba.prange, native=native,
               generic=generic, _voidptr=_voidptr, ud=ud)
    exec(compile(src, f"<bea.compile.codegen llvm wrapper {name}>", "exec"), env)
    kern = env[name]
    batch = env[f"{name}_batch"]
    kern._bea_keep = keep
    batch._bea_keep = keep
    kern.native_source = src
    return kern, batch


# --------------------------------------------------------------------------- public entry point
def compile_exprs(exprs, params, scalars=(), *, cse=True, name="kernel", backend="numba"):
    """Compile sympy expressions into a numba kernel ``kern(theta, *scalars) -> ndarray``.

    Parameters
    ----------
    exprs : sympy Matrix (any 2-D shape) or sequence of sympy expressions (1-D)
    params : sequence of sympy Symbols, the entries of the vector argument ``theta`` in order
    scalars : sequence of sympy Symbols passed as extra scalar arguments (e.g. the step size h)
    cse : pull out common subexpressions with :func:`sympy.cse` (recommended)
    name : Python name of the generated function
    backend : ``"numba"`` (default): the generated source compiled by numba (disk-cached machine
        code). ``"llvm"``: float64 calls go to machine code made by symengine's LLVM backend
        (``symengine.Lambdify(..., backend="llvm", cse=True)``) through a small numba wrapper — for
        large expressions ~0.3 s instead of numba's seconds to minutes, compiled once per process
        (not disk-cached); complex θ or scalars go to the numba kernel of the same source, compiled
        on first use. ``kern.into`` is always the numba one. The compiled LLVM object is pickled next to
        the module file, so a new process pays only the wrapper (~0.3 s). Falls back to ``"numba"``
        when symengine (with LLVM) is missing or cannot take the expressions. ``"auto"``: ``"llvm"``
        for large kernels (generated source longer than :data:`LLVM_AUTO_MIN_SOURCE`), else numba.

    Returns
    -------
    A numba ``CPUDispatcher`` ``kern``. ``kern(theta, *scalars)`` returns an array of shape
    ``(len(exprs),)`` for a sequence or a column Matrix, ``(n, m)`` for an n×m Matrix with m > 1.
    Float theta gives float64, complex theta gives complex128 (numba specialises the same source);
    integer arrays are promoted to float64. A real theta with a complex scalar is not supported:
    pass a complex theta. ``kern.batch(thetas, *scalars)`` maps rows of ``thetas`` (shape
    ``(m, n)``) to ``(m, *out_shape)`` in parallel. ``kern.into(theta, *scalars, out)`` writes into
    a preallocated ``out`` (no allocation, no checks: for hot loops in ``@njit`` code). From Python,
    ``kern`` and ``kern.batch`` also take a list, tuple or other array-like θ (converted with
    ``numpy.asarray``; ``kern([0.3, 0.2], h)``), at ~2 µs per call more. Attributes:
    ``source``, ``cache_key``, ``path``, ``from_disk_cache`` (the module file was already there),
    ``params``, ``scalars``, ``out_shape``. A theta of the wrong length raises ``ValueError``.

    Raises
    ------
    InvalidParamsError
        non-Symbol or duplicate params/scalars, empty params, or free symbols of ``exprs`` that are
        neither params nor scalars.
    InvalidLossError
        ``exprs`` is not a Matrix/sequence of scalar expressions or contains functions that cannot
        be compiled.
    """
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
            and name not in _RESERVED and not re.fullmatch(r"_[cps]\d+", name)):
        raise InvalidInputError(f"name must be a Python identifier, got {name!r}")
    if backend not in ("numba", "llvm", "auto"):
        raise InvalidInputError(f"backend must be 'numba', 'llvm' or 'auto', got {backend!r}")
    if backend != "numba" and not llvm_available():
        backend = "numba"
    flat, shape = _flatten(exprs)
    params, scalars = _symbols(params, "params"), _symbols(scalars, "scalars")
    if backend == "auto":
        generic = compile_exprs(flat if len(shape) == 1 else exprs, params, scalars, cse=cse, name=name)
        # numba compiles small kernels in about a second and caches the machine code on disk (ms in a
        # new process); big ones cost it seconds to minutes, against ~0.4 s per process for the LLVM route
        backend = "llvm" if len(generic.source) > LLVM_AUTO_MIN_SOURCE else "numba"
        if backend == "numba":
            return generic
    if backend == "llvm":
        lkey = (flat, shape, params, scalars, bool(cse), name, "llvm")
        kern = _MEMORY.get(lkey)
        if kern is not None:
            return kern
        generic = compile_exprs(flat if len(shape) == 1 else exprs, params, scalars, cse=cse, name=name)
        with _LOCK:
            kern = _MEMORY.get(lkey)
            if kern is not None:
                return kern
            made = _llvm_kernel(generic, flat, shape, params, scalars, name)
            if made is None:
                kern = generic
            else:
                kern, batch = made
                kern = accept_array_likes(kern, 1)
                kern.batch = accept_array_likes(batch, 2)
                kern.into = generic.into
                kern.generic = generic
                for attr in ("source", "cache_key", "path", "from_disk_cache", "params", "scalars", "out_shape"):
                    setattr(kern, attr, getattr(generic, attr))
                kern.backend = "llvm"
            _MEMORY[lkey] = kern
        return kern
    mem_key = (flat, shape, params, scalars, bool(cse), name)
    kern = _MEMORY.get(mem_key)
    if kern is not None:
        return kern
    with _LOCK:
        kern = _MEMORY.get(mem_key)
        if kern is not None:
            return kern
        params, scalars = _check(flat, params, scalars)
        folder = cache_dir()
        ikey = _input_key(mem_key)
        found = _find_indexed(folder, ikey, name)
        if found:
            source, key = found
        else:
            source = _generate(flat, shape, params, scalars, cse, name)
            key = source_key(source)
        kern = _MEMORY.get(key)
        if kern is None:
            module, path, hit = load_module(source, key, name, folder)
            kern = accept_array_likes(getattr(module, name), 1)
            kern.batch = accept_array_likes(getattr(module, f"{name}_batch"), 2)
            kern.into = getattr(module, f"{name}_into")
            kern.source, kern.cache_key, kern.path, kern.from_disk_cache = source, key, path, hit
            kern.params, kern.scalars, kern.out_shape = params, scalars, shape
            _MEMORY[key] = kern
        _MEMORY[mem_key] = kern
        if ikey and not found:
            try:
                _write_atomic(folder / f"{ikey[:40]}.key", key, overwrite=True)
            except OSError:
                pass
        return kern
