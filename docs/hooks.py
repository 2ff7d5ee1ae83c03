"""mkdocs hooks of the bea site (registered in mkdocs.yml): math rendered at build time, notebooks as pages.

Math. ``pymdownx.arithmatex`` (generic mode) wraps every formula of the pages *and* of the API
docstrings in ``<span class="arithmatex">\\(...\\)</span>`` / ``<div class="arithmatex">\\[...\\]</div>``.
:func:`on_page_content` replaces each one by MathML made by ``latex2mathml`` (pure Python), which
browsers render natively: no JavaScript, no CDN, nothing to download — the site works offline and
a built page can be checked for rendered math (``tests/test_docs.py``). A formula latex2mathml
cannot convert is a build warning (so ``mkdocs build --strict`` fails on it) and is shown as code.

Notebooks. :func:`on_files` adds one page per ``notebooks/NN_name.ipynb`` (``notebooks/NN_name.md``
in the site): markdown cells as they are, code cells as Python blocks, and the outputs (text,
tables, PNG figures inlined) of an *executed* copy of the same notebook when one is found whose
cells are those of the committed notebook — in ``$BEA_NOTEBOOK_OUTPUT_DIR`` or ``build/notebooks/``,
where ``pytest tests/test_notebooks.py`` leaves them (CI runs the tests before the docs build).
Without one the page shows the code and says how to get the figures; ``BEA_DOCS_EXECUTE=1``
executes the notebooks during the build instead (nbclient, a few minutes).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.bea")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])\s*</(?P=tag)>',
    re.S,
)


# -------------------------------------------------------------------------------------------- math
def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for one TeX formula (raises ValueError when latex2mathml cannot convert it)."""
    from latex2mathml.converter import convert

    try:
        out = convert(tex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own exceptions and plain ones
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    if "<merror" in out:
        raise ValueError("latex2mathml produced an error element")
    return out


def render_math(content: str, where: str = "") -> str:
    """Replace every arithmatex span/div of an HTML fragment by MathML."""

    def one(match: re.Match) -> str:
        display = match["block"] is not None
        tex = html.unescape(match["block"] if display else match["inline"])
        try:
            mathml = tex_to_mathml(tex, display)
        except ValueError as exc:
            log.warning("%s: cannot render the formula %r as MathML (%s)", where, tex[:80], exc)
            return f"<code>{html.escape(tex)}</code>"
        if display:
            return f'<div class="bea-math bea-math-display">{mathml}</div>'
        return f'<span class="bea-math">{mathml}</span>'

    return _MATH.sub(one, content)


def on_page_content(html_text, page, config, files):
    return render_math(html_text, page.file.src_uri)


# --------------------------------------------------------------------------------------- notebooks
def _cells(nb: dict) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"]).strip()) for c in nb["cells"]]


def _executed_copy(path: Path, nb: dict) -> dict | None:
    """An executed notebook with exactly the cells of ``nb`` (outputs are never stale)."""
    folders = [os.environ.get("BEA_NOTEBOOK_OUTPUT_DIR"), str(REPO / "build" / "notebooks")]
    for folder in filter(None, folders):
        candidate = Path(folder) / path.name
        try:
            done = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _cells(done) == _cells(nb):
            return done
        log.info("%s: executed copy %s is out of date, not used", path.name, candidate)
    if os.environ.get("BEA_DOCS_EXECUTE") == "1":
        import nbclient
        import nbformat

        node = nbformat.reads(json.dumps(nb), as_version=4)
        nbclient.NotebookClient(node, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        return json.loads(nbformat.writes(node))
    return None


def _fence(text: str, lang: str = "") -> list[str]:
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return [f"{ticks}{lang}", text.rstrip("\n"), ticks, ""]


def _outputs(cell: dict) -> list[str]:
    out, text = [], []
    for o in cell.get("outputs", []) + [{"output_type": "end"}]:
        kind = o.get("output_type")
        if kind == "stream":
            if o.get("name") != "stderr":  # warnings and progress bars are not content
                text.append("".join(o.get("text", "")))
            continue
        if text:  # consecutive prints: one block
            out += _fence("".join(text), "text")
            text = []
        if kind == "end":
            break
        if kind in ("execute_result", "display_data"):
            data = o.get("data", {})
            if "image/png" in data:
                png = "".join(data["image/png"]).replace("\n", "")
                out += [f'<img class="bea-nb-figure" alt="figure" src="data:image/png;base64,{png}"/>', ""]
            elif "text/html" in data:
                out += ['<div class="bea-nb-html">', "".join(data["text/html"]), "</div>", ""]
            elif "text/plain" in data:
                out += _fence("".join(data["text/plain"]), "text")
        elif kind == "error":
            out += _fence(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(o.get("traceback", []))), "text")
    return out


def notebook_markdown(path: Path) -> str:
    """The page of one notebook (see the module docstring)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    done = _executed_copy(path, nb)
    source = path.with_suffix(".py").name
    lines = []
    if done is None:
        lines += [
            '!!! note "Outputs not included in this build"',
            f"    The code below is `notebooks/{source}`. Its figures and printed numbers appear here when the",
            "    site is built after `python -m pytest tests/test_notebooks.py` (which leaves the executed",
            "    notebooks in `build/notebooks/`), or with `BEA_DOCS_EXECUTE=1 mkdocs build`.",
            "",
        ]
    cells = (done or nb)["cells"]
    for cell in cells:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            lines += [src, ""]
        elif cell["cell_type"] == "code" and src.strip():
            lines += _fence(src, "python")
            lines += _outputs(cell)
    lines += ["", f"*Source: `notebooks/{source}` (jupytext percent format) and `notebooks/{path.name}`.*", ""]
    return "\n".join(lines)


def on_files(files, config):
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=notebook_markdown(path)))
    return files
