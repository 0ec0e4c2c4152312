"""``rsfast.accept_compact_rows``: accept the rows of a batch by a ratio and keep the accepted rows of
every tensor, in one pass (the op is :func:`rsfast.ops.accept_compact_rows`)."""

from __future__ import annotations

import torch
from torch import Tensor

from . import ops
from ._random import draw_seed

__all__ = ["accept_compact_rows"]


def accept_compact_rows(
    log_ratio: Tensor,
    log_M: float | Tensor,
    *tensors: Tensor,
    generator: torch.Generator | None = None,
    sync: bool = True,
) -> tuple[Tensor, ...]:
    """Keep row b of a batch with probability ``min(1, exp(log_ratio[b] - log_M))``.

    Inside a training step: ``x, y, w, count = rsfast.accept_compact_rows(log_r, log_M, x, y, w)``
    returns the accepted rows of x, y and w (stable row order, same dtypes and trailing shapes) and
    their number. One pass over the data: the decisions (Philox uniforms, one stream per row) and a
    stable compaction by chunk offsets; no boolean mask and no index tensor are materialised.

    Args:
        log_ratio: [B] floating tensor, the natural log of each row's ratio. NaN rejects the row, +inf
            accepts it.
        log_M: the envelope (natural log), a finite float or a 0-d floating tensor on log_ratio's device.
        *tensors: tensors with leading dimension B on log_ratio's device, any dtype (int64, bool,
            bfloat16, ...) and trailing shape.
        generator: a torch.Generator on any device (None: torch's default CPU generator); one 63-bit
            Philox seed is drawn from it per call, so a seeded generator repeats the selection (a CUDA
            generator costs a host sync for that draw; a CPU generator does not, whatever the data's device).
        sync: True (default): outputs of exactly ``count`` rows; on CUDA this reads the count once
            (one host synchronisation). False: outputs of B rows, the accepted rows first and zero
            rows after, and no host synchronisation (weight the loss with ``arange(B) < count``);
            use this form under ``torch.compile(fullgraph=True)``.

    Returns:
        ``(*compacted, count)``: one tensor per input tensor, then the accepted count as an int64 0-d
        tensor on log_ratio's device.

    Raises:
        TypeError: a non-tensor argument, non-floating log_ratio or log_M tensor, a bad generator.
        ValueError: log_ratio not 1-D, a tensor whose leading dimension is not B, tensors on another
            device, a non-finite float log_M.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    outs, count = ops.accept_compact_rows(log_ratio, log_M, list(tensors), draw_seed(generator), 0, sync=sync)
    return (*outs, count)
