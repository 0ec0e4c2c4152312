"""Poisson and Binomial slot laws on CUDA against the CPU driver, and the distributions on CUDA
tensors. Skipped unless torch sees a CUDA device and rsfast's CUDA kernels are usable. Both drivers
run the same double arithmetic; the device libm (log, log1p, exp) may differ from glibc by an ulp,
which changes a count only where a uniform falls within an ulp of a threshold (probability ~1e-16
per decision): identical counts are expected."""

from __future__ import annotations

import pytest
import scipy.stats as st
import torch

import rsfast
from rsfast import ops
from rsfast.distributions import Binomial, Poisson

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip("rsfast CUDA kernels not usable", allow_module_level=True)

SEED = 0x0123_4567_89AB_CDEF
CASES = {
    "poisson": [[0.0, 0.4, 7.0, 10.0, 333.0, 1e6]],
    "binomial": [[0.0, 9.0, 100.0, 1000.0, 30.0, 5e5], [0.3, 0.6, 0.3, 0.99, 1.0, 0.5]],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("law", list(CASES))
def test_cuda_matches_cpu(law, dtype):
    params = [torch.tensor(p, dtype=dtype) for p in CASES[law]]
    cpu, ecpu = ops.slot_sample(law, params, [50_001], SEED, 4)
    gpu, egpu = ops.slot_sample(law, [p.cuda() for p in params], [50_001], SEED, 4)
    assert int(ecpu) == 0 and int(egpu) == 0
    assert torch.equal(cpu, gpu.cpu())


def test_distributions_on_cuda():
    g = torch.Generator(device="cuda").manual_seed(1)
    for d, law in (
        (Poisson(torch.tensor(3.0, device="cuda")), st.poisson(3.0)),
        (Poisson(torch.tensor(100.0, device="cuda")), st.poisson(100.0)),
        (Binomial(torch.tensor(100.0, device="cuda"), torch.tensor(0.3, device="cuda")), st.binom(100, 0.3)),
        (Binomial(torch.tensor(10.0, device="cuda"), torch.tensor(0.5, device="cuda")), st.binom(10, 0.5)),
    ):
        x = d.sample((400_000,), generator=g)
        assert x.device.type == "cuda"
        assert abs(float(x.double().mean()) - law.mean()) < 6 * law.std() / 632
        assert abs(float(x.double().var()) / law.var() - 1) < 0.02
