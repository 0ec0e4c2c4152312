"""ProposalTuner: fine-tune a proposal q toward the target p, so that rejection sampling rejects less.

The acceptance of rejection sampling is Z / M with M = sup p / q: a proposal closer to the target
raises it. The tuner trains the parameters of a proposal module (an
:class:`rsfast.proposals.MixtureNormal`, or any ``torch.nn.Module`` with ``log_prob`` and
``sample``/``rsample``, a normalizing flow say) with one of three losses, then re-estimates log M
(:func:`rsfast.estimate_log_M`) and measures what changed (:class:`TuningReport`).

Losses (q below is the proposal that is sampled, i.e. the defensive mixture, see ``defensive``):

- ``"fkl"``: forward KL(p || q), mode covering, the safe default. Off-policy: a FIFO buffer of
  draws from earlier proposals, with self-normalised importance weights p / q_behaviour;
  the loss is -sum_i w_i log q(x_i). On a MixtureNormal each step is a damped weighted EM step (the
  closed-form minimiser of that loss for the current responsibilities).
- ``"rkl"``: reverse KL(q || p) = E_q[log q - log p] with reparameterised draws from q (for a
  MixtureNormal from every component, weighted by softmax(logits), so the weights get exact
  gradients too). Mode seeking: it can drop modes, so the target is annealed from the reference
  (p^beta q_ref^(1 - beta), beta 0 -> 1 over ``anneal_steps``); needs a log_target differentiable in x.
- ``"chi2"``: log E_q[(p / q)^2] (log-sum-exp over the same off-policy buffer), i.e. the
  variance of the weights p / q, which is what makes M large.

EM local optima (fkl on a MixtureNormal, the default): with unequal mode weights, or a number of
components different from the number of modes, EM stalls with one component straddling two modes
while another duplicates a mode or dies; the envelope is then set at the under-covered mode and the
acceptance stays low however long EM runs. On each plateau the tuner makes a split move (the
component whose removal costs the least forward KL is re-created, with weight at least 1 / K, at the
draw with the largest p / q; the buffer is then redrawn so that EM sees the moved component) and
keeps it only if the acceptance Z / M estimated on the draws rose; after training a polish stage
widens the trained components by the common factor that maximises that estimate, since a KL fit
leaves tails slightly too thin and M is set in the tails.

Coverage: those decisions hinge on M = sup p / q, and draws of q alone never see a mode q has missed
(a few draws of the defensive share land there, too few for EM to move toward it). So the split
moves, their judgement and the polish use the buffer pooled with ``eval_draws`` fresh draws of the
reference (:mod:`rsfast.finetune.proposal_coverage`): the worst p / q, and the first move, then sit
in the missed mode.

Mode collapse: a proposal that misses a mode of p leaves p / q unbounded there; log M estimated
from draws of q may not see it, so samples are biased (rsfast.sample counts the few draws that land
there as overweight), or, when its pilot meets the mode, M is huge and the acceptance tiny. After
fitting the tuner measures the overweight rate of draws from q, the target mass where p > M q
(draws of q pooled with draws of the reference proposal, by default the initial one), the share of
the target left to the defensive component, and the envelope over those pooled draws; the reported
acceptance uses that envelope, i.e. what rsfast.sample sees once its pilot meets every region the
reference reveals. It warns with :class:`ModeCollapseWarning` when one of them is too large.
Remedies: keep the defensive mixture (``defensive`` > 0, the default: a fraction of the initial
proposal stays in q, which bounds p / q by p / (defensive * q_initial)), use more components, use
``loss="fkl"``, or anneal rkl longer. A mode that no draw of the reference reaches stays invisible.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._random import check_generator, draw_seed, seeded_global_rng
from ..proposals import MixtureNormal, Normal
from ..sampler import estimate_log_M
from .proposal_common import (
    DefensiveMixture,
    _check_positive_float,
    _check_positive_int,
    _device_of,
    _draw,
    _log_mean_exp,
    _log_prob,
    _log_target,
    _mix_log_prob,
)
from .proposal_coverage import balance_log_density, envelope, mass_outside, pool
from .proposal_report import ModeCollapseWarning, ProposalMetrics, TuningReport, weight_stats
from .proposal_stages import SplitMoves, em_step, scale_polish

__all__ = ["ProposalTuner", "TuningReport", "ProposalMetrics", "ModeCollapseWarning", "DefensiveMixture"]

LOSSES = ("fkl", "rkl", "chi2")
OPTIMIZERS = ("auto", "em", "adam")
#: ModeCollapseWarning when the log of efficiency / acceptance of the tuned proposal exceeds this: the
#: envelope is far above the largest weight a typical pilot of draws of q sees.
ENVELOPE_GAP = math.log(2.0)
#: Buffer refreshes averaged for the plateau test of fit(steps=None).
PLATEAU_WINDOW = 5


# ---------------------------------------------------------------- the tuner


class ProposalTuner:
    """Fine-tune ``proposal`` toward exp(``log_target``) to raise the acceptance of rejection sampling.

    Args:
        proposal: the proposal to train, in place: a :class:`rsfast.proposals.MixtureNormal` (sampled
            by the fused kernel) or any ``torch.nn.Module`` with trainable parameters, ``log_prob(x)``
            (x [m, *event] -> [m]) and ``rsample``/``sample`` (torch.distributions style
            ``sample((m,))``, or ``sample(m)`` returning x or (x, log q)). ``rkl`` needs
            reparameterised draws (``rsample``, or a MixtureNormal).
        log_target: unnormalised log density, x [m, *event] -> [m]; -inf is allowed (zero density),
            NaN and +inf raise ValueError. ``rkl`` needs it differentiable in x.
        loss: ``"fkl"`` (default), ``"rkl"`` or ``"chi2"``: see the module docstring.
        defensive: weight alpha in [0, 1) of the frozen reference proposal in the proposal that is
            trained and returned, q = (1 - alpha) q_theta + alpha q_ref. It bounds p / q by
            p / (alpha q_ref), guarding against missed modes and thin tails, and costs at most a
            factor (1 - alpha) of acceptance. 0 returns ``proposal`` itself.
        reference: the reference proposal (defensive component and mode-collapse diagnostics);
            default: a frozen copy of ``proposal`` as given. Should cover the target's support.
        optimizer: ``"em"``: weighted EM steps (fkl on a MixtureNormal: closed form, each step jumps to
            the importance-weighted maximum-likelihood fit, damped); ``"adam"``: Adam on the loss;
            ``"auto"`` (default): EM where it applies, else Adam.
        lr: Adam learning rate.
        batch_size: draws per buffer chunk (fkl, chi2) and per rkl step (split over components).
        buffer_chunks: chunks in the off-policy FIFO buffer; one chunk is redrawn from the current
            proposal every ``refresh_every`` steps.
        refresh_every: steps between buffer refreshes (also between plateau checks); default 1 for EM,
            10 for Adam.
        max_steps, max_seconds: bounds of ``fit(steps=None)``.
        patience, rel_tol: ``fit(steps=None)`` stops when the best moving average (over
            ``PLATEAU_WINDOW`` refreshes) of the unweighting efficiency of fresh draws has not risen by a
            factor (1 + rel_tol) in ``patience`` consecutive refreshes (default 25 for EM, 8 for Adam;
            half of it, at least ``PLATEAU_WINDOW``, after a split move).
        eval_draws: draws of the proposal and of the reference for the before/after metrics, and pilot
            draws of their log M estimates (the default equals rsfast.sample's ``log_M="auto"`` pilot);
            also the draws of the reference pooled with the buffer at each plateau (coverage probe).
        collapse_rate, collapse_mass: :class:`ModeCollapseWarning` when the overweight rate of the
            tuned proposal exceeds ``collapse_rate``, the target mass outside its envelope or the target
            mass where the defensive component is at least half of q exceeds ``collapse_mass``, or the
            defensive component serves more than twice its share (plus 0.01) of the target (the
            trained part misses some of it), or the acceptance is below half the unweighting
            efficiency (``ENVELOPE_GAP``: M is set where few draws of q go).
        anneal_steps: ``rkl`` only: the target is p^beta q_ref^(1 - beta) with beta rising linearly from
            0 to 1 over this many steps (default 200 for rkl), so that the mode-seeking loss starts at
            the reference and follows the modes as they sharpen instead of collapsing onto a few.
        max_moves: EM only: split moves allowed when the efficiency plateaus (default twice the number
            of components; 0 turns them off): the cheapest component is moved to where p / q is
            largest, EM runs to the next plateau, and the move is undone unless the acceptance
            estimated on the buffer rose (:mod:`rsfast.finetune.proposal_stages`). With ``steps``
            given, moves happen within those steps.
        polish: MixtureNormal only: after training, widen all trained components by the common factor
            (1 to 1.45) that maximises the acceptance estimated on the buffer (default True).

    ``fit`` returns the proposal to sample from (``proposal`` itself when ``defensive`` is 0; else
    a new :class:`~rsfast.proposals.MixtureNormal` when ``proposal`` and the reference are normals or
    mixtures of normals, so that rsfast.sample keeps its fused kernel, or a :class:`DefensiveMixture`)
    and keeps a :class:`TuningReport` at ``.report``.
    """

    def __init__(
        self,
        proposal: Any,
        log_target: Callable[[Tensor], Tensor],
        loss: str = "fkl",
        *,
        defensive: float = 0.05,
        reference: Any | None = None,
        optimizer: str = "auto",
        lr: float = 0.05,
        batch_size: int = 4096,
        buffer_chunks: int = 4,
        refresh_every: int | None = None,
        max_steps: int = 2000,
        max_seconds: float = 30.0,
        patience: int | None = None,
        rel_tol: float = 0.02,
        eval_draws: int = 1 << 16,
        collapse_rate: float = 1e-3,
        collapse_mass: float = 1e-2,
        anneal_steps: int | None = None,
        max_moves: int | None = None,
        polish: bool = True,
    ) -> None:
        if not callable(getattr(proposal, "log_prob", None)):
            raise TypeError(f"proposal must have a log_prob method, got {type(proposal).__name__}")
        if not (callable(getattr(proposal, "sample", None)) or callable(getattr(proposal, "rsample", None))):
            raise TypeError(f"proposal must have a sample or rsample method, got {type(proposal).__name__}")
        if not isinstance(proposal, torch.nn.Module) or not any(
            p.requires_grad for p in proposal.parameters()
        ):
            raise TypeError(
                "proposal must be a torch.nn.Module with trainable parameters (e.g. "
                f"rsfast.proposals.MixtureNormal), got {type(proposal).__name__}"
            )
        if not callable(log_target):
            raise TypeError(
                f"log_target must be callable [m, *event] -> [m], got {type(log_target).__name__}"
            )
        if not isinstance(loss, str) or loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
        if loss == "rkl" and not (
            isinstance(proposal, MixtureNormal) or callable(getattr(proposal, "rsample", None))
        ):
            raise TypeError('loss="rkl" needs a proposal with rsample (reparameterised draws)')
        if isinstance(defensive, bool) or not isinstance(defensive, (int, float)):
            raise TypeError(f"defensive must be a float, got {type(defensive).__name__}")
        if not 0.0 <= defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {defensive}")
        if reference is not None and not callable(getattr(reference, "log_prob", None)):
            raise TypeError(f"reference must have a log_prob method, got {type(reference).__name__}")
        self.proposal = proposal
        self.log_target = log_target
        self.loss = loss
        self.defensive = float(defensive)
        self.lr = _check_positive_float(lr, "lr")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.buffer_chunks = _check_positive_int(buffer_chunks, "buffer_chunks")
        if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {optimizer!r}"
            )
        em_ok = isinstance(proposal, MixtureNormal) and loss == "fkl"
        if optimizer == "em" and not em_ok:
            raise ValueError('optimizer="em" needs a MixtureNormal proposal and loss="fkl"')
        self.use_em = optimizer == "em" or (optimizer == "auto" and em_ok)
        if refresh_every is None:
            refresh_every = 1 if self.use_em else 10
        self.refresh_every = _check_positive_int(refresh_every, "refresh_every")
        self.patience = _check_positive_int(
            patience if patience is not None else (25 if self.use_em else 8), "patience"
        )
        self.max_steps = _check_positive_int(max_steps, "max_steps")
        self.max_seconds = _check_positive_float(max_seconds, "max_seconds")
        self.rel_tol = _check_positive_float(rel_tol, "rel_tol")
        self.eval_draws = _check_positive_int(eval_draws, "eval_draws")
        self.collapse_rate = _check_positive_float(collapse_rate, "collapse_rate")
        self.collapse_mass = _check_positive_float(collapse_mass, "collapse_mass")
        self.device = _device_of(proposal)
        if reference is None:
            reference = copy.deepcopy(proposal)
        if isinstance(reference, torch.nn.Module):
            reference.requires_grad_(False)
        self.reference = reference
        if anneal_steps is None:
            anneal_steps = 200 if loss == "rkl" else 0
        if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, int) or anneal_steps < 0:
            raise ValueError(f"anneal_steps must be an int >= 0 or None, got {anneal_steps!r}")
        if anneal_steps and loss != "rkl":
            raise ValueError('anneal_steps applies to loss="rkl" only')
        self.anneal_steps = anneal_steps
        if max_moves is None:
            max_moves = 2 * proposal.num_components if self.use_em else 0
        if isinstance(max_moves, bool) or not isinstance(max_moves, int) or max_moves < 0:
            raise ValueError(f"max_moves must be an int >= 0 or None, got {max_moves!r}")
        if max_moves and not self.use_em:
            raise ValueError("max_moves applies to the EM optimizer (a MixtureNormal with loss='fkl')")
        self.max_moves = max_moves
        if not isinstance(polish, bool):
            raise TypeError(f"polish must be a bool, got {type(polish).__name__}")
        self.polish = polish and isinstance(proposal, MixtureNormal)
        self._beta = 1.0
        self.report: TuningReport | None = None
        self.tuned: Any = None

    # ---------------------------------------------------------------- evaluation

    def evaluate(
        self, proposal: Any = None, generator: torch.Generator | None = None, *, warn: bool = True
    ) -> ProposalMetrics:
        """:class:`ProposalMetrics` of ``proposal`` (default: the tuned one, or the one given) against
        the target; warns :class:`ModeCollapseWarning` (when ``warn``) if it misses part of the target."""
        q = proposal if proposal is not None else (self.tuned if self.tuned is not None else self.proposal)
        check_generator(generator, self.device)
        g = torch.Generator(self.device).manual_seed(draw_seed(generator))
        metrics = self._metrics(q, g)
        if warn:
            self._warn_collapse(metrics)
        return metrics

    def _metrics(self, q: Any, g: torch.Generator) -> ProposalMetrics:
        # log M as rsfast.sample(log_M="auto") computes it: from draws of q and a local ascent.
        log_M = estimate_log_M(self.log_target, q, generator=g, pilot=self.eval_draws)
        n = self.eval_draws
        with torch.no_grad():
            x, lq = _draw(q, n, g)
            if lq is None:
                lq = _log_prob(q, x)
            lp = _log_target(self.log_target, x).double()
            lw = (lp - lq.double()).nan_to_num(nan=-math.inf)
            over_rate = float((lw > log_M).double().mean())
            eff, ess = weight_stats(lw, g)
            # Pooled with as many draws of the reference (which should cover the target), weighted by
            # the balance heuristic: they see the regions q barely covers (proposal_coverage).
            xr, lqr = _draw(self.reference, n, g)
            if lqr is None:
                lqr = _log_prob(self.reference, xr)
            lp_all = torch.cat([lp, _log_target(self.log_target, xr).double()])
            lq_all = torch.cat([lq.double(), _log_prob(q, xr).double()])
            lqr_all = torch.cat([_log_prob(self.reference, x).double(), lqr.double()])
            lqb_all = balance_log_density(lq_all, lqr_all, n, n)
            over_mass = mass_outside(lp_all, lq_all, lqb_all, log_M)
            # The envelope that holds on every pooled draw: what rsfast.sample's M becomes once its
            # pilot meets a region q misses; the acceptance reported is the one it gives.
            env = max(log_M, envelope(lp_all, lq_all))
            acceptance = float(torch.exp((lw - env).clamp(max=0)).mean())
            share = uncovered = 0.0
            if self.defensive > 0 and bool(torch.isfinite(lp_all - lqb_all).any()):
                w = torch.softmax((lp_all - lqb_all).nan_to_num(nan=-math.inf), 0)
                ratio = torch.exp(lqr_all - lq_all).clamp(max=1 / self.defensive)
                share = self.defensive * float((w * ratio).sum())
                # Where the defensive component is at least half of q, the trained part is absent.
                uncovered = float((w * (self.defensive * ratio >= 0.5)).sum())
        return ProposalMetrics(
            acceptance=acceptance,
            efficiency=eff,
            ess_per_sample=ess,
            overweight_rate=over_rate,
            overweight_mass=over_mass,
            log_M=float(log_M),
            num_draws=n,
            defensive_share=share,
            envelope_log_M=env,
            uncovered_mass=uncovered,
        )

    def _warn_collapse(self, m: ProposalMetrics) -> bool:
        share_limit = 2 * self.defensive + 0.01
        # Efficiency / acceptance: the envelope over the typical largest weight of a pilot a tenth the
        # size (bootstrap median). Far above 1 when M is set where few draws of q go.
        gap = math.log(m.efficiency / m.acceptance) if m.acceptance > 0 else math.inf
        if (
            m.overweight_rate > self.collapse_rate
            or m.overweight_mass > self.collapse_mass
            or m.uncovered_mass > self.collapse_mass
            or (self.defensive > 0 and m.defensive_share > share_limit)
            or gap > ENVELOPE_GAP
        ):
            warnings.warn(
                f"the tuned proposal misses part of the target: overweight rate {m.overweight_rate:.3g} "
                f"(limit {self.collapse_rate:g}), target mass outside the envelope {m.overweight_mass:.3g} "
                f"(limit {self.collapse_mass:g}), target mass the trained part leaves to the defensive "
                f"component {m.uncovered_mass:.3g} (limit {self.collapse_mass:g}), its share of the target "
                f"{m.defensive_share:.3g} (limit {share_limit:.3g} when defensive > 0), acceptance "
                f"{m.acceptance:.3g} against an unweighting efficiency of {m.efficiency:.3g} (limit: "
                "half of it; M is set where few draws of q go). Samples are "
                "biased where the envelope is exceeded; a missed mode covered only by the defensive "
                "component costs acceptance, and rsfast.sample's log_M='auto' is then large or wrong "
                "depending on whether its pilot meets that mode. Keep a defensive mixture (defensive > 0), "
                "use more components, loss='fkl', or anneal rkl longer.",
                ModeCollapseWarning,
                stacklevel=3,
            )
            return True
        return False

    # ---------------------------------------------------------------- training

    def _q_log_prob(self, x: Tensor, lq_ref: Tensor | None = None) -> Tensor:
        """log q of the trained mixture at x (differentiable); ``lq_ref``: the reference's log q at x."""
        if lq_ref is None or self.defensive <= 0:
            return _mix_log_prob(self.proposal, self.reference, self.defensive, x)
        lq = _log_prob(self.proposal, x)
        return torch.logaddexp(
            lq + math.log1p(-self.defensive), lq_ref.to(lq.dtype) + math.log(self.defensive)
        )

    def _draw_mixture(self, m: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """m draws of the current mixture, stratified (round(m (1 - alpha)) from q_theta, the rest from
        the reference), with log q of the mixture (importance weights p / q stay unbiased) and log q_ref."""
        m0 = int(round(m * self.defensive))
        xa, _ = _draw(self.proposal, m - m0, g)
        if m0:
            xb, _ = _draw(self.reference, m0, g)
            xa = torch.cat([xa, xb.to(xa.dtype)])
        with torch.no_grad():
            lqr = _log_prob(self.reference, xa) if self.defensive > 0 else torch.zeros_like(xa[:, 0])
            return xa, self._q_log_prob(xa, lqr), lqr

    def _refresh(self, buffer: list[tuple[Tensor, ...]], g: torch.Generator) -> float:
        """Draw a new chunk (x, log p, log q_behaviour, log q_ref) into the FIFO buffer; return the
        unweighting efficiency of the chunk (the current proposal's, as the plateau signal)."""
        x, lqb, lqr = self._draw_mixture(self.batch_size, g)
        with torch.no_grad():
            lp = _log_target(self.log_target, x)
        buffer.append((x, lp.to(lqb.dtype), lqb, lqr))
        del buffer[: max(0, len(buffer) - self.buffer_chunks)]
        return weight_stats((lp.double() - lqb.double()).nan_to_num(nan=-math.inf), g)[0]

    def _buffer(self, buffer: list[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        x, lp, lqb, lqr = (torch.cat([b[i] for b in buffer]) for i in range(4))
        ok = torch.isfinite(lp)
        if not bool(ok.any()):
            raise ValueError(
                "log_target is -inf at every draw of the proposal: it misses the target's support"
            )
        return x[ok], lp[ok], lqb[ok], lqr[ok]

    def _loss(self, buffer: list[tuple[Tensor, ...]], g: torch.Generator) -> Tensor:
        if self.loss == "rkl":
            return self._rkl(g)
        x, lp, lqb, lqr = self._buffer(buffer)
        lq = self._q_log_prob(x, lqr)
        if self.loss == "fkl":
            w = torch.softmax(lp - lqb, 0)  # self-normalised p / q_behaviour
            return -(w * lq).sum()
        # chi2: log E_q[(p/q)^2] - 2 log Z, with E_q[(p/q)^2] = E_b[p^2 / (q b)] and Z = E_b[p / b].
        return _log_mean_exp(2 * lp - lq - lqb) - 2 * _log_mean_exp(lp - lqb)

    def _pool(self, buffer: list[tuple[Tensor, ...]], g: torch.Generator) -> tuple[Tensor, ...]:
        """The buffer pooled with ``eval_draws`` fresh draws of the reference (:func:`pool`), for the
        decisions that hinge on M: the split moves and the polish see the regions q misses."""
        data = self._buffer(buffer)
        with torch.no_grad():
            xr, lqr = _draw(self.reference, self.eval_draws, g)
            if lqr is None:
                lqr = _log_prob(self.reference, xr)
            lpr = _log_target(self.log_target, xr)
            lq_buffer = self._q_log_prob(data[0], data[3])
            lq_probe = self._q_log_prob(xr, lqr)
        return pool(data, (xr, lpr, lqr), lq_buffer, lq_probe)

    def _em_step(self, buffer: list[tuple[Tensor, ...]]) -> float:
        """One damped weighted EM step of the MixtureNormal on the buffer (:func:`em_step`)."""
        return em_step(self.proposal, *self._buffer(buffer), self.defensive, self.loss == "chi2")

    def _rkl(self, g: torch.Generator) -> Tensor:
        """E_q[log q - log p], reparameterised; q = (1 - alpha) q_theta + alpha q_ref."""
        q = self.proposal
        if isinstance(q, MixtureNormal):
            per = max(1, self.batch_size // q.num_components)
            xk = q.rsample_components(per, generator=g)  # [K, n, D]
            k, n, d = xk.shape
            f = self._rkl_terms(xk.reshape(k * n, d)).reshape(k, n)
            ok = torch.isfinite(f.detach())
            f = torch.where(ok, f, torch.zeros_like(f))
            term = (torch.softmax(q.logits, 0).unsqueeze(1) * f).sum(0).mean()
        else:
            with seeded_global_rng(self.device, draw_seed(g)):
                x = q.rsample(torch.Size((self.batch_size,)))
            if not x.requires_grad:
                raise ValueError('loss="rkl" needs proposal.rsample to return draws that carry gradients')
            f = self._rkl_terms(x)
            ok = torch.isfinite(f.detach())
            term = torch.where(ok, f, torch.zeros_like(f)).mean()
        if self.defensive > 0:
            x0, _ = _draw(self.reference, max(1, int(self.batch_size * self.defensive)), g)
            f0 = self._rkl_terms(x0)
            ok0 = torch.isfinite(f0.detach())
            term = (1 - self.defensive) * term + self.defensive * torch.where(
                ok0, f0, torch.zeros_like(f0)
            ).mean()
        return term

    def _rkl_terms(self, x: Tensor) -> Tensor:
        lp = _log_target(self.log_target, x)
        if x.requires_grad and not lp.requires_grad:
            raise ValueError(
                'loss="rkl" needs a log_target differentiable in x (autograd); use loss="fkl" or "chi2"'
            )
        lp = lp.to(x.dtype)
        if self._beta < 1:  # annealed target p^beta q_ref^(1 - beta): starts at the reference
            lp = self._beta * lp + (1 - self._beta) * _log_prob(self.reference, x).to(x.dtype)
        return self._q_log_prob(x) - lp

    def _final(self) -> Any:
        """The proposal to sample from: the trained one, or its defensive mixture with the reference."""
        if self.defensive <= 0:
            return self.proposal
        a = self.defensive
        if isinstance(self.proposal, MixtureNormal) and isinstance(self.reference, (MixtureNormal, Normal)):
            return MixtureNormal.combine([(1 - a, self.proposal), (a, self.reference)])
        return DefensiveMixture(self.proposal, self.reference, a)

    def fit(
        self, steps: int | None = None, generator: torch.Generator | None = None, progress: bool = False
    ) -> Any:
        """Train and return the proposal to sample from (see the class docstring); fills ``.report``.

        Args:
            steps: optimiser steps, >= 1; None stops on a plateau of the unweighting efficiency, after
                at most ``max_steps`` steps or ``max_seconds`` seconds.
            generator: torch.Generator on the proposal's device; every draw (buffer, rkl noise,
                evaluation, log M estimates) follows from one seed drawn from it, so a seeded generator
                makes fit() deterministic (on a fixed thread count).
            progress: show a tqdm bar (needs tqdm).
        """
        if steps is not None:
            steps = _check_positive_int(steps, "steps")
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be a bool, got {type(progress).__name__}")
        check_generator(generator, self.device)
        t0 = time.perf_counter()
        g = torch.Generator(self.device).manual_seed(draw_seed(generator))
        eval_seed = draw_seed(g)
        before = self._metrics(self._final(), torch.Generator(self.device).manual_seed(eval_seed))

        params = [p for p in self.proposal.parameters() if p.requires_grad]
        # EM needs no optimiser; building Adam first imports torch._dynamo (seconds, once per process).
        opt = None if self.use_em else torch.optim.Adam(params, lr=self.lr)
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                warnings.warn("progress=True needs tqdm (pip install tqdm); no bar shown", stacklevel=2)
            else:
                bar = tqdm(total=steps or self.max_steps, desc=f"ProposalTuner({self.loss})", unit="step")
        total = steps if steps is not None else self.max_steps
        buffer: list[tuple[Tensor, Tensor, Tensor]] = []
        losses: list[float] = []
        effs: list[tuple[int, float]] = []
        best, stale, reason = -1.0, 0, "steps" if steps is not None else "max_steps"
        recent: list[float] = []
        moves = SplitMoves(self.max_moves)
        t1 = time.perf_counter()
        try:
            for step in range(1, total + 1):
                self._beta = min(1.0, step / self.anneal_steps) if self.anneal_steps else 1.0
                if (step - 1) % self.refresh_every == 0:
                    eff = self._refresh(buffer, g)
                    effs.append((step - 1, eff))
                    if (steps is None or moves.left) and self._beta >= 1:
                        # The efficiency of one chunk is noisy: compare moving averages of PLATEAU_WINDOW.
                        recent.append(eff)
                        smooth = sum(recent[-PLATEAU_WINDOW:]) / len(recent[-PLATEAU_WINDOW:])
                        if smooth > best * (1 + self.rel_tol):
                            best, stale = smooth, 0
                        else:
                            stale += 1
                        if stale >= (
                            self.patience if not moves.made else max(PLATEAU_WINDOW, self.patience // 2)
                        ):
                            # A plateau: judge the pending split move, then try another or stop.
                            data = self._pool(buffer, g)
                            moves.judge(self.proposal, *data, self.defensive, self.rel_tol)
                            if moves.left:
                                moves.start(self.proposal, *data, self.defensive)
                                # Redraw the buffer: the next EM step must see draws of the moved
                                # component, or it reads "no target mass there" and kills it.
                                buffer.clear()
                                for _ in range(self.buffer_chunks):
                                    self._refresh(buffer, g)
                                best, stale, recent = -1.0, 0, []
                            elif steps is None:
                                reason = "plateau"
                                break
                            else:
                                stale = 0
                if self.use_em:
                    value = self._em_step(buffer)
                else:
                    assert opt is not None
                    opt.zero_grad(set_to_none=True)
                    loss_t = self._loss(buffer, g)
                    value = float(loss_t.detach())
                    if math.isfinite(value):
                        loss_t.backward()
                        opt.step()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the {self.loss} loss became {value} at step {step}; lower lr or check log_target"
                    )
                losses.append(value)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.4g}", eff=f"{effs[-1][1]:.3f}")
                if steps is None and time.perf_counter() - t1 > self.max_seconds:
                    reason = "max_seconds"
                    break
            if buffer and (moves.saved is not None or self.polish):
                data = self._pool(buffer, g)
                moves.judge(self.proposal, *data, self.defensive, self.rel_tol)
                if self.polish:
                    scale_polish(self.proposal, *data, self.defensive)
        finally:
            self._beta = 1.0
            if bar is not None:
                bar.close()
        t2 = time.perf_counter()
        tuned = self._final()
        self.tuned = tuned
        after = self._metrics(tuned, torch.Generator(self.device).manual_seed(eval_seed + 1))
        collapse = self._warn_collapse(after)
        self.report = TuningReport(
            loss=self.loss,
            before=before,
            after=after,
            steps=len(losses),
            seconds=time.perf_counter() - t0,
            train_seconds=t2 - t1,
            stop_reason=reason,
            loss_history=losses,
            efficiency_history=effs,
            defensive=self.defensive,
            mode_collapse=collapse,
        )
        return tuned
