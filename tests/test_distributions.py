"""rsfast.distributions: every law against scipy (KS at ALPHA with fixed seeds) across parameter
regimes in float32 and float64, batched parameters (each element its own law), determinism,
invalid parameters (construction and sample), log_prob / mean / variance against torch or scipy,
rsample gradients, and a negative control per test family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, binom_p, gen, ks_p, np64

import rsfast
from rsfast.distributions import Beta, Gamma, TruncatedNormal, VonMises

pytestmark = pytest.mark.timeout(120)


INF = math.inf
N = 20_000


# ---------------------------------------------------------------- TruncatedNormal

TN_REGIMES = {
    "[-1,1]": (0.0, 1.0, -1.0, 1.0),
    "[3,inf)": (0.0, 1.0, 3.0, INF),
    "(-inf,-5]": (0.0, 1.0, -INF, -5.0),
    "[8,8.5]": (0.0, 1.0, 8.0, 8.5),
    "[-0.01,0.01]": (0.0, 1.0, -0.01, 0.01),
    "[50,60]": (0.0, 1.0, 50.0, 60.0),
    "[-30,-20] loc 1 scale 2": (1.0, 2.0, -30.0, -20.0),
    "[12,inf) far tail": (0.0, 1.0, 12.0, INF),
    "(-inf,inf) loc 3 scale 0.5": (3.0, 0.5, -INF, INF),
    "[0.2,2.2] shifted": (-1.0, 0.7, 0.2, 2.2),
}


def _scipy_tn(loc, scale, low, high):
    return st.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("regime", list(TN_REGIMES))
def test_truncated_normal_ks(regime, dtype):
    loc, scale, low, high = TN_REGIMES[regime]
    d = TruncatedNormal(*(torch.tensor(v, dtype=dtype) for v in (loc, scale, low, high)))
    x = d.sample((N,), generator=gen(11))
    assert x.dtype == dtype and x.shape == (N,)
    assert bool((x >= low).all() and (x <= high).all())
    ref = _scipy_tn(loc, scale, low, high)
    if regime == "[50,60]" or regime == "[12,inf) far tail":
        # scipy's cdf loses precision this far out; test the excess over low, which is
        # Exp(low)-like, against scipy's (accurate) survival function ratio instead.
        y = np64(x) - low
        p = st.kstest(y, lambda t: -np.expm1(ref.logsf(low + t) - ref.logsf(low))).pvalue
    else:
        p = ks_p(x, ref)
    assert p > ALPHA, p


def test_truncated_normal_negative_control():
    """The same KS test rejects a slightly wrong law (scale 3 % too large) and a wrong proposal
    choice that ignores the truncation (a shifted exponential on [3, inf))."""
    d = TruncatedNormal(0.0, 1.0, 3.0, INF)
    x = d.sample((N,), generator=gen(11))
    assert ks_p(x, _scipy_tn(0.0, 1.03, 3.0, INF)) < ALPHA
    e = 3.0 + torch.empty(N).exponential_(3.0, generator=gen(2))
    assert ks_p(e, _scipy_tn(0.0, 1.0, 3.0, INF)) < ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_truncated_normal_batched_each_element_its_law(dtype):
    rows = [(0.0, 1.0, -1.0, 1.0), (2.0, 0.5, 3.5, INF), (-4.0, 3.0, -INF, -10.0)]
    params = [torch.tensor([r[j] for r in rows], dtype=dtype) for j in range(4)]
    d = TruncatedNormal(*params)
    assert d.batch_shape == (3,)
    x = d.sample((N // 2,), generator=gen(3))
    assert x.shape == (N // 2, 3)
    for j, r in enumerate(rows):
        assert ks_p(x[:, j], _scipy_tn(*r)) > ALPHA, j
    # A wrong column assignment (rows swapped) is rejected by the same test.
    assert ks_p(x[:, 0], _scipy_tn(*rows[1])) < ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_truncated_normal_log_prob_mean_variance_vs_scipy(dtype):
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    for loc, scale, low, high in TN_REGIMES.values():
        d = TruncatedNormal(*(torch.tensor(v, dtype=dtype) for v in (loc, scale, low, high)))
        ref = _scipy_tn(loc, scale, low, high)
        lo_, hi_ = max(low, loc - 60 * scale), min(high, loc + 60 * scale)
        xs = np.linspace(lo_, hi_, 7)
        xs = np.clip(xs, low + 1e-6 * (hi_ - lo_), high - 1e-6 * (hi_ - lo_))
        got = d.log_prob(torch.tensor(xs, dtype=dtype))
        np.testing.assert_allclose(np64(got), ref.logpdf(xs), **tol)
        np.testing.assert_allclose(float(d.mean), ref.mean(), rtol=tol["rtol"] * 10, atol=1e-6)
        np.testing.assert_allclose(
            float(d.variance), ref.var(), rtol=1e-3 if dtype == torch.float32 else 1e-6
        )
    d = TruncatedNormal(0.0, 1.0, -1.0, 1.0, validate_args=False)
    assert d.log_prob(torch.tensor(1.5)) == -INF


def test_truncated_normal_invalid_parameters_at_construction_and_sample():
    with pytest.raises(ValueError, match="scale"):
        TruncatedNormal(0.0, 0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="low must be < high"):
        TruncatedNormal(0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="loc"):
        TruncatedNormal(math.nan, 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="high"):
        TruncatedNormal(0.0, 1.0, -1.0, math.nan)
    d = TruncatedNormal(torch.zeros(2), torch.ones(2), -torch.ones(2), torch.ones(2))
    d.scale[1] = -2.0  # mutated in place after construction
    with pytest.raises(ValueError, match="scale"):
        d.sample((3,))
    d.scale[1] = 1.0
    d.low[0] = 5.0
    with pytest.raises(ValueError, match="low must be < high"):
        d.sample((3,))


def test_determinism_and_generator():
    d = TruncatedNormal(
        torch.zeros(3), torch.ones(3), torch.tensor([-1.0, 2.0, -INF]), torch.tensor([1.0, 4.0, 0.0])
    )
    a = d.sample((1000,), generator=gen(5))
    b = d.sample((1000,), generator=gen(5))
    c = d.sample((1000,), generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(3)
    e = d.sample((10,))
    torch.manual_seed(3)
    assert torch.equal(e, d.sample((10,)))
    with pytest.raises(TypeError, match="generator"):
        d.sample((2,), generator=3)


def test_parameter_dtypes_promote_like_torch():
    d = Gamma(torch.tensor([1.0, 2.0]), torch.tensor(2.0, dtype=torch.float64))
    # torch keeps each parameter's dtype and promotes in arithmetic; samples have the promoted dtype.
    assert d.concentration.dtype == torch.float32 and d.sample((3,)).dtype == torch.float64
    assert d.rsample((3,)).dtype == torch.float64
    e = VonMises(torch.tensor(0), torch.tensor(3))  # integer tensors: the default float dtype
    assert e.sample().dtype == torch.get_default_dtype()


def test_expand_and_shapes():
    d = TruncatedNormal(0.0, 1.0, -1.0, 2.0)
    assert d.batch_shape == () and d.sample().shape == ()
    e = d.expand((4, 2))
    assert e.batch_shape == (4, 2) and e.sample((3,)).shape == (3, 4, 2)
    assert isinstance(e, TruncatedNormal) and e.mean.shape == (4, 2)
    assert isinstance(
        rsfast.distributions.TruncatedNormal(0.0, 1.0, 0.0, 1.0), torch.distributions.Distribution
    )
    assert d.support.check(torch.tensor([0.0, 3.0])).tolist() == [True, False]


# ---------------------------------------------------------------- helpers for clamped float32 ends


def ks_p_clamped(x: torch.Tensor, dist, lo: float, hi: float) -> float:
    """KS p-value of the samples strictly inside (lo, hi) against the law conditioned on that
    interval, and (min) binomial p-values of the fractions clamped at lo (law mass <= lo) and at hi
    (law mass >= hi - ulp/2: values that round up to the largest float below 1). float32 puts real
    mass there (Gamma(0.01): ~42 % below 1e-38; Beta(0.05, 0.1): ~6 % above 1 - 6e-8)."""
    a = np64(x).ravel()
    n = a.size
    # Values at or above hi - ulp/2 (ulp of x's dtype just below 1) round to hi.
    hi_eff = hi - (torch.finfo(x.dtype).eps / 4 if hi < 1 else 0.0)
    f_lo = float(dist.cdf(lo)) if lo > 0 else 0.0
    f_hi = float(dist.cdf(hi_eff)) if hi < 1 else 1.0
    inside = (a > lo) & (a < hi)
    p_ks = float(st.kstest(a[inside], lambda t: (dist.cdf(t) - f_lo) / (f_hi - f_lo)).pvalue)
    ps = [p_ks]
    for k, p in (((a <= lo).sum(), f_lo), ((a >= hi).sum(), 1 - f_hi)):
        if p > 0 or k > 0:
            ps.append(binom_p(int(k), n, min(max(p, 1e-300), 1.0)))
    return min(ps)


def _edges(dtype: torch.dtype, upper: bool) -> tuple[float, float]:
    fi = torch.finfo(dtype)
    return fi.tiny * 1.0000001, (1 - fi.eps / 2) if upper else math.inf


# ---------------------------------------------------------------- VonMises

VM_REGIMES = [(0.5, 1e-3), (0.5, 0.5), (-2.0, 10.0), (3.0, 1e4), (1.0, 1e-6), (0.0, 1e7)]


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.remainder(a + np.pi, 2 * np.pi) - np.pi


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("loc,k", VM_REGIMES, ids=str)
def test_von_mises_ks(loc, k, dtype):
    d = VonMises(torch.tensor(loc, dtype=dtype), torch.tensor(k, dtype=dtype))
    x = d.sample((N,), generator=gen(21))
    assert x.dtype == dtype
    assert bool((x >= -math.pi).all() and (x < math.pi).all())
    # Angles relative to loc, wrapped to [-pi, pi): the law vonmises(k, 0); k >= 1e7 tested in
    # standardised units sqrt(k) * angle against N(0, 1) (the limit, exact to O(1/k)).
    y = _wrap(np64(x) - loc)
    if k >= 1e7:
        assert ks_p(y * math.sqrt(k), st.norm()) > ALPHA
    else:
        assert ks_p(y, st.vonmises(k)) > ALPHA


def test_von_mises_negative_control():
    x = VonMises(0.0, 10.0).sample((N,), generator=gen(21))
    assert ks_p(np64(x), st.vonmises(11.0)) < ALPHA
    assert ks_p(np64(x) - 0.05, st.vonmises(10.0)) < ALPHA  # loc off by 0.05 rad


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_von_mises_batched_and_log_prob_vs_torch(dtype):
    loc = torch.tensor([0.0, 2.0, -3.0], dtype=dtype)
    k = torch.tensor([0.01, 3.0, 300.0], dtype=dtype)
    d = VonMises(loc, k)
    x = d.sample((N // 2,), generator=gen(4))
    for j in range(3):
        assert ks_p(_wrap(np64(x[:, j]) - float(loc[j])), st.vonmises(float(k[j]))) > ALPHA, j
    ref = torch.distributions.VonMises(loc.double(), k.double())
    # torch's log I0 is a polynomial approximation good to ~1e-7 relative; scipy's is exact.
    torch.testing.assert_close(
        d.log_prob(x[:50]).double(), ref.log_prob(x[:50].double()), rtol=1e-5, atol=1e-5
    )
    want = np.stack(
        [st.vonmises(float(k[j]), loc=float(loc[j])).logpdf(_wrap(np64(x[:50, j]))) for j in range(3)], 1
    )
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(np64(d.log_prob(x[:50])), want, **tol)
    torch.testing.assert_close(d.mean, ref.mean.to(dtype))
    import scipy.special as sp

    kk = np64(k)
    np.testing.assert_allclose(np64(d.variance), 1 - sp.i1e(kk) / sp.i0e(kk), **tol)
    torch.testing.assert_close(d.variance.double(), ref.variance, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------- Gamma

GAMMA_ALPHAS = [0.01, 0.3, 1.0, 2.5, 100.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("alpha", GAMMA_ALPHAS, ids=str)
def test_gamma_ks(alpha, dtype):
    rate = 2.0
    x = Gamma(torch.tensor(alpha, dtype=dtype), torch.tensor(rate, dtype=dtype)).sample(
        (N,), generator=gen(31)
    )
    assert x.dtype == dtype and bool((x > 0).all())
    lo, hi = _edges(dtype, upper=False)
    assert ks_p_clamped(x, st.gamma(alpha, scale=1 / rate), lo, hi) > ALPHA


def test_gamma_negative_control():
    x = Gamma(2.5, 1.0).sample((N,), generator=gen(31))
    lo, hi = _edges(torch.float32, upper=False)
    assert ks_p_clamped(x, st.gamma(2.6), lo, hi) < ALPHA
    # The boost skipped (Gamma(a + 1) returned for a < 1) is caught as well.
    y = Gamma(1.3, 1.0).sample((N,), generator=gen(32))
    assert ks_p_clamped(y, st.gamma(0.3), lo, hi) < ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gamma_batched_and_log_prob_vs_torch(dtype):
    a = torch.tensor([0.05, 1.5, 40.0], dtype=dtype)
    r = torch.tensor([1.0, 0.1, 10.0], dtype=dtype)
    d = Gamma(a, r)
    x = d.sample((N // 2,), generator=gen(5))
    lo, hi = _edges(dtype, upper=False)
    for j in range(3):
        assert ks_p_clamped(x[:, j], st.gamma(float(a[j]), scale=1 / float(r[j])), lo, hi) > ALPHA, j
    ref = torch.distributions.Gamma(a, r)
    torch.testing.assert_close(d.log_prob(x[:50]), ref.log_prob(x[:50]))
    torch.testing.assert_close(d.mean, ref.mean)
    torch.testing.assert_close(d.variance, ref.variance)


def _fd(f, x: float, h: float) -> float:
    return (f(x + h) - f(x - h)) / (2 * h)


def test_gamma_rsample_gradients_vs_finite_differences():
    """d/d(alpha, rate) of E[sqrt X] from rsample (200k samples, implicit gradients) against central
    finite differences of the closed form E[sqrt X] = Gamma(a + 1/2) / (Gamma(a) sqrt(rate))."""

    def mean_sqrt(a: float, r: float) -> float:
        return math.exp(math.lgamma(a + 0.5) - math.lgamma(a)) / math.sqrt(r)

    for a0, r0 in ((0.4, 1.5), (3.0, 0.5)):
        a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
        r = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
        x = Gamma(a, r).rsample((200_000,), generator=gen(7))
        x.sqrt().mean().backward()
        ga = _fd(lambda t, r0=r0: mean_sqrt(t, r0), a0, 1e-5)
        gr = _fd(lambda t, a0=a0: mean_sqrt(a0, t), r0, 1e-5)
        assert abs(float(a.grad) - ga) < 0.02 * abs(ga) + 1e-3, (float(a.grad), ga)
        assert abs(float(r.grad) - gr) < 0.02 * abs(gr) + 1e-3, (float(r.grad), gr)
        # Negative control: the gradient of the wrong law (a + 0.2) is rejected by the same check.
        wrong = _fd(lambda t, r0=r0: mean_sqrt(t, r0), a0 + 0.2, 1e-5)
        assert abs(float(a.grad) - wrong) > 0.02 * abs(wrong) + 1e-3


# ---------------------------------------------------------------- Beta

BETA_REGIMES = [(0.05, 0.1), (0.5, 0.5), (1.0, 1.0), (1.05, 0.95), (2.0, 5.0), (300.0, 100.0), (0.3, 40.0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("c1,c0", BETA_REGIMES, ids=str)
def test_beta_ks(c1, c0, dtype):
    x = Beta(torch.tensor(c1, dtype=dtype), torch.tensor(c0, dtype=dtype)).sample((N,), generator=gen(41))
    assert x.dtype == dtype and bool((x > 0).all() and (x < 1).all())
    lo, hi = _edges(dtype, upper=True)
    assert ks_p_clamped(x, st.beta(c1, c0), lo, hi) > ALPHA


def test_beta_negative_control():
    x = Beta(2.0, 5.0).sample((N,), generator=gen(41))
    lo, hi = _edges(torch.float32, upper=True)
    assert ks_p_clamped(x, st.beta(2.0, 5.3), lo, hi) < ALPHA
    y = Beta(0.05, 0.1).sample((N,), generator=gen(42))
    assert ks_p_clamped(y, st.beta(0.06, 0.1), lo, hi) < ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_beta_batched_and_log_prob_vs_torch(dtype):
    c1 = torch.tensor([0.2, 2.0, 500.0], dtype=dtype)
    c0 = torch.tensor([0.7, 2.0, 20.0], dtype=dtype)
    d = Beta(c1, c0)
    x = d.sample((N // 2,), generator=gen(6))
    lo, hi = _edges(dtype, upper=True)
    for j in range(3):
        assert ks_p_clamped(x[:, j], st.beta(float(c1[j]), float(c0[j])), lo, hi) > ALPHA, j
    ref = torch.distributions.Beta(c1, c0)
    v = x[:50].clamp(1e-6, 1 - 1e-6)
    torch.testing.assert_close(d.log_prob(v), ref.log_prob(v), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(d.mean, ref.mean)
    torch.testing.assert_close(d.variance, ref.variance)


def test_beta_rsample_gradients_vs_finite_differences():
    """d/d(c1, c0) of E[X^2] from rsample against finite differences of
    E[X^2] = c1 (c1 + 1) / ((c1 + c0)(c1 + c0 + 1))."""

    def m2(a: float, b: float) -> float:
        return a * (a + 1) / ((a + b) * (a + b + 1))

    for a0, b0 in ((0.5, 2.0), (4.0, 3.0)):
        a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
        x = Beta(a, b).rsample((200_000,), generator=gen(8))
        (x * x).mean().backward()
        ga = _fd(lambda t, b0=b0: m2(t, b0), a0, 1e-6)
        gb = _fd(lambda t, a0=a0: m2(a0, t), b0, 1e-6)
        assert abs(float(a.grad) - ga) < 0.03 * abs(ga) + 1e-3, (float(a.grad), ga)
        assert abs(float(b.grad) - gb) < 0.03 * abs(gb) + 1e-3, (float(b.grad), gb)


@pytest.mark.parametrize(
    "cls,args,index,bad,match",
    [
        (VonMises, (0.0, 1.0), 1, 0.0, "concentration"),
        (VonMises, (0.0, 1.0), 1, INF, "concentration"),
        (VonMises, (0.0, 1.0), 0, math.nan, "loc"),
        (Gamma, (1.0, 1.0), 0, -1.0, "concentration"),
        (Gamma, (1.0, 1.0), 1, 0.0, "rate"),
        (Gamma, (1.0, 1.0), 1, math.nan, "rate"),
        (Beta, (1.0, 1.0), 0, 0.0, "concentration"),
        (Beta, (1.0, 1.0), 1, INF, "concentration0"),
    ],
)
def test_invalid_parameters(cls, args, index, bad, match):
    params = list(args)
    params[index] = bad
    if bad == INF:  # torch's constraint (positive) admits inf: construction passes, sample raises
        with pytest.raises(ValueError, match=match):
            cls(*params).sample()
    else:
        with pytest.raises(ValueError, match=match):
            cls(*params)
    cls(*params, validate_args=False)  # torch's contract: no check at construction when off
    good = [torch.tensor([v, v]) for v in args]
    d = cls(*good)
    getattr(d, d.param_names[index])[1] = bad  # mutated in place after construction
    with pytest.raises(ValueError, match=match):
        d.sample((2,))
    if d.has_rsample:
        with pytest.raises(ValueError, match=match):
            d.rsample((2,))
