"""Benchmark of rsfast.generate (see :mod:`rsfast.bench`, case ``generate_gpt2``): tokens/s of a GPT-2-shaped
LM with top-k 50 + top-p 0.9 vs Hugging Face ``generate`` and vs the earlier cache-less sampler (on fewer
prompts: compare by throughput)."""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("method", ["rsfast", "hf", "previous"])
def test_generate(run_bench: Callable[[str, str], Any], method: str) -> None:
    pytest.importorskip("transformers") if method == "hf" else None
    run_bench("generate_gpt2", method)
