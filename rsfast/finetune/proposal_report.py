"""What ProposalTuner measures: :class:`ProposalMetrics` of a proposal, the :class:`TuningReport` of
a fit, the :class:`ModeCollapseWarning`, and the weight statistics behind them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: Bootstrap replicas and replica size (fraction of the draws) of the median w_max.
BOOTSTRAP_REPLICAS = 64
BOOTSTRAP_FRACTION = 0.1


class ModeCollapseWarning(RuntimeWarning):
    """The tuned proposal misses part of the target (p > M q on a measurable part of it): rejection
    samples from it are biased there. Keep a defensive mixture (``defensive`` > 0), use more
    components, or ``loss="fkl"``."""


@dataclass
class ProposalMetrics:
    """How good a proposal q is for rejection sampling from p, measured on fresh draws.

    Attributes:
        acceptance: expected acceptance of :func:`rsfast.sample`: the mean over draws of q of
            min(1, p / (M q)) with M = exp(``envelope_log_M``), the envelope that holds on every draw
            seen (a mode that q misses makes it small, as it makes rsfast.sample's acceptance small
            once its pilot meets that mode).
        efficiency: unweighting efficiency <w> / w_max of the weights w = p / q, with w_max the median
            over ``BOOTSTRAP_REPLICAS`` bootstrap replicas (each ``BOOTSTRAP_FRACTION`` of the draws)
            of their largest weight (robust to a single outlier).
        ess_per_sample: Kish effective sample size per draw, (sum w)^2 / (N sum w^2), in (0, 1].
        overweight_rate: fraction of the draws of q with p / q > M, M = exp(``log_M``) (what
            rsfast.sample counts).
        overweight_mass: fraction of the target mass where p > M q, M = exp(``log_M``): the part of
            the target that samples drawn with ``log_M="auto"`` under-represent. Self-normalised
            importance weights of draws of q pooled with as many draws of the reference proposal
            (balance heuristic: p / ((q + q_ref) / 2)).
        log_M: envelope from :func:`rsfast.estimate_log_M` (natural log), the one rsfast.sample's
            ``log_M="auto"`` computes from draws of q.
        num_draws: draws of q used.
        defensive_share: fraction of the target served by the defensive component, E_p[alpha q_ref / q]
            (alpha before tuning, below alpha for a good fit, large when the trained part misses modes).
        envelope_log_M: the larger of ``log_M`` and the largest log p - log q over the pooled draws of
            q and of the reference plus log 1.1 (rsfast.sample's margin): an envelope no draw seen
            exceeds. Equal to ``log_M`` up to noise when q covers the target; pass it as
            ``rsfast.sample(..., log_M=...)`` for an envelope checked against the reference.
        uncovered_mass: fraction of the target mass where the defensive component is at least half of
            q (alpha q_ref >= q / 2): the part the trained proposal leaves uncovered, a missed mode
            (0 without a defensive component).
    """

    acceptance: float
    efficiency: float
    ess_per_sample: float
    overweight_rate: float
    overweight_mass: float
    log_M: float
    num_draws: int
    defensive_share: float = 0.0
    envelope_log_M: float = math.nan
    uncovered_mass: float = 0.0


@dataclass
class TuningReport:
    """What :meth:`ProposalTuner.fit` did.

    Attributes:
        loss: the loss trained.
        before, after: :class:`ProposalMetrics` of the initial and of the returned proposal.
        steps: optimiser steps taken.
        seconds: wall time of fit() (training and both evaluations); ``train_seconds`` of the steps.
        stop_reason: ``"steps"`` (the number asked), ``"plateau"``, ``"max_steps"`` or ``"max_seconds"``.
        loss_history: loss value per step.
        efficiency_history: (step, unweighting efficiency on the newest buffer chunk) per evaluation.
        defensive: weight of the initial proposal kept in the returned mixture.
        mode_collapse: whether :class:`ModeCollapseWarning` was raised.
    """

    loss: str
    before: ProposalMetrics
    after: ProposalMetrics
    steps: int
    seconds: float
    train_seconds: float
    stop_reason: str
    loss_history: list[float] = field(default_factory=list)
    efficiency_history: list[tuple[int, float]] = field(default_factory=list)
    defensive: float = 0.0
    mode_collapse: bool = False

    @property
    def acceptance_gain(self) -> float:
        """after.acceptance / before.acceptance."""
        return self.after.acceptance / self.before.acceptance if self.before.acceptance > 0 else math.inf

    def summary(self) -> str:
        b, a = self.before, self.after
        return (
            f"ProposalTuner({self.loss}): acceptance {b.acceptance:.4f} -> {a.acceptance:.4f} "
            f"({self.acceptance_gain:.1f}x), efficiency {b.efficiency:.4f} -> {a.efficiency:.4f}, "
            f"ESS/N {b.ess_per_sample:.4f} -> {a.ess_per_sample:.4f}, log_M {b.log_M:.3f} -> {a.log_M:.3f} "
            f"(envelope {a.envelope_log_M:.3f}), overweight rate {a.overweight_rate:.2g}, "
            f"target mass outside the envelope {a.overweight_mass:.2g}, uncovered {a.uncovered_mass:.2g}; "
            f"{self.steps} steps ({self.stop_reason}) in {self.seconds:.2f} s"
        )


def _log_mean_exp(v: Tensor) -> Tensor:
    return torch.logsumexp(v, 0) - math.log(v.shape[0])


def bootstrap_log_wmax(log_w: Tensor, generator: torch.Generator) -> float:
    """log of the median over bootstrap replicas (BOOTSTRAP_FRACTION of the draws each) of the largest
    weight."""
    n = log_w.shape[0]
    size = max(1, int(n * BOOTSTRAP_FRACTION))
    idx = torch.randint(0, n, (BOOTSTRAP_REPLICAS, size), generator=generator, device=generator.device)
    maxima = log_w[idx.to(log_w.device)].max(1).values
    return float(maxima.median())


def weight_stats(log_w: Tensor, generator: torch.Generator) -> tuple[float, float]:
    """(unweighting efficiency with the bootstrap-median w_max, ESS per draw) of log weights [N]."""
    log_w = log_w.double()
    n = log_w.shape[0]
    if not bool(torch.isfinite(log_w).any()):
        return 0.0, 0.0
    log_mean = float(_log_mean_exp(log_w))
    eff = math.exp(min(0.0, log_mean - bootstrap_log_wmax(log_w, generator)))
    ess = math.exp(float(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)) - math.log(n))
    return eff, ess
