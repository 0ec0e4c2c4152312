"""Benchmark of ``propose_normal`` (see :mod:`rsfast.bench`): the native propose op vs
``loc + scale * torch.randn`` and log q from z, 1M rows, D=2, float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASE = "propose_normal"


@pytest.mark.parametrize("method", ["rsfast", "torch"])
def test_propose_normal(run_bench: Callable[[str, str], Any], method: str) -> None:
    run_bench(CASE, method)
