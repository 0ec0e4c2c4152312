"""Per-element Poisson and Binomial rows in the inversion regime (mean below 10) are drawn in SIMD lanes
(the first 16 cells of the inversion, built on the fly from fast_exp / fast_log1p), and the rest by
the scalar search. Every element must get the value the one-row path (a stored table) gives for the
same counter, the twin's value, and the law's distribution (chi-square), including rows whose draw
lies past the lanes' cells, flipped and constant Binomial rows, and a huge total_count with a tiny
probability (where (1 - p)^n needs log1p)."""

from __future__ import annotations

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
        ("poisson", (9.99,)),  # ~5 % of draws past the lanes' 16 cells
        ("binomial", (10.0, 0.3)),
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
