"""ops.propose: agreement with the pure-torch twin, log q, the law of the draws, tails,
determinism in (seed, offset) and independence of the number of threads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, KINDS, SEED, TOL, chisq_p, digest, gen, ks_p, proposal_params

from rsfast import ops, proposals
from rsfast import reference as R

pytestmark = pytest.mark.timeout(60)

PROPOSAL_CLASSES = {
    "normal": proposals.Normal,
    "uniform": proposals.Uniform,
    "mixture_normal": proposals.MixtureNormal,
}


def _as_proposal(kind, params):
    return PROPOSAL_CLASSES[kind](*params)


# ---------------------------------------------------------------- agreement with the twin


@pytest.mark.parametrize("dim", [1, 2, 5, 9])  # crosses 4-value (float32) and 2-value (float64) blocks
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, dtype, dim):
    params = proposal_params(kind, dim, dtype)
    x, lq = ops.propose(kind, params, 3001, SEED, 7)
    xr, lqr = R.propose(kind, params, 3001, SEED, 7)
    assert x.shape == (3001, dim) and lq.shape == (3001,)
    assert x.dtype == lq.dtype == dtype
    torch.testing.assert_close(x, xr, **TOL[dtype])
    torch.testing.assert_close(lq, lqr, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_log_q_is_the_proposal_log_prob(kind, dtype):
    params = proposal_params(kind, 5, dtype)
    x, lq = ops.propose(kind, params, 2000, SEED, 3)
    expect = _as_proposal(kind, params).log_prob(x)
    torch.testing.assert_close(
        lq,
        expect,
        rtol=1e-5 if dtype == torch.float32 else 1e-12,
        atol=1e-4 if dtype == torch.float32 else 1e-10,
    )


def test_m_zero_gives_empty_outputs():
    for kind in KINDS:
        x, lq = ops.propose(kind, proposal_params(kind, 3), 0, SEED, 0)
        assert x.shape == (0, 3) and lq.shape == (0,)


# ---------------------------------------------------------------- the law


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_marginals_ks(dtype):
    loc, scale = proposal_params("normal", 5, dtype)
    x, _ = ops.propose("normal", [loc, scale], 50_000, SEED, 1)
    for d in range(5):
        assert ks_p(x[:, d], st.norm(float(loc[d]), float(scale[d]))) > ALPHA, f"dim {d}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_uniform_marginals_ks(dtype):
    low, high = proposal_params("uniform", 5, dtype)
    x, _ = ops.propose("uniform", [low, high], 50_000, SEED, 2)
    assert bool(((x >= low) & (x <= high)).all())
    for d in range(5):
        assert ks_p(x[:, d], st.uniform(float(low[d]), float(high[d] - low[d]))) > ALPHA, f"dim {d}"


def test_negative_control_ks_rejects_scale_1_05_and_shift_0_05():
    """The KS checks above have power: a scale off by 5 % or a shift of 0.05 (in sd) is rejected."""
    loc, scale = torch.zeros(2), torch.ones(2)
    x, _ = ops.propose("normal", [loc, scale * 1.05], 50_000, SEED, 1)
    assert ks_p(x[:, 0], st.norm(0, 1)) < ALPHA
    x, _ = ops.propose("normal", [loc + 0.05, scale], 50_000, SEED, 1)
    assert ks_p(x[:, 1], st.norm(0, 1)) < ALPHA
    u, _ = ops.propose("uniform", [torch.zeros(1), torch.ones(1)], 50_000, SEED, 2)
    assert ks_p(u[:, 0], st.uniform(0, 1.02)) < ALPHA


MIX_LOGITS = [0.3, -0.2, 1.0]
MIX_LOC = [[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]]
MIX_SCALE = [[1.0, 0.5], [2.0, 1.0], [0.7, 1.5]]


def _mixture_draw(dtype, m=100_000):
    logits, loc, scale = (torch.tensor(v, dtype=dtype) for v in (MIX_LOGITS, MIX_LOC, MIX_SCALE))
    x, lq = ops.propose("mixture_normal", [logits, loc, scale], m, SEED, 5)
    comp = torch.cdist(x, loc).argmin(1)  # components 10 apart: nearest centre is the component
    return x, comp


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixture_component_frequencies_and_marginals(dtype):
    x, comp = _mixture_draw(dtype)
    weights = torch.softmax(torch.tensor(MIX_LOGITS, dtype=torch.float64), 0).numpy()
    assert chisq_p(torch.bincount(comp, minlength=3).numpy(), weights) > ALPHA
    for k in range(3):
        for d in range(2):
            assert ks_p(x[comp == k, d], st.norm(MIX_LOC[k][d], MIX_SCALE[k][d])) > ALPHA, (k, d)


def test_negative_control_mixture_weights():
    """The chi-square on component counts rejects weights from logits off by 0.05."""
    _, comp = _mixture_draw(torch.float32)
    wrong = torch.softmax(torch.tensor(MIX_LOGITS, dtype=torch.float64) + torch.tensor([0.05, 0, 0]), 0)
    assert chisq_p(torch.bincount(comp, minlength=3).numpy(), wrong.numpy()) < ALPHA


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_tails_beyond_five_sigma(dtype):
    """16.7M standard normals: counts of |z| in [3, 3.5), ..., [4.5, 5), [5, inf) match the normal
    law (chi-square), and the draw does reach past 5 sigma (about 9.6 expected)."""
    z, _ = ops.propose("normal", [torch.zeros(4, dtype=dtype), torch.ones(4, dtype=dtype)], 1 << 22, SEED, 13)
    a = z.abs().reshape(-1)
    edges = [3.0, 3.5, 4.0, 4.5, 5.0, math.inf]
    counts = [int(((a >= lo) & (a < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])]
    sf = 2 * st.norm.sf(edges)
    probs = sf[:-1] - sf[1:]
    n = a.numel()
    counts.append(n - sum(counts))
    probs = np.append(probs, 1 - probs.sum())
    assert counts[-2] > 0, "no normal beyond 5 sigma"
    assert float(st.poisson(n * probs[-2]).cdf(counts[-2])) > ALPHA / 2
    assert float(st.poisson(n * probs[-2]).sf(counts[-2] - 1)) > ALPHA / 2
    assert chisq_p(counts, probs) > ALPHA


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_in_seed_and_offset(kind):
    params = proposal_params(kind, 3)
    x1, lq1 = ops.propose(kind, params, 40_000, SEED, 4)
    x2, lq2 = ops.propose(kind, params, 40_000, SEED, 4)
    assert torch.equal(x1, x2) and torch.equal(lq1, lq2)
    for seed, offset in [(SEED, 5), (SEED + 1, 4), (SEED ^ (1 << 40), 4), (0, 4)]:
        x3, _ = ops.propose(kind, params, 40_000, seed, offset)
        assert not torch.equal(x1, x3), (seed, offset)
        assert (x1 == x3).all(1).float().mean() < 1e-3  # different streams, not a shifted copy


@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_streams_prefix_property(kind):
    """Row i depends on (seed, offset, i) only: a short draw is the prefix of a long (threaded) one."""
    params = proposal_params(kind, 5)
    long_x, long_lq = ops.propose(kind, params, 70_001, SEED, 2)
    short_x, short_lq = ops.propose(kind, params, 37, SEED, 2)
    assert torch.equal(long_x[:37], short_x) and torch.equal(long_lq[:37], short_lq)


def test_largest_offset_is_usable():
    x, _ = ops.propose("normal", proposal_params("normal", 2), 10, SEED, 2**32 - 1)
    y, _ = ops.propose("normal", proposal_params("normal", 2), 10, SEED, 0)
    assert bool(torch.isfinite(x).all()) and not torch.equal(x, y)


def test_proposal_parameters_from_numbers_and_arrays():
    a = proposals.Normal([0, 1], [1, 2])  # integers become the default float dtype
    assert a.dtype == torch.get_default_dtype() and a.loc.shape == (2,)
    b = proposals.Uniform(np.zeros(3), np.ones(3))
    assert b.dtype == torch.float64 and b.event_shape == (3,)
    c = proposals.Normal(0.0, torch.ones(4))  # a scalar broadcasts
    assert c.loc.shape == (4,) and c.scale.shape == (4,)
    x, lq = ops.propose("uniform", b.params(), 10, SEED, 0)
    assert x.dtype == torch.float64 and bool(((x >= 0) & (x < 1)).all())


def test_proposal_sample_shape_and_generator():
    p = proposals.Normal(torch.zeros(3), torch.ones(3))
    a = p.sample((4, 5), generator=gen(1))
    b = p.sample((4, 5), generator=gen(1))
    c = p.sample((4, 5), generator=gen(2))
    assert a.shape == (4, 5, 3) and torch.equal(a, b) and not torch.equal(a, c)
    assert p.sample().shape == (3,)


# ---------------------------------------------------------------- threads


@pytest.mark.timeout(180)
def test_thread_count_independence(digests_by_threads):
    """Bitwise-equal outputs with OMP_NUM_THREADS = 1, 2, 3 (child interpreters), and equal to this
    process's own result."""
    for t, res in digests_by_threads.items():
        assert res["torch_threads"] == t and res["openmp_threads"] == t
    keys = [k for k in digests_by_threads[1] if k.startswith("propose/")]
    assert len(keys) == 6
    for k in keys:
        assert len({res[k] for res in digests_by_threads.values()}) == 1, k
    here = ops.propose(
        "mixture_normal", proposal_params("mixture_normal", 5, torch.float64), 300_003, SEED, 11
    )
    assert digest(*here) == digests_by_threads[2]["propose/mixture_normal/torch.float64"]
