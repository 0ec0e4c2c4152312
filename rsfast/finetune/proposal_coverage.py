"""Coverage of the target by ProposalTuner: draws that see where the trained proposal does not go.

The envelope M = sup p / q is set where q is thin relative to p. The tuner's buffer holds draws of
the current proposal (and its defensive share of the reference, a few hundred draws per chunk), so a
mode the trained part has missed is visited by almost no draw: EM does not move toward it, a split
move never aims at it, and log M estimated from draws of q (rsfast.sample's ``log_M="auto"`` pilot)
stays blind to it. The samples are then biased there, or, when rsfast.sample's pilot happens to
meet the mode, M explodes and the acceptance collapses.

The remedy is a probe: many draws of the reference (which should cover the target's support) pooled
with the draws of q. On the pool:

- the largest p / q is a lower bound of M that sees the regions q barely covers, so the split moves
  and the polish (which maximise Z / M over the pool) aim at a missed mode first and widen tails
  the reference reveals;
- importance weights by the balance heuristic, p / ((N_q q + N_r q_ref) / N), give the target mass
  where p > M q with a variance bounded by both proposals (neither alone: q misses the uncovered
  region, p / q_ref has heavy weights where q_ref is thin).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: rsfast.sample's safety factor on log M (``log_M="auto"`` adds log 1.1 to the largest ratio seen).
ENVELOPE_MARGIN = math.log(1.1)


def balance_log_density(lq: Tensor, lqr: Tensor, n_q: int, n_r: int) -> Tensor:
    """log((n_q q + n_r q_ref) / (n_q + n_r)) from log q and log q_ref at the pooled draws [N]: the
    density the pool of n_q draws of q and n_r draws of q_ref was drawn from (balance heuristic)."""
    n = n_q + n_r
    if n_r == 0:
        return lq
    if n_q == 0:
        return lqr
    return torch.logaddexp(lq + math.log(n_q / n), lqr + math.log(n_r / n))


@torch.no_grad()
def pool(
    buffer: tuple[Tensor, Tensor, Tensor, Tensor],
    probe: tuple[Tensor, Tensor, Tensor],
    lq_buffer: Tensor,
    lq_probe: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The tuner's buffer (x, log p, log q_behaviour, log q_ref) and a probe of reference draws
    (x, log p, log q_ref) as one set of draws (x, log p, log b, log q_ref), with b the balance density
    of the current proposal (log q ``lq_buffer``, ``lq_probe`` at the draws) and the reference.
    Draws where log p is -inf are dropped from the probe."""
    xb, lpb, _, lqrb = buffer
    xr, lpr, lqrr = probe
    ok = torch.isfinite(lpr)
    xr, lpr, lqrr, lq_probe = xr[ok], lpr[ok], lqrr[ok], lq_probe[ok]
    x = torch.cat([xb, xr.to(xb.dtype)])
    lp = torch.cat([lpb.double(), lpr.double()])
    lqr = torch.cat([lqrb.double(), lqrr.double()])
    lq = torch.cat([lq_buffer.double(), lq_probe.double()])
    return x, lp, balance_log_density(lq, lqr, xb.shape[0], xr.shape[0]), lqr


@torch.no_grad()
def mass_outside(lp: Tensor, lq: Tensor, lqb: Tensor, log_M: float) -> float:
    """Target mass where p > M q, self-normalised importance weights p / b over draws of b (log p,
    log q, log b at the draws [N]); 0 when no draw has a finite weight."""
    lw = (lp.double() - lqb.double()).nan_to_num(nan=-math.inf)
    if not bool(torch.isfinite(lw).any()):
        return 0.0
    over = (lp.double() - lq.double()) > log_M
    return float((torch.softmax(lw, 0) * over).sum())


@torch.no_grad()
def envelope(lp: Tensor, lq: Tensor) -> float:
    """log M that holds on every draw given (the largest finite log p - log q) plus
    ``ENVELOPE_MARGIN``; -inf when no ratio is finite."""
    lw = (lp.double() - lq.double()).nan_to_num(nan=-math.inf)
    finite = torch.isfinite(lw)
    if not bool(finite.any()):
        return -math.inf
    return float(lw[finite].max()) + ENVELOPE_MARGIN
