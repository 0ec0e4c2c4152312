"""Twins of the ``rsfast::select_*`` kernels (best-of-n, RSO, threshold, top fraction, group filters,
dedupe), vectorised in torch."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .fastmath import fast_exp, fast_expf
from .philox import (
    _MASK32,
    _uniforms,
    philox4x32_10,
)

__all__ = [
    "group_padded",
    "best_of_n",
    "rso_block_layout",
    "rso",
    "threshold",
    "top_fraction_count",
    "top_fraction",
    "filter_groups",
    "dedupe",
]

# ---------------------------------------------------------------- group selection (rsfast.select)
#
# Vectorised pure-torch twins of the select kernels (the test oracle) and the benchmark baselines:
# :func:`rso_torch` (torch's own RNG) and the per-row Python loops ``*_per_row`` written the way the
# published code writes them (one group at a time, Python lists and dicts).

_F32 = torch.float32


def group_padded(rewards: Tensor, offsets: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Padded view of dense [P, N] or ragged (flat [M] + offsets [P + 1]) groups.

    Returns (values [P, W], valid bool [P, W], sizes int64 [P], flat int64 [P, W]) where W is the largest
    group, ``flat`` the index into the flattened input (0 where invalid) and padding sits at the end of a row.
    """
    if offsets is None:
        p, n = rewards.shape
        flat = torch.arange(p * n, device=rewards.device).reshape(p, n)
        sizes = torch.full((p,), n, dtype=torch.int64, device=rewards.device)
        return rewards, torch.ones((p, n), dtype=torch.bool, device=rewards.device), sizes, flat
    sizes = offsets[1:] - offsets[:-1]
    p = sizes.shape[0]
    w = int(sizes.max()) if p else 0
    col = torch.arange(w, device=rewards.device)
    valid = col < sizes[:, None]
    flat = torch.where(valid, offsets[:-1, None] + col, torch.zeros_like(col))
    vals = (
        rewards[flat] if rewards.numel() else torch.zeros((p, w), dtype=rewards.dtype, device=rewards.device)
    )
    return vals, valid, sizes, flat


def best_of_n(rewards: Tensor, k: int, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.best_of_n``: [P, k] within-group indices by reward descending, ties to the
    lower index, -1 where a group has fewer than k candidates."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    # Invalid slots (padding, at the end of a row) and NaN rank below every value; a stable descending
    # sort keeps equal rewards in index order.
    key = torch.where(valid & ~torch.isnan(vals), vals, torch.full_like(vals, -math.inf))
    rank_nan = (~valid).to(torch.int8) * 2 + torch.isnan(vals).to(torch.int8)
    order = torch.sort(rank_nan, dim=1, stable=True).indices
    order = torch.gather(
        order, 1, torch.sort(torch.gather(key, 1, order), dim=1, descending=True, stable=True).indices
    )
    out = torch.full((p, k), -1, dtype=torch.int64, device=rewards.device)
    kk = min(k, w)
    top = order[:, :kk]
    out[:, :kk] = torch.where(top < sizes[:, None], top, torch.full_like(top, -1))
    return out


def _rso_accept_prob(vals: Tensor, rmax: Tensor, beta: float) -> Tensor:
    """exp((r - r_max) / beta) as the kernels compute it (0 where the accept can never happen)."""
    if vals.dtype == _F32:
        x = (vals - rmax) / torch.tensor(beta, dtype=_F32, device=vals.device)
        live = x >= -17.0
        return torch.where(live, fast_expf(torch.where(live, x, torch.zeros_like(x))), torch.zeros_like(x))
    x = (vals - rmax) / beta
    live = x >= -38.0
    return torch.where(live, fast_exp(torch.where(live, x, torch.zeros_like(x))), torch.zeros_like(x))


def _rso_rounds(
    rewards: Tensor, k: int, beta: float, offsets: Tensor | None, uniforms: Callable[[int, int], Tensor]
) -> Tensor:
    """RSO (Liu et al. 2024, Algorithm 1) over all groups at once; ``uniforms(round, width)`` gives the
    [P, width] uniforms of a round."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    dev = vals.device
    out = torch.full((p, k), -1, dtype=torch.int64, device=dev)
    count = torch.zeros(p, dtype=torch.int64, device=dev)
    remaining = valid & ~torch.isnan(vals)
    col = torch.arange(w, device=dev).expand(p, w)
    neg_inf = torch.full_like(vals, -math.inf)
    for rnd in range(min(k, w)):
        live = (count < k) & remaining.any(1)
        if not bool(live.any()):
            break
        rmax = torch.where(remaining, vals, neg_inf).max(1, keepdim=True).values if w else vals[:, :1]
        prob = _rso_accept_prob(vals, rmax, beta)
        u = uniforms(rnd, w)
        hit = remaining & live[:, None] & ((vals == rmax) | (u < prob))
        # Visit in index order and stop the round once k are accepted.
        pos = count[:, None] + torch.cumsum(hit, 1) - 1
        take = hit & (pos < k)
        rows = torch.nonzero(take, as_tuple=True)
        out[rows[0], pos[take]] = col[take]
        remaining &= ~take
        count += take.sum(1)
    return out


def rso_block_layout(dtype: torch.dtype) -> int:
    """Uniforms per Philox block in rso: 4 (float32, 23-bit) or 2 (float64, 52-bit)."""
    return 4 if dtype == _F32 else 2


def rso(
    rewards: Tensor, k: int, beta: float, seed: int, offset: int, offsets: Tensor | None = None
) -> Tensor:
    """Twin of ``rsfast.select.rso`` with the kernels' streams: group g's uniform for candidate c in round t
    is lane c % V of Philox block ``t * ceil(n_g / V) + c // V`` of stream g at ``offset`` (V uniforms per
    block, :func:`rso_block_layout`)."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    v = rso_block_layout(rewards.dtype)
    nb = (sizes + v - 1) // v
    groups = torch.arange(p, device=rewards.device, dtype=torch.int64)
    key = (seed & _MASK32, (seed >> 32) & _MASK32)

    def uniforms(rnd: int, width: int) -> Tensor:
        nblk = (width + v - 1) // v
        blocks = rnd * nb[:, None] + torch.arange(nblk, device=rewards.device)
        ctr = torch.stack(
            [
                blocks & _MASK32,
                (groups[:, None] & _MASK32).expand_as(blocks),
                ((groups[:, None] >> 32) & _MASK32).expand_as(blocks),
                torch.full_like(blocks, offset),
            ],
            -1,
        )
        u = _uniforms(philox4x32_10(ctr, key), rewards.dtype).to(rewards.dtype)
        return u.reshape(p, nblk * v)[:, :width]

    return _rso_rounds(rewards, k, beta, offsets, uniforms)


def threshold(
    rewards: Tensor, min_reward: float, max_per_group: int | None = None, offsets: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Twin of ``rsfast.select.threshold``: (flat indices [S] of rewards >= min_reward in flat order, at most
    ``max_per_group`` per group, the first ones; per-group counts int64 [P])."""
    vals, valid, _, flat = group_padded(rewards, offsets)
    hit = valid & (vals >= min_reward)
    if max_per_group is not None:
        hit &= torch.cumsum(hit, 1) <= max_per_group
    return flat[hit], hit.sum(1)


def top_fraction_count(fraction: float, m: int) -> int:
    """How many rows top_fraction keeps: ceil(fraction * m), where a product within 1e-9 (relative) of an
    integer counts as that integer (0.3 of 10 rows is 3)."""
    x = fraction * m
    nearest = round(x)
    return int(nearest) if abs(x - nearest) <= 1e-9 * max(1.0, x) else math.ceil(x)


def top_fraction(rewards: Tensor, fraction: float, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.top_fraction``: the flat indices of the ceil(fraction * M) highest rewards of
    the whole batch (ties to the lower index), in increasing index order."""
    flat = rewards.reshape(-1)
    count = top_fraction_count(fraction, flat.shape[0])
    order = torch.sort(flat, descending=True, stable=True).indices[:count]
    return torch.sort(order).values


def filter_groups(metric: Tensor, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.filter_groups``: bool [P], True where a group's metric takes two or more
    distinct values (groups of 0 or 1 candidates are False)."""
    vals, valid, _, _ = group_padded(metric, offsets)
    if vals.shape[1] == 0:
        return torch.zeros(vals.shape[0], dtype=torch.bool, device=metric.device)
    return ((vals != vals[:, :1]) & valid).any(1)


def dedupe(keys: Tensor, groups: Tensor) -> Tensor:
    """Twin of ``rsfast.select.dedupe``: bool [M], True at the first occurrence of each (group, key)."""
    m = keys.shape[0]
    keep = torch.zeros(m, dtype=torch.bool, device=keys.device)
    if m == 0:
        return keep
    _, inverse = torch.unique(torch.stack([groups, keys], 1), dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), m, dtype=torch.int64, device=keys.device)
    first.scatter_reduce_(0, inverse, torch.arange(m, device=keys.device), reduce="amin")
    keep[first] = True
    return keep


# Per-row Python loops, the way the published code selects (TRL's best-of-n, the RSO paper's
# conduct_rejection_sampling, RAFT's sort of the batch, DAPO's per-group std filter): the slow baselines and
# a second, independent oracle. Groups are Python lists of floats.
