"""The envelope of ``log_M="auto"``: pilot draws, then a local ascent of log p - log q
(:func:`estimate_log_M`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import SamplingError
from .._random import check_generator, draw_seed
from ..proposals import Uniform
from .sources import LogTarget, ProposalLike, _KernelSource, _log_p, _make_source, _Source

#: ``log_M="auto"`` adds this to the largest log p - log q it finds (M grows by 10 %).
AUTO_LOG_MARGIN = math.log(1.1)
#: Pilot draws of ``log_M="auto"``.
AUTO_PILOT_DRAWS = 1 << 16
#: Starting points and Adam steps of the local maximisation of ``log_M="auto"``.
AUTO_ASCENT_STARTS = 16
AUTO_ASCENT_STEPS = 150


def _ratio_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _auto_log_M(
    log_target: LogTarget, source: _Source, seed: int, offset: int, pilot: int
) -> tuple[float, float | None]:
    """(log M, estimated acceptance) from pilot draws and a local ascent; see :func:`estimate_log_M`."""
    x, lq = source.draw(pilot, seed, offset)
    with torch.no_grad():
        lp = _log_p(log_target, x, _ratio_dtype(lq.dtype))
    if bool(torch.isposinf(lp).any()):
        raise ValueError("log_target returned +inf; a log density must be finite or -inf")
    w = lp.double() - lq.double()
    w = torch.where(torch.isnan(w), torch.full_like(w, -math.inf), w)
    finite = torch.isfinite(w)
    if not bool(finite.any()):
        raise SamplingError(
            f"log_target is -inf or NaN at all {pilot} pilot draws: the proposal misses the target's support",
            0,
            pilot,
        )
    best = float(w[finite].max())
    if x.is_floating_point():
        best = max(best, _ascend(log_target, source, x, w, finite))
    log_M = best + AUTO_LOG_MARGIN
    acc = float(torch.exp(w - log_M).clamp(max=1).mean())
    return log_M, (acc if acc > 0 else None)


def _ascend(log_target: LogTarget, source: _Source, x: Tensor, w: Tensor, finite: Tensor) -> float:
    """Largest finite log p - log q found by Adam from the best pilot points (-inf if none or if the
    target is not differentiable)."""
    k = min(AUTO_ASCENT_STARTS, int(finite.sum()))
    start = x[torch.topk(w, k).indices].detach()
    spread = x[finite].std(0) if int(finite.sum()) > 1 else torch.ones_like(x[0])
    spread = torch.nan_to_num(spread, nan=1.0).clamp_min(1e-6)
    box = (
        source.proposal
        if isinstance(source, _KernelSource) and isinstance(source.proposal, Uniform)
        else None
    )
    y = torch.zeros_like(start, requires_grad=True)
    opt = torch.optim.Adam([y], lr=0.05)
    best = -math.inf
    try:
        with torch.enable_grad():
            for _ in range(AUTO_ASCENT_STEPS):
                xs = start + spread * y
                if box is not None:
                    xs = torch.maximum(torch.minimum(xs, box.high), box.low)
                f = log_target(xs).to(torch.float64) - source.log_prob(xs).to(torch.float64)
                ok = torch.isfinite(f)
                if not bool(ok.any()):
                    break
                best = max(best, float(f.detach()[ok].max()))
                # autograd.grad, not backward(): a trainable proposal's parameters collect no gradient.
                (g,) = torch.autograd.grad(
                    -torch.where(ok, f, torch.zeros_like(f)).sum(), y, allow_unused=True
                )
                if g is None:
                    break
                y.grad = g.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
                opt.step()
    except (RuntimeError, TypeError):
        pass  # not differentiable: the pilot maximum stands
    return best


def estimate_log_M(
    log_target: LogTarget,
    proposal: ProposalLike,
    *,
    generator: torch.Generator | None = None,
    pilot: int = AUTO_PILOT_DRAWS,
) -> float:
    """The envelope ``log_M="auto"`` uses, natural log.

    Draws ``pilot`` candidates from the proposal, takes the largest finite
    ``w = log p - log q`` among them, then runs Adam (``AUTO_ASCENT_STEPS`` steps,
    learning rate 0.05 in units of the pilot standard deviation per coordinate,
    clamped to the box of a Uniform proposal) on ``log p - log q`` from the
    ``AUTO_ASCENT_STARTS`` best pilot points, and returns the largest value seen
    plus ``AUTO_LOG_MARGIN`` (log 1.1). A target that autograd cannot
    differentiate keeps the pilot maximum. The estimate is a local maximum: a
    mode the pilot never visits is missed, which :func:`sample` then counts as
    overweight proposals.
    """
    if isinstance(pilot, bool) or not isinstance(pilot, int):
        raise TypeError(f"pilot must be an int, got {type(pilot).__name__}")
    if pilot < 1:
        raise ValueError(f"pilot must be >= 1, got {pilot}")
    if not callable(log_target):
        raise TypeError(f"log_target must be callable [m, *event] -> [m], got {type(log_target).__name__}")
    source = _make_source(proposal)
    check_generator(generator, source.device)
    return _auto_log_M(log_target, source, draw_seed(generator), 0, pilot)[0]
