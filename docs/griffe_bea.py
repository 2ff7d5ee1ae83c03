"""A griffe extension that adapts bea's docstrings to mkdocstrings at docs build time.

The docstrings are written for readers of the source (Sphinx-style roles, numpy-style sections whose
entries read ``name : what it is``); the site renders them with mkdocstrings, which knows neither
convention fully. Rather than rewriting every docstring, this extension rewrites the docstring text
of every object of the ``bea`` package once it is loaded (griffe's ``on_package`` event):

1. Sphinx roles ``:func:`x```, ``:class:`~a.b.C```, ``:mod:``, ``:meth:``, ``:data:``, ``:attr:``,
   ``:exc:`` become cross-references. The target is resolved like Python would from where the
   docstring stands (the object, its parents, then absolute), aliases are followed to their
   canonical path (``bea.gd`` -> ``bea.flows.gd``), and a function role that lands on a module
   whose name it shares (``bea.certify``) means the function inside. The reference is emitted as an
   *optional* autoref: linked when the target is rendered on the site, plain code otherwise (private
   helpers, sympy, numpy), never a build warning. ``~`` keeps only the last component as the title.
2. Parameters / Attributes / Other Parameters entries written ``name : description`` keep the text
   as the Type column only when it looks like a type (``float``, ``float or None``, ``tuple of
   sympy.Symbol``); ``name : int, the highest power`` is split into the type ``int`` and the
   description; otherwise the text is the description and the Type column shows the signature's
   annotation. Several entries on one line (``theta0 : start;  steps : number of steps``) are split.
3. A Returns section written as running text (every line at the section's indentation) becomes one
   entry with that text as its description, instead of one table row per line.
4. reStructuredText simple tables (``====  ====`` rules) become Markdown tables.
"""

from __future__ import annotations

import html
import re

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|mod|meth|data|attr|exc|obj|const):`(~?)\.?([^`]+?)`")
_HEADERS = {
    "parameters", "other parameters", "attributes", "returns", "yields", "raises", "warns", "examples",
    "see also", "notes", "references", "methods", "receives", "warnings",
}
_ENTRY_SECTIONS = {"parameters", "other parameters", "attributes"}
_NAMES = r"\*{0,2}[A-Za-z_][\w.]*(?:\s*,\s*\*{0,2}[A-Za-z_][\w.]*)*"
_ENTRY = re.compile(rf"^(?P<names>{_NAMES})\s+:\s*(?P<rest>.*)$")
_SPLIT = re.compile(rf";\s+(?=(?:{_NAMES})\s+:\s)")
_TYPE_WORD = r"[A-Za-z_][\w.]*(?:\[[^\]]*\])?"
_TYPE = re.compile(rf"^`{{0,2}}{_TYPE_WORD}`{{0,2}}(?:\s+(?:or|of)\s+`{{0,2}}{_TYPE_WORD}`{{0,2}})*$")


class BeaDocstrings(griffe.Extension):
    """Rewrite the docstrings of package ``bea`` (roles, numpy entries) once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if pkg.name != "bea":
            return
        collection = loader.modules_collection
        for obj in _walk(pkg):
            doc = obj.docstring
            if doc is None or not doc.value:
                continue
            text = _rst_tables(_sections(doc.value))
            doc.value = _ROLE.sub(lambda m: _reference(m, obj, collection), text)
            doc.__dict__.pop("parsed", None)  # parsed lazily (cached_property): forget any early parse


def _walk(obj):
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk(member)


# ------------------------------------------------------------------------------------------ roles
def _lookup(collection, path: str):
    try:
        found = collection[path]
        return found.final_target if found.is_alias else found
    except Exception:  # KeyError, AliasResolutionError, CyclicAliasError: not a bea object
        return None


def _resolve(role: str, target: str, obj, collection) -> str | None:
    scopes, scope = [], obj
    while scope is not None:
        scopes.append(scope.path)
        scope = scope.parent
    for path in [*(f"{s}.{target}" for s in scopes), target]:
        found = _lookup(collection, path)
        if found is None:
            continue
        if role in ("func", "class", "meth", "exc", "data", "obj") and found.is_module:
            inner = _lookup(collection, f"{found.path}.{target.rsplit('.', 1)[-1]}")
            if inner is not None:
                found = inner
        return found.path
    return None


def _reference(match: re.Match, obj, collection) -> str:
    role, tilde, target = match.groups()
    title = target.rsplit(".", 1)[-1] if tilde else target
    path = _resolve(role, target, obj, collection)
    code = f"<code>{html.escape(title)}</code>"
    if path is None:
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


# --------------------------------------------------------------------------------------- sections
def _sections(text: str) -> str:
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        name = line.strip().lower()
        if (name in _HEADERS and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
                and len(lines[i + 1].strip()) >= 3):
            indent = len(line) - len(line.lstrip())
            j = i + 2
            while j < len(lines) and not _is_header(lines, j):
                j += 1
            body = lines[i + 2 : j]
            if name in _ENTRY_SECTIONS:
                body = _entries(body, indent)
            elif name in ("returns", "yields"):
                body = _running_text(body, indent)
            out += [line, lines[i + 1], *body]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _is_header(lines, j) -> bool:
    return (lines[j].strip().lower() in _HEADERS and j + 1 < len(lines)
            and set(lines[j + 1].strip()) == {"-"} and len(lines[j + 1].strip()) >= 3)


def _entries(body: list[str], indent: int) -> list[str]:
    out = []
    pad = " " * indent
    for line in body:
        own = len(line) - len(line.lstrip())
        m = _ENTRY.match(line.strip()) if line.strip() and own == indent else None
        if m is None:
            out.append(line)
            continue
        for part in _SPLIT.split(line.strip()):
            pm = _ENTRY.match(part.strip())
            if pm is None:  # a split that did not yield an entry: keep the text as it was
                out.append(pad + part)
                continue
            names, rest = pm["names"], pm["rest"].strip()
            kind, desc = _type_and_description(rest)
            out.append(f"{pad}{names} : {kind}" if kind else f"{pad}{names}")
            if desc:
                out.append(f"{pad}    {desc}")
    return out


def _type_and_description(rest: str) -> tuple[str, str]:
    if not rest:
        return "", ""
    if _TYPE.match(rest) and len(rest) <= 40:
        return rest, ""
    head, sep, tail = rest.partition(", ")
    if sep and _TYPE.match(head) and len(head) <= 30:
        return head, tail
    return "", rest


def _running_text(body: list[str], indent: int) -> list[str]:
    items = [ln for ln in body if ln.strip()]
    at_base = [ln for ln in items if len(ln) - len(ln.lstrip()) == indent]
    if len(items) < 2 or len(at_base) != len(items):
        return body  # a normal numpy Returns section (type lines with indented descriptions)
    first = items[0].strip()
    if _TYPE.match(first) and len(first) <= 40:
        return body
    pad = " " * indent
    return [f"{pad}:", *(f"{pad}    {ln.strip()}" for ln in items)]


# ------------------------------------------------------------------------------------- rst tables
_RULE = re.compile(r"^\s*=+(?:\s+=+)+\s*$")


def _rst_tables(text: str) -> str:
    """``====  ====`` simple tables (top rule, header, rule, rows, bottom rule) as Markdown tables."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if _RULE.match(lines[i]):
            rules = [j for j in range(i, len(lines)) if _RULE.match(lines[j])][:3]
            if len(rules) == 3 and rules[1] == i + 2:
                spans = [m.span() for m in re.finditer(r"=+", lines[i])]

                def cells(line, spans=spans):
                    starts = [a for a, _ in spans] + [None]
                    return [line[starts[k]:starts[k + 1]].strip() if len(line) > starts[k] else ""
                            for k in range(len(spans))]

                pad = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
                rows = [cells(lines[i + 1])] + [cells(ln) for ln in lines[rules[1] + 1 : rules[2]] if ln.strip()]
                out.append("")
                out.append(pad + "| " + " | ".join(rows[0]) + " |")
                out.append(pad + "|" + "---|" * len(spans))
                out += [pad + "| " + " | ".join(r) + " |" for r in rows[1:]]
                out.append("")
                i = rules[2] + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
