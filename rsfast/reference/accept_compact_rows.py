"""Twin of ``rsfast::accept_compact_rows``: the same uniforms (those of accept_compact), a mask and an
index, in torch."""

from __future__ import annotations

import torch
from torch import Tensor

from .accept_compact import log_uniform_accept

__all__ = ["accept_compact_rows"]


def accept_compact_rows(
    log_ratio: Tensor,
    log_M: float | Tensor,
    tensors: list[Tensor],
    seed: int,
    offset: int = 0,
    *,
    sync: bool = True,
) -> tuple[list[Tensor], Tensor]:
    """Twin of :func:`rsfast.ops.accept_compact_rows` (same streams, same outputs): a boolean mask from the
    kernel's uniforms, then ``t[keep]`` per tensor (zero-padded to B rows when ``sync=False``)."""
    lr = log_ratio.float() if log_ratio.dtype in (torch.float16, torch.bfloat16) else log_ratio
    if isinstance(log_M, Tensor):
        lm = log_M.to(lr.dtype).reshape(())
    else:
        lm = torch.tensor(log_M, dtype=lr.dtype, device=lr.device)  # rounded to the dtype, as the kernel does
    b = lr.shape[0]
    keep = log_uniform_accept(seed, b, offset, lr.dtype, lr.device) < lr - lm
    count = keep.sum().to(torch.int64)
    outs = []
    for t in tensors:
        kept = t[keep]
        if not sync:
            kept = torch.cat(
                [kept, torch.zeros((b - kept.shape[0], *t.shape[1:]), dtype=t.dtype, device=t.device)]
            )
        outs.append(kept)
    return outs, count
