"""Per-element Poisson and Binomial rows in the inversion regime (mean below 10) are drawn in SIMD lanes
(the first 10 cells of the inversion, built on the fly from fast_exp, or for Binomial from (1 - p)^n
by squaring below n = 128 and by fast_exp / fast_log1p above; 3 more at a time for a lane group with
a draw past them, up to 16), and the rest by the scalar search. Every element must get the value the
one-row path (a stored table) gives for the same counter, the twin's value, and the law's
distribution (chi-square), including rows whose draw lies past the lanes' cells, flipped and constant
Binomial rows, both sides of n = 128, and a huge total_count with a tiny probability (where
(1 - p)^n needs log1p)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from _helpers import ALPHA, DTYPES, SEED
from scipy import stats
from test_distributions_discrete import chisq_counts

from rsfast import ops, reference

pytestmark = pytest.mark.timeout(120)


def _per_element_equals_one_row(law: str, row: tuple[float, ...], n: int, dtype: torch.dtype) -> torch.Tensor:
    """Samples of one parameter row drawn per element (n rows) and as n samples of one row: element i
    reads counter i either way, so the values must agree bit for bit."""
    pe, _ = ops.slot_sample(law, [torch.full((n,), v, dtype=dtype) for v in row], [], SEED, 11)
    one, _ = ops.slot_sample(law, [torch.tensor([v], dtype=dtype) for v in row], [n], SEED, 11)
    assert torch.equal(pe, one.reshape(-1)), (law, row)
    return pe


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "law,row",
    [
        ("poisson", (0.0,)),
        ("poisson", (0.37,)),
        ("poisson", (3.0,)),
        ("poisson", (6.0,)),  # most lane groups resume past cell 10
        ("poisson", (9.99,)),  # ~5 % of draws past the lanes' 16 cells
        ("binomial", (1.0, 0.5)),
        ("binomial", (10.0, 0.3)),
        ("binomial", (10.0, 0.5)),  # some lane groups resume past cell 10
        ("binomial", (127.0, 0.05)),  # (1 - p)^n by squaring, the largest n
        ("binomial", (128.0, 0.05)),  # by fast_exp / fast_log1p, the smallest n
        ("binomial", (20.0, 0.9)),  # flipped
        ("binomial", (24.0, 0.4)),  # n p = 9.6
        ("binomial", (2_000_000.0, 2.5e-6)),  # (1 - p)^n through log1p
        ("binomial", (7.0, 0.0)),  # constant 0
        ("binomial", (7.0, 1.0)),  # constant 7
    ],
)
def test_lane_path_matches_one_row_path_and_law(law, row, dtype):
    x = _per_element_equals_one_row(law, row, 60_000, dtype)
    if law == "poisson" and row[0] == 0.0:
        assert torch.equal(x, torch.zeros_like(x))
        return
    if law == "binomial" and row[1] in (0.0, 1.0):
        assert torch.equal(x, torch.full_like(x, row[0] * row[1]))
        return
    dist = stats.poisson(row[0]) if law == "poisson" else stats.binom(int(row[0]), row[1])
    assert chisq_counts(x, dist) > ALPHA
    if row in ((9.99,), (24.0, 0.4)):
        assert int((x >= 16).sum()) > 0  # the scalar search past the lanes' cells ran


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_poisson_rates_across_the_inversion_range_match_twin(dtype):
    """4,000 distinct rates in [0, 10) and a few PTRS rates, shuffled (lanes mix both), two samples per
    row (the per-element path): the twin's values exactly."""
    g = torch.Generator().manual_seed(3)
    rates = torch.cat(
        [
            torch.linspace(0.0, 9.999, 4000, dtype=torch.float64),
            torch.tensor([10.0, 25.0, 300.0], dtype=torch.float64),
        ]
    )
    rates = rates[torch.randperm(rates.numel(), generator=g)].to(dtype)
    out, exhausted = ops.slot_sample("poisson", [rates], [2], SEED, 7)
    ref, _ = reference.slot_sample("poisson", [rates], [2], SEED, 7)
    assert int(exhausted) == 0 and torch.equal(out, ref)
    assert int((out >= 16).sum()) > 0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binomial_mixed_rows_match_twin(dtype):
    """Random total_count in [0, 60] and probs in [0, 1] with exact 0 and 1: constant, inversion,
    flipped and BTRS rows side by side in the lanes, against the twin."""
    g = torch.Generator().manual_seed(4)
    n = torch.randint(0, 61, (5000,), generator=g).to(torch.float64)
    p = torch.rand(5000, generator=g, dtype=torch.float64)
    p[::37] = 0.0
    p[::41] = 1.0
    params = [n.to(dtype), p.to(dtype)]
    out, exhausted = ops.slot_sample("binomial", params, [2], SEED, 8)
    ref, _ = reference.slot_sample("binomial", params, [2], SEED, 8)
    assert int(exhausted) == 0 and torch.equal(out, ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_binomial_rows_of_both_lane_kinds_match_twin(dtype):
    """total_count in [0, 400] with n p mostly below 10: inversion rows by squaring (n < 128) and by
    exp / log1p (n >= 128), BTRS and constant rows side by side in one chunk's lanes (both lane
    passes run and merge), against the twin; and against the one-row path row by row."""
    g = torch.Generator().manual_seed(5)
    n = torch.randint(0, 401, (6000,), generator=g).to(torch.float64)
    p = torch.rand(6000, generator=g, dtype=torch.float64) * 0.04
    p[::53] = 0.5  # BTRS where n p >= 10
    p[::59] = 0.0
    p[::61] = 0.99  # flipped
    params = [n.to(dtype), p.to(dtype)]
    out, exhausted = ops.slot_sample("binomial", params, [1], SEED, 9)
    ref, _ = reference.slot_sample("binomial", params, [1], SEED, 9)
    assert int(exhausted) == 0 and torch.equal(out, ref)
    small = (n < 128) & (n * p < 10) & (p > 0)
    assert int(small.sum()) > 1000 and int((~small & (n * p < 10) & (p > 0)).sum()) > 1000


def test_pow_small_is_within_n_plus_14_ulp_of_exact():
    """(1 - p)^n by squaring (the twin, operation by operation the kernel's): relative error at most
    (n + 14) 2^-53 against the exact rational (1 - p)^n, over random rows of the inversion regime
    (the rounding of 1 - p dominates: about n/2 ulp on average, n at worst)."""
    rng = random.Random(6)
    ns, ps = [], []
    for i in range(4000):
        k = rng.randint(0, 127)
        q = rng.random() * min(0.5, 10.0 / max(k, 1))
        ns.append(float(k))
        ps.append(q * 10.0 ** -rng.randint(1, 12) if i % 3 == 0 else q)
    got = reference.slot_discrete.binomial_p0(
        torch.tensor(ns, dtype=torch.float64), torch.tensor(ps, dtype=torch.float64)
    )
    worst = 0.0
    for k, q, v in zip(ns, ps, got.tolist()):
        exact = (1 - Fraction(q)) ** int(k)
        worst = max(worst, float(abs(Fraction(v) - exact) / exact) / 2.0**-53 / (k + 14))
    assert worst <= 1.0
    assert worst > 0.05  # the bound is near the measured error, not loose by orders
