"""Execute every notebook in notebooks/ and check that each .ipynb matches its jupytext .py source.

The paired ``notebooks/NN_name.py`` (jupytext percent format) is the reviewed source; the
``.ipynb`` beside it is generated with ``jupytext --to ipynb`` and committed without outputs.
Notebooks that need PyTorch (they ``import torch``) are skipped when torch is not installed.
The executed notebooks (with outputs and figures) are kept in ``build/notebooks/`` (git-ignored), or
in ``$BEA_NOTEBOOK_OUTPUT_DIR`` when it is set: the documentation build (``docs/hooks.py``) renders
them, figures included, when their cells are those of the committed notebooks.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # per cell; every notebook is meant to run in well under 3 minutes on 2 CPUs

nbformat = pytest.importorskip("nbformat")


def _needs_torch(nb) -> bool:
    pattern = re.compile(r"^\s*(import torch|from torch|import bea\.torch|from bea\.torch)", re.M)
    return any(c.cell_type == "code" and pattern.search(c.source) for c in nb.cells)


def _sources(cells):
    return [(c.cell_type, c.source.strip()) for c in cells]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOKS_DIR}"
    for nb_path in NOTEBOOKS:
        assert nb_path.with_suffix(".py").exists(), f"{nb_path.name} has no paired .py source"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_sync_with_py(nb_path):
    jupytext = pytest.importorskip("jupytext")
    nb = nbformat.read(nb_path, as_version=4)
    paired = jupytext.read(nb_path.with_suffix(".py"))
    assert _sources(nb.cells) == _sources(paired.cells), (
        f"{nb_path.name} differs from {nb_path.with_suffix('.py').name}; regenerate it with "
        f"`jupytext --to ipynb {nb_path.with_suffix('.py').name}`"
    )
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{nb_path.name} is committed with outputs"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(nb_path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(nb_path, as_version=4)
    if _needs_torch(nb):
        pytest.importorskip("torch")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell and traceback) on the first error
    print(f"{nb_path.name}: {time.perf_counter() - start:.1f} s")
    out_dir = os.environ.get("BEA_NOTEBOOK_OUTPUT_DIR") or str(NOTEBOOKS_DIR.parent / "build" / "notebooks")
    os.makedirs(out_dir, exist_ok=True)
    nbformat.write(nb, os.path.join(out_dir, nb_path.name))
