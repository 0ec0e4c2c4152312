"""Benchmarks of rsfast.distributions.Poisson and Binomial (see :mod:`rsfast.bench`): 1M float32
samples per call against torch.poisson and torch.distributions.Binomial.sample, same thread count; and
with one parameter set per element (``*_per_element``), also against rsfast's scalar-parameter
speed (``rsfast_scalar``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

CASES = ["poisson_rate3", "poisson_rate100", "binomial_n100_p0.3", "binomial_n10_p0.5"]


PER_ELEMENT = [
    "poisson_rate3_per_element",
    "poisson_rate9_per_element",
    "poisson_rate100_per_element",
    "binomial_n100_p0.3_per_element",
    "binomial_n10_p0.5_per_element",
]


@pytest.mark.parametrize("method", ["rsfast", "torch"])
@pytest.mark.parametrize("case", CASES)
def test_distributions_discrete(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)


@pytest.mark.parametrize("method", ["rsfast", "rsfast_scalar", "torch"])
@pytest.mark.parametrize("case", PER_ELEMENT)
def test_per_element(run_bench: Callable[[str, str], Any], case: str, method: str) -> None:
    run_bench(case, method)
