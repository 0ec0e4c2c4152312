"""Benchmarks of the group selection ops (see :mod:`rsfast.bench`, cases ``select_*``): each op vs its
vectorised torch twin and vs the per-row Python loop of the published code (on fewer groups: compare by
throughput, groups/s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASES = [
    "select_rso",
    "select_best_of_n",
    "select_threshold",
    "select_top_fraction",
    "select_filter_groups",
    "select_dedupe",
]


@pytest.mark.parametrize("method", ["rsfast", "torch", "per_row"])
@pytest.mark.parametrize("case", CASES)
def test_select(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)
