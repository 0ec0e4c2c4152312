"""Per-element parameters (one parameter set per output element, batch = sample): the CPU driver's
per-element path groups each chunk's elements by algorithm variant and validates every row in the
kernel. Mixed parameters whose elements pick different algorithm branches in one call must follow
their own laws (KS / chi-square against scipy per branch), agree with the torch twin bit for bit
(float32), and bad values raise ValueError naming the parameter on either CPU path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _helpers import ALPHA, DTYPES, SEED, chisq_p, ks_p, np64
from scipy import stats

from rsfast import ops, reference

pytestmark = pytest.mark.timeout(120)

INF = math.inf
N = 20_000  # elements per branch

# law -> [(parameters, scipy law)]: rows that take different algorithm branches of the law.
BRANCHES = {
    "truncated_normal": [
        ((0.0, 1.0, -INF, INF), stats.truncnorm(-INF, INF)),  # normal proposal
        ((0.0, 1.0, -0.5, 0.5), stats.truncnorm(-0.5, 0.5)),  # uniform proposal
        ((0.0, 1.0, 3.0, INF), stats.truncnorm(3.0, INF)),  # exponential tail
        ((1.0, 2.0, -INF, -5.0), stats.truncnorm(-INF, -3.0, loc=1.0, scale=2.0)),  # mirrored tail
    ],
    "von_mises": [
        ((0.5, 0.5), stats.vonmises(0.5)),  # checked on x - loc wrapped into [-pi, pi)
        ((-2.0, 30.0), stats.vonmises(30.0)),
    ],
    "gamma": [
        ((0.3, 1.0), stats.gamma(0.3)),  # boosted (a < 1)
        ((2.5, 2.0), stats.gamma(2.5, scale=0.5)),
        ((100.0, 1.0), stats.gamma(100.0)),
    ],
    "beta": [
        ((0.5, 0.5), stats.beta(0.5, 0.5)),  # log-space variant
        ((3.0, 4.0), stats.beta(3.0, 4.0)),
    ],
    "poisson": [
        ((3.0,), stats.poisson(3.0)),  # inversion
        ((40.0,), stats.poisson(40.0)),  # PTRS
        ((0.0,), None),  # constant 0
    ],
    "binomial": [
        ((20.0, 0.2), stats.binom(20, 0.2)),  # inversion
        ((200.0, 0.7), stats.binom(200, 0.7)),  # BTRS, flipped
        ((5.0, 1.0), None),  # constant 5
    ],
}
DISCRETE = ("poisson", "binomial")


def _interleaved(law: str, dtype: torch.dtype, n: int) -> tuple[list[torch.Tensor], int]:
    """Parameters [n * branches]: element i takes branch i % branches (neighbours differ)."""
    rows = [p for p, _ in BRANCHES[law]]
    nb = len(rows)
    params = [torch.tensor([r[j] for r in rows], dtype=dtype).repeat(n) for j in range(len(rows[0]))]
    return params, nb


def _check_law(law: str, x: np.ndarray, params: tuple, dist) -> None:
    if dist is None:  # constant
        expect = 0.0 if law == "poisson" else params[0]
        assert np.all(x == expect)
        return
    if law in DISCRETE:
        lo, hi = int(dist.ppf(1e-4)), int(dist.ppf(1 - 1e-4))
        edges = np.arange(lo, hi + 1)
        probs = np.concatenate([[dist.cdf(lo)], dist.pmf(edges[1:]), [dist.sf(hi)]])
        counts = np.concatenate([[np.sum(x <= lo)], [np.sum(x == k) for k in edges[1:]], [np.sum(x > hi)]])
        assert chisq_p(counts, probs) > ALPHA
    else:
        if law == "von_mises":
            x = np.mod(x - params[0] + np.pi, 2 * np.pi) - np.pi
        assert ks_p(x, dist.cdf) > ALPHA


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law", list(BRANCHES))
def test_mixed_branches_in_one_call_follow_their_laws(law, dtype):
    params, nb = _interleaved(law, dtype, N)
    out, exhausted = ops.slot_sample(law, params, [], SEED, 3)  # one sample per parameter row
    assert out.shape == (N * nb,) and int(exhausted) == 0
    x = np64(out).reshape(N, nb)
    for b, (p, dist) in enumerate(BRANCHES[law]):
        _check_law(law, x[:, b], p, dist)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law", list(BRANCHES))
def test_mixed_branches_match_twin(law, dtype):
    """The per-element path gives the twin's values (float32 bit for bit), whatever the grouping by
    variant inside a chunk (2 samples per row: element i's row is i % B)."""
    params, _ = _interleaved(law, dtype, 300)
    out, _ = ops.slot_sample(law, params, [2], SEED, 4)
    ref, _ = reference.slot_sample(law, params, [2], SEED, 4)
    if dtype == torch.float32 or law in DISCRETE:
        assert torch.equal(out, ref)
    else:
        assert torch.allclose(out, ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_truncated_normal_widths_near_roberts_bound_match_twin(dtype):
    """One-sided intervals [a, a + w] (and their mirrors) with w around Robert's bound, where the
    uniform and the exponential proposal trade places: the per-element check decides most modes
    without the bound's exp and leaves the band [q2, q2 e^(1/2)] to the full prepare. Every element
    must take the twin's mode (a wrong mode reads its words differently: the values would differ)."""
    rows = []
    for a in np.linspace(0.0, 6.0, 25):
        root = math.sqrt(a * a + 4)
        q2 = 2 / (a + root)
        bound = q2 * math.exp(-a / (a + root) + 0.5)
        for w in (0.5 * q2, 0.999 * bound, 1.001 * bound, 0.9 * q2 * math.exp(0.5), 1.7 * q2, 3 * bound):
            rows += [(0.5, 2.0, 0.5 + 2 * a, 0.5 + 2 * (a + w)), (0.5, 2.0, 0.5 - 2 * (a + w), 0.5 - 2 * a)]
    params = [torch.tensor(c, dtype=dtype) for c in zip(*rows)]
    out, _ = ops.slot_sample("truncated_normal", params, [3], SEED, 9)
    ref, _ = reference.slot_sample("truncated_normal", params, [3], SEED, 9)
    if dtype == torch.float32:
        assert torch.equal(out, ref)
    else:
        assert torch.allclose(out, ref, rtol=1e-12, atol=1e-300)


# law -> [(parameter index, bad value, message fragment)]
BAD = {
    "truncated_normal": [(0, math.nan, "loc"), (1, 0.0, "scale"), (1, INF, "scale"),
                         (2, math.nan, "low"), (3, math.nan, "high"), (2, 5.0, "low must be < high")],
    "von_mises": [(0, INF, "loc"), (1, -1.0, "concentration"), (1, math.nan, "concentration")],
    "gamma": [(0, 0.0, "concentration"), (0, math.nan, "concentration"), (1, INF, "rate"), (1, -2.0, "rate")],
    "beta": [(0, -1.0, "concentration1"), (1, math.nan, "concentration0"), (1, INF, "concentration0")],
    "poisson": [(0, -1.0, "rate"), (0, math.nan, "rate"), (0, INF, "rate")],
    "binomial": [(0, 2.5, "total_count must be an integer"), (0, -1.0, "total_count"),
                 (0, math.nan, "total_count"), (1, 1.5, "probs"), (1, math.nan, "probs")],
}  # fmt: skip


@pytest.mark.parametrize("per_element", [True, False], ids=["per_element", "row_major"])
@pytest.mark.parametrize("law,index,bad,match", [(law, *c) for law, cs in BAD.items() for c in cs])
def test_bad_values_raise_naming_the_parameter(law, index, bad, match, per_element):
    """One bad element among many valid ones, on the per-element path (1 sample per row) and on the
    row-major path (100 samples per row): a ValueError naming the law and the parameter."""
    params, _ = _interleaved(law, torch.float64, 50 if per_element else 1)
    params[index][-1] = bad
    with pytest.raises(ValueError, match=f"{law}: .*{match}"):
        ops.slot_sample(law, params, [] if per_element else [100], SEED, 0)


def test_nan_is_named_before_other_failures():
    """NaN is the first check of a parameter: a NaN concentration is reported as NaN, not as <= 0."""
    params = [torch.tensor([2.0, math.nan, -1.0]), torch.ones(3)]
    with pytest.raises(ValueError, match="concentration must not be NaN"):
        ops.slot_sample("gamma", params, [], SEED, 0)
