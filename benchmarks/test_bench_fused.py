"""Benchmark of the case ``fused_mixture`` (see :mod:`rsfast.bench`): rsfast.sample on the fused kernel
(the 2-D bimodal target as rsfast.targets.MixtureNormal) vs the generic path and the vectorised torch
loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASE = "fused_mixture"


@pytest.mark.parametrize("method", ["rsfast", "generic", "torch_loop"])
def test_fused_mixture(run_bench: Callable[[str, str], Any], method: str) -> None:
    run_bench(CASE, method)
