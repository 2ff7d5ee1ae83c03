#!/usr/bin/env python
r"""Mutation testing of bea's core formulas: does the test suite notice a one-line mistake?

Each entry of :data:`mutations.MUTATIONS` (``tools/mutations.py``) is one single-point change to
the library — a coefficient, a sign, a dropped factor, a branch — with the tests that should
notice it.  For every mutation this script

1. replaces the exact ``original`` snippet (which must occur exactly once in its file) by the
   ``replacement`` in a *private copy* of the repository (never in the working tree: several
   people edit that one at once; Ctrl-C or a crash only leaves a temporary directory behind);
2. runs the mutation's tests there with ``pytest -x`` under the deterministic ``ci`` hypothesis
   profile;
3. restores the file (bytes and modification time, so that numba's and Python's caches of the
   original stay valid) and records *killed* (a test failed: good), *survived* (every test passed:
   the suite has a hole) or *timeout*, with the first failing test and its duration.

A snippet that is not found exactly once is reported as **stale**: the list no longer matches the
code and must be updated (non-zero exit).  ``tests/test_mutate_script.py`` checks the same thing on
every test run, without running any mutation.

Before the mutations, the union of their test selections is run once on the unchanged copy (the
*baseline*): tests that already fail cannot judge a mutation, so they are deselected from every
mutation's run (and listed); a test module that cannot even be collected makes the mutations that
need it ``baseline-fail``.  ``--no-baseline`` skips this run.

Mutations flagged ``unsound=True`` could make a certificate claim less than the truth; each of them
must be killed by a test that takes less than ``--unsound-limit`` seconds (30 by default).

Usage::

    python tools/mutate.py --list                   # the mutations, one per line
    python tools/mutate.py                          # run them all (CPU-heavy: minutes)
    python tools/mutate.py --only 'certify.*' --only rigorous.gershgorin_radius
    python tools/mutate.py --check                  # stale check only (seconds)
    python tools/mutate.py --jobs 2 --timeout 300

Exit status: 0 when every mutation was killed (unsound ones fast enough) and none is stale, else 1.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import FILES, MUTATIONS, Mutation, path_of  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
UNSOUND_LIMIT = 30.0
DEFAULT_TIMEOUT = 300.0
DEFAULT_MEMORY_GB = 4.0  # a mutant that loops while allocating must not take the shared machine down


# --------------------------------------------------------------------------------------------------
# the list itself
# --------------------------------------------------------------------------------------------------


def occurrences(mutation: Mutation, root: Path = REPO) -> int:
    """How often the mutation's original snippet occurs in its file under ``root`` (-1: no file)."""
    p = root / path_of(mutation)
    if not p.is_file():
        return -1
    return p.read_text(encoding="utf-8").count(mutation.original)


def stale(mutations=MUTATIONS, root: Path = REPO) -> dict[str, str]:
    """name -> why, for every mutation whose snippet is not found exactly once under ``root``."""
    out = {}
    for m in mutations:
        k = occurrences(m, root)
        if k == -1:
            out[m.name] = f"file {path_of(m)} does not exist"
        elif k != 1:
            out[m.name] = f"snippet found {k} times in {path_of(m)} (must be exactly once)"
    return out


def mutated_source(mutation: Mutation, text: str) -> str:
    """The file text with the mutation applied (the snippet must occur exactly once)."""
    if text.count(mutation.original) != 1:
        raise ValueError(f"{mutation.name}: snippet not found exactly once")
    return text.replace(mutation.original, mutation.replacement, 1)


def select(patterns: list[str] | None) -> list[Mutation]:
    """Mutations whose name matches one of the glob ``patterns`` (all when None)."""
    if not patterns:
        return list(MUTATIONS)
    names = [p.strip() for pat in patterns for p in pat.split(",") if p.strip()]
    chosen = [m for m in MUTATIONS if any(fnmatch.fnmatchcase(m.name, p) for p in names)]
    unknown = [p for p in names if not any(fnmatch.fnmatchcase(m.name, p) for m in MUTATIONS)]
    if unknown:
        raise SystemExit(f"no mutation matches {unknown}; see --list")
    return chosen


# --------------------------------------------------------------------------------------------------
# a private copy of the repository
# --------------------------------------------------------------------------------------------------


def _tree_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree (what a commit would see)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True,
    ).stdout.decode()
    return sorted({f for f in out.split("\0") if f})


def make_copy(dest: Path, root: Path = REPO, rev: str | None = None) -> Path:
    """Copy the working tree (or the commit ``rev``) of ``root`` into ``dest``.

    Source files keep their modification times and numba's on-disk caches (``__pycache__/*.nbi``,
    ``*.nbc``) of the package are copied with them, so the copy starts warm.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if rev is not None:
        archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=root, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return dest
    for rel in _tree_files(root):
        src = root / rel
        if not src.is_file():  # deleted in the working tree
            continue
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    for cache in (root / "bea").rglob("__pycache__"):
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            dst = dest / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
    return dest


class _Applied:
    """Context manager: the mutation applied to the copy, undone on exit whatever happens.

    The original bytes and modification time are restored, and numba's cache files of the module
    are put back as they were (a mutated run would otherwise replace them by the mutant's).
    """

    def __init__(self, copy_root: Path, mutation: Mutation):
        self.path = copy_root / path_of(mutation)
        self.mutation = mutation

    def _cache_files(self):
        cache = self.path.parent / "__pycache__"
        stem = self.path.stem
        return [f for f in cache.glob(f"{stem}.*") if f.suffix in (".nbi", ".nbc")] if cache.is_dir() else []

    def __enter__(self):
        self.text = self.path.read_bytes()
        st = self.path.stat()
        self.times = (st.st_atime, st.st_mtime)
        self.saved = {f: f.read_bytes() for f in self._cache_files()}
        new = mutated_source(self.mutation, self.text.decode("utf-8"))
        self.path.write_text(new, encoding="utf-8")
        # a modification time that certainly differs from the original (pyc and numba stamps)
        os.utime(self.path, (self.times[0], self.times[1] + 2.0))
        return self

    def __exit__(self, *exc):
        self.path.write_bytes(self.text)
        os.utime(self.path, self.times)
        for f in self._cache_files():
            if f not in self.saved:
                f.unlink(missing_ok=True)
        for f, data in self.saved.items():
            f.write_bytes(data)
        return False


# --------------------------------------------------------------------------------------------------
# running tests
# --------------------------------------------------------------------------------------------------


_RUNNING: set = set()  # process groups of the pytest runs in flight (killed on Ctrl-C)
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set on interrupt: the runs killed then are no verdicts


def _kill_running() -> None:
    _STOPPING.set()
    with _RUNNING_LOCK:
        for pid in list(_RUNNING):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class TestRun:
    rc: int
    wall: float
    failures: list  # [(test id, duration s, message head)]
    timed_out: bool = False
    output: str = ""


def _env(copy_root: Path, kernel_cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy_root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the mutant's bytecode must never outlive it
    env["HYPOTHESIS_PROFILE"] = "ci"  # deterministic: a mutation's verdict must not depend on luck
    env["BEA_CACHE_DIR"] = str(kernel_cache)  # compiled kernels are keyed by content: safe to share
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _parse_junit(path: Path) -> list:
    if not path.is_file():
        return []
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return []
    out = []
    for case in tree.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is None:
            continue
        # classname "tests.test_x" (or "tests.test_x.TestClass") -> the node id tests/test_x.py::...
        parts = [p for p in case.get("classname", "").split(".") if p]
        mod = [p for p in parts if not p[:1].isupper()]
        cls = [p for p in parts if p[:1].isupper()]
        if mod:
            name = "::".join(["/".join(mod) + ".py", *cls, case.get("name", "")])
        else:  # an error while collecting a module: its name is the test case's name
            name = case.get("name", "").replace(".", "/") + ".py (collection)"
        msg = (bad.get("message") or "").strip().splitlines()
        out.append((name, float(case.get("time") or 0.0), msg[0][:120] if msg else ""))
    return out


def run_tests(copy_root: Path, tests, *, timeout: float, kernel_cache: Path, stop_first: bool = True,
              memory_gb: float = DEFAULT_MEMORY_GB, deselect=()) -> TestRun:
    """``pytest`` on ``tests`` inside the copy: its own process group (killed on timeout), its heap
    limited to ``memory_gb`` (RLIMIT_DATA)."""
    junit = Path(tempfile.mkstemp(prefix="bea-mutate-", suffix=".xml")[1])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "--junitxml", str(junit), "-W", "ignore::DeprecationWarning"]
    if stop_first:
        cmd.append("-x")
    for node in deselect:
        cmd += ["--deselect", node]
    cmd += list(tests)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=copy_root, env=_env(copy_root, kernel_cache), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    # set at once, before the interpreter has started to allocate (preexec_fn is unsafe with threads)
    lim = int(memory_gb * (1 << 30))
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_DATA, (lim, lim))
    except (ProcessLookupError, PermissionError, ValueError):
        pass
    with _RUNNING_LOCK:
        _RUNNING.add(proc.pid)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc.pid)
    wall = time.perf_counter() - t0
    fails = _parse_junit(junit)
    junit.unlink(missing_ok=True)
    return TestRun(proc.returncode, wall, fails, timed_out, out.decode(errors="replace")[-4000:])


# --------------------------------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    mutation: Mutation
    status: str  # killed, survived, timeout, stale, error, baseline-fail
    killer: str = ""
    killer_time: float = float("nan")
    wall: float = 0.0
    note: str = ""

    @property
    def slow_unsound(self) -> bool:
        return self.mutation.unsound and (self.status != "killed" or not self.killer_time < UNSOUND_LIMIT)


def judge(mutation: Mutation, run: TestRun) -> Result:
    if run.timed_out:
        return Result(mutation, "timeout", wall=run.wall, note=f"no verdict within {run.wall:.0f} s")
    if run.rc == 0:
        return Result(mutation, "survived", wall=run.wall)
    if run.failures:
        name, dur, msg = run.failures[0]
        return Result(mutation, "killed", name, dur, run.wall, msg)
    if run.rc == 5:
        return Result(mutation, "error", wall=run.wall, note="no tests collected: the selection is stale")
    # collection error, crash of the interpreter (a mutant may segfault numba code): killed, no test
    tail = run.output.strip().splitlines()[-1:] or [""]
    return Result(mutation, "killed", "(collection/crash)", run.wall, run.wall, tail[0][:120])


def _fmt_time(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


def report(results: list[Result], *, stream=sys.stdout) -> int:
    """Print the table and totals; return the exit status."""
    w = max([len(r.mutation.name) for r in results] + [8])
    print(f"\n{'mutation':<{w}}  {'status':<9} {'uns':<3} {'test s':>6} {'wall s':>6}  killing test / note", file=stream)
    print("-" * (w + 80), file=stream)
    for r in results:
        flag = "U" if r.mutation.unsound else ""
        what = r.killer if r.killer else r.note
        if r.slow_unsound and r.status == "killed":
            what += f"  [unsound: killing test took ≥ {UNSOUND_LIMIT:g} s]"
        print(f"{r.mutation.name:<{w}}  {r.status:<9} {flag:<3} {_fmt_time(r.killer_time):>6} {r.wall:>6.1f}  {what}",
              file=stream)
    counts = {s: sum(r.status == s for r in results) for s in ("killed", "survived", "timeout", "stale", "error", "baseline-fail")}
    tried = sum(r.status not in ("stale", "baseline-fail") for r in results)
    uns = [r for r in results if r.mutation.unsound]
    uns_ok = [r for r in uns if not r.slow_unsound]
    print("-" * (w + 80), file=stream)
    print(f"tried {tried}: killed {counts['killed']}, survived {counts['survived']}, timeout {counts['timeout']}, "
          f"error {counts['error']}; stale {counts['stale']}, baseline-fail {counts['baseline-fail']}", file=stream)
    if uns:
        slowest = max((r.killer_time for r in uns_ok), default=float("nan"))
        print(f"unsound: {len(uns)}, killed by a test < {UNSOUND_LIMIT:g} s: {len(uns_ok)} "
              f"(slowest killing test {_fmt_time(slowest)} s)", file=stream)
    for r in results:
        if r.status == "survived":
            print(f"SURVIVED {r.mutation.name}: {r.mutation.description} ({path_of(r.mutation)})", file=stream)
    ok = all(r.status in ("killed", "timeout") for r in results) and not any(r.slow_unsound for r in results)
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    root: Path
    lock: threading.Lock = field(default_factory=threading.Lock)


def _baseline(worker: _Worker, mutations, timeout, kernel_cache, log, memory_gb) -> set:
    """Test files / ids that fail on the unchanged copy (empty set: all green)."""
    tests = sorted({t for m in mutations for t in m.tests})
    log(f"baseline: {len(tests)} test selections on the unchanged tree ...")
    run = run_tests(worker.root, tests, timeout=max(timeout, 1800.0), kernel_cache=kernel_cache, stop_first=False,
                    memory_gb=memory_gb)
    if run.timed_out:
        raise SystemExit("the baseline run timed out")
    if run.rc not in (0, 1):
        raise SystemExit(f"the baseline run could not run (pytest exit {run.rc}):\n{run.output}")
    log(f"baseline: {run.wall:.0f} s, {len(run.failures)} failing")
    return {name for name, _, _ in run.failures}


def _selection_hits(mutation: Mutation, failing: set) -> list:
    """Failing baseline tests (or modules, "path (collection)") that belong to the mutation's selection."""
    hits = []
    for name in failing:
        path, _, func = name.removesuffix(" (collection)").partition("::")
        for sel in mutation.tests:
            sp, _, sf = sel.partition("::")
            if sp == path and (not sf or not func or func == sf or func.startswith(sf + "[")):
                hits.append(name)
    return hits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--check", action="store_true", help="only check that no snippet is stale")
    ap.add_argument("--only", action="append", metavar="NAME", help="glob(s) of mutation names (repeatable, comma-separated)")
    ap.add_argument("--jobs", type=int, default=1, help="mutations run in parallel, each in its own copy (default 1)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds per mutation (default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--memory-gb", type=float, default=DEFAULT_MEMORY_GB,
                    help=f"heap limit of each test process (default {DEFAULT_MEMORY_GB:g} GB)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run of the selections on the unchanged tree")
    ap.add_argument("--rev", help="test this commit (git archive) instead of the working tree")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies (their paths are printed)")
    ap.add_argument("--workdir", help="parent directory of the copies (default: the system temp dir)")
    args = ap.parse_args(argv)

    chosen = select(args.only)
    if args.list:
        for m in chosen:
            print(f"{m.name:<34} {'U' if m.unsound else ' '} {'#17' if m.row17 else '   '} {path_of(m):<24} {m.description}")
        print(f"{len(chosen)} mutations ({sum(m.unsound for m in chosen)} unsound, {sum(m.row17 for m in chosen)} rows of issue #17)")
        return 0

    log = lambda s: print(s, flush=True)  # noqa: E731

    def _interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM (and SIGINT even where a background shell ignores it) stops the run cleanly: the test
    # processes are killed, the copies restored and removed
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if args.check or args.rev is None:
        bad = stale(chosen)
        for name, why in bad.items():
            log(f"STALE {name}: {why}")
        if args.check:
            log(f"{len(chosen)} mutations, {len(bad)} stale")
            return 1 if bad else 0

    jobs = max(1, int(args.jobs))
    base = Path(tempfile.mkdtemp(prefix="bea-mutate-", dir=args.workdir))
    kernel_cache = base / "kernels"
    results: dict[str, Result] = {}
    interrupted = False
    try:
        log(f"copies under {base}")
        workers = [_Worker(make_copy(base / f"tree{i}", rev=args.rev)) for i in range(jobs)]
        bad = stale(chosen, workers[0].root)
        for m in chosen:
            if m.name in bad:
                results[m.name] = Result(m, "stale", note=bad[m.name])
        todo = [m for m in chosen if m.name not in bad]
        failing = set() if args.no_baseline or not todo else _baseline(workers[0], todo, args.timeout, kernel_cache, log,
                                                                       args.memory_gb)
        broken = {f for f in failing if f.endswith(" (collection)")}
        deselect = sorted(failing - broken)
        for node in deselect:
            log(f"baseline: {node} fails on the unchanged tree: deselected from every mutation's run")
        runnable = []
        for m in todo:
            hits = _selection_hits(m, broken)
            if hits:
                results[m.name] = Result(m, "baseline-fail", note=f"cannot be collected unmutated: {hits[0]}")
            else:
                runnable.append(m)

        free = list(workers)
        free_lock = threading.Condition()

        def one(m: Mutation) -> Result:
            with free_lock:
                while not free:
                    free_lock.wait()
                w = free.pop()
            try:
                with _Applied(w.root, m):
                    run = run_tests(w.root, m.tests, timeout=args.timeout, kernel_cache=kernel_cache,
                                    memory_gb=args.memory_gb, deselect=deselect)
                if _STOPPING.is_set():
                    raise KeyboardInterrupt
                res = judge(m, run)
                log(f"  {m.name:<34} {res.status:<9} {_fmt_time(res.killer_time):>6} s  {res.killer or res.note}")
                return res
            finally:
                with free_lock:
                    free.append(w)
                    free_lock.notify()

        log(f"running {len(runnable)} mutations with {jobs} job(s), timeout {args.timeout:g} s each")
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            for res in pool.map(one, runnable):
                results[res.mutation.name] = res
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            _kill_running()  # the threads then restore their copies and return
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: the working tree was never touched; partial results follow")
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    ordered = [results[m.name] for m in chosen if m.name in results]
    status = report(ordered)
    return 130 if interrupted else status


if __name__ == "__main__":
    sys.exit(main())
