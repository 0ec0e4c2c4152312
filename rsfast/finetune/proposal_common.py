"""Pieces of ProposalTuner shared by its stages: the defensive mixture for proposals that do not combine
into one MixtureNormal, and helpers that draw, score and check."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import ops
from .._random import draw_seed, seeded_global_rng
from ..proposals import Proposal
from ..sampler import draw_module
from ..sampler import module_device as _module_device


class DefensiveMixture(torch.nn.Module):
    """(1 - alpha) * proposal + alpha * defensive, for proposals that do not combine into one
    :class:`~rsfast.proposals.MixtureNormal`. Sampled by rsfast.sample through torch (``sample`` and
    ``log_prob``); only ``proposal``'s parameters are trained."""

    def __init__(self, proposal: Any, defensive: Any, alpha: float) -> None:
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.proposal = proposal
        self.defensive = defensive
        self.alpha = float(alpha)

    def log_prob(self, x: Tensor) -> Tensor:
        return _mix_log_prob(self.proposal, self.defensive, self.alpha, x)

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> Tensor:
        """Draws with torch's global RNG (rsfast.sample seeds it), ``sample_shape + event``."""
        shape = torch.Size(sample_shape)
        m = shape.numel()
        with torch.no_grad():
            a = _draw(self.proposal, m, None)[0]
            b = _draw(self.defensive, m, None)[0]
            pick = torch.rand((m,), device=a.device) < self.alpha
            x = torch.where(pick.reshape((m,) + (1,) * (a.dim() - 1)), b, a)
        return x.reshape(shape + x.shape[1:])


# ---------------------------------------------------------------- helpers


def _log_prob(q: Any, x: Tensor) -> Tensor:
    lq = q.log_prob(x)
    return lq.reshape(lq.shape[0], -1).sum(1) if lq.dim() > 1 else lq


def _mix_log_prob(q: Any, q0: Any, alpha: float, x: Tensor) -> Tensor:
    lq = _log_prob(q, x)
    if alpha <= 0:
        return lq
    lq0 = _log_prob(q0, x).to(lq.dtype)
    return torch.logaddexp(lq + math.log1p(-alpha), lq0 + math.log(alpha))


def _draw(q: Any, m: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
    """m draws of q without gradient, and their log q when the fused kernel gives it for free."""
    with torch.no_grad():
        if isinstance(q, Proposal):
            if m == 0:
                return q.params()[-1].new_empty((0, q.event_shape[0])), None
            return ops.propose(q.kind, q.params(), m, draw_seed(generator), 0)
        if generator is None:
            return draw_module(q, m), None
        with seeded_global_rng(generator.device, draw_seed(generator)):
            return draw_module(q, m), None


def _device_of(q: Any) -> torch.device:
    return q.device if isinstance(q, Proposal) else _module_device(q)


def _log_target(log_target: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """log_target(x) as [m], checked: NaN and +inf raise (a tuner cannot learn from them)."""
    lp = log_target(x)
    if not isinstance(lp, Tensor) or lp.shape != x.shape[:1]:
        raise ValueError(
            f"log_target must map x [m, *event] to a [m] tensor; for x {tuple(x.shape)} it returned "
            f"{tuple(lp.shape) if isinstance(lp, Tensor) else type(lp).__name__}"
        )
    bad = torch.isnan(lp) | torch.isposinf(lp)
    if bool(bad.any()):
        raise ValueError(
            f"log_target returned NaN or +inf at {int(bad.sum())} of {lp.shape[0]} points; a log density "
            "must be finite or -inf"
        )
    return lp


def _log_mean_exp(v: Tensor) -> Tensor:
    return torch.logsumexp(v, 0) - math.log(v.shape[0])


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _check_positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)
