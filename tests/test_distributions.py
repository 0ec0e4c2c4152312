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
from _helpers import ALPHA, DTYPES, gen, ks_p, np64

import rsfast
from rsfast.distributions import TruncatedNormal

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
