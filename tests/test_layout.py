"""The import rules of the package (issue #13), checked on the source with ``ast``.

1. No import cycles between bea's modules — counting imports inside functions, which Python resolves
   lazily but which still tie the modules together (only ``if TYPE_CHECKING:`` blocks are skipped).
2. No private name (``_x``) imported from another bea module: what two modules share is public in
   the lower one (``bea._checks`` is the package's validator module; its names are public).

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
