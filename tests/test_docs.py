"""The documentation site: it builds with ``mkdocs build --strict`` (as CI runs it), its formulas are
rendered (MathML, no raw TeX, nothing loaded from a CDN), the API reference has no raw Sphinx roles
and shows descriptions as descriptions, and the notebooks are pages with their figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")
pytest.importorskip("latex2mathml")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))
import hooks  # noqa: E402  (docs/hooks.py)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built once, in strict mode (any warning fails), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env.pop("BEA_DOCS_EXECUTE", None)
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WARNING" not in res.stderr, res.stderr
    return out


def page(site, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8") if name else (site / "index.html").read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Rows (lists of cell texts) of the first table after the element with id ``anchor``."""

    def __init__(self, anchor):
        super().__init__()
        self.anchor, self.seen, self.done, self.rows, self.cell, self.row = anchor, False, False, [], None, None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.anchor:
            self.seen = True
        if not self.seen or self.done:
            return
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.seen and self.rows:
            self.done = True
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_concept_pages_have_rendered_math_and_no_cdn(site):
    """Every formula of the concept pages is MathML in the built HTML (no raw ``\\(``, ``\\[`` or
    ``$$`` left for a script to typeset), and no page loads a script, style or font from another
    host: the site works offline."""
    for name in ("concepts/bea", "concepts/principal-flow", "concepts/certification", "concepts/dal",
                 "concepts/diagnostics", ""):
        html = page(site, name)
        assert html.count("<math") >= 3, name
        body = html[html.find("<article"):]
        assert "\\(" not in body and "\\[" not in body and "$$" not in body, name
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', text)
        assert not remote, (path, remote[:3])
    assert "mathjax" not in page(site, "concepts/bea").lower()


def test_formula_values_survive_the_conversion():
    """The MathML of a formula keeps its symbols (the PF rate log(1 − hλ)/h), and a formula that
    cannot be converted is a logged warning (strict builds fail) shown as code, never dropped."""
    mathml = hooks.tex_to_mathml(r"r_i = \frac{\log(1 - h\lambda_i)}{h}", display=True)
    assert mathml.startswith("<math") and "<mfrac>" in mathml and "&#x003BB;" in mathml
    html = '<p><span class="arithmatex">\\(\\frac{1}{\\)</span></p>'
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    hooks.log.addHandler(handler)
    try:
        out = hooks.render_math(html, "test.md")
    finally:
        hooks.log.removeHandler(handler)
    assert "<code>" in out and records and records[0].levelno == logging.WARNING


def test_api_reference_has_cross_references_not_sphinx_roles(site):
    """The API page shows no raw ``:func:``/``:class:``/``:mod:`` (they are rewritten at build time
    by docs/griffe_bea.py) and links them: bea.gd resolves to bea.flows.descent.gd (aliases are followed
    to where the object is defined), a relative name to its module's object."""
    html = page(site, "api")
    assert not re.findall(r":(?:func|class|mod|meth|data|attr|exc):`", html)
    links = set(re.findall(r'class="autorefs autorefs-internal"[^>]*href="[^"]*#([\w.]+)"', html))
    assert {"bea.flows.descent.gd", "bea.derive.symbolic.ModifiedField", "bea.integrate.solver.solve",
            "bea.errors.IntegrationError"} <= links
    assert "<autoref" not in html


def test_api_parameter_descriptions_are_not_types(site):
    """``name : description`` entries render the description in the Description column and the
    signature's annotation in the Type column (bea.flows.dal.dal: p is a float, its description is the
    power of ‖Hĝ‖); Attributes descriptions likewise stay out of the Type column."""
    parser = _Tables("bea.flows.dal.dal")
    parser.feed(page(site, "api"))
    rows = {r[0]: r for r in parser.rows if len(r) >= 3}
    assert rows["p"][1] == "float" and "power of" in rows["p"][2]
    assert rows["steps"][1] == "int" and "number of updates" in rows["steps"][2]
    assert "theta0" in rows and "finite start" in rows["theta0"][2]  # split from "theta0 : ...;  steps : ..."
    parser = _Tables("bea.flows.dal.DALResult")
    parser.feed(page(site, "api"))
    attrs = {r[0]: r for r in parser.rows if len(r) >= 3}
    assert "first iterate" in attrs["diverged_at"][2] and len(attrs["diverged_at"][1].split()) <= 3


def test_notebooks_are_pages(site):
    """Each notebook is a page of the site with its code; the navigation lists them."""
    for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        html = page(site, f"notebooks/{nb.stem}")
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        title = "".join(cells[0]["source"]).splitlines()[0].lstrip("# ").strip()
        assert title.split()[-1] in html and re.search(r'class="nn">bea\b', html), nb.name
    assert "notebooks/05_dal/" in page(site, "")


def test_notebook_pages_use_fresh_executed_copies(tmp_path, monkeypatch):
    """An executed copy with the committed cells gives the page its figures (inlined PNG) and
    printed output; a copy whose cells differ (stale) is ignored and the page says outputs are
    missing."""
    nb_path = REPO / "notebooks" / "02_principal_flow_quadratics.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["GD = PF = 0.5636785\n"]},
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure>"]}},
    ]
    monkeypatch.setenv("BEA_NOTEBOOK_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("BEA_DOCS_EXECUTE", raising=False)
    monkeypatch.setattr(hooks, "REPO", tmp_path / "no-repo")  # ignore build/notebooks of this checkout
    (tmp_path / nb_path.name).write_text(json.dumps(nb), encoding="utf-8")
    md = hooks.notebook_markdown(nb_path)
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in md and "GD = PF = 0.5636785" in md
    assert "Outputs not included" not in md
    code["source"] = ["print('edited')"]
    (tmp_path / nb_path.name).write_text(json.dumps(nb), encoding="utf-8")
    md = hooks.notebook_markdown(nb_path)
    assert "Outputs not included" in md and "base64" not in md
