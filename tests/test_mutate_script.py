"""tools/mutate.py and its list tools/mutations.py: the list keeps up with the code, the machinery
restores what it changes.  No mutation is *run* here (that is ``python tools/mutate.py``, minutes).

Protected properties: every mutation's snippet occurs exactly once in the current tree (a
refactoring that moves a formula makes this test fail until the list is updated — a stale entry
would otherwise test nothing); every mutated file still parses (a syntax error would be "killed"
by any test); every listed test exists; a mutation applied to a copy is undone byte for byte, with
its modification time, even when the run inside raises.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"


def _load(name):
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return sys.modules[name] if sys.modules[name] is not mod else mod


mutations = _load("mutations")
mutate = _load("mutate")
MUTS = mutations.MUTATIONS


def test_no_mutation_is_stale():
    """Each snippet occurs exactly once in its file of the current working tree."""
    bad = mutate.stale(MUTS, ROOT)
    assert not bad, "update tools/mutations.py:\n" + "\n".join(f"  {k}: {v}" for k, v in bad.items())


def test_the_list_covers_issue_17_and_the_core_formulas():
    """At least 40 mutations, the ten rows of issue #17 among them, unsound ones flagged, and
    every module key resolves to an existing file."""
    assert len(MUTS) >= 40
    assert sum(m.row17 for m in MUTS) == 10
    assert sum(m.unsound for m in MUTS) >= 10
    names = [m.name for m in MUTS]
    assert len(set(names)) == len(names), "mutation names must be unique"
    for key, path in mutations.FILES.items():
        assert (ROOT / path).is_file(), f"FILES[{key!r}] = {path} does not exist"
    covered = {m.module for m in MUTS}
    for key in ("trees", "series", "methods", "principal", "certify", "rigorous", "dal", "codegen",
                "control", "tableaux", "torch.linalg", "torch.optim"):
        assert key in covered


@pytest.mark.parametrize("m", MUTS, ids=[m.name for m in MUTS])
def test_mutation_is_well_formed(m):
    """The replacement differs from the snippet, the mutated module still parses, and the tests
    named exist (file, and function when a node id is given)."""
    assert m.module in mutations.FILES
    assert m.replacement != m.original
    assert m.tests and m.description
    path = ROOT / mutations.path_of(m)
    text = path.read_text(encoding="utf-8")
    if text.count(m.original) == 1:  # stale entries are reported by test_no_mutation_is_stale
        ast.parse(mutate.mutated_source(m, text), filename=str(path))
    for sel in m.tests:
        file, _, node = sel.partition("::")
        assert (ROOT / file).is_file(), f"{m.name}: no test file {file}"
        if node:
            func = re.sub(r"\[.*\]$", "", node.split("::")[-1])
            assert re.search(rf"def {re.escape(func)}\b", (ROOT / file).read_text(encoding="utf-8")), (
                f"{m.name}: no test {func} in {file}"
            )


def test_applied_mutation_is_undone_even_on_error(tmp_path):
    """_Applied changes the copy, never the original tree, and restores bytes and mtime on exit."""
    m = next(x for x in MUTS if x.module == "trees" and x.original in (ROOT / mutations.path_of(x)).read_text())
    rel = mutations.path_of(m)
    copy = tmp_path / rel
    copy.parent.mkdir(parents=True)
    copy.write_bytes((ROOT / rel).read_bytes())
    os.utime(copy, (1_000_000_000.0, 1_000_000_000.0))
    cache = copy.parent / "__pycache__"
    cache.mkdir()
    stamp = cache / f"{copy.stem}._sigma-1.py311.nbi"
    stamp.write_bytes(b"original cache")
    before = copy.read_bytes()
    with pytest.raises(RuntimeError):
        with mutate._Applied(tmp_path, m):
            assert m.replacement in copy.read_text()
            assert copy.stat().st_mtime != 1_000_000_000.0
            stamp.write_bytes(b"mutant cache")
            (cache / f"{copy.stem}._gamma-2.py311.nbc").write_bytes(b"new mutant cache")
            raise RuntimeError("a test run that crashed")
    assert copy.read_bytes() == before
    assert copy.stat().st_mtime == 1_000_000_000.0
    assert stamp.read_bytes() == b"original cache"
    assert sorted(p.name for p in cache.iterdir()) == [stamp.name]


def test_verdicts_and_junit_names(tmp_path):
    """judge() maps pytest outcomes to killed/survived/timeout/error; junit class names become
    node ids; a collection error is named after its module."""
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.test_x" name="test_a[1]" time="0.5"/>'
        '<testcase classname="tests.test_x.TestK" name="test_b" time="2.5"><failure message="assert 1 == 2"/></testcase>'
        '<testcase classname="" name="tests.test_y" time="0.1"><error message="ImportError"/></testcase>'
        '</testsuite></testsuites>'
    )
    fails = mutate._parse_junit(xml)
    assert fails[0] == ("tests/test_x.py::TestK::test_b", 2.5, "assert 1 == 2")
    assert fails[1][0] == "tests/test_y.py (collection)"
    m = MUTS[0]
    TR = mutate.TestRun
    assert mutate.judge(m, TR(1, 3.0, fails)).status == "killed"
    assert mutate.judge(m, TR(1, 3.0, fails)).killer_time == 2.5
    assert mutate.judge(m, TR(0, 3.0, [])).status == "survived"
    assert mutate.judge(m, TR(-9, 3.0, [], timed_out=True)).status == "timeout"
    assert mutate.judge(m, TR(5, 3.0, [])).status == "error"
    assert mutate.judge(m, TR(-11, 3.0, [], output="Segmentation fault")).status == "killed"
    slow = mutate.Result(next(x for x in MUTS if x.unsound), "killed", "t", 45.0)
    assert slow.slow_unsound
    assert mutate.report([slow], stream=open(os.devnull, "w")) == 1


def test_list_option(capsys):
    assert mutate.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert f"{len(MUTS)} mutations" in out
    assert mutate.main(["--list", "--only", "trees.*"]) == 0
    assert "series." not in capsys.readouterr().out
