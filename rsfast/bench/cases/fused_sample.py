"""Benchmark cases of ``fused_sample``: fused_mixture."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ... import baselines
from ...sampler import sample
from ..common import (
    _DIM,
    _MODE,
    _SD,
    BIMODAL_LOG_M,
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
ORDER = 5


def bimodal_target(dev: torch.device | str = "cpu") -> Any:
    """The headline target as an :class:`rsfast.targets.MixtureNormal` (normalised: it is
    ``bimodal_log_target - log(pi)``), float32 on ``dev``."""
    from ...targets import MixtureNormal

    dev = torch.device(dev)
    loc = torch.tensor([[_MODE] * _DIM, [-_MODE] * _DIM], device=dev)
    return MixtureNormal(torch.zeros(2, device=dev), loc, torch.full((2, _DIM), _SD, device=dev))


#: The envelope of the fused_mixture case: BIMODAL_LOG_M for the normalised density.
FUSED_LOG_M = BIMODAL_LOG_M - math.log(math.pi)


def _setup_fused_mixture(quick: bool, device: str) -> Prepared:
    """The headline problem (n samples, 2-D bimodal target, Normal(0, 3) proposal, the exact envelope)
    with the target given as ``rsfast.targets.MixtureNormal``. Methods: ``rsfast`` (rsfast.sample on the
    fused kernel: one launch), ``generic`` (rsfast.sample with ``fused=False``: the engine's rounds with
    the target's torch log density) and ``torch_loop`` (:func:`rsfast.baselines.sample_torch_loop` on
    :func:`bimodal_log_target`, the sample_bimodal_2d baseline)."""
    dev = _device(device)
    proposal = _bimodal_proposal(dev)
    target = bimodal_target(dev)
    n = SAMPLE_N[quick]
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        g.manual_seed(SEED)
        return sample(target, proposal, n, log_M=FUSED_LOG_M, generator=g).samples

    def run_generic() -> Tensor:
        g.manual_seed(SEED)
        return sample(target, proposal, n, log_M=FUSED_LOG_M, generator=g, fused=False).samples

    def run_torch_loop() -> Tensor:
        g.manual_seed(SEED)
        return baselines.sample_torch_loop(bimodal_log_target, proposal, n, BIMODAL_LOG_M, generator=g)

    items = {"rsfast": n, "generic": n, "torch_loop": n}

    def check(method: str, out: Any) -> None:
        assert isinstance(out, Tensor), f"{method}: expected a Tensor, got {type(out).__name__}"
        assert tuple(out.shape) == (n, _DIM), f"{method}: shape {tuple(out.shape)}"
        assert bool(torch.isfinite(out).all()), f"{method}: non-finite samples"
        # both modes, about half each (10 standard deviations either way)
        share = float((out[:, 0] > 0).float().mean())
        assert abs(share - 0.5) < 10 * 0.5 / math.sqrt(n), f"{method}: {share:.3f} of samples in the + mode"

    return Prepared(
        case="fused_mixture",
        unit="samples/s",
        methods={"rsfast": run_rsfast, "generic": run_generic, "torch_loop": run_torch_loop},
        items=items,
        check=check,
        device=dev,
        meta={"n": n, "dim": _DIM, "log_M": FUSED_LOG_M, "acceptance": math.exp(-FUSED_LOG_M)},
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "fused_mixture",
        "sample_bimodal_2d with the target as rsfast.targets.MixtureNormal: fused kernel vs generic path",
        _setup_fused_mixture,
    ),
]
