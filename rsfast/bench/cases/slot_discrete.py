"""Benchmark cases of the discrete slot laws: poisson_rate3, poisson_rate100, binomial_n100_p0.3,
binomial_n10_p0.5, and poisson / binomial with one parameter set per element (``*_per_element``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..common import (
    BenchCase,
    Prepared,
    _device,
    _generator,
)
from .slot_sample import _dist_prepared, per_element_cases

#: Place of these cases in the report.
ORDER = 8

#: Samples per call of the Poisson / Binomial cases (full and quick alike: a call takes ~0.1 s).
DISCRETE_N = 1_000_000


def _poisson_setup(rate: float) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        from ...distributions import Poisson

        dev = _device(device)
        n = DISCRETE_N
        d = Poisson(torch.tensor(rate, device=dev))
        rates = torch.full((n,), rate, device=dev)  # torch.poisson takes one rate per sample
        g = _generator(dev)

        def run_rsfast() -> Tensor:
            return d.sample((n,), generator=g)

        def run_torch() -> Tensor:
            return torch.poisson(rates, generator=g)

        return _dist_prepared(
            f"poisson_rate{rate:g}", dev, n, run_rsfast, run_torch, rate, math.sqrt(rate), {"rate": rate}
        )

    return setup


def _binomial_setup(total_count: int, probs: float) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        from ...distributions import Binomial

        dev = _device(device)
        n = DISCRETE_N
        count, p = torch.tensor(float(total_count), device=dev), torch.tensor(probs, device=dev)
        d = Binomial(count, p)
        ref = torch.distributions.Binomial(count, p)
        g = _generator(dev)

        def run_rsfast() -> Tensor:
            return d.sample((n,), generator=g)

        def run_torch() -> Tensor:
            # torch.distributions.Binomial.sample takes no generator: it draws from the global one.
            return ref.sample((n,))

        mean, sd = total_count * probs, math.sqrt(total_count * probs * (1 - probs))
        return _dist_prepared(
            f"binomial_n{total_count}_p{probs:g}", dev, n, run_rsfast, run_torch, mean, sd,
            {"total_count": total_count, "probs": probs},
        )  # fmt: skip

    return setup


#: name -> (class, parameters, baseline method, mean, sd) of the discrete per-element cases.
PER_ELEMENT_CASES = {
    "poisson_rate3_per_element": ("Poisson", (3.0,), "torch", 3.0, math.sqrt(3.0)),
    "poisson_rate9_per_element": ("Poisson", (9.0,), "torch", 9.0, 3.0),
    "poisson_rate100_per_element": ("Poisson", (100.0,), "torch", 100.0, 10.0),
    "binomial_n100_p0.3_per_element": ("Binomial", (100.0, 0.3), "torch", 30.0, math.sqrt(21.0)),
    "binomial_n10_p0.5_per_element": ("Binomial", (10.0, 0.5), "torch", 5.0, math.sqrt(2.5)),
}


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "poisson_rate3",
        "1M Poisson(3) samples, float32 (inversion) vs torch.poisson",
        _poisson_setup(3.0),
    ),
    BenchCase(
        "poisson_rate100",
        "1M Poisson(100) samples, float32 (PTRS) vs torch.poisson",
        _poisson_setup(100.0),
    ),
    BenchCase(
        "binomial_n100_p0.3",
        "1M Binomial(100, 0.3) samples, float32 (BTRS) vs torch.distributions.Binomial.sample",
        _binomial_setup(100, 0.3),
    ),
    BenchCase(
        "binomial_n10_p0.5",
        "1M Binomial(10, 0.5) samples, float32 (inversion) vs torch.distributions.Binomial.sample",
        _binomial_setup(10, 0.5),
    ),
    *per_element_cases(PER_ELEMENT_CASES),
]
