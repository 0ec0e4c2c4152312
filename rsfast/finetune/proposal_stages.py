"""Stages of ProposalTuner that act on a MixtureNormal's parameters directly (no autograd).

- :func:`em_step`: one damped, importance-weighted EM step (forward KL, or chi-square).
- :func:`split_move`: the escape from an EM local optimum. EM on a fixed number of components stalls
  when one component straddles two modes while another sits on a mode already covered or has died
  (weight ~ 0): the envelope M = sup p / q is then set at the under-covered mode and the acceptance
  stays low however long EM runs. The move deletes the component whose removal costs the least
  forward KL (a duplicate or a dead one: the "merge") and re-creates it at the draw where p / q is
  largest, sharing the weight of the component responsible there (the "split"; at least 1 / K, so that
  a component sent to a mode no live component serves draws there). The tuner then runs
  EM to a new plateau and keeps the move only if the efficiency rose.
- :func:`scale_polish`: the final acceptance stage. A fit by KL leaves components slightly too narrow
  in their tails, where p / q, and so M, grows; widening all components of the trained part by a
  common factor s >= 1 trades a little density at the centres for a bounded tail. The factor is
  chosen among ``POLISH_FACTORS`` by the estimated acceptance Z / M on the tuner's buffer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..proposals import MixtureNormal

#: Pseudo-draws at the old parameters in each EM step of a component (damping).
EM_PRIOR = 4.0
#: Split moves rejected in a row after which fit() stops trying them.
MOVE_FAILURES = 2
#: Common scale factors tried by the polish stage (1 keeps the fit).
POLISH_FACTORS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.45)
_LOG_2PI = math.log(2 * math.pi)


def component_log_prob(q: MixtureNormal, x: Tensor) -> Tensor:
    """log(pi_k N_k(x)) [N, K] in float64, pi the mixture weights; x [N, D]."""
    loc, log_scale = q.loc.double(), q.log_scale.double()
    z2 = ((x.double().unsqueeze(1) - loc) / torch.exp(log_scale)).pow(2).sum(-1)
    return (
        torch.log_softmax(q.logits.double(), 0) - 0.5 * z2 - log_scale.sum(-1) - 0.5 * x.shape[1] * _LOG_2PI
    )


def mix_in(lq_theta: Tensor, lq_ref: Tensor, alpha: float) -> Tensor:
    """log((1 - alpha) q_theta + alpha q_ref) from the two log densities."""
    if alpha <= 0:
        return lq_theta
    return torch.logaddexp(lq_theta + math.log1p(-alpha), lq_ref + math.log(alpha))


@torch.no_grad()
def em_step(
    q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float, chi2: bool
) -> float:
    """One weighted EM step of ``q`` on draws x [N, D] (log p, log q_behaviour, log q_ref at x), the
    defensive component (weight ``alpha``) held fixed; weights p / q_b (forward KL) or, with ``chi2``,
    p^2 / (q q_b), the fixed point of its gradient. Each component's new parameters are a weighted MLE
    with ``EM_PRIOR`` pseudo-draws at the old ones, counted in effective draws (for the weights the
    Kish ESS of all the weights, for a location and scale the Kish ESS of the component's share of
    them), so that a component seen by few draws barely moves. Returns the loss before the step."""
    x, lp, lqb, lqr = x.double(), lp.double(), lqb.double(), lqr.double()
    loc, log_scale, logits = q.loc.double(), q.log_scale.double(), q.logits.double()
    var = torch.exp(2 * log_scale)
    log_comp = component_log_prob(q, x)
    lq = mix_in(torch.logsumexp(log_comp, 1), lqr, alpha)
    log_r = log_comp + (math.log1p(-alpha) if alpha > 0 else 0.0) - lq.unsqueeze(1)
    lv = 2 * lp - lq - lqb if chi2 else lp - lqb
    v = torch.softmax(lv, 0)
    if chi2:
        value = float(torch.logsumexp(lv, 0) - 2 * torch.logsumexp(lp - lqb, 0) + math.log(lp.shape[0]))
    else:
        value = float(-(v * lq).sum())
    ess = float(1.0 / (v * v).sum())
    vr = v.unsqueeze(1) * torch.exp(log_r)  # [N, K] target mass of each draw given to each component
    mass = vr.sum(0)
    counts = mass * ess  # effective draws per component, for the weights
    # For a component's location and scale, its own Kish ESS: a few draws with large weights are few
    # draws, however many the buffer holds elsewhere (the global ESS would let them collapse its scale).
    seen = mass > 0
    n_k = torch.where(seen, mass.pow(2) / vr.pow(2).sum(0).clamp_min(1e-300), torch.zeros_like(mass))
    safe = mass.clamp_min(1e-300).unsqueeze(1)
    mean = torch.where(seen.unsqueeze(1), (vr.T @ x) / safe, loc)
    spread = torch.where(seen.unsqueeze(1), (vr.T @ (x * x)) / safe - mean**2, var).clamp_min(0)
    k0 = EM_PRIOR
    n_k = n_k.unsqueeze(1)
    new_loc = (n_k * mean + k0 * loc) / (n_k + k0)
    new_var = (n_k * (spread + (mean - new_loc) ** 2) + k0 * (var + (loc - new_loc) ** 2)) / (n_k + k0)
    probs = torch.softmax(logits, 0)
    new_probs = (counts + k0 * probs) / (counts.sum() + k0)
    q.loc.copy_(new_loc)
    q.log_scale.copy_(0.5 * torch.log(new_var.clamp_min(1e-30)))
    # Floored: a weight that underflows to 0 would make the logits -inf (MixtureNormal rejects them).
    q.logits.copy_(torch.log((new_probs / new_probs.sum()).clamp_min(1e-300)))
    return value


@torch.no_grad()
def split_move(q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float) -> bool:
    """Move the cheapest component of ``q`` to the draw where p / q is largest (see the module
    docstring), in place; x [N, D] with log p, log q_behaviour, log q_ref. Returns False (and changes
    nothing) when ``q`` has a single component."""
    k = q.num_components
    if k < 2:
        return False
    log_comp = component_log_prob(q, x)  # [N, K]
    lq_theta = torch.logsumexp(log_comp, 1)
    lq = mix_in(lq_theta, lqr.double(), alpha)
    lw = lp.double() - lq
    star = int(torch.argmax(lw))
    # Forward-KL cost of deleting component j: E_p[log q_theta - log q_theta^(-j)], q^(-j) renormalised.
    w = torch.softmax(lp.double() - lqb.double(), 0)
    probs = torch.softmax(q.logits.double(), 0)
    rest = torch.log1p(-torch.exp(log_comp - lq_theta.unsqueeze(1)).clamp(max=1 - 1e-12))  # log(1 - r_j)
    cost = -(w.unsqueeze(1) * rest).sum(0) + torch.log1p(-probs.clamp(max=1 - 1e-12))
    resp = int(torch.argmax(log_comp[star]))  # the component that serves the worst point
    cost[resp] = math.inf
    donor = int(torch.argmin(cost))
    shared = float(probs[resp] + probs[donor]) / 2
    new_probs = probs.clone()
    new_probs[resp] = shared
    # At least 1 / K: when the worst point lies in a mode no live component serves, resp and donor may
    # both be dead (weight ~0) and a new component with their weight would draw nothing and stay dead.
    new_probs[donor] = max(shared, 1.0 / k)
    new_probs /= new_probs.sum()
    q.loc[donor] = x[star].to(q.loc.dtype)
    q.log_scale[donor] = q.log_scale[resp] - math.log(2.0)
    q.logits.copy_(torch.log(new_probs).to(q.logits.dtype))
    return True


@torch.no_grad()
def buffer_acceptance(
    q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float
) -> float:
    """Acceptance Z / M of the mixture (1 - alpha) q + alpha q_ref estimated on draws x [N, D] of
    earlier proposals (log p, log q_behaviour, log q_ref at x): Z self-normalised, M the largest p / q
    over the draws (a lower bound of sup p / q). Two parameter sets compared on the same draws see
    the same points: a mode that one of them leaves uncovered shows up as a large p / q there."""
    lp, lqb, lqr = lp.double(), lqb.double(), lqr.double()
    log_z = float(torch.logsumexp(lp - lqb, 0)) - math.log(lp.shape[0])
    lq = mix_in(torch.logsumexp(component_log_prob(q, x), 1), lqr, alpha)
    return math.exp(min(0.0, log_z - float((lp - lq).max())))


@torch.no_grad()
def scale_polish(
    q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float
) -> tuple[float, float]:
    """Widen every component of ``q`` by the factor of ``POLISH_FACTORS`` that maximises
    :func:`buffer_acceptance` on the draws x [N, D] (log p, log q_behaviour, log q_ref at x). In
    place. Returns (factor, estimated acceptance)."""
    base = q.log_scale.detach().clone()
    best = (1.0, -math.inf)
    for s in POLISH_FACTORS:
        q.log_scale.copy_(base + math.log(s))
        acc = buffer_acceptance(q, x, lp, lqb, lqr, alpha)
        if acc > best[1] * (1 + 1e-3):
            best = (s, acc)
    q.log_scale.copy_(base + math.log(best[0]))
    return best


class SplitMoves:
    """Bookkeeping of the split moves of fit(): at most ``budget`` moves, and none after
    ``MOVE_FAILURES`` rejected in a row. A move is kept when :func:`buffer_acceptance` of the new
    parameters beats that of the old ones on the same (current) buffer by a factor (1 + rel_tol), else
    the old parameters are restored."""

    def __init__(self, budget: int) -> None:
        self.budget, self.failures, self.made, self.kept = budget, 0, 0, 0
        self.saved: list[Tensor] | None = None

    @property
    def left(self) -> bool:
        return self.made < self.budget and self.failures < MOVE_FAILURES

    def start(self, q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float) -> None:
        """Save the parameters and make one :func:`split_move`."""
        self.saved = [p.detach().clone() for p in q.parameters()]
        self.made += 1
        split_move(q, x, lp, lqb, lqr, alpha)

    @torch.no_grad()
    def judge(
        self, q: MixtureNormal, x: Tensor, lp: Tensor, lqb: Tensor, lqr: Tensor, alpha: float, rel_tol: float
    ) -> None:
        """Keep or undo the pending move."""
        if self.saved is None:
            return
        new = [p.detach().clone() for p in q.parameters()]
        acc_new = buffer_acceptance(q, x, lp, lqb, lqr, alpha)
        _assign(q, self.saved)
        acc_old = buffer_acceptance(q, x, lp, lqb, lqr, alpha)
        self.saved = None
        if acc_new > acc_old * (1 + rel_tol):
            _assign(q, new)
            self.failures, self.kept = 0, self.kept + 1
        else:
            self.failures += 1


def _assign(q: torch.nn.Module, values: list[Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(q.parameters(), values):
            p.copy_(v)
