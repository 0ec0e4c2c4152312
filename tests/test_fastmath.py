"""The kernels' float64 branch-free math (fastmath.h: fast_exp, fast_log, fast_log1p) through their
op-for-op torch twins (the discrete-law tests check kernel == twin bit for bit): accuracy in ulp
against torch's float64 exp / log / log1p (within half an ulp of the true value) on the ranges the
kernels use, and the exact edge values."""

from __future__ import annotations

import torch

from rsfast.reference.fastmath import fast_exp, fast_log, fast_log1p

F64 = torch.float64


def _ulps(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| in units of want's last place."""
    ulp = torch.nextafter(want.abs(), torch.tensor(torch.inf, dtype=F64)) - want.abs()
    return float(((got - want).abs() / ulp).max())


def _uniform(n: int, lo: float, hi: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, dtype=F64, generator=g)


def test_fast_exp_within_two_ulp_on_its_range():
    x = torch.cat(
        [
            _uniform(400_000, -38.0, 0.0, 1),
            _uniform(100_000, -1e-3, 0.0, 2),
            torch.tensor([0.0, -0.0, -38.0], dtype=F64),
        ]
    )
    assert _ulps(fast_exp(x), torch.exp(x)) <= 2.0
    assert float(fast_exp(torch.tensor(0.0, dtype=F64))) == 1.0


def test_fast_log_within_one_ulp_on_positive_normals():
    x = torch.cat(
        [
            torch.exp(_uniform(300_000, -700.0, 700.0, 3)),
            _uniform(300_000, 0.25, 2.0, 4),
            torch.tensor([1.0, 0.5, 2.0, 2.0**-1022, 0.7071067811865476, 1.4142135623730951], dtype=F64),
        ]
    )
    got, want = fast_log(x), torch.log(x)
    nonzero = want != 0
    assert _ulps(got[nonzero], want[nonzero]) <= 1.0
    assert float(fast_log(torch.tensor(1.0, dtype=F64))) == 0.0


def test_fast_log1p_within_two_ulp_including_tiny_arguments():
    tiny = -torch.pow(10.0, _uniform(200_000, -300.0, -1.0, 5))  # -1e-300 .. -0.1: log1p(-p) of small p
    x = torch.cat(
        [_uniform(300_000, -0.5, 1.0, 6), tiny, torch.tensor([-0.5, 1.0, -1e-17, 1e-17], dtype=F64)]
    )
    assert _ulps(fast_log1p(x), torch.log1p(x)) <= 2.0
    # where 1 + x rounds to 1 the result is x itself
    assert float(fast_log1p(torch.tensor(-1e-300, dtype=F64))) == -1e-300
