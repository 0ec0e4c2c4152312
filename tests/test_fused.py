"""The fused kernel (ops.fused_sample, rsfast.sample with an rsfast.targets.MixtureNormal and a built-in
proposal) and the target itself: exactness against exact mixture draws (KS per coordinate, chi-square on
mode membership) for every proposal kind, D = 1, 2, K = 1..4, float32 and float64; the same law as the
generic path; the number of tries; agreement with the torch twin; determinism across seeds, thread
counts and instruction sets; overweight counting; the bound; bad inputs; opcheck."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, SEED, TESTS_DIR, _child_env, gen, np64

import rsfast
from rsfast import ops, proposals, targets
from rsfast import reference as R

pytestmark = pytest.mark.timeout(120)

KINDS = ["normal", "uniform", "mixture_normal"]
N = 4000


# ---------------------------------------------------------------- problems


def make_target(k: int, d: int, dtype=torch.float64, seed: int = 0) -> targets.MixtureNormal:
    """K components on R^D, well separated enough that mode membership is informative."""
    g = gen(100 + 10 * k + d + seed)
    logits = torch.randn(k, generator=g, dtype=torch.float64) * 0.5
    loc = torch.randn(k, d, generator=g, dtype=torch.float64) * 2.5
    scale = torch.rand(k, d, generator=g, dtype=torch.float64) * 0.5 + 0.4
    return targets.MixtureNormal(logits.to(dtype), loc.to(dtype), scale.to(dtype))


def make_proposal(kind: str, t: targets.MixtureNormal) -> proposals.Proposal:
    loc, scale = t.loc.double(), t.scale.double()
    if kind == "normal":
        m = t.mean.double()
        s = ((loc - m).abs() + 2 * scale).max(0).values
        return proposals.Normal(m.to(t.dtype), s.to(t.dtype))
    if kind == "uniform":
        return proposals.Uniform(
            (loc - 9 * scale).min(0).values.to(t.dtype), (loc + 9 * scale).max(0).values.to(t.dtype)
        )
    return proposals.MixtureNormal(t.logits, t.loc, (1.3 * scale).to(t.dtype))


def _sup_normal_ratio(mu, sd, m, s) -> torch.Tensor:
    """sup_x log N(x; mu, sd) - log N(x; m, s) per coordinate (s > sd), float64."""
    return torch.log(s / sd) + (mu - m) ** 2 / (2 * (s**2 - sd**2))


def envelope(t: targets.MixtureNormal, q: proposals.Proposal) -> float:
    """A valid log M for p = t, q in closed form: p / q <= sum_k w_k sup (N_k / q) (a sum of component
    bounds), plus 1e-3 against float32 rounding where the bound is tight (K = 1)."""
    logw = torch.log_softmax(t.logits.double(), 0)
    loc, scale = t.loc.double(), t.scale.double()
    if isinstance(q, proposals.Normal):
        per = _sup_normal_ratio(loc, scale, q.loc.double(), q.scale.double()).sum(1)
    elif isinstance(q, proposals.Uniform):
        vol = torch.log(q.high.double() - q.low.double()).sum()
        per = vol - torch.log(scale).sum(1) - 0.5 * t.dim * math.log(2 * math.pi)
    else:  # component k against proposal component k (same loc, scale 1.3x, same weight)
        qlogw = torch.log_softmax(q.logits.double(), 0)
        per = _sup_normal_ratio(loc, scale, q.loc.double(), q.scale.double()).sum(1) - qlogw
    return float(torch.logsumexp(logw + per, 0)) + 1e-3


def marginal_cdf(t: targets.MixtureNormal, d: int):
    w = np64(t.weights)
    mu, sd = np64(t.loc[:, d]), np64(t.scale[:, d])
    return lambda x: (w * st.norm.cdf((np.asarray(x)[..., None] - mu) / sd)).sum(-1)


def labels(t: targets.MixtureNormal, x: torch.Tensor) -> np.ndarray:
    """The component of largest posterior weight at each row of x (mode membership)."""
    x = x.double()
    z = (x.unsqueeze(1) - t.loc.double()) / t.scale.double()
    post = (
        torch.log_softmax(t.logits.double(), 0) - 0.5 * (z * z).sum(-1) - torch.log(t.scale.double()).sum(-1)
    )
    return post.argmax(-1).numpy()


def membership_p(t: targets.MixtureNormal, a: torch.Tensor, b: torch.Tensor) -> float:
    """Chi-square contingency p-value: do samples a and b fall in the K modes of t in the same proportions?"""
    k = t.num_components
    ca = np.bincount(labels(t, a), minlength=k)
    cb = np.bincount(labels(t, b), minlength=k)
    keep = (ca + cb) > 0
    table = np.stack([ca[keep], cb[keep]])
    if table.shape[1] < 2:
        return 1.0
    return float(st.chi2_contingency(table).pvalue)


def exact(t: targets.MixtureNormal, n: int, seed: int = 7) -> torch.Tensor:
    return t.sample((n,), generator=gen(seed))


def fused_run(t, q, n=N, seed=1, **kw) -> rsfast.SampleResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error", rsfast.OverweightWarning)
        res = rsfast.sample(t, q, n, log_M=kw.pop("log_M", envelope(t, q)), generator=gen(seed), **kw)
    assert res.num_overweight == 0 and res.max_log_ratio <= res.log_M
    return res


# ---------------------------------------------------------------- the target


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_target_log_prob_matches_scipy_and_normalises(dtype):
    t = make_target(3, 2, dtype)
    x = torch.randn(50, 2, generator=gen(3), dtype=torch.float64).to(dtype) * 3
    want = np.log(
        sum(
            float(w) * st.multivariate_normal(np64(m), np.diag(np64(s) ** 2)).pdf(np64(x))
            for w, m, s in zip(t.weights, t.loc, t.scale)
        )
    )
    got = t(x)
    assert got.shape == (50,) and got.dtype == dtype
    np.testing.assert_allclose(np64(got), want, rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=1e-5)
    # a 1-D mixture integrates to 1
    t1 = make_target(2, 1, torch.float64)
    g = torch.linspace(-30, 30, 600_001, dtype=torch.float64).unsqueeze(1)
    assert abs(float(torch.exp(t1(g)).sum()) * 1e-4 - 1) < 1e-6


def test_target_is_differentiable():
    t = make_target(2, 2, torch.float64)
    t.loc.requires_grad_(True)
    x = torch.randn(5, 2, generator=gen(4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: t(x), (x,))
    t(x).sum().backward()
    assert t.loc.grad is not None and bool(torch.isfinite(t.loc.grad).all())


def test_target_sample_mean_variance():
    t = make_target(3, 2, torch.float64)
    x = exact(t, 200_000)
    assert x.shape == (200_000, 2)
    se = (t.variance / 200_000).sqrt()
    assert bool(((x.mean(0) - t.mean).abs() < 5 * se).all())
    for d in range(2):
        assert st.kstest(np64(x[:, d]), marginal_cdf(t, d)).pvalue > ALPHA
    assert t.sample((3, 4)).shape == (3, 4, 2) and t.dim == 2 and t.num_components == 3


@pytest.mark.parametrize(
    "kwargs,exc,word",
    [
        (dict(logits=[0.0], loc=[1.0], scale=[1.0]), ValueError, "loc"),
        (dict(logits=[0.0, 0.0], loc=[[1.0]], scale=[[1.0]]), ValueError, "logits"),
        (dict(logits=[0.0], loc=[[1.0, 2.0]], scale=[[1.0]]), ValueError, "scale"),
        (dict(logits=[0.0], loc=[[1.0]], scale=[[0.0]]), ValueError, "scale"),
        (dict(logits=[0.0], loc=[[1.0]], scale=[[-1.0]]), ValueError, "scale"),
        (dict(logits=[math.nan], loc=[[1.0]], scale=[[1.0]]), ValueError, "logits"),
        (dict(logits=[0.0], loc=[[math.inf]], scale=[[1.0]]), ValueError, "loc"),
        (dict(logits=[0.0], loc=[["a"]], scale=[[1.0]]), TypeError, "loc"),
        (dict(logits=[0.0], loc=[[1.0]], scale=True), TypeError, "scale"),
        (dict(logits=[0.0], loc=torch.ones(1, 1, dtype=torch.complex64), scale=[[1.0]]), TypeError, "loc"),
        (
            dict(logits=torch.zeros(1, dtype=torch.float64), loc=torch.ones(1, 1), scale=[[1.0]]),
            ValueError,
            "logits",
        ),
        (dict(logits=[0.0], loc=torch.ones(1, 1, dtype=torch.float16), scale=[[1.0]]), TypeError, "loc"),
    ],
)
def test_target_bad_parameters(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        targets.MixtureNormal(**kwargs)


def test_target_bad_x():
    t = make_target(2, 2, torch.float32)
    with pytest.raises(ValueError, match="x"):
        t(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="x"):
        t([[0.0, 0.0]])


# ---------------------------------------------------------------- exactness of the fused path


CASES = [(kind, d, k, dtype) for kind in KINDS for d in (1, 2) for k in (1, 2, 3, 4) for dtype in DTYPES]
# K > 4 or D > 4: the kernel's general mixture loop instead of the unrolled one.
# (A wide normal proposal over 6 modes in D = 5 accepts ~1e-5: D = 5 is left to the mixture proposal.)
_GENERAL = [("normal", 2, 6), ("uniform", 2, 5), ("mixture_normal", 5, 6), ("mixture_normal", 2, 7)]
CASES += [(kind, d, k, dtype) for kind, d, k in _GENERAL for dtype in DTYPES]


@pytest.mark.parametrize("kind,d,k,dtype", CASES, ids=lambda v: str(v).replace("torch.", ""))
def test_fused_matches_exact_law(kind, d, k, dtype):
    """KS of each coordinate against the exact marginal cdf and chi-square of mode membership against
    exact mixture draws; the run uses the fused kernel (one round)."""
    t = make_target(k, d, dtype)
    q = make_proposal(kind, t)
    res = fused_run(t, q, seed=k + 10 * d)
    x = res.samples
    assert res.num_rounds == 1 and x.shape == (N, d) and x.dtype == dtype
    assert bool(torch.isfinite(x).all())
    for j in range(d):
        assert st.kstest(np64(x[:, j]), marginal_cdf(t, j)).pvalue > ALPHA, f"coordinate {j}"
    assert membership_p(t, x, exact(t, 10 * N)) > ALPHA


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fused_matches_generic_path(kind, dtype):
    """Two-sample KS per coordinate and mode membership between the fused kernel and the generic
    engine (fused=False: the target is an ordinary torch log density there)."""
    t = make_target(3, 2, dtype, seed=1)
    q = make_proposal(kind, t)
    a = fused_run(t, q, seed=2)
    b = fused_run(t, q, seed=3, fused=False)
    assert a.num_rounds == 1 and b.num_rounds > 1
    for j in range(2):
        assert st.ks_2samp(np64(a.samples[:, j]), np64(b.samples[:, j])).pvalue > ALPHA
    assert membership_p(t, a.samples, b.samples) > ALPHA


def test_number_of_tries_is_negative_binomial():
    """With the exact envelope of the benchmark's bimodal target each try accepts with probability
    1/M: the tries beyond n are NegBin(n, 1/M) (two-sided p-value), and the acceptance rate is n / tries."""
    from rsfast.bench import BIMODAL_LOG_M

    t = targets.MixtureNormal(
        torch.zeros(2), torch.tensor([[2.0, 2.0], [-2.0, -2.0]]), torch.full((2, 2), 0.5)
    )
    q = proposals.Normal(torch.zeros(2), torch.full((2,), 3.0))
    log_M = BIMODAL_LOG_M - math.log(math.pi)  # the bench envelope, for the normalised density
    res = fused_run(t, q, n=20_000, seed=4, log_M=log_M)
    p = math.exp(-log_M)
    fails = res.num_proposals - 20_000
    dist = st.nbinom(20_000, p)
    assert 2 * min(dist.cdf(fails), dist.sf(fails - 1)) > ALPHA
    assert res.num_accepted == 20_000 and res.acceptance_rate == 20_000 / res.num_proposals
    # negative control: the same test rejects an acceptance 3 % off
    dist_wrong = st.nbinom(20_000, p * 1.03)
    assert 2 * min(dist_wrong.cdf(fails), dist_wrong.sf(fails - 1)) < ALPHA


def test_negative_control_wrong_law_is_rejected():
    """The checks above have power at N: samples of the right target fail against a target with other
    weights (chi-square) or shifted locations (KS)."""
    t = make_target(2, 2, torch.float32)
    res = fused_run(t, make_proposal("normal", t), seed=5)
    wrong_w = targets.MixtureNormal(t.logits + torch.tensor([0.0, 0.5]), t.loc, t.scale)
    assert membership_p(t, res.samples, exact(wrong_w, 10 * N)) < ALPHA
    shifted = targets.MixtureNormal(t.logits, t.loc + 0.3, t.scale)
    assert st.kstest(np64(res.samples[:, 0]), marginal_cdf(shifted, 0)).pvalue < ALPHA


# ---------------------------------------------------------------- the torch twin


# (kind, K, D): K > 4 or D > 4 runs the kernel's general mixture loop instead of the unrolled one; a
# uniform box in D = 5 accepts too rarely for the twin's try rounds, so it is left to the normal proposals.
_TWIN_SHAPES = [(kind, k, d) for kind in KINDS for k, d in [(3, 1), (3, 3), (6, 2)]] + [
    ("normal", 5, 5),
    ("mixture_normal", 5, 5),
    ("mixture_normal", 3, 6),
]


@pytest.mark.parametrize("kind,k,d", _TWIN_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(kind, dtype, k, d):
    """Same streams as reference.fused_sample: rows, counts (overweight included: log M is set too
    small on purpose) and the largest log ratio agree up to float rounding; K > 4 or D > 4 runs the
    kernel's general (non-unrolled) mixture loop."""
    t0 = make_target(k, d, dtype, seed=2)
    t = targets.MixtureNormal(t0.logits, 0.4 * t0.loc, 1.5 * t0.scale)  # overlapping components
    sd = t.variance.sqrt()
    q = {  # tight proposals (the law is not checked here), so that the twin needs few try rounds
        "normal": lambda: proposals.Normal(t.mean, 1.2 * sd),
        "uniform": lambda: proposals.Uniform(t.mean - 3 * sd, t.mean + 3 * sd),
        "mixture_normal": lambda: make_proposal(kind, t),
    }[kind]()
    seen = float(
        ops.fused_sample(kind, q.params(), t.logits, t.loc, t.scale, 300, envelope(t, q), SEED, 8)[2]
    )
    args = (kind, q.params(), t.logits, t.loc, t.scale, 300, seen - 0.3, SEED, 9)
    x, c, mx = ops.fused_sample(*args)
    rx, rc, rmx = R.fused_sample(*args)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    same = torch.isclose(x, rx, **tol).all(1)
    assert float(same.float().mean()) >= (0.99 if dtype == torch.float32 else 1.0)
    assert int(c[0]) == int(rc[0]) == 300 and int(c[5]) == int(rc[5]) == 0
    assert abs(int(c[4]) - int(rc[4])) <= 0.01 * int(rc[4])
    assert int(c[2]) > 0 and abs(int(c[2]) - int(rc[2])) <= max(2, 0.01 * int(rc[2]))
    assert abs(float(mx) - float(rmx)) <= 1e-3 * max(1.0, abs(float(rmx)))


def test_layout_words_and_blocks():
    """Words per try (fused_sample/core.h): component, values, accept, in 4-word blocks."""
    assert R.fused_layout("normal", 2, torch.float32) == (0, 2, 1)  # 2 normals + accept: one block
    assert R.fused_layout("mixture_normal", 2, torch.float32) == (1, 2, 1)
    assert R.fused_layout("uniform", 4, torch.float32) == (0, 4, 2)
    assert R.fused_layout("normal", 3, torch.float64) == (0, 8, 3)
    assert R.fused_layout("mixture_normal", 1, torch.float64) == (2, 4, 2)


# ---------------------------------------------------------------- determinism


def _fused_args(kind="normal", dtype=torch.float32, d=2, n=5000):
    t = make_target(2, d, dtype)
    q = make_proposal(kind, t)
    return (kind, q.params(), t.logits, t.loc, t.scale, n, envelope(t, q))


def test_deterministic_in_seed_and_offset():
    args = _fused_args()
    a = ops.fused_sample(*args, SEED, 3)
    b = ops.fused_sample(*args, SEED, 3)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[0], ops.fused_sample(*args, SEED + 1, 3)[0])
    assert not torch.equal(a[0], ops.fused_sample(*args, SEED, 4)[0])
    # row i does not depend on n: the first rows of a longer call are the same rows
    longer = ops.fused_sample(*args[:5], 7000, args[6], SEED, 3)[0]
    assert torch.equal(longer[:5000], a[0])


def test_same_result_for_1_and_2_threads_in_process():
    args = _fused_args(n=50_000)
    torch.set_num_threads(1)
    a = ops.fused_sample(*args, SEED, 0)
    torch.set_num_threads(2)
    b = ops.fused_sample(*args, SEED, 0)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_thread_count_and_isa_independence():
    """Child interpreters with OMP_NUM_THREADS = 1 and 2 (AVX2 build) and 2 (baseline build) give the
    same bits (tests/_fused_probe.py)."""
    runs = {"t1": (1, None), "t2": (2, None), "base": (2, "baseline")}
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(TESTS_DIR / "_fused_probe.py")],
            env=_child_env(threads, isa),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (threads, isa) in runs.items()
    }
    out = {}
    try:
        for name, proc in procs.items():
            o, e = proc.communicate(timeout=110)
            assert proc.returncode == 0, e[-3000:]
            out[name] = json.loads(o.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert out["t1"]["threads"] == 1 and out["t2"]["threads"] == 2
    assert out["base"]["isa"] == "baseline"
    for key in out["t1"]["digests"]:
        assert out["t1"]["digests"][key] == out["t2"]["digests"][key] == out["base"]["digests"][key], key


# ---------------------------------------------------------------- rsfast.sample on the fused path


def bimodal():
    t = targets.MixtureNormal(
        torch.zeros(2), torch.tensor([[2.0, 2.0], [-2.0, -2.0]]), torch.full((2, 2), 0.5)
    )
    return t, proposals.Normal(torch.zeros(2), torch.full((2,), 3.0))


def test_sample_dispatch_and_fields(monkeypatch):
    import importlib

    bridge = importlib.import_module("rsfast.ops.fused_sample")
    calls = []
    real = bridge.fused_sample_into
    monkeypatch.setattr(bridge, "fused_sample_into", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    t, q = bimodal()
    res = rsfast.sample(t, q, 3000, log_M=3.35, generator=gen(0))
    assert len(calls) == 1 and res.num_rounds == 1 and res.num_accepted == 3000
    assert res.num_proposals > 3000 and res.acceptance_rate == 3000 / res.num_proposals
    assert res.num_overweight == res.num_nan == 0 and res.max_log_ratio <= 3.35 and res.setup_seconds < 0.05
    # the same call again gives the same samples; fused=False gives the generic path, bit for bit
    assert torch.equal(rsfast.sample(t, q, 3000, log_M=3.35, generator=gen(0)).samples, res.samples)
    g1 = rsfast.sample(t, q, 3000, log_M=3.35, generator=gen(0), fused=False)
    g2 = rsfast.sample(lambda x: t(x), q, 3000, log_M=3.35, generator=gen(0))
    assert len(calls) == 2 and torch.equal(g1.samples, g2.samples)
    # no fused path for another dtype, dimension or proposal type: the generic path runs
    rsfast.sample(t, proposals.Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2) * 3), 100, log_M=3.5)
    rsfast.sample(t, torch.distributions.Normal(torch.zeros(2), torch.full((2,), 3.0)), 100, log_M=3.5)
    assert len(calls) == 2
    empty = rsfast.sample(t, q, 0, log_M=3.35)
    assert empty.samples.shape == (0, 2) and empty.num_proposals == 0 and empty.num_rounds == 0


def test_sample_auto_log_M_on_the_fused_path():
    t, q = bimodal()
    res = rsfast.sample(t, q, 5000, log_M="auto", generator=gen(8))
    assert res.num_rounds == 1 and res.setup_seconds > 0
    assert res.log_M == rsfast.estimate_log_M(t, q, generator=gen(8))
    assert res.num_overweight == 0
    assert st.kstest(np64(res.samples[:, 0]), marginal_cdf(t, 0)).pvalue > ALPHA


def test_overweight_counted_warned_and_raised():
    t, q = bimodal()
    log_M = 2.5  # the true sup of log p - log q is 3.3475
    with pytest.warns(rsfast.OverweightWarning, match="log_M"):
        res = rsfast.sample(t, q, 1000, log_M=log_M, generator=gen(1))
    assert res.num_overweight > 0 and res.max_log_ratio > log_M
    seed = rsfast._random.draw_seed(gen(1))
    _, c, mx = R.fused_sample("normal", q.params(), t.logits, t.loc, t.scale, 1000, log_M, seed, 0)
    assert abs(res.num_overweight - int(c[2])) <= 2 and abs(res.max_log_ratio - float(mx)) < 1e-4
    with pytest.raises(rsfast.SamplingError, match="envelope"):
        rsfast.sample(t, q, 1000, log_M=log_M, generator=gen(1), on_overweight="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rsfast.sample(t, q, 1000, log_M=log_M, generator=gen(1), on_overweight="ignore")


def test_bound_raises_sampling_error():
    t, q = bimodal()
    with pytest.raises(rsfast.SamplingError) as info:
        rsfast.sample(t, q, 5000, log_M=3.35, generator=gen(2), max_proposals=20_000)
    err = info.value
    assert err.num_proposals >= 20_000 and 0 < err.acceptance_rate < 0.1
    # a target the proposal (almost) never reaches: every row would loop forever without the bound
    far = targets.MixtureNormal(torch.zeros(1), torch.full((1, 2), 40.0), torch.full((1, 2), 0.1))
    box = proposals.Uniform(torch.zeros(2), torch.ones(2))
    with pytest.raises(rsfast.SamplingError) as info:
        rsfast.sample(far, box, 100, log_M=0.0, max_proposals=2_000_000)
    assert info.value.num_accepted == 0 and info.value.num_proposals >= 2_000_000
    _, c, _ = ops.fused_sample(
        "uniform", box.params(), far.logits, far.loc, far.scale, 100, 0.0, 1, 0, 50_000
    )
    assert int(c[5]) == 1 and int(c[0]) == 0 and int(c[4]) > 50_000


# ---------------------------------------------------------------- bad inputs and the op


def test_op_bad_inputs():
    kind, params, logits, loc, scale, n, log_M = _fused_args()
    good = dict(
        kind=kind, params=params, logits=logits, loc=loc, scale=scale, n=n, log_M=log_M, seed=1, offset=0
    )
    cases = [
        (dict(kind=1), TypeError, "kind"),
        (dict(params=params[0]), TypeError, "params"),
        (dict(logits=[0.0, 0.0]), TypeError, "logits"),
        (dict(n=2.0), TypeError, "n"),
        (dict(n=-1), ValueError, "n"),
        (dict(log_M="auto"), TypeError, "log_M"),
        (dict(log_M=math.nan), ValueError, "log_M"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(offset=2**32), ValueError, "offset"),
        (dict(loc=loc.double()), ValueError, "loc"),
        (dict(loc=loc[:, :1], scale=scale[:, :1]), ValueError, "D"),
        (dict(logits=logits[:1]), ValueError, "logits"),
        (dict(scale=-scale), ValueError, "scale"),
        (dict(loc=loc + math.inf), ValueError, "loc"),
        (dict(kind="gamma"), ValueError, "kind"),
    ]
    for change, exc, word in cases:
        with pytest.raises(exc, match=word):
            ops.fused_sample(**{**good, **change})
    with pytest.raises(ValueError, match="max_proposals"):
        ops.fused_sample(**good, max_proposals=0)
    t, q = bimodal()
    with pytest.raises(TypeError, match="fused"):
        rsfast.sample(t, q, 10, log_M=3.5, fused=1)
    with pytest.raises(ValueError, match="n"):
        rsfast.sample(t, q, -1, log_M=3.5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_opcheck(kind, dtype):
    t = make_target(2, 3, dtype)
    q = make_proposal(kind, t)
    args = (kind, q.params(), t.logits, t.loc, t.scale, 97, envelope(t, q), SEED, 5, 2**40)
    torch.library.opcheck(ops.fused_sample_op, args)


def test_opcheck_empty():
    args = _fused_args(n=0)
    torch.library.opcheck(ops.fused_sample_op, (*args, SEED, 0, 2**40))


def test_progress_bar_on_the_fused_path():
    pytest.importorskip("tqdm")
    t, q = bimodal()
    res = rsfast.sample(t, q, 500, log_M=3.35, generator=gen(3), progress=True)
    assert res.num_rounds == 1 and res.samples.shape == (500, 2)
