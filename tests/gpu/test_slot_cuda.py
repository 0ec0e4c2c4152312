"""The slot kernel on CUDA against the CPU driver (csrc/ops/slot_sample: cuda.cu vs cpu.cpp), and the
distributions on CUDA tensors. Skipped unless torch sees a CUDA device and rsfast's CUDA kernels
are usable. float32 arithmetic is the same code compiled with --fmad=false: identical bits are
expected (the GPU's sqrtf/division are correctly rounded like the CPU's); float64 uses the device
libm (an ulp from glibc), so values are compared to 1e-12."""

from __future__ import annotations

import math

import pytest
import torch

import rsfast
from rsfast import ops
from rsfast.distributions import Beta, Gamma, TruncatedNormal, VonMises

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip("rsfast CUDA kernels not usable", allow_module_level=True)

SEED = 0x0123_4567_89AB_CDEF
CASES = {
    "truncated_normal": [[0.0, 0.3, 0.0], [1.0, 2.0, 1.0], [-1.0, -math.inf, 50.0], [1.0, -5.0, 60.0]],
    "von_mises": [[0.0, 3.0, -2.0], [1e-3, 1.0, 1e4]],
    "gamma": [[0.01, 2.5, 100.0], [1.0, 3.0, 0.5]],
    "beta": [[0.05, 2.0, 300.0], [0.1, 5.0, 100.0]],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("law", list(CASES))
def test_cuda_matches_cpu(law, dtype):
    params = [torch.tensor(p, dtype=dtype) for p in CASES[law]]
    cpu, ecpu = ops.slot_sample(law, params, [50_001], SEED, 4)
    gpu, egpu = ops.slot_sample(law, [p.cuda() for p in params], [50_001], SEED, 4)
    assert int(ecpu) == 0 and int(egpu) == 0
    if dtype == torch.float32:
        assert torch.equal(cpu, gpu.cpu())
    else:
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-300)


def test_distributions_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(1)
    for d in (
        TruncatedNormal(*(torch.tensor(v, device="cuda") for v in (0.0, 1.0, 3.0, math.inf))),
        VonMises(torch.tensor(0.0, device="cuda"), torch.tensor(2.0, device="cuda")),
        Gamma(torch.tensor(2.5, device="cuda"), torch.tensor(1.0, device="cuda")),
        Beta(torch.tensor(2.0, device="cuda"), torch.tensor(3.0, device="cuda")),
    ):
        x = d.sample((100_000,), generator=g)
        assert x.device.type == "cuda" and bool(torch.isfinite(x).all())
        assert abs(float(x.mean()) - float(d.mean)) < 0.02
