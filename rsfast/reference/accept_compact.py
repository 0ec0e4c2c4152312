"""Twin of ``rsfast::accept_compact``: the same uniforms, decisions and buffer updates, in torch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .philox import (
    philox_block,
    u01_f52,
    u01_log_arg,
)

__all__ = ["log_uniform_accept", "accept_compact"]


def log_uniform_accept(seed: int, m: int, offset: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """log u of rows 0..m-1 as accept_compact draws them."""
    words = philox_block(seed, torch.arange(m, device=device), offset, 0)
    if dtype == torch.float32:
        return torch.log(u01_log_arg(words[..., 0]))
    return torch.log(u01_f52(words[..., 0], words[..., 1]))


def accept_compact(
    x: Tensor,
    log_p: Tensor,
    log_q: Tensor,
    log_M: float,
    seed: int,
    offset: int,
    out: Tensor,
    counts: Tensor,
    max_log_ratio: Tensor,
) -> None:
    """Twin of :func:`rsfast.ops.accept_compact` (same streams, same mutations)."""
    m = x.shape[0]
    ratio = log_p - log_q
    nan = torch.isnan(ratio)
    posinf = log_p == math.inf
    log_M_t = torch.tensor(log_M, dtype=log_p.dtype).item()  # rounded to the dtype, as the kernel does
    log_u = log_uniform_accept(seed, m, offset, log_p.dtype, x.device)
    accept = ~nan & ~posinf & (log_u < ratio - log_M_t)
    over = ~nan & (ratio > log_M_t)
    kept = x[accept]
    base = int(counts[0])
    room = max(0, out.shape[0] - base)
    out[base : base + min(room, kept.shape[0])] = kept[:room]
    counts += torch.tensor(
        [int(accept.sum()), int(nan.sum()), int(over.sum()), int(posinf.sum())],
        dtype=torch.int64,
        device=counts.device,
    )
    if m:
        seen = torch.where(nan, torch.full_like(ratio, -math.inf), ratio).max().to(torch.float64)
        max_log_ratio.copy_(torch.maximum(max_log_ratio, seen.reshape(1)))
