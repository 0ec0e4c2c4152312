"""torch.distributed helpers: rank and world size, all-gather of Python objects, sums over the ranks."""

from __future__ import annotations

from typing import Any

import torch


def _dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torch.distributed."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather_objects(obj: Any, world: int) -> list[Any]:
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out


def _all_sum(ints: list[int], floats: list[float] | None, world: int) -> list:
    """Sum integer (exactly, int64) and float (float64) lists over the ranks: ints then floats."""
    floats = floats or []
    if world == 1:
        return list(ints) + list(floats)
    ti = torch.tensor(ints, dtype=torch.int64)
    tf = torch.tensor(floats if floats else [0.0], dtype=torch.float64)
    torch.distributed.all_reduce(ti)
    torch.distributed.all_reduce(tf)
    return [int(v) for v in ti.tolist()] + (tf.tolist() if floats else [])
