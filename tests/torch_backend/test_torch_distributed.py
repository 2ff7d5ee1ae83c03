"""bea.torch.distributed: a data-parallel loss on a torch.distributed group (gloo, 2 processes).

The contract: with the data set sharded over 2 ranks, the value, gradient, HVPs (both modes), T(v, v),
dense Hessian, Lanczos eigenvalues, GD, the PF trajectory and the certificate equal the one-process
results on the whole data set (to 1e-12 in float64: only the rounding of the sum differs), and are
bitwise identical on both ranks (lockstep). A failure on one rank raises on every rank instead of
leaving the other waiting. One spawn of 2 ranks runs everything (a start costs seconds).
"""

import datetime
import os
import time

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bea  # noqa: E402
import bea.torch as bt  # noqa: E402
from bea.torch.distributed import ShardedLoss, is_replicated, sharded_loss  # noqa: E402

N_SAMPLES = 41  # odd: the shards differ in size (21 + 20), so the weights N_r/N matter
H, STEPS = 0.05, 4


def _problem():
    """A small tanh net (3-6-2, 38 parameters) and a 41-sample classification set, float64."""
    gen = torch.Generator().manual_seed(1234)
    X = torch.randn(N_SAMPLES, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (N_SAMPLES,), generator=gen)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).double()
    return model, X, y


def _sum_sq(out, target):
    return ((out - F.one_hot(target, 2).to(out.dtype)) ** 2).sum()


def _jobs(f, theta0, ssum):
    """Everything a rank (or the single process) computes; f any loss, ssum the 'sum' loss."""
    n = theta0.numel()
    v = torch.randn(n, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    spec = bt.lanczos(f, theta0, k=3, which="both", tol=1e-12)
    cert = bt.certify(f, theta0, H, STEPS, progress=False)
    return {
        "value": f(theta0).detach(),
        "grad": bt.grad(f, theta0),
        "hvp_rev": bt.hvp(f, theta0, v),
        "hvp_fwd": bt.hvp(f, theta0, v, mode="fwd"),
        "tgg": bt.tgg(f, theta0, v),
        "hessian": bt.hessian(f, theta0),
        "lanczos": spec.values,
        "lanczos_n_hvp": torch.tensor(spec.n_hvp),
        "gd": bt.gd(f, theta0, H, STEPS),
        "pf": bt.trajectory(f, theta0, H, 1, flow="pf", k=1, lanczos_max_iter=6),
        "cert_bound": torch.as_tensor(cert.bound),
        "cert_distance": torch.as_tensor(cert.distance),
        "cert_certified": torch.tensor(cert.certified),
        "sum_value": ssum(theta0).detach(),
        "sum_grad": bt.grad(ssum, theta0),
    }


def _rank_main(rank, world, store, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        model, X, y = _problem()
        if rank == 1:  # a different initialisation: the broadcast from rank 0 must override it
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
        f, theta0 = sharded_loss(model, F.cross_entropy, X, y)
        ssum, _ = sharded_loss(model, _sum_sq, X, y, reduction="sum")
        res = _jobs(f, theta0, ssum)
        res["theta0"] = theta0
        res["replicated"] = torch.tensor([is_replicated(v) for v in res.values()])
        res["meta"] = torch.tensor([f.local_size, f.global_size, f.world_size, isinstance(f, ShardedLoss)])
        errors = []
        try:  # one sample cannot be split over two ranks: both ranks raise, neither waits
            sharded_loss(model, F.cross_entropy, X[:1], y[:1])
        except bea.InvalidInputError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        try:  # rank 1 brings an empty shard: it raises its own error, rank 0 hears of it
            n = 0 if rank == 1 else 5
            sharded_loss(model, F.cross_entropy, X[:n], y[:n], sharded=True)
        except bea.BEAError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        try:  # rank 1 builds a wider net: the parameter vectors would not match
            other = torch.nn.Sequential(torch.nn.Linear(3, 6 + rank), torch.nn.Tanh(), torch.nn.Linear(6 + rank, 2)).double()
            sharded_loss(other, F.cross_entropy, X, y)
        except bea.InvalidInputError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        torch.save({"res": res, "errors": errors}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run _rank_main on a 2-process gloo group (file rendezvous, no port to pick) once."""
    import torch.multiprocessing as mp

    tmp = tmp_path_factory.mktemp("gloo")
    ctx = mp.start_processes(_rank_main, args=(2, str(tmp / "store"), str(tmp)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 600
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the 2-rank gloo group did not finish in 600 s")
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def single():
    """The one-process reference: the same computations on the whole data set (one thread, as each
    rank: on a shared 2-core machine more threads only oversubscribe it)."""
    model, X, y = _problem()
    f, theta0 = bt.flat_loss(model, F.cross_entropy, X, y)
    ssum, _ = bt.flat_loss(model, _sum_sq, X, y)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = _jobs(f, theta0, ssum)
    finally:
        torch.set_num_threads(threads)
    res["theta0"] = theta0
    return res


def _close(a, b, tol):
    a, b = a.to(torch.complex128), b.to(torch.complex128)
    return float(torch.max(torch.abs(a - b))) <= tol * max(1.0, float(torch.max(torch.abs(b))))


@pytest.mark.parametrize("key", ["value", "grad", "hvp_rev", "hvp_fwd", "tgg", "hessian", "lanczos", "sum_value", "sum_grad"])
def test_sharded_derivatives_equal_one_process(ranks, single, key):
    """2-rank value, gradient, HVPs, T(v, v), Hessian and Lanczos eigenvalues = one process to 1e-12."""
    for r in ranks:
        assert _close(r["res"][key], single[key], 1e-12), key


@pytest.mark.parametrize("key", ["gd", "pf", "cert_bound", "cert_distance"])
def test_flows_and_certificate_run_unchanged(ranks, single, key):
    """bea.torch.gd, trajectory(flow='pf': Lanczos for u_0 at every field evaluation) and certify on
    the sharded loss follow the one-process runs (same Lanczos iteration count, same verdict) to 1e-9."""
    for r in ranks:
        assert _close(r["res"][key], single[key], 1e-9), key
        assert bool(r["res"]["cert_certified"]) == bool(single["cert_certified"])
        assert int(r["res"]["lanczos_n_hvp"]) == int(single["lanczos_n_hvp"])


def test_ranks_stay_in_lockstep(ranks, single):
    """Every result is bitwise identical on both ranks (is_replicated, and the saved tensors); θ0 is
    rank 0's even though rank 1 built its model differently; shards are 21 + 20 of 41 samples."""
    a, b = ranks[0]["res"], ranks[1]["res"]
    assert bool(a["replicated"].all()) and bool(b["replicated"].all())
    for key in a:
        if key not in ("meta",):
            assert torch.equal(a[key], b[key]), key
    assert torch.equal(a["theta0"], single["theta0"])
    assert a["meta"].tolist() == [21, 41, 2, 1] and b["meta"].tolist() == [20, 41, 2, 1]


def test_a_failure_on_one_rank_raises_on_every_rank(ranks):
    """Too few samples: both ranks raise InvalidInputError; an empty shard on rank 1 only: rank 1
    raises its InvalidInputError, rank 0 a BEAError naming another rank (no deadlock); models of
    different sizes: both ranks raise, naming the sizes."""
    e0, e1 = ranks[0]["errors"], ranks[1]["errors"]
    assert len(e0) == len(e1) == 3
    assert e0[0].startswith("InvalidInputError: 1 samples cannot be split over 2 ranks") and e1[0] == e0[0]
    assert e1[1] == "InvalidInputError: the shard of rank 1 is empty"
    assert e0[1].startswith("BEAError: sharded_loss failed on another rank")
    assert e0[2] == e1[2] and "different numbers of parameters (38 to 44)" in e0[2]


def test_without_a_process_group_it_says_so():
    """sharded_loss outside torch.distributed raises InvalidInputError pointing to init_process_group."""
    if dist.is_initialized():
        pytest.skip("a process group is initialised in this process")
    model, X, y = _problem()
    with pytest.raises(bea.InvalidInputError, match="init_process_group"):
        sharded_loss(model, F.cross_entropy, X, y)
