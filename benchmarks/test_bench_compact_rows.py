"""Benchmark of ``accept_compact_rows`` (see :mod:`rsfast.bench`): the native op vs torch
rand/log/mask/``t[keep]`` on a 1M-row training batch (features [B, 16] float32, labels [B] int64,
weights [B] float32; ~62 % kept), exact-size outputs for both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASE = "accept_compact_rows"


@pytest.mark.parametrize("method", ["rsfast", "torch"])
def test_accept_compact_rows(run_bench: Callable[[str, str], Any], method: str) -> None:
    run_bench(CASE, method)
