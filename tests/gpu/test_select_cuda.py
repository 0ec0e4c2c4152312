"""CUDA select kernels (csrc/ops/select/cuda.cu) against the CPU kernels: the same results, bit for bit.

Skipped unless torch sees a CUDA device and rsfast was built with usable CUDA kernels. RSO runs the same
arithmetic as the CPU in both dtypes (--fmad=false, fast_expf / fast_exp, IEEE division).
"""

from __future__ import annotations

import pytest
import torch

import rsfast
from rsfast import ops, select

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip(
        f"rsfast CUDA kernels not usable: {rsfast.build_info().get('cuda_unusable_reason', '')}",
        allow_module_level=True,
    )

DEV = torch.device("cuda")
DTYPES = [torch.float32, torch.float64]
SEED = 0x0123_4567_89AB_CDEF


def inputs(dtype, ties):
    g = torch.Generator().manual_seed(3)
    dense = torch.randn(300, 70, generator=g, dtype=dtype)
    if ties:
        dense = (dense * 2).round() / 2
    sizes = torch.randint(0, 90, (211,), generator=g)
    off = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(sizes, 0)])
    flat = torch.randn(int(off[-1]), generator=g, dtype=dtype)
    if ties:
        flat = flat.round()
    return [(dense, None), (flat, off)]


def on(t):
    return None if t is None else t.to(DEV)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_group_ops_match_cpu(dtype, ties):
    for r, off in inputs(dtype, ties):
        for k in (1, 5, 40):
            got = select.best_of_n(on(r), k, offsets=on(off)).cpu()
            assert torch.equal(got, select.best_of_n(r, k, offsets=off))
            for beta in (0.1, 1.0):
                assert torch.equal(
                    ops.select_rso(on(r), k, beta, SEED, 3, on(off)).cpu(),
                    ops.select_rso(r, k, beta, SEED, 3, off),
                )
        for cap in (None, 2):
            a = select.threshold(on(r), 0.25, max_per_group=cap, offsets=on(off))
            b = select.threshold(r, 0.25, max_per_group=cap, offsets=off)
            assert all(torch.equal(x.cpu(), y) for x, y in zip(a, b))
        for f in (0.01, 0.3, 1.0):
            assert torch.equal(select.top_fraction(on(r), f).cpu(), select.top_fraction(r, f))
        m = (r > 0.5).to(dtype)
        assert torch.equal(
            select.filter_groups(on(m), offsets=on(off)).cpu(), select.filter_groups(m, offsets=off)
        )


def test_dedupe_matches_cpu():
    g = torch.Generator().manual_seed(1)
    keys = torch.randint(0, 50, (200_000,), generator=g)
    groups = torch.randint(0, 300, (200_000,), generator=g)
    assert torch.equal(select.dedupe(keys.to(DEV), groups.to(DEV)).cpu(), select.dedupe(keys, groups))


def test_rso_law_on_cuda_is_the_cpu_stream():
    r = torch.randn(5000, 8, generator=torch.Generator().manual_seed(2))
    a = select.rso(r.to(DEV), 3, 0.5, generator=torch.Generator(device=DEV).manual_seed(4))
    seed = int(
        torch.randint(0, 2**63 - 1, (), generator=torch.Generator(device=DEV).manual_seed(4), device=DEV)
    )
    assert torch.equal(a.cpu(), ops.select_rso(r, 3, 0.5, seed, 0, None))
