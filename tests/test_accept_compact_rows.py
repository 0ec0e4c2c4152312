"""ops.accept_compact_rows / rsfast.accept_compact_rows: bit-exact agreement with the pure-torch twin,
stable order, dtypes and shapes, empty / all / none accepted, acceptance frequencies (binomial and
chi-square, with a negative control), determinism and thread-count independence, autograd, bad inputs,
opcheck and torch.compile."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, SEED, TESTS_DIR, _child_env, binom_p, gen

import rsfast
from rsfast import ops
from rsfast import reference as R

pytestmark = pytest.mark.timeout(60)

LOG_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
ROW_CASES = [
    (torch.float32, (16,)),
    (torch.int64, ()),
    (torch.bool, (3,)),
    (torch.bfloat16, (2, 5)),
    (torch.float64, (7,)),
    (torch.uint8, (3,)),
    (torch.complex64, ()),
    (torch.float32, (0,)),  # rows of zero bytes
    # Rows of 12, 24, 48 and 128 bytes: with the cases above, every row size the CPU gather has a
    # fixed-size copy for (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128) and the generic copy.
    (torch.float32, (3,)),
    (torch.float64, (3,)),
    (torch.float32, (12,)),
    (torch.float64, (16,)),
]


def batch(b: int, seed: int = 0, log_dtype=torch.float32, specials: bool = True):
    """log_ratio [b] (NaN, +inf, -inf when specials) and one tensor per ROW_CASES entry, rows distinct."""
    g = gen(seed)
    lr = (torch.randn(b, generator=g, dtype=torch.float64) * 1.5).to(log_dtype)
    if specials:
        lr[5::97] = math.nan
        lr[11::89] = -math.inf
        lr[13::211] = math.inf
    tensors = []
    for dtype, shape in ROW_CASES:
        n = math.prod(shape)
        base = torch.arange(b * n, dtype=torch.int64).reshape(b, *shape)
        if dtype == torch.bool:
            t = (base % 3) == 0
        elif dtype == torch.complex64:
            t = torch.complex(base.float(), -base.float())
        elif dtype == torch.uint8:
            t = (base % 251).to(torch.uint8)
        else:
            t = base.to(dtype)
        tensors.append(t)
    return lr, tensors


def assert_same(got, ref):
    (go, gc), (ro, rc) = got, ref
    assert gc.dtype == torch.int64 and gc.dim() == 0 and int(gc) == int(rc)
    assert len(go) == len(ro)
    for a, b in zip(go, ro):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)


# ---------------------------------------------------------------- agreement with the twin


@pytest.mark.parametrize("sync", [True, False])
@pytest.mark.parametrize("log_dtype", LOG_DTYPES, ids=str)
def test_matches_reference(log_dtype, sync):
    lr, tensors = batch(5003, log_dtype=log_dtype)
    got = ops.accept_compact_rows(lr, 0.3, tensors, SEED, 7, sync=sync)
    ref = R.accept_compact_rows(lr, 0.3, tensors, SEED, 7, sync=sync)
    assert_same(got, ref)
    k = int(got[1])
    assert 0 < k < 5003
    expect_rows = k if sync else 5003
    assert all(o.shape[0] == expect_rows for o in got[0])


@pytest.mark.parametrize("log_dtype", [torch.float32, torch.float64], ids=str)
def test_rows_follow_the_decision_rule(log_dtype):
    """Row b is kept iff log u_b < log_ratio[b] - log_M, u_b from Philox stream b (the twin's
    log_uniform_accept, shared with accept_compact), in row order; NaN rejects, +inf accepts."""
    b = 20_000
    lr, _ = batch(b, 1, log_dtype)
    rows = torch.arange(b)
    (kept,), count = ops.accept_compact_rows(lr, -0.25, [rows], SEED, 9)
    log_u = R.log_uniform_accept(SEED, b, 9, log_dtype, rows.device)
    expect = rows[log_u < lr - torch.tensor(-0.25, dtype=log_dtype)]
    assert torch.equal(kept, expect) and int(count) == expect.numel()
    assert not bool(torch.isnan(lr[kept]).any())
    assert bool(torch.isin(rows[lr == math.inf], kept).all())
    assert not bool(torch.isin(rows[lr == -math.inf], kept).any())


def test_same_uniforms_as_accept_compact():
    """accept_compact_rows(log_ratio) decides like accept_compact(log_p = log_ratio, log_q = 0)."""
    b = 10_000
    lr = torch.randn(b, generator=gen(2))
    x = torch.arange(b).unsqueeze(1)
    out = torch.zeros_like(x)
    counts = torch.zeros(4, dtype=torch.int64)
    ops.accept_compact(x, lr, torch.zeros(b), 0.4, SEED, 4, out, counts, torch.full((1,), -math.inf).double())
    (kept,), count = ops.accept_compact_rows(lr, 0.4, [x], SEED, 4)
    assert int(count) == int(counts[0]) and torch.equal(kept, out[: int(count)])


def test_stable_order_on_threaded_sizes():
    b = 300_001
    rows = torch.arange(b)
    (kept, feats), count = ops.accept_compact_rows(
        torch.randn(b, generator=gen(3)), 0.0, [rows, rows.double().unsqueeze(1).expand(b, 4)], SEED, 2
    )
    assert b // 4 < int(count) < b
    assert bool((kept[1:] > kept[:-1]).all())
    assert torch.equal(feats, kept.double().unsqueeze(1).expand(-1, 4))  # expanded input: copied first


def test_sync_false_tail_is_zero_and_prefix_equals_sync():
    lr, tensors = batch(3001, 4)
    outs, count = ops.accept_compact_rows(lr, 0.0, tensors, SEED, 1, sync=False)
    exact, count2 = ops.accept_compact_rows(lr, 0.0, tensors, SEED, 1, sync=True)
    k = int(count)
    assert k == int(count2)
    for o, e in zip(outs, exact):
        assert o.shape[0] == 3001 and torch.equal(o[:k], e)
        assert not bool(o[k:].bool().any())


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("sync", [True, False])
def test_empty_batch(sync):
    lr = torch.empty(0)
    outs, count = ops.accept_compact_rows(
        lr, 0.0, [torch.empty(0, 3), torch.empty(0, dtype=torch.int64)], SEED, 0, sync=sync
    )
    assert int(count) == 0 and [tuple(o.shape) for o in outs] == [(0, 3), (0,)]
    assert outs[1].dtype == torch.int64


@pytest.mark.parametrize("sync", [True, False])
def test_all_and_none_accepted(sync):
    b = 70_001
    x = torch.arange(b)
    (kept,), count = ops.accept_compact_rows(torch.full((b,), 40.0), 0.0, [x], SEED, 0, sync=sync)
    assert int(count) == b and torch.equal(kept, x)
    for lr in (torch.full((b,), -60.0), torch.full((b,), math.nan), torch.full((b,), -math.inf)):
        (kept,), count = ops.accept_compact_rows(lr, 0.0, [x], SEED, 0, sync=sync)
        assert int(count) == 0 and kept.shape[0] == (0 if sync else b)
        assert not bool(kept.any())


def test_no_tensors_gives_the_count():
    lr = torch.randn(1000, generator=gen(6))
    outs, count = ops.accept_compact_rows(lr, 0.0, [], SEED, 0)
    (_,), count2 = ops.accept_compact_rows(lr, 0.0, [torch.zeros(1000)], SEED, 0)
    assert outs == [] and int(count) == int(count2)
    assert len(rsfast.accept_compact_rows(lr, 0.0)) == 1


def test_log_M_tensor_equals_float():
    lr, tensors = batch(4000, 5, specials=False)
    a = ops.accept_compact_rows(lr, 0.7, tensors, SEED, 3)
    for lm in (torch.tensor(0.7), torch.tensor(0.7, dtype=torch.float64), torch.tensor([0.7])):
        assert_same(ops.accept_compact_rows(lr, lm, tensors, SEED, 3), a)
        assert_same(R.accept_compact_rows(lr, lm, tensors, SEED, 3), a)


# ---------------------------------------------------------------- acceptance frequencies


N_FREQ = 200_000


def _accepted(a: float, log_dtype=torch.float32, offset: int = 6) -> int:
    log_M = 0.75
    lr = torch.full((N_FREQ,), log_M + math.log(a), dtype=log_dtype)
    return int(ops.accept_compact_rows(lr, log_M, [], SEED, offset)[1])


@pytest.mark.parametrize("a", [0.9, 0.5, 0.1, 0.003])
def test_accept_fraction_is_binomial(a):
    k = _accepted(a)
    seen = float(torch.exp(torch.tensor(0.75 + math.log(a)) - torch.tensor(0.75)))  # float32 rounding
    assert binom_p(k, N_FREQ, seen) > ALPHA


def test_negative_control_binomial_rejects_one_percent_off():
    k = _accepted(0.5)
    assert binom_p(k, N_FREQ, 0.51) < ALPHA and binom_p(k, N_FREQ, 0.49) < ALPHA


def test_accept_probability_across_levels():
    """Per-level accepted counts ~ Binomial(rows, min(1, e^(ratio - log M))), as a chi-square of squared z
    scores; ratios above log M always accept."""
    levels = torch.tensor([-6.0, -3.0, -2.0, -1.0, -0.5, -0.2, -0.05, 0.0, 0.3, 2.0], dtype=torch.float64)
    level = torch.arange(N_FREQ) % len(levels)
    (acc_level,), count = ops.accept_compact_rows(levels[level], 0.0, [level], SEED, 8)
    acc = torch.bincount(acc_level, minlength=len(levels)).double().numpy()
    n = torch.bincount(level).double().numpy()
    p = np.minimum(1.0, np.exp(levels.numpy()))
    assert (acc[p == 1] == n[p == 1]).all()
    var = n * p * (1 - p)
    z2 = ((acc - n * p) ** 2 / np.where(var > 0, var, 1))[p < 1]
    assert float(st.chi2.sf(z2.sum(), len(z2))) > ALPHA


# ---------------------------------------------------------------- determinism and threads


def test_generator_determinism():
    lr, tensors = batch(5000, 7)
    a = rsfast.accept_compact_rows(lr, 0.0, *tensors, generator=gen(11))
    b = rsfast.accept_compact_rows(lr, 0.0, *tensors, generator=gen(11))
    c = rsfast.accept_compact_rows(lr, 0.0, *tensors, generator=gen(12))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert len(a) == len(tensors) + 1 and a[-1].dim() == 0


def test_thread_count_in_process():
    lr, tensors = batch(200_003, 8)
    torch.set_num_threads(1)
    one = ops.accept_compact_rows(lr, 0.1, tensors, SEED, 2)
    torch.set_num_threads(2)
    two = ops.accept_compact_rows(lr, 0.1, tensors, SEED, 2)
    assert_same(one, two)


def test_thread_count_independence_in_child():
    """Bitwise-equal outputs in a fresh interpreter with OMP_NUM_THREADS = 3 and here with 1 thread
    (300k rows; the probe's digests, computed the same way on both sides)."""
    sys.path.insert(0, str(TESTS_DIR))
    import _accept_compact_rows_probe as probe

    proc = subprocess.run(
        [sys.executable, str(TESTS_DIR / "_accept_compact_rows_probe.py")],
        env=_child_env(3), capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["torch_threads"] == 3 and child["openmp_threads"] == 3
    torch.set_num_threads(1)
    here = probe.digests()
    assert len(here) == 4
    for k, v in here.items():
        assert child[k] == v, k


# ---------------------------------------------------------------- autograd


def test_gradient_goes_to_source_rows():
    b = 3000
    lr = torch.randn(b, generator=gen(9))
    x = torch.randn(b, 4, generator=gen(10), requires_grad=True)
    w = torch.linspace(0, 1, 4)
    for sync in (True, False):
        (kept,), count = ops.accept_compact_rows(lr, 0.0, [x], SEED, 1, sync=sync)
        (kept * w).sum().backward()
        keep = R.log_uniform_accept(SEED, b, 1, torch.float32, x.device) < lr
        assert torch.equal(x.grad, keep.float().unsqueeze(1) * w)
        x.grad = None


# ---------------------------------------------------------------- bad input


def test_bad_inputs():
    lr = torch.zeros(10)
    x = torch.zeros(10, 2)
    cases = [
        (TypeError, "log_ratio", lambda: ops.accept_compact_rows([0.0] * 10, 0.0, [x], 1)),
        (
            TypeError,
            "log_ratio",
            lambda: ops.accept_compact_rows(torch.zeros(10, dtype=torch.int64), 0.0, [x], 1),
        ),
        (ValueError, "log_ratio", lambda: ops.accept_compact_rows(torch.zeros(10, 1), 0.0, [x], 1)),
        (ValueError, "tensors[1]", lambda: ops.accept_compact_rows(lr, 0.0, [x, torch.zeros(9)], 1)),
        (ValueError, "tensors[0]", lambda: ops.accept_compact_rows(lr, 0.0, [torch.tensor(1.0)], 1)),
        (TypeError, "tensors[0]", lambda: ops.accept_compact_rows(lr, 0.0, [x.numpy()], 1)),
        (TypeError, "tensors", lambda: ops.accept_compact_rows(lr, 0.0, x, 1)),
        (ValueError, "log_M", lambda: ops.accept_compact_rows(lr, math.nan, [x], 1)),
        (ValueError, "log_M", lambda: ops.accept_compact_rows(lr, math.inf, [x], 1)),
        (ValueError, "log_M", lambda: ops.accept_compact_rows(lr, torch.tensor(-math.inf), [x], 1)),
        (ValueError, "log_M", lambda: ops.accept_compact_rows(lr, torch.zeros(2), [x], 1)),
        (TypeError, "log_M", lambda: ops.accept_compact_rows(lr, torch.tensor(1), [x], 1)),
        (TypeError, "log_M", lambda: ops.accept_compact_rows(lr, "1.0", [x], 1)),
        (TypeError, "log_M", lambda: ops.accept_compact_rows(lr, True, [x], 1)),
        (TypeError, "seed", lambda: ops.accept_compact_rows(lr, 0.0, [x], 1.5)),
        (ValueError, "seed", lambda: ops.accept_compact_rows(lr, 0.0, [x], -1)),
        (TypeError, "sync", lambda: ops.accept_compact_rows(lr, 0.0, [x], 1, sync=1)),
        (ValueError, "tensors[0] is on meta", lambda: ops.accept_compact_rows(lr, 0.0, [x.to("meta")], 1)),
        (TypeError, "generator", lambda: rsfast.accept_compact_rows(lr, 0.0, x, generator=0)),
    ]
    for exc, word, fn in cases:
        with pytest.raises(exc, match=word.replace("[", r"\[").replace("]", r"\]")):
            fn()


# ---------------------------------------------------------------- custom op


@pytest.mark.parametrize("log_M_tensor", [False, True])
@pytest.mark.parametrize("log_dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_opcheck(log_dtype, log_M_tensor):
    lr, tensors = batch(600, 12, log_dtype)
    lm = torch.tensor(0.2, dtype=log_dtype) if log_M_tensor else None
    x = torch.randn(600, 3, generator=gen(1), requires_grad=True)
    torch.library.opcheck(ops.accept_compact_rows_op, (lr, 0.2, lm, [x, *tensors[1:4]], SEED, 3))


def test_opcheck_empty():
    torch.library.opcheck(
        ops.accept_compact_rows_op, (torch.empty(0), 0.0, None, [torch.empty(0, 2)], SEED, 0)
    )


def _step(x, y, lr, head):
    (xa, ya), count = ops.accept_compact_rows(lr, 0.5, [x, y], SEED, 3, sync=False)
    valid = (torch.arange(x.shape[0]) < count).float()
    loss = torch.nn.functional.cross_entropy(xa @ head, ya, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp(min=1), count


@pytest.mark.timeout(120)
def test_compile_fullgraph_step_matches_eager():
    g = gen(13)
    x, y = torch.randn(4096, 5, generator=g), torch.randint(0, 3, (4096,), generator=g)
    lr, head = torch.randn(4096, generator=g), torch.randn(5, 3, generator=g)
    eager = _step(x, y, lr, head)
    torch._dynamo.reset()
    comp = torch.compile(_step, fullgraph=True, backend="aot_eager")(x, y, lr, head)
    assert int(eager[1]) == int(comp[1]) and torch.allclose(eager[0], comp[0], rtol=1e-6, atol=1e-6)


def _step_exact(x, lr):
    (xa,), count = ops.accept_compact_rows(lr, 0.0, [x], SEED, 4, sync=True)
    return xa.sum(0), count


@pytest.mark.timeout(120)
def test_compile_fullgraph_sync_true_with_captured_scalars():
    """sync=True reads the count (.item()): fullgraph compiles with capture_scalar_outputs."""
    g = gen(14)
    x, lr = torch.randn(3000, 3, generator=g), torch.randn(3000, generator=g)
    eager = _step_exact(x, lr)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(capture_scalar_outputs=True):
        comp = torch.compile(_step_exact, fullgraph=True, backend="aot_eager")(x, lr)
    assert int(eager[1]) == int(comp[1]) and torch.allclose(eager[0], comp[0])
