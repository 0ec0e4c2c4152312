"""CUDA accept_compact_rows against the CPU kernel (csrc/ops/accept_compact_rows: cuda.cu vs cpu.cpp).

Skipped unless torch sees a CUDA device and rsfast was built with usable CUDA kernels. float32 decisions
are bit-identical (no FMA contraction, the same fast log); float64 uses the device log, within an ulp of
glibc's, so a row could in principle flip (probability ~1e-16 per row).
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
SEED = 0x0123_4567_89AB_CDEF


def _batch(b: int, log_dtype: torch.dtype):
    g = torch.Generator().manual_seed(b)
    lr = (torch.randn(b, generator=g, dtype=torch.float64) * 1.5).to(log_dtype)
    lr[5::97] = math.nan
    lr[13::211] = math.inf
    tensors = [
        torch.randn(b, 16, generator=g),
        torch.arange(b),
        torch.rand(b, generator=g) < 0.5,
        torch.randn(b, 3, generator=g).to(torch.bfloat16),
        torch.randn(b, 2, 40, generator=g, dtype=torch.float64),  # 640-byte rows: the warp-per-row path
        torch.arange(3 * b, dtype=torch.uint8).reshape(b, 3),  # 3-byte rows: byte copies
    ]
    return lr, tensors


@pytest.mark.parametrize("sync", [True, False])
@pytest.mark.parametrize("log_dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("b", [1, 2047, 2048, 100_003, 1_000_000])
def test_cuda_matches_cpu(b, log_dtype, sync):
    lr, tensors = _batch(b, log_dtype)
    cpu_outs, cpu_count = ops.accept_compact_rows(lr, 0.3, tensors, SEED, 5, sync=sync)
    gpu_outs, gpu_count = ops.accept_compact_rows(
        lr.to(DEV), 0.3, [t.to(DEV) for t in tensors], SEED, 5, sync=sync
    )
    assert gpu_count.device.type == "cuda" and int(gpu_count) == int(cpu_count)
    for c, g in zip(cpu_outs, gpu_outs):
        assert torch.equal(c, g.cpu())


def test_cuda_sync_false_has_no_host_sync_and_log_M_tensor():
    lr, tensors = _batch(50_000, torch.float32)
    lr, tensors = lr.to(DEV), [t.to(DEV) for t in tensors]
    lm = torch.tensor(0.3, device=DEV)
    ref = ops.accept_compact_rows(lr, 0.3, tensors, SEED, 1, sync=False)
    torch.cuda.set_sync_debug_mode("error")
    try:
        outs, count = ops.accept_compact_rows(lr, lm, tensors, SEED, 1, sync=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert int(count) == int(ref[1])
    assert all(torch.equal(a, b) for a, b in zip(outs, ref[0]))


def test_cuda_empty_and_all_rejected():
    outs, count = ops.accept_compact_rows(
        torch.empty(0, device=DEV), 0.0, [torch.empty(0, 2, device=DEV)], SEED, 0
    )
    assert int(count) == 0 and outs[0].shape == (0, 2)
    outs, count = ops.accept_compact_rows(
        torch.full((5000,), -80.0, device=DEV), 0.0, [torch.ones(5000, 2, device=DEV)], SEED, 0, sync=False
    )
    assert int(count) == 0 and not bool(outs[0].any())
