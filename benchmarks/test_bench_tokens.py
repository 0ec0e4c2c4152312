"""Benchmarks of rsfast.tokens (see :mod:`rsfast.bench`, cases ``tokens_*``): sorting-free sampling and
verification vs the sort-based torch path of Hugging Face / vLLM and vs the per-row Python loop (on fewer
rows: compare by throughput, rows/s)."""

from collections.abc import Callable
from typing import Any

import pytest

CASES = ["tokens_topk_topp", "tokens_topp", "tokens_minp", "tokens_verify"]


@pytest.mark.parametrize("method", ["rsfast", "torch", "per_row"])
@pytest.mark.parametrize("case", CASES)
def test_tokens(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)
