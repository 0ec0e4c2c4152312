"""Benchmarks of ``perturb`` and ``perturb_bf16`` (see :mod:`rsfast.bench`): :func:`rsfast.perturb_`
vs ``p.add_(torch.randn_like(p, generator=g), alpha=s)``, in place, float32 and bfloat16 (16M
elements with RSFAST_BENCH_FULL=1, 4M otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("method", ["rsfast", "torch"])
@pytest.mark.parametrize("case", ["perturb", "perturb_bf16"])
def test_perturb(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)
