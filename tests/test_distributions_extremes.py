"""Distribution parameters at the edges that fuzzing found: far tails, narrow intervals, huge locations,
integer and bool parameters. Each case either samples correctly or raises an error naming an argument."""

from __future__ import annotations

import math

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
