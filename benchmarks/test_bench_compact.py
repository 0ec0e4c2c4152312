"""Benchmark of ``accept_compact`` (see :mod:`rsfast.bench`): the native op vs torch rand/log/mask/index
on 1M rows, D=2, float32, ~3.5 % accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASE = "accept_compact"


@pytest.mark.parametrize("method", ["rsfast", "torch"])
def test_accept_compact(run_bench: Callable[[str, str], Any], method: str) -> None:
    run_bench(CASE, method)
