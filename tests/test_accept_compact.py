"""ops.accept_compact: agreement with the pure-torch twin (rows, order, counts, max log ratio),
capacity and appending, NaN / inf handling, acceptance frequencies, stability and thread-count
independence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, SEED, accept_buffers, binom_p, gen, run_accept

from rsfast import ops
from rsfast import reference as R

pytestmark = pytest.mark.timeout(60)

IMPLS = {"native": ops.accept_compact, "reference": R.accept_compact}
X_DTYPES = [torch.float32, torch.float64, torch.int64]
ROW_SHAPES = [(), (3,), (4,), (2, 5)]  # rows of 4 to 80 bytes: every fixed-size row copy of the CPU driver


def candidates(
    m: int, row_shape=(), x_dtype=torch.float32, log_dtype=torch.float32, seed: int = 0, specials=True
):
    """x [m, *row_shape] with distinct rows, log_p, log_q [m]; some NaN, -inf and +inf when specials."""
    g = gen(seed)
    x = torch.arange(m * math.prod(row_shape), dtype=torch.float64).reshape(m, *row_shape)
    x = (x * 0.5 - 7).to(x_dtype) if x_dtype.is_floating_point else x.to(x_dtype) * 3 - 11
    lp = (torch.randn(m, generator=g, dtype=torch.float64) * 2).to(log_dtype)
    lq = torch.randn(m, generator=g, dtype=torch.float64).to(log_dtype)
    if specials:
        lp[5::97] = math.nan
        lq[7::101] = math.nan
        lp[11::89] = -math.inf
        lp[13::211] = math.inf
        lp[17::307], lq[17::307] = -math.inf, -math.inf  # inf - inf is NaN
    return x, lp, lq


def assert_same(a, b):
    (oa, ca, ma), (ob, cb, mb) = a, b
    assert torch.equal(ca, cb), (ca, cb)
    assert torch.equal(oa, ob)
    assert torch.equal(ma, mb), (ma, mb)


# ---------------------------------------------------------------- agreement with the twin


@pytest.mark.parametrize("row_shape", ROW_SHAPES, ids=str)
@pytest.mark.parametrize("x_dtype", X_DTYPES, ids=str)
@pytest.mark.parametrize("log_dtype", DTYPES, ids=str)
def test_matches_reference(log_dtype, x_dtype, row_shape):
    x, lp, lq = candidates(5003, row_shape, x_dtype, log_dtype)
    got = run_accept(ops.accept_compact, x, lp, lq, 0.5, SEED, 3)
    ref = run_accept(R.accept_compact, x, lp, lq, 0.5, SEED, 3)
    assert_same(got, ref)
    out, counts, mx = got
    k = int(counts[0])
    assert 0 < k < 5003 and counts[1] > 0 and counts[2] > 0 and counts[3] > 0
    assert mx.dtype == torch.float64 and math.isinf(float(mx))  # +inf rows are in the running max


@pytest.mark.parametrize("log_dtype", DTYPES, ids=str)
def test_accepted_rows_follow_the_decision_rule(log_dtype):
    """Row i is kept iff log u_i < log_p - log_q - log_M, with u_i from Philox stream i (twin's
    log_uniform_accept), and rows keep their order."""
    x, lp, lq = candidates(20_000, (), torch.int64, log_dtype, specials=False)
    x = torch.arange(20_000)
    out, counts, _ = run_accept(ops.accept_compact, x, lp, lq, 0.25, SEED, 9)
    log_u = R.log_uniform_accept(SEED, 20_000, 9, log_dtype, x.device)
    expect = x[log_u < (lp - lq) - torch.tensor(0.25, dtype=log_dtype)]
    assert int(counts[0]) == expect.numel()
    assert torch.equal(out[: expect.numel()], expect)


# ---------------------------------------------------------------- capacity and appending


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_capacity_overflow_keeps_first_rows_and_counts_all(impl):
    x, lp, lq = candidates(4000, (3,), torch.float32)
    full, full_counts, full_mx = run_accept(impl, x, lp, lq, 0.0, SEED, 1)
    total = int(full_counts[0])
    assert total > 100
    buf = torch.full((60, 3), -123.0)
    out = buf[:50]  # rows 50.. of buf must stay untouched (no write past the capacity)
    _, counts, mx = accept_buffers(50, (3,))
    impl(x, lp, lq, 0.0, SEED, 1, out, counts, mx)
    assert torch.equal(out, full[:50])
    assert bool((buf[50:] == -123.0).all())
    assert torch.equal(counts, full_counts) and torch.equal(mx, full_mx)


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_appends_at_existing_count(impl):
    x, lp, lq = candidates(3000, (2, 5), torch.float64)
    first, c1, _ = run_accept(impl, x, lp, lq, 0.0, SEED, 1)
    k = int(c1[0])
    out, counts, mx = accept_buffers(17 + 2 * k + 5, (2, 5), torch.float64, count0=17)
    out[:17] = -1.0
    counts[1:] = torch.tensor([4, 5, 6])
    impl(x, lp, lq, 0.0, SEED, 1, out, counts, mx)
    impl(x, lp, lq, 0.0, SEED, 2, out, counts, mx)  # a second call appends after the first
    second, c2, _ = run_accept(impl, x, lp, lq, 0.0, SEED, 2)
    assert bool((out[:17] == -1.0).all())
    assert torch.equal(out[17 : 17 + k], first[:k])
    assert torch.equal(out[17 + k : 17 + k + int(c2[0])], second[: int(c2[0])])
    assert bool((out[17 + k + int(c2[0]) :] == 0).all())
    assert counts.tolist() == [
        17 + k + int(c2[0]),
        4 + int(c1[1] + c2[1]),
        5 + int(c1[2] + c2[2]),
        6 + int(c1[3] + c2[3]),
    ]


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_count_already_past_capacity_writes_nothing(impl):
    x, lp, lq = candidates(2000, (3,), torch.float32)
    _, ref_counts, _ = run_accept(impl, x, lp, lq, 0.0, SEED, 1)
    out, counts, mx = accept_buffers(10, (3,), count0=25)
    impl(x, lp, lq, 0.0, SEED, 1, out, counts, mx)
    assert bool((out == 0).all())
    assert int(counts[0]) == 25 + int(ref_counts[0])


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_m_zero_changes_nothing(impl):
    out, counts, mx = accept_buffers(4, (3,), count0=2)
    mx.fill_(1.5)
    e = torch.empty(0)
    impl(torch.empty(0, 3), e, e, 0.0, SEED, 0, out, counts, mx)
    assert counts.tolist() == [2, 0, 0, 0] and float(mx) == 1.5 and bool((out == 0).all())


# ---------------------------------------------------------------- NaN and infinities


@pytest.mark.parametrize("log_dtype", DTYPES, ids=str)
@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_nan_and_inf_rows(impl, log_dtype):
    m = 1000
    x = torch.arange(m)
    lp = torch.full((m,), 50.0, dtype=log_dtype)  # log u < 50 - log_M always: every finite row accepts
    lq = torch.zeros(m, dtype=log_dtype)
    nan_rows = torch.arange(0, m, 7)
    lp[nan_rows] = math.nan
    lq[3::50] = math.nan
    lp[5::100], lq[5::100] = math.inf, math.inf  # inf - inf
    lp[1::100] = math.inf
    lp[2::100] = -math.inf
    out, counts, mx = run_accept(impl, x, lp, lq, 1.0, SEED, 4)
    ratio = lp - lq
    is_nan = torch.isnan(ratio)
    posinf = lp == math.inf
    kept = ~is_nan & ~posinf & (lp != -math.inf)
    assert counts.tolist() == [
        int(kept.sum()),
        int(is_nan.sum()),
        int((~is_nan & (ratio > 1.0)).sum()),
        int(posinf.sum()),
    ]
    assert torch.equal(out[: int(counts[0])], x[kept])
    assert float(mx) == math.inf  # +inf - 0 is a (non-NaN) ratio
    lp[1::100] = 49.0
    _, _, mx = run_accept(impl, x, lp, lq, 1.0, SEED, 4)
    assert float(mx) == 50.0  # NaN rows do not enter the running max


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_all_nan_keeps_max_and_counts(impl):
    x = torch.zeros(100, 2)
    lp = torch.full((100,), math.nan)
    out, counts, mx = run_accept(impl, x, lp, torch.zeros(100), 0.0, SEED, 0)
    assert counts.tolist() == [0, 100, 0, 0] and float(mx) == -math.inf


@pytest.mark.parametrize("impl", IMPLS.values(), ids=IMPLS.keys())
def test_running_max_is_not_lowered(impl):
    x, lp, lq = candidates(500, (), torch.float32, specials=False)
    out, counts, mx = accept_buffers(500)
    mx.fill_(1e6)
    impl(x, lp, lq, 0.0, SEED, 0, out, counts, mx)
    assert float(mx) == 1e6


# ---------------------------------------------------------------- acceptance frequencies


M_FREQ = 200_000


def _accepted_with_constant_ratio(a: float, log_dtype, offset=6):
    log_M = 0.75
    lq = torch.full((M_FREQ,), -1.25, dtype=log_dtype)
    lp = lq + log_M + math.log(a)  # log p - log q - log M = log a
    _, counts, _ = run_accept(ops.accept_compact, torch.zeros(M_FREQ, 1), lp, lq, log_M, SEED, offset)
    return int(counts[0])


@pytest.mark.parametrize("a", [0.9, 0.5, 0.1, 0.003])
@pytest.mark.parametrize("log_dtype", DTYPES, ids=str)
def test_accept_fraction_is_binomial(log_dtype, a):
    k = _accepted_with_constant_ratio(a, log_dtype)
    # the float32 log_p is rounded: use the probability the kernel actually sees
    lq = torch.tensor(-1.25, dtype=log_dtype)
    seen = float(
        torch.exp((lq + 0.75 + math.log(a)).to(log_dtype) - lq - torch.tensor(0.75, dtype=log_dtype))
    )
    assert binom_p(k, M_FREQ, seen) > ALPHA


def test_negative_control_binomial_rejects_one_percent_off():
    k = _accepted_with_constant_ratio(0.5, torch.float32)
    assert binom_p(k, M_FREQ, 0.51) < ALPHA and binom_p(k, M_FREQ, 0.49) < ALPHA


@pytest.mark.parametrize("log_dtype", DTYPES, ids=str)
def test_accept_probability_across_levels(log_dtype):
    """Rows with ten different ratios: per-level accepted counts ~ Binomial(rows, min(1, e^ratio)),
    combined as a chi-square of ten squared z scores; ratios above log M always accept."""
    levels = torch.tensor([-6.0, -3.0, -2.0, -1.0, -0.5, -0.2, -0.05, 0.0, 0.3, 2.0], dtype=torch.float64)
    level = torch.arange(M_FREQ) % len(levels)
    lp = levels[level].to(log_dtype)
    x = level.unsqueeze(1)
    out, counts, mx = run_accept(
        ops.accept_compact, x, lp, torch.zeros(M_FREQ, dtype=log_dtype), 0.0, SEED, 8
    )
    acc = torch.bincount(out[: int(counts[0]), 0], minlength=len(levels)).double().numpy()
    n = torch.bincount(level).double().numpy()
    p = np.minimum(1.0, np.exp(levels.to(log_dtype).double().numpy()))
    assert (acc[p == 1] == n[p == 1]).all()
    var = n * p * (1 - p)
    z2 = ((acc - n * p) ** 2 / np.where(var > 0, var, 1))[p < 1]
    assert float(st.chi2.sf(z2.sum(), len(z2))) > ALPHA
    assert int(counts[2]) == int(n[levels.numpy() > 0].sum())  # overweight: ratio > log M
    assert float(mx) == pytest.approx(2.0)


# ---------------------------------------------------------------- order, prefix, threads


def test_stable_order_on_threaded_sizes():
    m = 300_001
    x = torch.arange(m)
    lp = torch.randn(m, generator=gen(3))
    out, counts, _ = run_accept(ops.accept_compact, x, lp, torch.zeros(m), 0.0, SEED, 2)
    kept = out[: int(counts[0])]
    assert kept.numel() > m // 4
    assert bool((kept[1:] > kept[:-1]).all())


def test_decisions_depend_on_row_index_only():
    """A row's decision is the same in a short call and in a long (multi-threaded) one."""
    m = 300_000
    x = torch.arange(m)
    lp = torch.randn(m, generator=gen(4))
    lq = torch.zeros(m)
    long_out, long_counts, _ = run_accept(ops.accept_compact, x, lp, lq, 0.0, SEED, 2)
    short_out, short_counts, _ = run_accept(ops.accept_compact, x[:999], lp[:999], lq[:999], 0.0, SEED, 2)
    k = int(short_counts[0])
    assert torch.equal(long_out[:k], short_out[:k])
    assert int(long_out[k]) >= 999


@pytest.mark.timeout(180)
def test_thread_count_independence(digests_by_threads):
    """Bitwise-equal out, counts and max with OMP_NUM_THREADS = 1, 2, 3 (300k rows, child processes)."""
    for t, res in digests_by_threads.items():
        assert res["torch_threads"] == t and res["openmp_threads"] == t
    keys = [k for k in digests_by_threads[1] if k.startswith("accept_compact/")]
    assert len(keys) == 2
    for k in keys:
        assert len({res[k] for res in digests_by_threads.values()}) == 1, k


# ---------------------------------------------------------------- strided arguments


@pytest.mark.parametrize("which", ["log_p", "log_q", "counts"])
def test_strided_arguments_are_read_and_written_correctly(which):
    """Views with a stride (a column of a [m, 2] tensor, every other slot of a buffer) must either
    work like their contiguous copies or be refused with a ValueError naming the argument; the
    kernel must not read or write them as if they were contiguous."""
    x, lp, lq = candidates(4001, (3,), torch.float32, torch.float32, specials=True)
    expect = run_accept(R.accept_compact, x, lp, lq, 0.5, SEED, 3)
    out, counts, mx = accept_buffers(4001, (3,))
    args = dict(log_p=lp, log_q=lq, counts=counts)
    if which in ("log_p", "log_q"):
        wide = torch.stack([args[which], torch.full_like(args[which], 100.0)], 1)
        args[which] = wide[:, 0]
    else:
        wide = torch.stack([args[which], torch.zeros_like(args[which])], 1).reshape(-1)
        args[which] = wide[::2]
    assert not args[which].is_contiguous()
    try:
        ops.accept_compact(x, args["log_p"], args["log_q"], 0.5, SEED, 3, out, args["counts"], mx)
    except ValueError as e:
        assert which in str(e)
        return
    assert_same((out, args["counts"], mx), expect)
