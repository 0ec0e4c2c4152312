"""The fused path of :func:`rsfast.sample`: an :class:`rsfast.targets.MixtureNormal` target with a
built-in proposal runs propose, evaluate and accept in one kernel launch."""

from __future__ import annotations

import importlib
import math
import time
from typing import Any

import torch

from .. import ops
from .._checks import SamplingError
from .._random import check_generator, draw_seed
from ..proposals import Proposal
from .args import _budget, _Progress
from .log_m import AUTO_PILOT_DRAWS, _auto_log_M
from .result import SampleResult, _warn_overweight
from .sources import _KernelSource

# The op's module (its name is shadowed in rsfast.ops by the op itself); its bridge is looked up per call.
_FUSED_OP = importlib.import_module("rsfast.ops.fused_sample")


def _fused_applies(log_target: Any, proposal: Any) -> bool:
    """True for an rsfast.targets.MixtureNormal with a built-in proposal of its dtype, device and D."""
    from ..targets import MixtureNormal as MixtureTarget

    return (
        isinstance(log_target, MixtureTarget)
        and isinstance(proposal, Proposal)
        and proposal.dtype == log_target.dtype
        and proposal.device == log_target.device
        and proposal.event_shape == (log_target.dim,)
    )


def _sample_fused(
    target: Any,
    proposal: Proposal,
    n: int,
    log_M: float | str,
    generator: torch.Generator | None,
    max_proposals: int | None,
    on_overweight: str,
    progress: bool = False,
) -> SampleResult:
    """:func:`sample` by the fused kernel (one launch, one host synchronisation to read the counts; a
    progress bar jumps to the end when the launch is done)."""
    device = proposal.device
    check_generator(generator, device)
    seed = draw_seed(generator)
    offset = 0
    budget = _budget(n, max_proposals)
    t0 = time.perf_counter()
    if log_M == "auto":
        log_M, _ = _auto_log_M(target, _KernelSource(proposal), seed, offset, AUTO_PILOT_DRAWS)
        offset += 1
    log_M = float(log_M)
    t1 = time.perf_counter()
    kind = proposal.kind
    out = torch.empty((n, target.dim), dtype=proposal.dtype, device=device)
    counts = torch.zeros(len(ops.FUSED_COUNT_SLOTS), dtype=torch.int64, device=device)
    max_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=device)
    if n:
        with torch.no_grad():
            q = ops.derived_params(kind, proposal.params())
            q_inv = (1 / q[1]).contiguous() if kind == "mixture_normal" else None
            p = ops.fused_target_params(target.logits, target.loc, target.scale)
            _FUSED_OP.fused_sample_into(
                kind, q, q_inv, p, n, log_M, seed, offset, budget, out, counts, max_ratio
            )  # fmt: skip
    c = dict(zip(ops.FUSED_COUNT_SLOTS, counts.tolist()))
    accepted, nan, over, posinf = c["accepted"], c["nan"], c["overweight"], c["posinf"]
    used, stopped = c["proposals"], c["stopped"]
    t2 = time.perf_counter()
    bar = _Progress(progress, n)
    bar.update(min(accepted, n))
    bar.close()
    if stopped or used > budget:
        raise SamplingError(
            f"fused kernel stopped after about {used:,} proposals with {accepted:,} of {n:,} samples "
            f"(acceptance {accepted / max(used, 1):.3g}); raise max_proposals, improve the proposal or "
            "lower log_M",
            accepted,
            used,
        )
    if posinf:
        raise ValueError(f"the target's log density was +inf for {posinf} candidates")
    max_log_ratio = float(max_ratio)
    if over and on_overweight == "raise":
        raise SamplingError(
            f"{over} proposals had log p - log q > log_M = {log_M:.6g} (largest {max_log_ratio:.6g}): "
            "the envelope is wrong; raise log_M",
            accepted,
            used,
        )
    if over and on_overweight == "warn":
        _warn_overweight(over, used, log_M, max_log_ratio, stacklevel=4)
    return SampleResult(
        samples=out,
        log_M=log_M,
        acceptance_rate=accepted / used if used else 0.0,
        num_proposals=used,
        num_accepted=accepted,
        num_rounds=1 if n else 0,
        num_overweight=over,
        num_nan=nan,
        max_log_ratio=max_log_ratio,
        setup_seconds=t1 - t0,
        seconds=t2 - t1,
    )
