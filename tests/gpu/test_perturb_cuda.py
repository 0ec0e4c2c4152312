"""perturb_ on CUDA against the CPU kernel (csrc/ops/perturb/cuda.cu vs csrc/ops/perturb/cpu.cpp).

Skipped unless torch sees a CUDA device and rsfast's CUDA kernels are usable. Both drivers run the
same core without FMA contraction and the 16-bit roundings are the portable ones of perturb/core.h, so
float32, float16 and bfloat16 results are bit-identical; float64 multiplies the float32 noise in
double on both (also bit-identical: no transcendental function is evaluated in double).
"""

from __future__ import annotations

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

SEED = 0x0123_4567_89AB_CDEF
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_matches_cpu_bits(dtype):
    g = torch.Generator().manual_seed(0)
    shapes = [(1,), (63,), (64,), (65,), (0,), (129, 7), (1 << 20,) if dtype == torch.float32 else (5000,)]
    cpu = [(torch.randn(s, generator=g) * 3).to(dtype) for s in shapes]
    gpu = [t.cuda() for t in cpu]
    rsfast.perturb_(cpu, SEED, 0.37)
    rsfast.perturb_(gpu, SEED, 0.37)
    torch.cuda.synchronize()
    for i, (a, b) in enumerate(zip(cpu, gpu)):
        assert torch.equal(a, b.cpu()), f"tensor {i} {tuple(a.shape)}"


def test_mixed_devices_keep_list_indices():
    """A list mixing cpu and cuda tensors: each tensor gets the noise of its index in the list."""
    a, b, c = torch.zeros(100), torch.zeros(200, device="cuda"), torch.zeros(300)
    rsfast.perturb_([a, b, c], SEED, 1.0)
    ref = [torch.zeros(100), torch.zeros(200), torch.zeros(300)]
    rsfast.perturb_(ref, SEED, 1.0)
    assert torch.equal(a, ref[0]) and torch.equal(b.cpu(), ref[1]) and torch.equal(c, ref[2])


def test_undo_and_opcheck_on_cuda():
    x = torch.randn(10_000, device="cuda")
    x0 = x.clone()
    rsfast.perturb_(x, SEED, 1e-3)
    rsfast.perturb_(x, SEED, -1e-3)
    assert (x - x0).abs().max().item() < 1e-6
    xs = [torch.randn(100, device="cuda"), torch.randn(7, device="cuda").half()]
    torch.library.opcheck(ops.perturb_op, (xs, SEED, 0.5))
