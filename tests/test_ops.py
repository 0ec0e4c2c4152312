"""The torch custom ops rsfast::propose and rsfast::accept_compact: torch.library.opcheck (schema,
autograd registration, fake kernels, AOT dispatch) and torch.compile(fullgraph=True) of a round."""

from __future__ import annotations

import pytest
import torch
from _helpers import DTYPES, KINDS, SEED, accept_buffers, proposal_params

from rsfast import ops

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_opcheck_propose(kind, dtype):
    torch.library.opcheck(ops.propose_op, (kind, proposal_params(kind, 3, dtype), 257, SEED, 5))


def test_opcheck_propose_empty():
    torch.library.opcheck(ops.propose_op, ("normal", proposal_params("normal", 2), 0, SEED, 0))


@pytest.mark.parametrize(
    "row_shape,x_dtype,log_dtype",
    [
        ((3,), torch.float32, torch.float32),
        ((), torch.int64, torch.float64),
        ((2, 5), torch.float64, torch.float32),
    ],
    ids=str,
)
def test_opcheck_accept_compact(row_shape, x_dtype, log_dtype):
    """All four default checks apply: opcheck gives every sub-test its own copies of the arguments
    (the caller's counts stay untouched below), so the accumulating mutations of out, counts and
    max_log_ratio do not leak from one sub-test into the next; test_schema checks that exactly the
    three declared arguments are mutated."""
    m = 1000
    g = torch.Generator().manual_seed(0)
    x = (torch.randn((m, *row_shape), generator=g) * 10).to(x_dtype)
    log_p = torch.randn(m, generator=g).to(log_dtype)
    log_q = torch.zeros(m, dtype=log_dtype)
    out, counts, mx = accept_buffers(m // 2, row_shape, x_dtype, count0=3)
    torch.library.opcheck(ops.accept_compact_op, (x, log_p, log_q, 0.25, SEED, 1, out, counts, mx))
    assert counts.tolist() == [3, 0, 0, 0]


def _round(loc, scale, out, counts, mx, *, kind="normal", extra=(), m=4096, seed=SEED, offset=10):
    """One full engine round: propose, a torch log_target, accept_compact."""
    x, lq = ops.propose(kind, [*extra, loc, scale], m, seed, offset)
    z = (x - 0.5) * 1.25  # arithmetic that inductor reproduces bit for bit (no division, no libm)
    lp = -0.5 * (z * z).sum(-1) + 0.1 * x[:, 0]
    ops.accept_compact(x, lp, lq, 1.5, seed, offset + 1, out, counts, mx)
    return x, lq, lp


def _compare_compiled(backend, dtype, kind="normal", extra=()):
    loc = torch.zeros(2, dtype=dtype) if kind == "normal" else torch.zeros(2, 2, dtype=dtype)
    scale = torch.full_like(loc, 1.5)
    if kind == "mixture_normal":
        loc[1] = 2.0
    eager_buf = accept_buffers(4096, (2,), dtype)
    comp_buf = accept_buffers(4096, (2,), dtype)
    eager = _round(loc, scale, *eager_buf, kind=kind, extra=extra)
    torch._dynamo.reset()
    compiled_fn = torch.compile(_round, fullgraph=True, backend=backend)
    comp = compiled_fn(loc, scale, *comp_buf, kind=kind, extra=extra)
    names = ("x", "log_q", "log_p", "out", "counts", "max_log_ratio")
    for name, a, b in zip(names, eager + eager_buf, comp + comp_buf):
        assert torch.equal(a, b), name
    assert 0 < int(comp_buf[1][0]) < 4096


@pytest.mark.timeout(240)
def test_compile_fullgraph_inductor_matches_eager():
    _compare_compiled("inductor", torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_compile_fullgraph_aot_eager_mixture(dtype):
    _compare_compiled(
        "aot_eager", dtype, kind="mixture_normal", extra=(torch.tensor([0.2, -0.1], dtype=dtype),)
    )


def test_fake_kernels_give_shapes_without_running():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x, lq = ops.propose("mixture_normal", proposal_params("mixture_normal", 4), 123, SEED, 0)
        assert x.shape == (123, 4) and lq.shape == (123,)
        out, counts, mx = accept_buffers(10, (4,))
        assert ops.accept_compact(x, lq, lq, 0.0, SEED, 1, out, counts, mx) is None
        with pytest.raises(ValueError, match="log_p"):
            ops.accept_compact(x, lq[:5], lq, 0.0, SEED, 1, out, counts, mx)  # fake kernels validate too
