"""``rsfast::accept_compact``: accept ``log u < log p - log q - log M`` per row and append the accepted
rows, in order, to a fixed-capacity output at a device-side count. Twin:
:func:`rsfast.reference.accept_compact`."""

import math
from collections.abc import Iterable
from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import check_int, check_seed_offset, check_tensor
from .._native import DTYPE_CODES, device_args, ptr
from ._define import define, direct

__all__ = ["accept_compact", "accept_compact_op"]

#: Slots of the int64 statistics vector of accept_compact (CountSlot in csrc/include/rsfast/registry.h).
COUNT_SLOTS = _native.slots("count_slot")


def _named(*tensors: Tensor) -> Iterable[Tuple[str, Tensor]]:
    """The tensor arguments of accept_compact with their names."""
    return zip(("x", "log_p", "log_q", "out", "counts", "max_log_ratio"), tensors)


def _check_accept(
    x: Tensor, log_p: Tensor, log_q: Tensor, out: Tensor, counts: Tensor, max_log_ratio: Tensor
) -> None:
    if x.dim() < 1:
        raise ValueError("x must have a leading row dimension [m, ...]")
    m = x.shape[0]
    for name, t in (("log_p", log_p), ("log_q", log_q)):
        if t.shape != (m,):
            raise ValueError(f"{name} must have shape [{m}] (one value per row of x), got {tuple(t.shape)}")
        _native.dtype_code(t.dtype, name)
    if log_p.dtype != log_q.dtype:
        raise TypeError(f"log_p and log_q must share a dtype, got {log_p.dtype} and {log_q.dtype}")
    if out.dim() != x.dim() or out.shape[1:] != x.shape[1:] or out.dtype != x.dtype:
        raise ValueError(
            f"out must be [capacity, {', '.join(map(str, x.shape[1:]))}] of {x.dtype}, "
            f"got {tuple(out.shape)} of {out.dtype}"
        )
    if counts.shape != (len(COUNT_SLOTS),) or counts.dtype != torch.int64:
        raise ValueError(
            f"counts must be int64 [{len(COUNT_SLOTS)}], got {counts.dtype} {tuple(counts.shape)}"
        )
    if max_log_ratio.shape != (1,) or max_log_ratio.dtype != torch.float64:
        raise ValueError(
            f"max_log_ratio must be float64 [1], got {max_log_ratio.dtype} {tuple(max_log_ratio.shape)}"
        )
    for name, t in _named(x, log_p, log_q, out, counts, max_log_ratio):
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
        if not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous (the kernel reads and writes it as one block)")


def _accept_compact_impl(
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
    _check_accept(x, log_p, log_q, out, counts, max_log_ratio)
    check_seed_offset(seed, offset)
    if x.shape[0] > 0:
        accept_compact_into(x, log_p, log_q, log_M, seed, offset, out, counts, max_log_ratio)


#: The registered op ``rsfast::accept_compact`` (see :func:`accept_compact`): for torch.compile and
#: opcheck.
accept_compact_op = define(
    "rsfast::accept_compact",
    _accept_compact_impl,
    mutates_args=("out", "counts", "max_log_ratio"),
    device_types=("cpu", "cuda"),
)


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
    """Accept row i of x when ``log u_i < log_p[i] - log_q[i] - log_M`` and append the accepted rows, in
    row order, to ``out`` at row ``counts[0]``; one pass, no host synchronisation.

    Args:
        x: candidates [m, *event] (any dtype, contiguous).
        log_p, log_q: [m], one floating dtype. NaN log_p (or NaN ratio) rejects the row and counts it.
        log_M: the envelope, natural log.
        seed, offset: Philox key and call number; u_i comes from stream i.
        out: [capacity, *event], x's dtype; rows past the capacity are dropped but still counted, so
            ``out[:min(counts[0], capacity)]`` is always the first accepted rows in order.
        counts: int64 [4], accumulated: accepted, NaN rows, overweight rows (log p - log q > log M),
            rows with log p = +inf.
        max_log_ratio: float64 [1], running maximum of log p - log q over non-NaN rows.
    """
    for name, t in _named(x, log_p, log_q, out, counts, max_log_ratio):
        check_tensor(t, name)
    if isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f"log_M must be a float, got {type(log_M).__name__}")
    if math.isnan(log_M):
        raise ValueError("log_M must not be NaN")
    check_int(seed, "seed")
    check_int(offset, "offset")
    if direct([x, log_p, log_q, out, counts, max_log_ratio]):
        _accept_compact_impl(x, log_p, log_q, float(log_M), seed, offset, out, counts, max_log_ratio)
    else:
        accept_compact_op(x, log_p, log_q, float(log_M), seed, offset, out, counts, max_log_ratio)


@accept_compact_op.register_fake
def _accept_compact_fake(
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
    _check_accept(x, log_p, log_q, out, counts, max_log_ratio)


# ---------------------------------------------------------------- the native bridge


def accept_compact_into(
    x: torch.Tensor,
    log_p: torch.Tensor,
    log_q: torch.Tensor,
    log_M: float,
    seed: int,
    offset: int,
    out: torch.Tensor,
    counts: torch.Tensor,
    max_log_ratio: torch.Tensor,
    scratch: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Run the accept_compact kernel; arguments already validated by :mod:`rsfast.ops` or the engine.

    ``scratch`` (uint8, on x's device) is reused when it is large enough; the scratch used is returned so
    that a loop can pass it back next round.
    """
    device, stream = device_args(x)
    m = x.shape[0]
    row_bytes = math.prod(x.shape[1:]) * x.element_size()
    need = _C.accept_compact_scratch_bytes(m, device)
    if scratch is None or scratch.numel() < need:
        scratch = torch.empty(need, dtype=torch.uint8, device=x.device)
    _C.accept_compact(
        DTYPE_CODES[log_p.dtype], m, row_bytes, out.shape[0], ptr(x), ptr(log_p), ptr(log_q), float(log_M),
        seed, offset, ptr(out), ptr(counts), ptr(max_log_ratio), ptr(scratch), device, stream,
    )  # fmt: skip
    return scratch
