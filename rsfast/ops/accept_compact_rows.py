"""``rsfast::accept_compact_rows``: keep row b with probability min(1, exp(log_ratio[b] - log_M)) and
gather the accepted rows of every tensor in one pass; differentiable in the tensors. Twin:
:func:`rsfast.reference.accept_compact_rows`."""

import math
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from .. import _C
from .._checks import check_int, check_seed_offset, check_tensor
from .._native import DTYPE_CODES, device_args, ptr
from ._define import define, direct

__all__ = ["accept_compact_rows", "accept_compact_rows_op"]

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _rows_log_ratio(log_ratio: Tensor) -> Tensor:
    """log_ratio as the kernel reads it: float32/float64, contiguous (float16/bfloat16 widened to float32)."""
    if log_ratio.dtype in _HALF_DTYPES:
        log_ratio = log_ratio.float()
    return log_ratio.contiguous()


def _check_rows(log_ratio: Tensor, log_M_tensor: Optional[Tensor], tensors: List[Tensor]) -> None:
    if log_ratio.dim() != 1:
        raise ValueError(f"log_ratio must have shape [B] (one value per row), got {tuple(log_ratio.shape)}")
    if not log_ratio.dtype.is_floating_point:
        raise TypeError(f"log_ratio must be a floating tensor, got {log_ratio.dtype}")
    if log_M_tensor is not None:
        if log_M_tensor.numel() != 1 or log_M_tensor.dim() > 1:
            raise ValueError(f"log_M must be a float or a 0-d tensor, got shape {tuple(log_M_tensor.shape)}")
        if not log_M_tensor.dtype.is_floating_point:
            raise TypeError(f"log_M must be a floating tensor, got {log_M_tensor.dtype}")
        if log_M_tensor.device != log_ratio.device:
            raise ValueError(f"log_M is on {log_M_tensor.device} but log_ratio is on {log_ratio.device}")
    b = log_ratio.shape[0]
    for i, t in enumerate(tensors):
        if t.dim() < 1 or t.shape[0] != b:
            raise ValueError(
                f"tensors[{i}] must have leading dimension B = {b} (the rows of log_ratio), "
                f"got {tuple(t.shape)}"
            )
        if t.device != log_ratio.device:
            raise ValueError(f"tensors[{i}] is on {t.device} but log_ratio is on {log_ratio.device}")


def _rows_prepare(
    log_ratio: Tensor, log_M_tensor: Optional[Tensor], tensors: List[Tensor]
) -> Tuple[Tensor, Optional[Tensor], List[Tensor]]:
    lr = _rows_log_ratio(log_ratio)
    lmt = None if log_M_tensor is None else log_M_tensor.to(lr.dtype).reshape(1).contiguous()
    return lr, lmt, [t.contiguous() for t in tensors]


def _accept_compact_rows_impl(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Optional[Tensor],
    tensors: List[Tensor],
    seed: int,
    offset: int,
) -> Tuple[List[Tensor], Tensor]:
    """Full-capacity form (the registered op): every output has B rows, the accepted rows first in row
    order and zeros after them; count is an int64 0-d tensor on log_ratio's device. No host sync."""
    _check_rows(log_ratio, log_M_tensor, tensors)
    check_seed_offset(seed, offset)
    lr, lmt, srcs = _rows_prepare(log_ratio, log_M_tensor, tensors)
    b = lr.shape[0]
    outs = [torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in srcs]
    count = torch.zeros((), dtype=torch.int64, device=lr.device)
    if b > 0:
        scratch = accept_compact_rows_decide(lr, log_M, lmt, seed, offset, count)
        accept_compact_rows_gather(b, srcs, outs, b, True, scratch)
    return outs, count


def _accept_compact_rows_exact(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Optional[Tensor],
    tensors: List[Tensor],
    seed: int,
    offset: int,
) -> Tuple[List[Tensor], Tensor]:
    """Exact-size form (eager, plain tensors): decide, read the count (one host sync on CUDA), allocate
    outputs of exactly count rows, gather. Nothing is written past the accepted rows."""
    _check_rows(log_ratio, log_M_tensor, tensors)
    check_seed_offset(seed, offset)
    lr, lmt, srcs = _rows_prepare(log_ratio, log_M_tensor, tensors)
    b = lr.shape[0]
    count = torch.zeros((), dtype=torch.int64, device=lr.device)
    if b == 0:
        return [t.new_empty(t.shape) for t in srcs], count
    scratch = accept_compact_rows_decide(lr, log_M, lmt, seed, offset, count)
    k = int(count)
    outs = [torch.empty((k, *t.shape[1:]), dtype=t.dtype, device=t.device) for t in srcs]
    accept_compact_rows_gather(b, srcs, outs, k, False, scratch)
    return outs, count


#: The registered op ``rsfast::accept_compact_rows`` (full-capacity outputs + device-side count; see
#: :func:`accept_compact_rows`): for torch.compile, opcheck and autograd.
accept_compact_rows_op = define(
    "rsfast::accept_compact_rows", _accept_compact_rows_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@accept_compact_rows_op.register_fake
def _accept_compact_rows_fake(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Optional[Tensor],
    tensors: List[Tensor],
    seed: int,
    offset: int,
) -> Tuple[List[Tensor], Tensor]:
    _check_rows(log_ratio, log_M_tensor, tensors)
    return [t.new_empty(t.shape) for t in tensors], log_ratio.new_empty((), dtype=torch.int64)


def _rows_setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
    log_ratio, log_M, log_M_tensor, tensors, seed, offset = inputs
    ctx.shapes = [t.shape for t in tensors]
    ctx.args = (log_M, seed, offset)
    ctx.save_for_backward(log_ratio, log_M_tensor)


def _rows_backward(ctx, grad_outs, grad_count):  # noqa: ANN001, ANN202
    """Scatter the gradient of output row k back to its source row. The source rows are recomputed by
    running the op on arange(B) with the same (log_ratio, log_M, seed, offset): decisions are a pure
    function of those, so nothing row-sized is kept from the forward pass."""
    log_ratio, log_M_tensor = ctx.saved_tensors
    log_M, seed, offset = ctx.args
    b = log_ratio.shape[0]
    rows = torch.arange(b, device=log_ratio.device)
    (src,), count = accept_compact_rows_op(log_ratio.detach(), log_M, log_M_tensor, [rows], seed, offset)
    valid = rows < count  # output rows holding accepted rows; the zero tail has no source
    grads = []
    for g, shape in zip(grad_outs, ctx.shapes):
        if g is None:
            grads.append(None)
            continue
        g = g * valid.reshape(-1, *([1] * (g.dim() - 1))).to(g.dtype)
        grads.append(torch.zeros(shape, dtype=g.dtype, device=g.device).index_add_(0, src, g))
    return None, None, None, grads, None, None


accept_compact_rows_op.register_autograd(_rows_backward, setup_context=_rows_setup_context)


def accept_compact_rows(
    log_ratio: Tensor,
    log_M: Union[float, Tensor],
    tensors: List[Tensor],
    seed: int,
    offset: int = 0,
    *,
    sync: bool = True,
) -> Tuple[List[Tensor], Tensor]:
    """Accept row b with probability ``min(1, exp(log_ratio[b] - log_M))`` and gather the accepted rows of
    every tensor, in row order, in one pass over the data.

    Row b accepts when ``log u_b < log_ratio[b] - log_M`` with u_b from Philox stream b at (seed, offset)
    (the same uniforms as :func:`accept_compact`); the comparison runs in log_ratio's dtype (float16 and
    bfloat16 are widened to float32). NaN log_ratio rejects the row, +inf accepts it.

    Args:
        log_ratio: [B] floating, natural log of the ratio (e.g. target over source density).
        log_M: the envelope, natural log: a finite float, or a one-element floating tensor on log_ratio's
            device (no host read; a CUDA tensor is therefore not checked for finiteness, and a NaN there
            rejects every row).
        tensors: tensors with leading dimension B, on log_ratio's device, any dtype and trailing shape
            (non-contiguous ones are copied first).
        seed, offset: Philox key and call number.
        sync: True: outputs of exactly ``count`` rows (on CUDA the count is read once: one host sync).
            False: outputs of B rows, the accepted rows first and zeros after them, no host sync (the
            form ``torch.compile`` traces without a graph break).

    Returns:
        (outputs, count): one output per tensor (same dtype and trailing shape), and the number of
        accepted rows as an int64 0-d tensor on log_ratio's device.

    Differentiable with respect to ``tensors`` (the gradient of an output row goes to its source row).
    """
    check_tensor(log_ratio, "log_ratio")
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"tensors must be a list of Tensors, got {type(tensors).__name__}")
    for i, t in enumerate(tensors):
        check_tensor(t, f"tensors[{i}]")
    log_M_tensor: Optional[Tensor] = None
    if isinstance(log_M, Tensor):
        log_M_tensor, log_M_f = log_M, 0.0
        if log_M.device.type == "cpu" and log_M.numel() == 1 and log_M.dtype.is_floating_point:
            if not math.isfinite(float(log_M)):
                raise ValueError(f"log_M must be finite, got {float(log_M)}")
    elif isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f"log_M must be a float or a 0-d tensor, got {type(log_M).__name__}")
    else:
        log_M_f = float(log_M)
        if not math.isfinite(log_M_f):
            raise ValueError(f"log_M must be finite, got {log_M_f}")
    check_int(seed, "seed")
    check_int(offset, "offset")
    if not isinstance(sync, bool):
        raise TypeError(f"sync must be a bool, got {type(sync).__name__}")
    tensors = list(tensors)
    args = [log_ratio, *tensors] + ([log_M_tensor] if log_M_tensor is not None else [])
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if direct(args) and not needs_grad:
        impl = _accept_compact_rows_exact if sync else _accept_compact_rows_impl
        return impl(log_ratio, log_M_f, log_M_tensor, tensors, seed, offset)
    outs, count = accept_compact_rows_op(log_ratio, log_M_f, log_M_tensor, tensors, seed, offset)
    if sync:
        k = int(count.item())
        # Tell torch.compile the unbacked count is a valid size (older torch cannot prove k >= 0).
        torch._check_is_size(k)
        torch._check(k <= log_ratio.shape[0])
        outs = [o[:k] for o in outs]
    return list(outs), count


# ---------------------------------------------------------------- the native bridge


def accept_compact_rows_decide(
    log_ratio: torch.Tensor,
    log_M: float,
    log_M_tensor: Optional[torch.Tensor],
    seed: int,
    offset: int,
    count: torch.Tensor,
) -> torch.Tensor:
    """Decide every row of ``log_ratio`` (float32/float64 [B], contiguous); write the accepted count to
    ``count`` (int64, one element, same device) and return the scratch that the gather reads. ``log_M_tensor``
    (one element of log_ratio's dtype and device) replaces ``log_M`` when given. Arguments already
    validated by :mod:`rsfast.ops`."""
    device, stream = device_args(log_ratio)
    m = log_ratio.shape[0]
    scratch = torch.empty(
        _C.accept_compact_rows_scratch_bytes(m, device), dtype=torch.uint8, device=log_ratio.device
    )
    _C.accept_compact_rows_decide(
        DTYPE_CODES[log_ratio.dtype], m, ptr(log_ratio), float(log_M), ptr(log_M_tensor), seed, offset,
        ptr(count), ptr(scratch), device, stream,
    )  # fmt: skip
    return scratch


def accept_compact_rows_gather(
    m: int,
    src: List[torch.Tensor],
    dst: List[torch.Tensor],
    capacity: int,
    zero_tail: bool,
    scratch: torch.Tensor,
) -> None:
    """Copy the accepted rows of every ``src[i]`` ([m, ...], contiguous) to the first rows of ``dst[i]``
    ([capacity, ...], same dtype, contiguous), from the scratch of :func:`accept_compact_rows_decide`;
    with ``zero_tail`` also zero the rows past the accepted count."""
    device, stream = device_args(scratch)
    row_bytes = [math.prod(t.shape[1:]) * t.element_size() for t in src]
    _C.accept_compact_rows_gather(
        m, [ptr(t) for t in src], [ptr(t) for t in dst], row_bytes, capacity, bool(zero_tail), ptr(scratch),
        device, stream,
    )  # fmt: skip
