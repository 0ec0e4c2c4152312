"""Benchmark of the headline case ``sample_bimodal_2d`` (see :mod:`rsfast.bench`): rsfast.sample vs the
vectorised torch loop and the textbook per-sample loop (which runs on a small n)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASE = "sample_bimodal_2d"


@pytest.mark.parametrize("method", ["rsfast", "torch_loop", "per_sample"])
def test_sample_bimodal_2d(run_bench: Callable[[str, str], Any], method: str) -> None:
    run_bench(CASE, method)
