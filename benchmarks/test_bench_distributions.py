"""Benchmarks of rsfast.distributions (see :mod:`rsfast.bench`): each slot-kernel sampler against
torch's sampler (scipy's truncnorm.rvs for the truncated normal, which torch lacks), float32.

Cases: ``truncated_normal`` ([3, inf), bar >= 30x scipy), ``von_mises`` (bar >= 20x torch),
``gamma`` (Gamma(2.5), bar >= 1.5x torch._standard_gamma), ``beta``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASES = {
    "truncated_normal": ["rsfast", "scipy"],
    "von_mises": ["rsfast", "torch"],
    "gamma": ["rsfast", "torch"],
    "beta": ["rsfast", "torch"],
}


@pytest.mark.parametrize("case,method", [(c, m) for c, ms in CASES.items() for m in ms])
def test_distribution(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)
