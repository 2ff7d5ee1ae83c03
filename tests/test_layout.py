"""The import rules of the package (issue #13), checked on the source with ``ast``.

1. No import cycles between bea's modules — counting imports inside functions, which Python resolves
   lazily but which still tie the modules together (only ``if TYPE_CHECKING:`` blocks are skipped).
   Importing ``bea.a.b`` runs ``bea/a/__init__.py`` first, so that import is an edge into the
   package ``bea.a`` too (from outside it).
2. No private name (``_x``) imported from another bea module: what two modules share is public in
   the lower one (``bea._checks`` is the package's validator module; its names are public).
3. Nothing imports from a package above it: a module never imports the ``__init__`` of a package
   that contains it (``bea`` itself included) — it imports the sibling module that holds the name.

The checks run on a small synthetic package too, so that they are seen to fail when a rule is broken.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node, outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, package: str = "bea"):
    """(edges: module -> set of bea modules it imports, private: [(module, source, name)])."""
    files = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in files}
    private = []
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            else:
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                targets = [(src, a.name) for a in node.names]
            for src, name in targets:
                if src != package and not src.startswith(package + "."):
                    continue
                sub = f"{src}.{name}" if name else None
                target = sub if sub in files else src
                if target not in files or target == mod:
                    continue
                edges[mod].add(target)
                parts = target.split(".")
                for i in range(2, len(parts)):  # the packages the import runs on the way (bea.a for bea.a.b)
                    parent = ".".join(parts[:i])
                    if parent in files and not (mod == parent or mod.startswith(parent + ".")):
                        edges[mod].add(parent)
                if name and target != sub and name.startswith("_") and not name.startswith("__"):
                    private.append((mod, target, name))
    return edges, private


def cycles(edges: dict[str, set[str]], ignore=("bea", "bea.torch")) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), ignoring edges into the
    package ``__init__`` modules (the public API re-exports everything)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w in ignore:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    edges, _ = import_graph(ROOT)
    assert len(edges) > 20  # the walk found the package
    assert cycles(edges) == []


def test_no_private_names_across_modules():
    _, private = import_graph(ROOT)
    assert private == [], "\n".join(f"{m} imports {n} from {s}" for m, s, n in private)


def upward_imports(edges: dict[str, set[str]], files) -> list[tuple[str, str]]:
    """(module, package) pairs where a module imports the ``__init__`` of a package containing it."""
    out = []
    for mod, targets in edges.items():
        own = mod if files[mod].name == "__init__.py" else mod.rpartition(".")[0]
        for t in targets:
            if files[t].name == "__init__.py" and (own == t or own.startswith(t + ".")):
                out.append((mod, t))
    return sorted(out)


def _files(root: Path, package: str = "bea"):
    return {_module_name(p, root): p for p in (root / package).rglob("*.py")}


def test_nothing_imports_from_a_package_above_it():
    edges, _ = import_graph(ROOT)
    assert {"bea.derive", "bea.compile", "bea.integrate", "bea.flows", "bea.certificates"} <= set(edges)
    assert upward_imports(edges, _files(ROOT)) == []


@pytest.fixture()
def toy(tmp_path):
    pkg = tmp_path / "bea"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from bea.a import f\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from bea.b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bea.a import f\n\ndef g():\n    return 1\n")
    (pkg / "sub" / "c.py").write_text("def h():\n    from ..a import f\n    return f\n")
    return tmp_path


def test_checks_see_lazy_cycles_and_private_names(toy):
    """The checks fail on what they forbid: a cycle through a function-level import, a private name."""
    edges, private = import_graph(toy)
    assert edges["bea.a"] == {"bea.b"} and edges["bea.b"] == set()  # TYPE_CHECKING skipped
    assert edges["bea.sub.c"] == {"bea.a"}  # relative import inside a function
    assert cycles(edges) == [] and private == []
    (toy / "bea" / "b.py").write_text("def g():\n    from bea.sub.c import _k\n    return 1\n")
    (toy / "bea" / "sub" / "c.py").write_text("from bea.a import f\n_k = 1\n")
    edges, private = import_graph(toy)
    assert cycles(edges) == [["bea.a", "bea.b", "bea.sub.c"]]
    assert private == [("bea.b", "bea.sub.c", "_k")]


def test_checks_see_upward_imports_and_package_init_cycles(toy):
    """A module importing its own package's ``__init__`` (or ``bea``) is reported; an import of
    ``bea.sub.c`` counts as running ``bea/sub/__init__.py``, which closes a cycle through it."""
    (toy / "bea" / "sub" / "d.py").write_text("from bea.sub import k\nfrom bea import f\n")
    edges, _ = import_graph(toy)
    assert upward_imports(edges, _files(toy)) == [("bea.sub.d", "bea"), ("bea.sub.d", "bea.sub")]
    (toy / "bea" / "sub" / "d.py").write_text("")
    (toy / "bea" / "sub" / "__init__.py").write_text("from bea.a import f\n")
    (toy / "bea" / "a.py").write_text("from bea.sub.d import x\n")
    edges, _ = import_graph(toy)
    assert "bea.sub" in edges["bea.a"]
    assert cycles(edges) == [["bea.a", "bea.sub"]]


def test_modules_of_the_flat_layout_still_import_as_the_same_objects():
    """``bea.series``, ``bea.loss``, ``bea.principal``, ``bea.certify`` (the module), … are the moved
    modules themselves (one module object: caches and monkeypatches are shared), in a fresh
    interpreter too; ``bea.alpha`` and ``bea.certify`` stay the functions, ``bea.dal`` the callable module."""
    import importlib
    import os
    import subprocess
    import sys

    import bea

    assert len(bea.MOVED_MODULES) >= 17
    for old, new in bea.MOVED_MODULES.items():
        assert importlib.import_module(f"bea.{old}") is importlib.import_module(new), old
        assert (ROOT / (new.replace(".", "/") + ".py")).is_file() and not (ROOT / "bea" / f"{old}.py").exists()
    from bea.certify import Certificate
    from bea.loss import CompiledLoss

    assert CompiledLoss is importlib.import_module("bea.compile.loss").CompiledLoss
    assert Certificate is bea.Certificate and callable(bea.certify) and callable(bea.alpha)
    assert bea.series.modified_series is bea.modified_series and bea.dal is importlib.import_module("bea.flows.dal")
    code = ("import bea.principal, bea.trees; from bea.tube import discrete_bound; "
            "import bea.flows.diagnostics as d, bea.certificates.tube as t; "
            "assert bea.principal is d and discrete_bound is t.discrete_bound; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
