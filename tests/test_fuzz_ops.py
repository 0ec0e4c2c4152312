"""Fuzzing each rsfast.ops op directly (the custom-op layer under the public API): arguments of any dtype,
shape, layout and value give a valid result or an error naming an argument, never a crash or an
out-of-range write."""

from __future__ import annotations

import pytest
import torch
from _fuzz import FLOATS, attempt, seeds, tensors, values
from hypothesis import given
from hypothesis import strategies as st

from rsfast import ops

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

PARAM_DTYPES = (torch.float32, torch.float64)
KINDS = st.sampled_from(["normal", "uniform", "mixture_normal", "bogus", 3])


@st.composite
def proposal_params(draw, kind):
    d, k = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if draw(st.booleans()):  # shapes that fit the kind
        shapes = [(k,), (k, d), (k, d)] if kind == "mixture_normal" else [(d,), (d,)]
    else:
        shapes = [None] * draw(st.integers(0, 4))
    dtypes = draw(st.sampled_from([PARAM_DTYPES, (torch.float32,), (torch.float64,), tuple(FLOATS)]))
    return [draw(tensors(dtypes=dtypes, shape=s)) for s in shapes]


M = st.one_of(st.integers(-1, 40), st.sampled_from([2.5, None, True]))


@given(data=st.data(), kind=KINDS, m=M, seed=seeds(), offset=seeds())
def test_fuzz_propose(data, kind, m, seed, offset) -> None:
    params = data.draw(proposal_params(kind))
    ok, res = attempt(
        lambda: ops.propose(kind, params, m, seed, offset), ["kind", "params", "m", "seed", "offset"]
    )
    if ok:
        x, log_q = res
        d = params[0].shape[0] if kind != "mixture_normal" else params[1].shape[1]
        assert x.shape == (m, d) and log_q.shape == (m,) and x.dtype == params[0].dtype == log_q.dtype
        if _valid_proposal(kind, params):  # the op leaves value checks to the proposal constructors
            assert bool(torch.isfinite(x).all()) and not bool(torch.isnan(log_q).any())


def _valid_proposal(kind: str, params: list[torch.Tensor]) -> bool:
    """Parameters that rsfast.proposals would accept, small enough that x cannot overflow."""
    if not all(bool(torch.isfinite(p).all()) and bool((p.abs() < 1e15).all()) for p in params):
        return False
    if kind == "uniform":
        return bool((params[1] > params[0]).all())
    return bool((params[-1] > 1e-15).all())


@st.composite
def accept_args(draw):
    m, cap = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    ev = draw(st.sampled_from([(), (2,), (0,), (1, 2)]))
    fit = draw(st.booleans())
    x = draw(tensors(shape=(m, *ev) if fit else None))
    lp_dtype = draw(st.sampled_from(PARAM_DTYPES))
    log_p = draw(tensors(dtypes=(lp_dtype,), shape=(m,) if fit else None))
    log_q = draw(tensors(dtypes=(lp_dtype,) if fit else FLOATS, shape=(m,) if fit else None))
    out = torch.full((cap, *x.shape[1:]), 7, dtype=x.dtype) if fit else draw(tensors())
    counts = torch.zeros(4, dtype=torch.int64) if fit else draw(tensors(max_dims=1, max_side=5))
    mlr = (
        torch.full((1,), -float("inf"), dtype=torch.float64) if fit else draw(tensors(max_dims=1, max_side=2))
    )
    return x, log_p, log_q, out, counts, mlr


def _same_row(a: torch.Tensor, b: torch.Tensor) -> bool:
    """a and b hold the same values, NaN where the other has NaN (rows with only some NaN elements too)."""
    na, nb = a.isnan(), b.isnan()
    return torch.equal(na, nb) and torch.equal(a[~na], b[~nb])


@given(args=accept_args(), log_M=st.one_of(values(), st.sampled_from([None, "1"])), seed=seeds())
def test_fuzz_accept_compact(args, log_M, seed) -> None:
    x, log_p, log_q, out, counts, mlr = args
    before_out = out.clone()
    ok, _ = attempt(
        lambda: ops.accept_compact(x, log_p, log_q, log_M, seed, 0, out, counts, mlr),
        ["x", "log_p", "log_q", "log_M", "seed", "out", "counts", "max_log_ratio"],
    )
    if not ok:
        return
    m, cap = x.shape[0], out.shape[0]
    acc = int(counts[0])
    assert 0 <= acc <= m and all(0 <= int(c) <= m for c in counts)
    n = min(acc, cap)
    # Accepted rows are rows of x, in order; rows past the count are untouched.
    assert torch.equal(out[n:], before_out[n:]) or bool(out[n:].isnan().any())
    j = 0
    for row in out[:n]:
        while j < m and not _same_row(x[j], row):
            j += 1
        assert j < m, "an accepted row is not a row of x in order"
        j += 1


SLOT_LAWS = st.sampled_from(
    ["truncated_normal", "von_mises", "gamma", "beta", "poisson", "binomial", "nope", None]
)


@given(
    law=SLOT_LAWS,
    params=st.lists(tensors(dtypes=PARAM_DTYPES, max_dims=2, max_side=3), max_size=5),
    shape=st.one_of(st.lists(st.integers(-1, 3), max_size=2), st.sampled_from([None, "3", [1.5]])),
    seed=seeds(),
)
def test_fuzz_slot_sample(law, params, shape, seed) -> None:
    # A bad value is reported by the law's parameter name (e.g. "concentration must be > 0").
    param_names = [n for spec in ops.SLOT_LAWS.values() for n in spec.params]
    ok, res = attempt(
        lambda: ops.slot_sample(law, params, shape, seed, 0),
        ["law", "params", "sample_shape", "seed", *param_names],
    )
    if ok:
        out, exhausted = res
        batch = torch.broadcast_shapes(*(p.shape for p in params))
        assert out.shape == (*shape, *batch) and out.dtype == params[0].dtype
        assert exhausted.shape == (1,) and 0 <= int(exhausted[0]) <= out.numel()
        assert int(torch.isnan(out).sum()) == int(exhausted[0]), "NaN samples other than exhausted ones"


@given(
    data=st.data(),
    kind=st.sampled_from(["normal", "uniform", "mixture_normal"]),
    n=st.one_of(st.integers(-1, 30), st.sampled_from([None, 1.5])),
    log_M=st.one_of(values(), st.sampled_from([None])),
    seed=seeds(),
    max_proposals=st.one_of(st.integers(-1, 5000), st.sampled_from([None, 2.5])),
)
def test_fuzz_fused_sample(data, kind, n, log_M, seed, max_proposals) -> None:
    params = data.draw(proposal_params(kind))
    k, d = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    dt = params[0].dtype if params else torch.float32
    fit = data.draw(st.booleans())
    logits, loc, scale = (
        data.draw(tensors(dtypes=(dt,), shape=s if fit else None)) for s in ((k,), (k, d), (k, d))
    )
    ok, res = attempt(
        lambda: ops.fused_sample(kind, params, logits, loc, scale, n, log_M, seed, 0, max_proposals),
        ["kind", "params", "logits", "loc", "scale", "n", "log_M", "seed", "max_proposals"],
    )
    if ok:
        samples, counts, mlr = res
        assert samples.shape == (n, loc.shape[1]) and samples.dtype == dt
        assert counts.shape == (6,) and mlr.shape == (1,)
        assert 0 <= int(counts[0]) <= n
        if int(counts[5]) == 0:
            assert int(counts[0]) == n and bool(torch.isfinite(samples).all())


@given(
    rewards=tensors(dtypes=PARAM_DTYPES + (torch.int64,), max_dims=3),
    offsets=st.one_of(
        st.none(),
        tensors(dtypes=(torch.int64, torch.int32), max_dims=2, elements=st.integers(-2, 9).map(float)),
    ),
    k=st.integers(-1, 5),
    which=st.sampled_from(["best_of_n", "rso", "threshold", "top_fraction", "filter_groups"]),
)
def test_fuzz_select_ops(rewards, offsets, k, which) -> None:
    names = ["rewards", "metric", "offsets", "k", "count", "beta", "min_reward", "max_per_group"]
    calls = {
        "best_of_n": lambda: ops.select_best_of_n(rewards, k, offsets),
        "rso": lambda: ops.select_rso(rewards, k, 1.0, 1, 0, offsets),
        "threshold": lambda: ops.select_threshold(rewards, 0.0, k, offsets),
        "top_fraction": lambda: ops.select_top_fraction(rewards, k),
        "filter_groups": lambda: ops.select_filter_groups(rewards, offsets),
    }
    ok, res = attempt(calls[which], names)
    if not ok:
        return
    m = rewards.numel()
    if which in ("best_of_n", "rso"):
        assert res.dtype == torch.int64 and res.shape[-1] == k
        assert bool((res >= -1).all()) and bool((res < max(m, 1)).all())
    elif which == "threshold":
        flat, counts = res
        assert bool((flat >= 0).all() and (flat < max(m, 1)).all()) and int(counts.sum()) == flat.numel()
    elif which == "top_fraction":
        assert res.numel() == k and bool((res >= 0).all() and (res < max(m, 1)).all())
    else:
        assert res.dtype == torch.bool and res.dim() == 1


@given(keys=tensors(max_dims=2), groups=tensors(max_dims=2))
def test_fuzz_select_dedupe_op(keys, groups) -> None:
    ok, res = attempt(lambda: ops.select_dedupe(keys, groups), ["keys", "groups"])
    if ok:
        assert res.dtype == torch.bool and res.shape == keys.shape


@given(
    log_ratio=tensors(max_dims=2),
    log_M=st.one_of(values(), tensors(max_dims=1, max_side=2)),
    others=st.lists(tensors(max_dims=3), max_size=3),
    seed=seeds(),
    sync=st.booleans(),
)
def test_fuzz_accept_compact_rows_op(log_ratio, log_M, others, seed, sync) -> None:
    ok, res = attempt(
        lambda: ops.accept_compact_rows(log_ratio, log_M, others, seed, 0, sync=sync),
        ["log_ratio", "log_M", "tensors", "seed"],
    )
    if ok:
        outs, count = res
        b = log_ratio.shape[0]
        assert 0 <= int(count) <= b and len(outs) == len(others)
        for o, t in zip(outs, others):
            assert o.dtype == t.dtype and o.shape == (int(count) if sync else b, *t.shape[1:])


@given(ts=st.lists(tensors(max_dims=3), max_size=3), seed=seeds(), scale=values())
def test_fuzz_perturb_op(ts, seed, scale) -> None:
    shapes = [(t.shape, t.dtype) for t in ts]
    ok, _ = attempt(lambda: ops.perturb_(ts, seed, scale), ["tensors", "seed", "scale"])
    assert [(t.shape, t.dtype) for t in ts] == shapes
