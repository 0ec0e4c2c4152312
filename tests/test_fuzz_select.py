"""Fuzzing rsfast.select, rsfast.accept_compact_rows and rsfast.perturb_: every call returns a valid
result (shapes, dtypes, indices in range, the selected rows are the input's) or raises an error naming
an argument."""

from __future__ import annotations

import math

import pytest
import torch
from _fuzz import FLOATS, INTS, attempt, seeds, tensors, values
from hypothesis import given
from hypothesis import strategies as st

import rsfast
from rsfast import select

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]


@st.composite
def offsets_for(draw, m: int):
    """None, valid offsets for m flat values, or broken ones (any dtype, unsorted, out of range)."""
    kind = draw(st.sampled_from(["none", "valid", "valid", "broken"]))
    if kind == "none":
        return None
    if kind == "valid":
        cuts = sorted(draw(st.lists(st.integers(0, m), max_size=4)))
        return torch.tensor([0, *cuts, m], dtype=torch.int64)
    return draw(
        tensors(dtypes=[*INTS, torch.float32, torch.bool], max_dims=2, elements=st.integers(-3, 9).map(float))
    )


@st.composite
def rewards_and_offsets(draw):
    rewards = draw(tensors(max_dims=3))
    offsets = draw(offsets_for(rewards.numel()))
    return rewards, offsets


def _groups(rewards: torch.Tensor, offsets) -> list[int]:
    """Group sizes of a call that succeeded."""
    if offsets is None:
        return [rewards.shape[1]] * rewards.shape[0] if rewards.dim() == 2 else [rewards.numel()]
    o = offsets.tolist()
    return [b - a for a, b in zip(o[:-1], o[1:])]


def _check_topk(idx: torch.Tensor, rewards, offsets, k: int) -> None:
    sizes = _groups(rewards, offsets)
    assert idx.dtype == torch.int64 and idx.shape == (len(sizes), k), (idx.shape, len(sizes), k)
    for row, size in zip(idx.tolist(), sizes):
        real = [i for i in row if i != -1]
        assert len(real) == min(k, size) and all(0 <= i < size for i in real), (row, size)
        assert len(set(real)) == len(real), f"repeated index in {row}"
        assert row[len(real) :] == [-1] * (k - len(real)), f"padding not at the end: {row}"


K = st.one_of(st.integers(-1, 6), st.sampled_from([1.0, True, "2", None]))


@given(ro=rewards_and_offsets(), k=K)
def test_fuzz_best_of_n(ro, k) -> None:
    rewards, offsets = ro
    ok, idx = attempt(lambda: select.best_of_n(rewards, k, offsets=offsets), ["rewards", "k", "offsets"])
    if ok:
        _check_topk(idx, rewards, offsets, k)


@given(
    ro=rewards_and_offsets(),
    k=K,
    beta=st.one_of(values(), st.sampled_from([None, "1"])),
    seed=st.integers(0, 9),
)
def test_fuzz_rso(ro, k, beta, seed) -> None:
    rewards, offsets = ro
    g = torch.Generator().manual_seed(seed)
    ok, idx = attempt(
        lambda: select.rso(rewards, k, beta, offsets=offsets, generator=g),
        ["rewards", "k", "beta", "offsets"],
    )
    if ok:
        _check_topk(idx, rewards, offsets, k)


@given(
    ro=rewards_and_offsets(),
    min_reward=st.one_of(values(), st.sampled_from([None, "0"])),
    cap=st.one_of(st.none(), st.integers(-1, 4), st.sampled_from([1.5])),
)
def test_fuzz_threshold(ro, min_reward, cap) -> None:
    rewards, offsets = ro
    ok, res = attempt(
        lambda: select.threshold(rewards, min_reward, max_per_group=cap, offsets=offsets),
        ["rewards", "min_reward", "max_per_group", "offsets"],
    )
    if not ok:
        return
    flat, counts = res
    sizes = _groups(rewards, offsets)
    assert flat.dtype == torch.int64 and counts.dtype == torch.int64 and counts.shape == (len(sizes),)
    assert flat.dim() == 1 and int(counts.sum()) == flat.numel()
    assert bool((flat >= 0).all()) and bool((flat < max(rewards.numel(), 1)).all())
    assert bool((flat[1:] > flat[:-1]).all()), "indices not increasing"
    r = rewards.detach().reshape(-1).to(torch.float64 if not rewards.is_complex() else rewards.dtype)
    assert bool((r[flat].real >= min_reward).all()), "a kept reward is below the bar"
    if cap is not None:
        assert bool((counts <= cap).all())


@given(ro=rewards_and_offsets(), fraction=st.one_of(values(), st.sampled_from([None, "0.5", 1])))
def test_fuzz_top_fraction(ro, fraction) -> None:
    rewards, offsets = ro
    ok, idx = attempt(
        lambda: select.top_fraction(rewards, fraction, offsets=offsets), ["rewards", "fraction", "offsets"]
    )
    if ok:
        m = rewards.numel()
        assert idx.dtype == torch.int64 and idx.dim() == 1
        assert idx.numel() == min(m, math.ceil(fraction * m - 1e-9 * fraction * m))
        assert bool((idx >= 0).all() and (idx < max(m, 1)).all()) and bool((idx[1:] > idx[:-1]).all())


@given(ro=rewards_and_offsets())
def test_fuzz_filter_groups(ro) -> None:
    metric, offsets = ro
    ok, keep = attempt(lambda: select.filter_groups(metric, offsets=offsets), ["metric", "offsets"])
    if ok:
        sizes = _groups(metric, offsets)
        assert keep.dtype == torch.bool and keep.shape == (len(sizes),)
        assert not any(bool(kp) for kp, s in zip(keep.tolist(), sizes) if s < 2)


@given(keys=tensors(max_dims=2), groups=tensors(max_dims=2))
def test_fuzz_dedupe(keys, groups) -> None:
    ok, first = attempt(lambda: select.dedupe(keys, groups), ["keys", "groups"])
    if ok:
        assert first.dtype == torch.bool and first.shape == keys.shape
        pairs = list(zip(groups.tolist(), keys.tolist()))
        seen: set = set()
        for i, pair in enumerate(pairs):
            assert bool(first[i]) == (pair not in seen), (i, pair)
            seen.add(pair)


# ---------------------------------------------------------------- accept_compact_rows


@st.composite
def rows_args(draw):
    b = draw(st.integers(0, 6))
    log_ratio = draw(st.one_of(tensors(shape=(b,)), tensors(max_dims=2)))
    others = [draw(st.one_of(tensors(shape=(b, *draw(st.sampled_from([(), (0,), (1,), (3,), (2, 2)])))),
                             tensors(max_dims=2)))
              for _ in range(draw(st.integers(0, 3)))]  # fmt: skip
    log_M = draw(
        st.one_of(values(), tensors(dtypes=FLOATS, max_dims=1, max_side=2), st.sampled_from([None, "0"]))
    )
    return log_ratio, log_M, others


@given(args=rows_args(), sync=st.booleans(), seed=st.integers(0, 9))
def test_fuzz_accept_compact_rows(args, sync, seed) -> None:
    log_ratio, log_M, others = args
    g = torch.Generator().manual_seed(seed)
    ok, res = attempt(
        lambda: rsfast.accept_compact_rows(log_ratio, log_M, *others, generator=g, sync=sync),
        ["log_ratio", "log_M", "tensors", "generator"],
    )
    if not ok:
        return
    *outs, count = res
    b = log_ratio.shape[0]
    assert count.dtype == torch.int64 and count.dim() == 0 and 0 <= int(count) <= b
    c = int(count)
    for src, out in zip(others, outs):
        assert out.dtype == src.dtype and out.shape[1:] == src.shape[1:]
        assert out.shape[0] == (c if sync else b)
        if not sync:
            assert bool((out[c:] == 0).all()), "rows past the count are not zero"
    # The kept rows are input rows in increasing order: find them in the first tensor's rows.
    if others and c and others[0][0].numel():
        src = others[0].reshape(b, -1)
        kept = outs[0][:c].reshape(c, -1)
        j = 0
        for row in kept:
            while j < b and not torch.equal(src[j], row) and not bool((src[j].isnan() & row.isnan()).any()):
                j += 1
            assert j < b, "a kept row is not an input row in order"
            j += 1


# ---------------------------------------------------------------- perturb_


@given(
    ts=st.one_of(
        st.lists(tensors(max_dims=3), max_size=3), tensors(max_dims=2), st.sampled_from([None, [1.0]])
    ),
    seed=seeds(),
    scale=st.one_of(values(), st.sampled_from([None, "1"])),
)
def test_fuzz_perturb(ts, seed, scale) -> None:
    as_list = ts if isinstance(ts, list) else [ts] if isinstance(ts, torch.Tensor) else []
    as_list = [t for t in as_list if isinstance(t, torch.Tensor)]
    before = [t.clone() for t in as_list]
    ok, res = attempt(lambda: rsfast.perturb_(ts, seed, scale), ["tensors", "seed", "scale"])
    for t, b in zip(as_list, before):
        assert t.shape == b.shape and t.dtype == b.dtype
        same = bool(((t == b) | (t.isnan() & b.isnan())).all())
        if not ok or scale == 0:  # an error leaves every tensor untouched; scale 0 changes nothing
            assert same, "tensor changed"
    if ok:
        assert res is None
