"""Reward layouts of the rsfast.select tests (test_select.py, test_select_ops.py)."""

from __future__ import annotations

import torch
from _helpers import gen


def dense_rewards(p: int, n: int, dtype: torch.dtype, ties: bool, seed: int = 0) -> torch.Tensor:
    """Random rewards; tie-heavy ones take 4 values only (and include -0.0 next to 0.0)."""
    g = gen(seed)
    if ties:
        r = torch.randint(-1, 3, (p, n), generator=g).to(dtype) * 0.5
        return torch.where(torch.rand(p, n, generator=g) < 0.2, torch.full_like(r, -0.0), r)
    return torch.randn(p, n, generator=g, dtype=dtype)


def ragged_rewards(dtype: torch.dtype, ties: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of sizes 0..40 (empty groups included) as flat rewards + offsets."""
    g = gen(seed + 1)
    sizes = torch.randint(0, 41, (57,), generator=g)
    sizes[3] = 0
    sizes[10] = 1
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(sizes, 0)])
    flat = dense_rewards(1, int(offsets[-1]), dtype, ties, seed).reshape(-1)
    return flat, offsets


def rows_of(rewards: torch.Tensor, offsets: torch.Tensor | None) -> list[list[float]]:
    if offsets is None:
        return rewards.tolist()
    o = offsets.tolist()
    return [rewards[a:b].tolist() for a, b in zip(o[:-1], o[1:])]


LAYOUTS = ["dense", "ragged"]


def case(layout: str, dtype: torch.dtype, ties: bool, seed: int = 0):
    if layout == "dense":
        return dense_rewards(61, 37, dtype, ties, seed), None
    return ragged_rewards(dtype, ties, seed)
