"""Benchmark cases of ``sample``: sample_bimodal_2d."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ... import baselines
from ...sampler import sample
from ..common import (
    _DIM,
    BIMODAL_LOG_M,
    PER_SAMPLE_N,
    SAMPLE_N,
    SEED,
    BenchCase,
    Prepared,
    _bimodal_proposal,
    _device,
    _generator,
    bimodal_log_target,
)

#: Place of these cases in the report.
ORDER = 0


def _setup_sample_bimodal(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    proposal = _bimodal_proposal(dev)
    n = SAMPLE_N[quick]
    n_slow = PER_SAMPLE_N[quick]
    log_M = BIMODAL_LOG_M
    g = _generator(dev)
    # sample_per_sample draws its uniforms on the CPU: it can take a generator only on the CPU.
    g_slow = g if dev.type == "cpu" else None

    def run_rsfast() -> Tensor:
        g.manual_seed(SEED)
        return sample(bimodal_log_target, proposal, n, log_M=log_M, generator=g).samples

    def run_torch_loop() -> Tensor:
        g.manual_seed(SEED)
        return baselines.sample_torch_loop(bimodal_log_target, proposal, n, log_M, generator=g)

    def run_per_sample() -> Tensor:
        if g_slow is not None:
            g_slow.manual_seed(SEED)
        return baselines.sample_per_sample(bimodal_log_target, proposal, n_slow, log_M, generator=g_slow)

    items = {"rsfast": n, "torch_loop": n, "per_sample": n_slow}

    def check(method: str, out: Any) -> None:
        assert isinstance(out, Tensor), f"{method}: expected a Tensor, got {type(out).__name__}"
        assert tuple(out.shape) == (items[method], _DIM), f"{method}: shape {tuple(out.shape)}"
        assert bool(torch.isfinite(out).all()), f"{method}: non-finite samples"

    return Prepared(
        case="sample_bimodal_2d",
        unit="samples/s",
        methods={"rsfast": run_rsfast, "torch_loop": run_torch_loop, "per_sample": run_per_sample},
        items=items,
        check=check,
        device=dev,
        meta={
            "n": n,
            "n_per_sample": n_slow,
            "dim": _DIM,
            "log_M": log_M,
            "acceptance": math.pi / math.exp(log_M),
        },
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "sample_bimodal_2d",
        "n exact samples of a 2-mode target on R^2 from Normal(0, 3); exact fixed log M; acceptance 3.5%",
        _setup_sample_bimodal,
    ),
]
