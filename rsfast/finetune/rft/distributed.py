"""torch.distributed helpers: rank and world size, all-gather of Python objects."""

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
