"""rsfast.distributions.Poisson and Binomial (slot laws "poisson" and "binomial",
csrc/ops/slot_sample/laws/discrete.h): chi-square goodness of fit against scipy's pmf in every
regime of the samplers (inversion, PTRS / BTRS, the p > 1/2 mirror, degenerate parameters),
batched parameters, agreement with the torch twin, determinism in the seed and across thread
counts, moments and log_prob against torch.distributions, invalid parameters, and a negative
control: slightly wrong laws fail the same chi-square."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, SEED, digest, gen

import rsfast
from rsfast import ops, reference
from rsfast.distributions import Binomial, Poisson

pytestmark = pytest.mark.timeout(120)


N = 200_000  # samples per goodness-of-fit case

RATES = [0.0, 1e-3, 0.5, 3.0, 9.9, 10.0, 50.0, 1e4, 1e7]
BINOMIALS = [
    (1, 0.3),
    (10, 0.5),
    (20, 0.02),
    (100, 0.3),
    (1000, 0.97),
    (10**6, 0.4),
    (0, 0.5),
    (5, 0.0),
    (5, 1.0),
]


# ---------------------------------------------------------------- chi-square on counts


def chisq_counts(samples, law) -> float:
    """Chi-square p-value of integer samples against a frozen scipy discrete law: one cell per value
    between the 1e-12 quantiles (outer cells take the tails), adjacent cells pooled until every
    expected count is >= 5."""
    x = np.asarray(samples.detach().cpu().double().numpy()).ravel()
    assert np.all(x == np.floor(x)), "samples must be integers"
    n = x.size
    lo = int(max(law.ppf(1e-12) - 1, 0))
    hi = int(law.isf(1e-12)) + 1
    ks = np.arange(lo, hi + 1)
    probs = law.pmf(ks)
    probs[0] += law.cdf(lo - 1)  # the tails go to the outer cells
    probs[-1] += law.sf(hi)
    obs = np.bincount((np.clip(x, lo, hi) - lo).astype(np.int64), minlength=ks.size).astype(np.float64)
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(obs, probs * n):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o = acc_e = 0.0
    if cells_o:
        cells_o[-1] += acc_o
        cells_e[-1] += acc_e
    else:
        cells_o, cells_e = [acc_o], [acc_e]
    if len(cells_o) < 2:  # one cell holds all the mass: every sample must be in it
        return 1.0 if cells_o[0] == n else 0.0
    e = np.asarray(cells_e)
    return float(st.chisquare(cells_o, e / e.sum() * n).pvalue)


def _exact_in_dtype(value: float, dtype: torch.dtype) -> bool:
    """Whether the law's counts (within 12 sd of the mean) are exact integers in dtype."""
    return dtype == torch.float64 or value < 2**24


# ---------------------------------------------------------------- Poisson: the law


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rate", RATES)
def test_poisson_chisq(rate, dtype):
    d = Poisson(torch.tensor(rate, dtype=dtype))
    x = d.sample((N,), generator=gen(1))
    assert x.shape == (N,) and x.dtype == dtype
    if rate == 0:
        assert bool((x == 0).all())
        return
    assert chisq_counts(x, st.poisson(rate)) > ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n,p", BINOMIALS)
def test_binomial_chisq(n, p, dtype):
    d = Binomial(torch.tensor(float(n), dtype=dtype), torch.tensor(p, dtype=dtype))
    x = d.sample((N,), generator=gen(2))
    assert x.shape == (N,) and x.dtype == dtype
    if n == 0 or p in (0.0, 1.0):
        assert bool((x == n * p).all())  # exact degenerate laws
        return
    assert chisq_counts(x, st.binom(n, p)) > ALPHA


def test_negative_control_wrong_laws_fail():
    """The same chi-square rejects laws off by a little: the rate 0.5 % high, a binomial with the
    right mean but 5 % less variance, p off by 0.005."""
    g = gen(3)
    assert chisq_counts(Poisson(torch.tensor(50.25)).sample((N,), generator=g), st.poisson(50.0)) < ALPHA
    same_mean = Binomial(torch.tensor(1000.0), torch.tensor(0.05)).sample((N,), generator=g)
    assert chisq_counts(same_mean, st.poisson(50.0)) < ALPHA
    assert (
        chisq_counts(Binomial(100, torch.tensor(0.305)).sample((N,), generator=g), st.binom(100, 0.3)) < ALPHA
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_batched_parameters_each_element_its_own_law(dtype):
    """A batch of rates spanning both samplers and a [2, 3] binomial batch (total_count [2, 1],
    probs [3], an int total_count): every column follows its own law."""
    rates = [0.7, 4.0, 12.0, 300.0]
    x = Poisson(torch.tensor(rates, dtype=dtype)).sample((50_000,), generator=gen(4))
    assert x.shape == (50_000, 4)
    for j, r in enumerate(rates):
        assert chisq_counts(x[:, j], st.poisson(r)) > ALPHA, f"rate {r}"
    counts = torch.tensor([[30], [400]])
    probs = torch.tensor([0.1, 0.5, 0.8], dtype=dtype)
    d = Binomial(counts, probs)
    assert d.batch_shape == (2, 3) and d.total_count.dtype == dtype
    y = d.sample((40_000,), generator=gen(5))
    assert y.shape == (40_000, 2, 3)
    for i, n in enumerate((30, 400)):
        for j, p in enumerate((0.1, 0.5, 0.8)):
            assert chisq_counts(y[:, i, j], st.binom(n, p)) > ALPHA, f"n={n} p={p}"


def test_logits_parameterisation():
    d = Binomial(50, logits=torch.tensor([-2.0, 1.5], dtype=torch.float64))
    p = torch.sigmoid(torch.tensor([-2.0, 1.5], dtype=torch.float64))
    torch.testing.assert_close(d.probs, p)
    torch.testing.assert_close(d.logits, torch.tensor([-2.0, 1.5], dtype=torch.float64))
    x = d.sample((50_000,), generator=gen(6))
    for j in range(2):
        assert chisq_counts(x[:, j], st.binom(50, float(p[j]))) > ALPHA
    with pytest.raises(ValueError, match="not both"):
        Binomial(10, probs=0.5, logits=0.0)


# ---------------------------------------------------------------- twin, determinism, threads


def _twin_params(law: str, dtype: torch.dtype) -> list[torch.Tensor]:
    """One batched row per sampler mode of the law."""
    if law == "poisson":
        return [torch.tensor([0.0, 0.2, 6.5, 10.0, 75.0, 2e5], dtype=dtype)]
    n = torch.tensor([0.0, 7.0, 200.0, 60.0, 500.0, 40.0, 1e5], dtype=dtype)
    p = torch.tensor([0.4, 0.3, 0.01, 0.5, 0.9, 1.0, 0.37], dtype=dtype)
    return [n, p]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law", ["poisson", "binomial"])
def test_kernel_matches_twin(law, dtype):
    """Same Philox words, same double arithmetic: the same counts (torch's log/exp stand in for the
    C library's, so a decision could flip only within an ulp of a threshold)."""
    params = _twin_params(law, dtype)
    out, exhausted = ops.slot_sample(law, params, [700], SEED, 5)
    ref, ref_exhausted = reference.slot_sample(law, params, [700], SEED, 5)
    assert int(exhausted) == 0 and int(ref_exhausted) == 0
    assert out.dtype == ref.dtype == dtype
    assert torch.equal(out, ref)


def test_seed_determinism():
    d = Binomial(torch.tensor([3.0, 300.0]), torch.tensor([0.2, 0.6]))
    a = d.sample((10_000,), generator=gen(7))
    b = d.sample((10_000,), generator=gen(7))
    c = d.sample((10_000,), generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    p = Poisson(torch.tensor([2.0, 40.0], dtype=torch.float64))
    assert torch.equal(p.sample((10_000,), generator=gen(9)), p.sample((10_000,), generator=gen(9)))


def test_thread_count_independence():
    """Large batched draws (several chunks, every sampler mode in one batch) with 1 and 2 kernel
    threads (rsfast follows torch.set_num_threads): identical bits."""
    before = torch.get_num_threads()
    try:
        res = {}
        for t in (1, 2):
            torch.set_num_threads(t)
            assert rsfast.build_info()["openmp_threads"] == t
            res[t] = _digests()
    finally:
        torch.set_num_threads(before)
    assert res[1] == res[2]


def _digests() -> dict[str, str]:
    cases = {
        "poisson": [[0.0, 0.4, 7.0, 10.0, 333.0, 1e6]],
        "binomial": [[0.0, 9.0, 100.0, 1000.0, 30.0, 5e5], [0.3, 0.6, 0.3, 0.99, 1.0, 0.5]],
    }
    m = 50_001  # samples per row: several chunks, not a multiple of the chunk or SIMD width
    res = {}
    for law, params in cases.items():
        for dtype in DTYPES:
            ps = [torch.tensor(p, dtype=dtype) for p in params]
            out, exhausted = ops.slot_sample(law, ps, [m], SEED, 4)
            assert int(exhausted) == 0
            res[f"{law}/{dtype}/batched"] = digest(out)
            out, _ = ops.slot_sample(law, [p[2:3] for p in ps], [6 * m], SEED, 5)
            res[f"{law}/{dtype}/single"] = digest(out)
    return res


def test_float32_and_float64_agree_below_resolution():
    """The dtype changes only the uniforms' resolution: the laws are the same (two-sample check on
    the rate-10 boundary, where the sampler switches)."""
    a = Poisson(torch.tensor(10.0)).sample((N,), generator=gen(10))
    b = Poisson(torch.tensor(10.0, dtype=torch.float64)).sample((N,), generator=gen(11))
    ca = np.bincount(a.long().numpy(), minlength=60)[:60]
    cb = np.bincount(b.long().numpy(), minlength=60)[:60]
    keep = (ca + cb) >= 10
    table = np.stack([ca[keep], cb[keep]])
    assert st.chi2_contingency(table).pvalue > ALPHA


# ---------------------------------------------------------------- the torch.distributions surface


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_poisson_moments_and_log_prob_match_torch(dtype):
    rate = torch.tensor([0.0, 0.3, 5.0, 80.0], dtype=dtype)
    ours, ref = Poisson(rate), torch.distributions.Poisson(rate)
    assert ours.batch_shape == ref.batch_shape and ours.support is ref.support
    torch.testing.assert_close(ours.mean, ref.mean)
    torch.testing.assert_close(ours.variance, ref.variance)
    torch.testing.assert_close(ours.mode, ref.mode)
    v = torch.tensor([[0.0], [1.0], [4.0], [77.0]], dtype=dtype)
    torch.testing.assert_close(ours.log_prob(v), ref.log_prob(v))
    x = ours.sample((100_000,), generator=gen(12))
    torch.testing.assert_close(
        x.double().mean(0), rate.double(), rtol=0, atol=5 * float(rate.max().sqrt()) / 316
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binomial_moments_and_log_prob_match_torch(dtype):
    n = torch.tensor([0.0, 1.0, 12.0, 300.0, 50.0], dtype=dtype)
    p = torch.tensor([0.5, 0.3, 0.0, 0.45, 1.0], dtype=dtype)
    ours, ref = Binomial(n, p), torch.distributions.Binomial(n, p)
    assert ours.batch_shape == ref.batch_shape
    torch.testing.assert_close(ours.mean, ref.mean)
    torch.testing.assert_close(ours.variance, ref.variance)
    torch.testing.assert_close(ours.mode, ref.mode)
    v = torch.tensor([0.0, 1.0, 0.0, 140.0, 50.0], dtype=dtype)
    torch.testing.assert_close(ours.log_prob(v), ref.log_prob(v))
    # Impossible values: -inf exactly where torch (which clamps p away from 0 and 1) is finite.
    v2 = torch.tensor([0.0, 0.0, 3.0, 10.0, 49.0], dtype=dtype)
    lp = ours.log_prob(v2)
    assert lp[2] == -math.inf and lp[4] == -math.inf
    torch.testing.assert_close(lp[:2], ref.log_prob(v2)[:2])
    torch.testing.assert_close(lp[3], ref.log_prob(v2)[3])
    assert ours.support.check(torch.tensor([0.0, 1.0, 0.0, 300.0, 50.0], dtype=dtype)).all()
    x = ours.sample((50_000,), generator=gen(13))
    assert bool(((x >= 0) & (x <= n)).all())


def test_expand_and_sample_shapes():
    d = Poisson(torch.tensor([1.0, 20.0])).expand((3, 2))
    assert d.batch_shape == (3, 2) and d.sample((4,), generator=gen(1)).shape == (4, 3, 2)
    b = Binomial(10, 0.5).expand((5,))
    x = b.sample((2, 3), generator=gen(1))
    assert x.shape == (2, 3, 5) and b.sample(generator=gen(1)).shape == (5,)
    assert Poisson(3.0).sample(generator=gen(1)).shape == ()


# ---------------------------------------------------------------- invalid parameters


@pytest.mark.parametrize("rate", [-1.0, math.nan, math.inf])
def test_poisson_invalid_rate(rate):
    if rate == math.inf:  # torch's constraint (nonnegative) admits inf: caught at sample
        with pytest.raises(ValueError, match="rate"):
            Poisson(torch.tensor([1.0, rate])).sample()
    else:
        with pytest.raises(ValueError, match="rate"):
            Poisson(torch.tensor([1.0, rate]))
    Poisson(torch.tensor([1.0, rate]), validate_args=False)  # torch's contract: no check when off
    d = Poisson(torch.tensor([1.0, 2.0]))
    d.rate[1] = rate  # mutated after construction: caught at sample
    with pytest.raises(ValueError, match="rate"):
        d.sample((3,))


@pytest.mark.parametrize(
    "n,p,name",
    [(-1.0, 0.5, "total_count"), (2.5, 0.5, "total_count"), (math.nan, 0.5, "total_count"),
     (math.inf, 0.5, "total_count"), (5.0, 1.5, "probs"), (5.0, -0.1, "probs"), (5.0, math.nan, "probs")],
)  # fmt: skip
def test_binomial_invalid_parameters(n, p, name):
    with pytest.raises(ValueError, match=name):
        Binomial(torch.tensor(n), torch.tensor(p))
    d = Binomial(torch.tensor([4.0]), torch.tensor([0.5]))
    if name == "total_count":
        d.total_count[0] = n
    else:
        d.probs[0] = p
    with pytest.raises(ValueError, match=name):
        d.sample((2,))
    with pytest.raises(ValueError, match=name):
        ops.slot_sample("binomial", [torch.tensor([n]), torch.tensor([p])], [2], SEED, 0)


def test_binomial_invalid_logits_and_counts():
    with pytest.raises(ValueError, match="logits"):
        Binomial(3, logits=torch.tensor(math.nan))
    d = Binomial(torch.tensor(2**24 + 1), torch.tensor(0.5, dtype=torch.float64))
    assert d.total_count.item() == 2**24 + 1


# ---------------------------------------------------------------- the op


@pytest.mark.parametrize("law", ["poisson", "binomial"])
def test_opcheck(law):
    params = _twin_params(law, torch.float32)
    torch.library.opcheck(ops.slot_sample_op, (law, params, [5], SEED, 1))
