"""The baselines the benchmarks compare the kernels against, each written the way torch users and the
published code write it: :func:`sample_torch_loop` (the vectorised torch sampler with torch's own RNG),
:func:`sample_per_sample` (the textbook loop, one candidate at a time), :func:`rso_torch` and the
per-row Python loops ``*_per_row`` of the selections. Not oracles: they use their own random numbers."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

from .proposals import MixtureNormal, Normal, Proposal, Uniform
from .reference.select import group_padded, top_fraction_count

__all__ = [
    "sample_torch_loop",
    "sample_per_sample",
    "rso_torch",
    "best_of_n_per_row",
    "rso_per_row",
    "threshold_per_row",
    "top_fraction_per_row",
    "filter_groups_per_row",
    "dedupe_per_row",
]

_LOG_2PI = math.log(2 * math.pi)
_F32 = torch.float32


def _torch_draw(
    proposal: Proposal | Distribution, m: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """m candidates and log q with torch's own RNG, computed the cheapest way torch allows."""
    if isinstance(proposal, Normal):
        z = torch.randn(
            (m, proposal.loc.shape[0]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        const = -torch.log(proposal.scale).sum() - 0.5 * proposal.loc.shape[0] * _LOG_2PI
        return proposal.loc + proposal.scale * z, const - 0.5 * (z * z).sum(-1)
    if isinstance(proposal, Uniform):
        u = torch.rand(
            (m, proposal.low.shape[0]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        width = proposal.high - proposal.low
        return proposal.low + width * u, (-torch.log(width).sum()).expand(m)
    if isinstance(proposal, MixtureNormal):
        comp = torch.multinomial(torch.softmax(proposal.logits, 0), m, replacement=True, generator=generator)
        z = torch.randn(
            (m, proposal.loc.shape[1]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        x = proposal.loc[comp] + proposal.scale[comp] * z
        return x, proposal.log_prob(x)
    x = proposal.sample((m,))
    lq = proposal.log_prob(x)
    return x, (lq.reshape(m, -1).sum(1) if lq.dim() > 1 else lq)


def sample_torch_loop(
    log_target: Callable[[Tensor], Tensor],
    proposal: Proposal | Distribution,
    n: int,
    log_M: float,
    generator: torch.Generator | None = None,
    max_proposals: int = 10**9,
) -> Tensor:
    """The vectorised pure-torch rejection sampler: batches sized from the acceptance seen so far
    (10 % overshoot), accept by ``log u < log p - log q - log M``, keep by boolean mask, concatenate."""
    chunks: list[Tensor] = []
    got = used = 0
    acc = 0.0
    with torch.no_grad():
        while got < n:
            if used >= max_proposals:
                raise RuntimeError(f"sample_torch_loop: no {n} samples within {max_proposals} proposals")
            need = n - got
            m = int(need / acc * 1.1) + 64 if acc > 0 else max(4 * need, 2 * used, 1024)
            x, lq = _torch_draw(proposal, m, generator)
            lp = log_target(x)
            u = torch.rand(m, generator=generator, dtype=lp.dtype, device=lp.device)
            keep = torch.log(u) < lp - lq - log_M
            kept = x[keep]
            chunks.append(kept)
            got += kept.shape[0]
            used += m
            acc = got / used
    return torch.cat(chunks)[:n]


def sample_per_sample(
    log_target: Callable[[Tensor], Tensor],
    proposal: Proposal | Distribution,
    n: int,
    log_M: float,
    generator: torch.Generator | None = None,
    max_proposals: int = 10**8,
) -> Tensor:
    """The textbook loop: draw one x, accept when u * M * q(x) <= p(x), repeat until n accepted."""
    M = math.exp(log_M)
    out = []
    used = 0
    with torch.no_grad():
        while len(out) < n:
            if used >= max_proposals:
                raise RuntimeError(f"sample_per_sample: no {n} samples within {max_proposals} proposals")
            x, lq = _torch_draw(proposal, 1, generator)
            used += 1
            u = float(torch.rand((), generator=generator, device=generator.device if generator else None))
            if u * M * math.exp(float(lq[0])) <= math.exp(float(log_target(x)[0])):
                out.append(x[0])
    return torch.stack(out) if out else torch.empty((0,))


def rso_torch(
    rewards: Tensor,
    k: int,
    beta: float,
    offsets: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The vectorised torch RSO (the benchmark baseline): the paper's rounds for all groups at once, one
    [P, W] batch of ``torch.rand`` and ``torch.exp`` per round, the round cut at k by a cumulative sum,
    accepted indices scattered in acceptance order; stops when every group is done (one check per round)."""
    vals, valid, _, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    dev = vals.device
    out = torch.full((p, k + 1), -1, dtype=torch.int64, device=dev)  # column k takes the rejected writes
    count = torch.zeros((p, 1), dtype=torch.int64, device=dev)
    remaining = valid.clone()
    col = torch.arange(w, device=dev).expand(p, w)
    dump = torch.full((p, w), k, dtype=torch.int64, device=dev)
    for _ in range(min(k, w)):
        rmax = torch.where(remaining, vals, -math.inf).amax(1, keepdim=True)
        u = torch.rand((p, w), generator=generator, dtype=vals.dtype, device=dev)
        # The clamp keeps exp out of the (slow) subnormal range; it decides nothing: exp(-80) < any u.
        hit = remaining & (u < torch.exp(((vals - rmax) / beta).clamp_(min=-80.0)))
        pos = count + torch.cumsum(hit, 1) - 1
        take = hit & (pos < k)
        out.scatter_(1, torch.where(take, pos, dump), col)
        remaining &= ~take
        count += take.sum(1, keepdim=True)
        if not bool(((count < k) & remaining.any(1, keepdim=True)).any()):
            break
    return out[:, :k]


def best_of_n_per_row(groups: list[list[float]], k: int) -> list[list[int]]:
    """Per group: indices of the k best rewards, descending, ties to the lower index; -1 padding."""
    out = []
    for r in groups:
        best = sorted(range(len(r)), key=lambda i: (-r[i], i))[:k]
        out.append(best + [-1] * (k - len(best)))
    return out


def rso_per_row(groups: list[list[float]], k: int, beta: float, rng: Callable[[], float]) -> list[list[int]]:
    """The RSO paper's algorithm, one group at a time: while fewer than k accepted, r_max over the
    candidates not yet accepted, visit the rest in index order and accept each with probability
    exp((r - r_max) / beta), stopping the round once k are accepted. ``rng()`` is a uniform in [0, 1)."""
    out = []
    for r in groups:
        candidates = dict(enumerate(r))
        accepted: list[int] = []
        while len(accepted) < k and candidates:
            r_max = max(candidates.values())
            taken = []
            for c, rc in candidates.items():
                if rng() < math.exp((rc - r_max) / beta):
                    accepted.append(c)
                    taken.append(c)
                    if len(accepted) == k:
                        break
            for c in taken:
                del candidates[c]
        out.append(accepted + [-1] * (k - len(accepted)))
    return out


def threshold_per_row(
    groups: list[list[float]], min_reward: float, max_per_group: int | None = None
) -> list[int]:
    """Flat indices of rewards >= min_reward, group by group, at most max_per_group each."""
    out, base = [], 0
    for r in groups:
        hits = [base + i for i, x in enumerate(r) if x >= min_reward]
        out += hits if max_per_group is None else hits[:max_per_group]
        base += len(r)
    return out


def top_fraction_per_row(groups: list[list[float]], fraction: float) -> list[int]:
    """RAFT's global rule: sort the whole batch by reward, keep the top ceil(fraction * M), in index order."""
    flat = [x for r in groups for x in r]
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
    return sorted(order[: top_fraction_count(fraction, len(flat))])


def filter_groups_per_row(groups: list[list[float]]) -> list[bool]:
    """DAPO's dynamic-sampling filter: keep a group whose metric is not the same for every candidate."""
    return [len(set(r)) > 1 for r in groups]


def dedupe_per_row(keys: list[int], groups: list[int]) -> list[bool]:
    """True at the first occurrence of each (group, key), one element at a time with a set."""
    seen: set[tuple[int, int]] = set()
    keep = []
    for g, key in zip(groups, keys):
        keep.append((g, key) not in seen)
        seen.add((g, key))
    return keep
