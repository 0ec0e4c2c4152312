"""CUDA kernels against their CPU twins (csrc/cuda vs csrc/cpu).

Skipped unless torch sees a CUDA device and rsfast was built with usable CUDA
kernels. The CUDA drivers are compiled with --fmad=false, so float32 decisions
are bit-identical to the CPU's; float64 uses the device log (within 1 ulp of
glibc's), so a row could in principle flip, with probability ~1e-16 per row.
"""

from __future__ import annotations

import math

import pytest
import torch

import rsfast
from rsfast import ops

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip(
        f"rsfast CUDA kernels not usable: {rsfast.build_info().get('cuda_unusable_reason', '')}",
        allow_module_level=True,
    )

DEV = torch.device("cuda")
CPU = torch.device("cpu")
DTYPES = [torch.float32, torch.float64]
SEED = 0x0123_4567_89AB_CDEF  # both key words non-zero
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-5, atol=1e-9)}


def to(ts, device):
    return [t.to(device) for t in ts]


# ---------------------------------------------------------------------------- propose


def proposal_params(kind: str, dim: int, dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(dim)
    if kind == "normal":
        return [torch.linspace(-1, 2, dim, dtype=dtype), torch.linspace(0.5, 2, dim, dtype=dtype)]
    if kind == "uniform":
        low = torch.linspace(-3, 0, dim, dtype=dtype)
        return [low, low + torch.linspace(0.5, 4, dim, dtype=dtype)]
    k = 3
    return [
        torch.tensor([0.3, -0.2, 1.0], dtype=dtype),
        torch.randn(k, dim, generator=g).to(dtype) * 3,
        (torch.rand(k, dim, generator=g) + 0.5).to(dtype),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "uniform", "mixture_normal"])
@pytest.mark.parametrize("dim", [1, 2, 3, 5, 8])
def test_propose_matches_cpu(kind, dim, dtype):
    m, offset = 10_001, 7
    params = proposal_params(kind, dim, dtype)
    x_c, lq_c = ops.propose(kind, params, m, SEED, offset)
    x_g, lq_g = ops.propose(kind, to(params, DEV), m, SEED, offset)
    torch.cuda.synchronize()
    assert x_g.device.type == "cuda" and x_g.shape == (m, dim) and lq_g.shape == (m,)
    assert x_g.dtype == dtype and lq_g.dtype == dtype
    x_g, lq_g = x_g.cpu(), lq_g.cpu()
    assert torch.isfinite(x_g).all() and torch.isfinite(lq_g).all()
    if kind != "mixture_normal":
        torch.testing.assert_close(x_g, x_c, **TOL[dtype])
        torch.testing.assert_close(lq_g, lq_c, rtol=1e-5, atol=1e-4 if dtype == torch.float32 else 1e-9)
        return
    # Mixture: the cumulative weights are derived by torch on each device and may differ in the last
    # ulp, which can send a row whose uniform falls exactly between them to another component. Allow
    # a tiny fraction of such rows; all others must agree.
    same = torch.isclose(x_g, x_c, **TOL[dtype]).all(1)
    assert int((~same).sum()) <= max(1, m // 1000)
    torch.testing.assert_close(
        lq_g[same], lq_c[same], rtol=1e-5, atol=1e-4 if dtype == torch.float32 else 1e-9
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_propose_offsets_and_seeds_differ(dtype):
    params = to(proposal_params("normal", 4, dtype), DEV)
    a, _ = ops.propose("normal", params, 4096, SEED, 0)
    b, _ = ops.propose("normal", params, 4096, SEED, 1)
    c, _ = ops.propose("normal", params, 4096, SEED + 1, 0)
    a2, _ = ops.propose("normal", params, 4096, SEED, 0)
    assert torch.equal(a, a2)
    assert not torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_propose_large_m_moments(dtype):
    m = 1 << 21
    loc, scale = torch.tensor([1.0, -2.0], dtype=dtype), torch.tensor([0.5, 3.0], dtype=dtype)
    x_g, lq_g = ops.propose("normal", [loc.to(DEV), scale.to(DEV)], m, SEED, 3)
    x_c, lq_c = ops.propose("normal", [loc, scale], m, SEED, 3)
    torch.testing.assert_close(x_g.cpu(), x_c, **TOL[dtype])
    torch.testing.assert_close(lq_g.cpu(), lq_c, rtol=1e-5, atol=1e-4 if dtype == torch.float32 else 1e-9)
    xd = x_g.double()
    torch.testing.assert_close(xd.mean(0).cpu(), loc.double(), rtol=0, atol=0.01)
    torch.testing.assert_close(xd.std(0).cpu(), scale.double(), rtol=0.01, atol=0)


# ---------------------------------------------------------------------------- accept_compact


def make_inputs(
    m: int,
    event: tuple[int, ...],
    x_dtype: torch.dtype,
    lp_dtype: torch.dtype,
    seed: int = 0,
    specials: bool = True,
):
    """Candidates, log p and log q on the CPU; ratio ~ N(-0.3, 1), log M = 1 (some rows overweight)."""
    g = torch.Generator().manual_seed(seed)
    if x_dtype.is_floating_point:
        x = torch.randn((m, *event), generator=g).to(x_dtype)
    else:
        x = torch.randint(0, 120, (m, *event), generator=g).to(x_dtype)
    lq = (torch.randn(m, generator=g, dtype=torch.float64) * 0.5).to(lp_dtype)
    lp = (lq.double() + torch.randn(m, generator=g, dtype=torch.float64) - 0.3).to(lp_dtype)
    if specials and m >= 16:
        idx = torch.randperm(m, generator=g)[:16]
        lp[idx[0:3]] = math.nan  # NaN log p: rejected, counted
        lp[idx[3:5]] = math.inf  # +inf log p: counted (and overweight), never accepted
        lp[idx[5:7]] = -math.inf  # zero density: rejected
        lq[idx[7]] = math.nan  # NaN log q: NaN ratio
        lp[idx[8]], lq[idx[8]] = math.inf, math.inf  # inf - inf: NaN ratio, +inf counted
        lq[idx[9]] = -math.inf  # ratio +inf: overweight, accepted
    return x, lp, lq, 1.0


def fill_value(dtype: torch.dtype):
    return -12345.0 if dtype.is_floating_point else 7


def run_accept(device, x, lp, lq, log_M, seed, offset, capacity, counts0, max0, out0=None, x_shift=0):
    """One accept_compact call on `device` from CPU inputs; returns (out, counts, max_log_ratio) on the CPU.

    x_shift > 0 places x and out at that byte offset from an allocation (x must be uint8), to exercise
    the narrow-word copy paths."""
    if out0 is None:
        out0 = torch.full((capacity, *x.shape[1:]), fill_value(x.dtype), dtype=x.dtype)
    if x_shift:
        assert x.dtype == torch.uint8 and x.dim() == 2
        xb = torch.zeros(x.numel() + 64, dtype=torch.uint8, device=device)
        xd = xb[x_shift : x_shift + x.numel()].view(x.shape)
        xd.copy_(x)
        ob = torch.zeros(out0.numel() + 64, dtype=torch.uint8, device=device)
        out = ob[x_shift : x_shift + out0.numel()].view(out0.shape)
        out.copy_(out0)
        assert xd.is_contiguous() and xd.data_ptr() % 2 == (x_shift % 2)
    else:
        xd, out = x.to(device), out0.clone().to(device)
    counts = torch.tensor(counts0, dtype=torch.int64, device=device)
    mx = torch.tensor([max0], dtype=torch.float64, device=device)
    ops.accept_compact(xd, lp.to(device), lq.to(device), log_M, seed, offset, out, counts, mx)
    return out.cpu(), counts.cpu(), mx.cpu()


def assert_same(a, b):
    out_a, counts_a, mx_a = a
    out_b, counts_b, mx_b = b
    assert counts_a.tolist() == counts_b.tolist()
    assert torch.equal(mx_a, mx_b), (mx_a, mx_b)
    assert out_a.dtype == out_b.dtype and out_a.shape == out_b.shape
    # Compare bytes: NaN-safe, and the fill of unwritten rows must survive too.
    assert torch.equal(out_a.contiguous().view(torch.uint8), out_b.contiguous().view(torch.uint8))


def total_accepted(x, lp, lq, log_M, seed, offset):
    _, counts, _ = run_accept(CPU, x, lp, lq, log_M, seed, offset, 0, [0, 0, 0, 0], -math.inf)
    return int(counts[0])


# (event shape, x dtype): row bytes 8 (uint2), 16 (uint4), 12 (uint32), 3 (bytes), 10 (uint16),
# 160 (uint4, small-row path), 640 (uint4, warp-per-row path), 24 (multi-dim event).
ROW_KINDS = [
    ((2,), torch.float32),
    ((2,), torch.float64),
    ((3,), torch.float32),
    ((3,), torch.uint8),
    ((5,), torch.int16),
    ((40,), torch.float32),
    ((80,), torch.float64),
    ((2, 3), torch.float32),
]


@pytest.mark.parametrize("lp_dtype", DTYPES)
@pytest.mark.parametrize("event,x_dtype", ROW_KINDS)
@pytest.mark.parametrize("m", [1, 7, 2047, 2048, 2049, 10_000, 100_003])
def test_accept_compact_matches_cpu(m, event, x_dtype, lp_dtype):
    x, lp, lq, log_M = make_inputs(m, event, x_dtype, lp_dtype, seed=m)
    seed, offset = SEED, 11
    acc = total_accepted(x, lp, lq, log_M, seed, offset)
    base = 5
    counts0 = [base, 1, 2, 3]
    # Room to spare, overflow part way, exactly full at the start, start past the end, no room at all.
    for capacity in sorted({base + acc + 3, base + acc // 2, base, 2, 0}):
        cpu = run_accept(CPU, x, lp, lq, log_M, seed, offset, capacity, counts0, -1.5)
        gpu = run_accept(DEV, x, lp, lq, log_M, seed, offset, capacity, counts0, -1.5)
        assert_same(gpu, cpu)
        assert int(gpu[1][0]) == base + acc  # dropped rows still counted


@pytest.mark.parametrize("lp_dtype", DTYPES)
def test_accept_compact_counts_specials(lp_dtype):
    m = 5000
    x, lp, lq, log_M = make_inputs(m, (2,), torch.float32, lp_dtype, seed=42)
    gpu = run_accept(DEV, x, lp, lq, log_M, SEED, 0, m, [0, 0, 0, 0], -math.inf)
    cpu = run_accept(CPU, x, lp, lq, log_M, SEED, 0, m, [0, 0, 0, 0], -math.inf)
    assert_same(gpu, cpu)
    ratio = lp - lq  # the kernels compare in the dtype of log p and log q
    nan = torch.isnan(ratio)
    counts = gpu[1].tolist()
    assert counts[1] == int(nan.sum())
    assert counts[2] == int((~nan & (ratio > torch.tensor(log_M, dtype=lp_dtype))).sum())
    assert counts[3] == int(torch.isposinf(lp).sum())
    assert float(gpu[2]) == float(ratio[~nan].max())  # +inf here (the row with log q = -inf)
    acc = counts[0]
    assert 0 < acc < m
    # Every accepted row is a row of x, in increasing row order.
    rows = gpu[0][:acc]
    pos = [int(torch.nonzero((x == r).all(1))[0]) for r in rows[:200]]
    assert pos == sorted(pos)


@pytest.mark.parametrize("lp_dtype", DTYPES)
def test_accept_compact_max_ratio_keeps_larger_old(lp_dtype):
    x, lp, lq, log_M = make_inputs(3000, (2,), torch.float32, lp_dtype, seed=3, specials=False)
    gpu = run_accept(DEV, x, lp, lq, log_M, SEED, 0, 3000, [0, 0, 0, 0], 1e300)
    assert float(gpu[2]) == 1e300
    gpu = run_accept(DEV, x, lp, lq, log_M, SEED, 0, 3000, [0, 0, 0, 0], -math.inf)
    assert float(gpu[2]) == float((lp - lq).max())
    # All rows NaN or -inf: the running max is left alone.
    lp_bad = torch.full_like(lp, math.nan)
    lp_bad[::2] = -math.inf
    gpu = run_accept(DEV, x, lp_bad, lq, log_M, SEED, 0, 3000, [0, 0, 0, 0], -7.0)
    assert float(gpu[2]) == -7.0 and gpu[1].tolist() == [0, 1500, 0, 0]


@pytest.mark.parametrize("shift", [1, 2, 4, 8])
def test_accept_compact_misaligned_rows(shift):
    # 16-byte rows at an offset of 1, 2, 4 or 8 bytes: the copy must fall back to narrower words.
    m = 9000
    x, lp, lq, log_M = make_inputs(m, (16,), torch.uint8, torch.float32, seed=shift)
    acc = total_accepted(x, lp, lq, log_M, SEED, 1)
    for capacity in (acc + 10, acc // 3):
        cpu = run_accept(CPU, x, lp, lq, log_M, SEED, 1, capacity, [0, 0, 0, 0], -math.inf)
        gpu = run_accept(DEV, x, lp, lq, log_M, SEED, 1, capacity, [0, 0, 0, 0], -math.inf, x_shift=shift)
        assert_same(gpu, cpu)


@pytest.mark.parametrize("lp_dtype", DTYPES)
def test_accept_compact_chained_calls(lp_dtype):
    # Successive calls append after each other, like the engine's rounds, until the output is full.
    outs = {}
    for device in (CPU, DEV):
        out = torch.full((9000, 3), -1.0, device=device)
        counts = torch.zeros(4, dtype=torch.int64, device=device)
        mx = torch.full((1,), -math.inf, dtype=torch.float64, device=device)
        for call in range(6):
            x, lp, lq, log_M = make_inputs(10_000 + call, (3,), torch.float32, lp_dtype, seed=100 + call)
            ops.accept_compact(
                x.to(device), lp.to(device), lq.to(device), log_M, SEED, 2 * call + 1, out, counts, mx
            )
        outs[device.type] = (out.cpu(), counts.cpu(), mx.cpu())
    assert_same(outs["cuda"], outs["cpu"])
    assert int(outs["cuda"][1][0]) > 9000  # overflowed: dropped rows counted


@pytest.mark.parametrize("x_dtype", DTYPES)
def test_accept_compact_large(x_dtype):
    m = 3_000_000
    x, lp, lq, log_M = make_inputs(m, (2,), x_dtype, x_dtype, seed=9)
    acc = total_accepted(x, lp, lq, log_M, SEED, 5)
    for capacity in (acc + 1, acc - 12345):
        cpu = run_accept(CPU, x, lp, lq, log_M, SEED, 5, capacity, [17, 0, 0, 0], -math.inf)
        gpu = run_accept(DEV, x, lp, lq, log_M, SEED, 5, capacity, [17, 0, 0, 0], -math.inf)
        assert_same(gpu, cpu)


def test_accept_compact_side_stream_and_no_host_sync():
    m = 50_000
    x, lp, lq, log_M = make_inputs(m, (4,), torch.float32, torch.float32, seed=5)
    cpu = run_accept(CPU, x, lp, lq, log_M, SEED, 3, m, [2, 0, 0, 0], -math.inf)
    xd, lpd, lqd = to([x, lp, lq], DEV)
    out = torch.full((m, 4), fill_value(x.dtype), device=DEV)
    counts = torch.tensor([2, 0, 0, 0], dtype=torch.int64, device=DEV)
    mx = torch.full((1,), -math.inf, dtype=torch.float64, device=DEV)
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        torch.cuda.set_sync_debug_mode("error")  # any host synchronisation raises
        try:
            ops.accept_compact(xd, lpd, lqd, log_M, SEED, 3, out, counts, mx)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    stream.synchronize()
    assert_same((out.cpu(), counts.cpu(), mx.cpu()), cpu)


# ---------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_cuda_deterministic_and_moments(dtype):
    # Target: unnormalised standard normal in D = 2; proposal N(0, 2^2 I). p / q <= (8 pi)^(D/2),
    # acceptance 1 / 4.
    d, n = 2, 200_000

    def log_target(x):
        return -0.5 * (x * x).sum(-1)

    proposal = rsfast.proposals.Normal(
        torch.zeros(d, dtype=dtype, device=DEV), torch.full((d,), 2.0, dtype=dtype, device=DEV)
    )
    log_M = 0.5 * d * math.log(8 * math.pi) + 1e-3
    runs = [
        rsfast.sample(
            log_target, proposal, n, log_M=log_M, generator=torch.Generator(device=DEV).manual_seed(7)
        )
        for _ in range(2)
    ]
    a, b = runs
    assert a.samples.device.type == "cuda" and a.samples.shape == (n, d) and a.samples.dtype == dtype
    assert torch.equal(a.samples, b.samples)
    assert a.num_accepted == b.num_accepted and a.num_proposals == b.num_proposals
    assert a.num_overweight == 0 and a.num_nan == 0
    assert a.num_accepted >= n
    assert abs(a.acceptance_rate - 0.25 * math.exp(-1e-3)) < 0.01
    s = a.samples.double()
    torch.testing.assert_close(s.mean(0).cpu(), torch.zeros(d, dtype=torch.float64), rtol=0, atol=0.015)
    torch.testing.assert_close(s.var(0).cpu(), torch.ones(d, dtype=torch.float64), rtol=0, atol=0.02)
    c = rsfast.sample(
        log_target, proposal, n, log_M=log_M, generator=torch.Generator(device=DEV).manual_seed(8)
    )
    assert not torch.equal(a.samples, c.samples)


def test_build_info_cuda():
    info = rsfast.build_info()
    assert info["cuda_compiled"] is True and info["cuda_usable"] is True
    assert all(isinstance(a, int) for a in info["cuda_archs"]) and info["cuda_archs"]
