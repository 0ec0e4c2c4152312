"""Distribution parameters at the edges that fuzzing found: far tails, narrow intervals, huge locations,
integer and bool parameters. Each case either samples correctly or raises an error naming an argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch

import rsfast
from rsfast import distributions as D
from rsfast import ops


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_truncated_normal_standardised_overflow_names_scale(dtype) -> None:
    # (1 - loc) / scale is 1e300 (over the 1e150 bound of float64) or 1e38 (over float32's max / 4): the
    # tail proposal's rate would overflow and no try could be accepted.
    scale = 1e-300 if dtype == torch.float64 else 1e-38
    d = D.TruncatedNormal(torch.tensor(0.0, dtype=dtype), torch.tensor(scale, dtype=dtype), 1.0, 2.0)
    with pytest.raises(ValueError, match="scale"):
        d.sample((3,), generator=gen())


def test_truncated_normal_far_tail_samples_and_log_prob() -> None:
    # a = 1e30 standard deviations out (float32): exact samples near low, finite log_prob.
    d = D.TruncatedNormal(torch.tensor(0.0), torch.tensor(1e-30), torch.tensor(1.0), torch.tensor(2.0))
    x = d.sample((100,), generator=gen())
    assert bool(((x >= 1.0) & (x <= 2.0)).all())
    lp = d.log_prob(x)
    assert bool(torch.isfinite(lp).all())


@pytest.mark.parametrize(
    "a, b", [(5.0, 6.0), (-4.0, 1.0), (30.0, 31.0), (50.0, math.inf), (-math.inf, -45.0)]
)
def test_truncated_normal_log_prob_matches_scipy(a, b) -> None:
    d = D.TruncatedNormal(torch.tensor(0.0, dtype=torch.float64), 1.0, a, b)
    lo, hi = max(a, -60.0), min(b, 60.0)
    z = torch.linspace(lo, lo + 0.9 * (hi - lo), 7, dtype=torch.float64)
    ref = torch.tensor(st.truncnorm(a, b).logpdf(z.numpy()))
    torch.testing.assert_close(d.log_prob(z), ref, rtol=1e-9, atol=1e-9)


def test_truncated_normal_narrow_interval_log_prob() -> None:
    # Phi(0.5 / 3.6e15) - Phi(0) rounds to 0: log_prob was +inf.
    d = D.TruncatedNormal(0.0, 3.6e15, 0.0, 0.5)
    x = d.sample((50,), generator=gen())
    lp = d.log_prob(x)
    assert bool(torch.isfinite(lp).all())
    torch.testing.assert_close(lp, torch.full_like(lp, math.log(2.0)))  # uniform on [0, 0.5]


@pytest.mark.parametrize("loc", [1e30, -3e12, 2.0**20 + 0.5])
def test_von_mises_huge_loc_stays_on_the_circle(loc) -> None:
    x = D.VonMises(torch.tensor(loc, dtype=torch.float64), torch.tensor(4.0, dtype=torch.float64)).sample(
        (4000,), generator=gen()
    )
    assert bool(((x >= -math.pi) & (x < math.pi)).all())
    # The mean direction is loc mod 2 pi (fmod is exact in float64).
    centre = math.remainder(loc, 2 * math.pi)
    mean_dir = math.atan2(float(torch.sin(x).mean()), float(torch.cos(x).mean()))
    assert abs(math.remainder(mean_dir - centre, 2 * math.pi)) < 0.05


def test_von_mises_twin_agrees_for_huge_loc() -> None:
    from rsfast import reference

    params = [
        torch.tensor([1e30, -5e6, 2.5], dtype=torch.float64),
        torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64),
    ]
    out, _ = ops.slot_sample("von_mises", params, [64], 7, 0)
    twin, _ = reference.slot_sample("von_mises", params, [64], 7, 0)
    torch.testing.assert_close(out, twin, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: D.Gamma(torch.tensor([1.0 + 1j]), 1.0), "concentration"),
        (lambda: D.Beta(1.0, torch.tensor([True])), "concentration0"),
        (lambda: D.Poisson("3"), "rate"),
        (lambda: D.Binomial(None, 0.5), "total_count"),
        (lambda: D.TruncatedNormal(0.0, None, 0.0, 1.0), "scale"),
        (lambda: D.VonMises(torch.zeros(2), torch.ones(3)), "concentration"),
        (lambda: D.Beta(-0.0, 0.0), "concentration1"),
    ],
)
def test_bad_parameters_are_named(make, name) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        make()


def test_integer_parameters_become_floating() -> None:
    d = D.Binomial(torch.tensor([10, 20]), probs=torch.tensor([0.5, 0.25], dtype=torch.float64))
    assert d.total_count.dtype == torch.float64
    x = d.sample((5,), generator=gen())
    assert x.dtype == torch.float64 and bool(torch.isfinite(d.log_prob(x)).all())
    g = D.Gamma(torch.tensor([2], dtype=torch.int8), torch.tensor([1], dtype=torch.uint8))
    assert g.concentration.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("shape, error", [((-1,), ValueError), ((2.5,), TypeError), ("3", TypeError)])
def test_sample_shape_is_named(shape, error) -> None:
    for d in (D.Gamma(1.0, 1.0), D.TruncatedNormal(0.0, 1.0, -1.0, 1.0), rsfast.proposals.Normal(0.0, 1.0)):
        with pytest.raises(error, match="sample_shape"):
            d.sample(shape)


def _near_one_bins(c1: float, c0: float, dtype: torch.dtype, cells: int = 16, coarse: int = 16):
    """Bin edges on 1 - x of Beta(c1, c0) samples and their probabilities under the exact law of 1 - x,
    Beta(c0, c1), after rounding x to the dtype's grid below 1 (spacing u = eps / 2 on [1/2, 1)).

    The first `cells` bins are single grid cells: 1 - x = k u, k = 1 .. cells (k = 1 also holds the x
    that round up to 1, clamped to 1 - u); then `coarse` bins of equal probability up to 1 - x = 1/4,
    with edges at half-grid points (every 1 - x below 1/2 is a multiple of u), and the rest."""
    u = torch.finfo(dtype).eps / 2
    law = st.beta(c0, c1)
    edges = [0.0] + [(k + 0.5) * u for k in range(1, cells + 1)]
    lo, hi = law.cdf(edges[-1]), law.cdf(0.25)
    for q in np.linspace(lo, hi, coarse + 1)[1:-1]:
        t = min(float(law.ppf(q)), 0.25)
        edges.append((math.floor(t / u) + 0.5) * u)
    edges += [0.25 + 0.5 * u, math.inf]
    edges = np.unique(np.array(edges))
    probs = np.diff(law.cdf(edges))
    while probs[-1] < 1e-5:  # fold a nearly empty tail bin into its neighbour
        edges, probs = np.delete(edges, -2), np.append(probs[:-2], probs[-2] + probs[-1])
    return edges, probs


@pytest.mark.parametrize(
    "c1, c0, dtype",
    [
        (5.0, 0.05, torch.float32),  # a concentration < 1: x from e = Y / X in log space
        (1e4, 1.0, torch.float32),  # both >= 1: x from X / (X + Y)
        (5.0, 0.05, torch.float64),
        (1e13, 1.0, torch.float64),
    ],
)
def test_beta_near_one_uses_the_whole_grid(c1, c0, dtype) -> None:
    # Half of Beta(5, 0.05)'s mass lies within 1e-7 of 1: 1 - x must land on every grid point below 1
    # with the probability of the rounded law (1 / (1 + e) or X / (X + Y) alone rounded 1 - x to a
    # twice coarser grid: odd cells were empty). Chi-square over single cells and quantile bins.
    x = D.Beta(torch.tensor(c1, dtype=dtype), torch.tensor(c0, dtype=dtype)).sample(
        (1_000_000,), generator=gen(3)
    )
    assert x.dtype == dtype
    d = (1 - x.double()).numpy()  # exact: x >= 1/2 is on the grid of u, and 1 - x for x < 1/2 is > 1/4
    edges, probs = _near_one_bins(c1, c0, dtype)
    counts = np.histogram(d, bins=edges)[0]
    expected = probs * d.size
    assert expected[:16].min() > 50  # the single cells are populated enough to be tested one by one
    assert counts[:16].min() > 0, f"empty grid cells near 1: {counts[:16]}"
    stat = float(((counts - expected) ** 2 / expected).sum())
    p = float(st.chi2.sf(stat, len(counts) - 1))
    assert p > 1e-4, f"chi-square {stat:.1f} on {len(counts) - 1} dof (p = {p:.2g}); counts {counts[:16]}"
