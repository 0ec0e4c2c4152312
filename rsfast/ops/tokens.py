"""Torch custom ops of :mod:`rsfast.tokens` (namespace ``rsfast``): CPU and CUDA kernels, fake kernels.

Every op takes per-row parameter tensors already broadcast to [B] (the public layer does that) and runs
the native token drivers. In eager mode on plain tensors the kernels run directly (no
dispatcher overhead); under ``torch.compile``, fake tensors or tensor subclasses the registered op runs.
No ``from __future__ import annotations`` and typing's List / Tuple here: ``torch.library.custom_op`` reads
the annotations, and older torch only understands these spellings.
"""
# ruff: noqa: UP006, UP035

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from ._define import call, define

__all__ = [
    "tokens_sample",
    "tokens_sample_op",
    "tokens_filter",
    "tokens_filter_op",
    "tokens_verify",
    "tokens_verify_op",
]

# Native codes, from rsfast._C.CODES (csrc/include/rsfast/registry.h).
X_DTYPES = _native.dtypes("float32", "float16", "bfloat16", "float64")
INPUTS = _native.CODES["tokens_input"]
ORDERS = _native.CODES["tokens_order"]
MODES = _native.CODES["verify_mode"]
FILTER_MODES = _native.CODES["filter_mode"]


def _params(t: Tensor, temperature: Tensor, top_k: Tensor, top_p: Tensor, min_p: Tensor) -> List[int]:
    return [_native.ptr(temperature), _native.ptr(top_k), _native.ptr(top_p), _native.ptr(min_p)]


# ------------------------------------------------------------------ sample


def _sample_impl(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    want_logprobs: bool,
    n: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    b, v = x.shape
    ids = torch.empty((b, n), dtype=torch.int64, device=x.device)
    valid = torch.empty(b, dtype=torch.bool, device=x.device)
    logprobs = torch.empty((b if want_logprobs else 0, n), dtype=torch.float32, device=x.device)
    if b > 0:
        device, stream = _native.device_args(x)
        _C.tokens_sample(
            X_DTYPES[x.dtype],
            input,
            order,
            b,
            v,
            _native.ptr(x),
            *_params(x, temperature, top_k, top_p, min_p),
            _native.ptr(seeds),
            _native.ptr(offsets),
            per_row_stream,
            n,
            _native.ptr(ids),
            _native.ptr(valid),
            _native.ptr(logprobs) if want_logprobs else 0,
            device,
            stream,
        )
    return ids, valid, logprobs


#: ``rsfast::tokens_sample(x, temperature, top_k, top_p, min_p, seeds, offsets, per_row_stream, input, order,
#: want_logprobs, n) -> (ids [B, n], valid [B], logprobs [B, n] or [0, n])``.
tokens_sample_op = define(
    "rsfast::tokens_sample", _sample_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@tokens_sample_op.register_fake
def _sample_fake(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    want_logprobs: bool,
    n: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    b = x.shape[0]
    return (
        x.new_empty((b, n), dtype=torch.int64),
        x.new_empty((b,), dtype=torch.bool),
        x.new_empty((b if want_logprobs else 0, n), dtype=torch.float32),
    )


def tokens_sample(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    want_logprobs: bool,
    n: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Kernel entry of :func:`rsfast.tokens.sample` (validated there)."""
    args = (
        x,
        temperature,
        top_k,
        top_p,
        min_p,
        seeds,
        offsets,
        per_row_stream,
        input,
        order,
        want_logprobs,
        n,
    )
    return call(_sample_impl, tokens_sample_op, [x, temperature, top_k, top_p, min_p, seeds, offsets], *args)


# ------------------------------------------------------------------ filter


def _filter_impl(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor]:
    b, v = x.shape
    out = torch.empty((b, v), dtype=torch.float32, device=x.device)
    valid = torch.empty(b, dtype=torch.bool, device=x.device)
    if b > 0:
        device, stream = _native.device_args(x)
        _C.tokens_filter(
            X_DTYPES[x.dtype],
            input,
            order,
            mode,
            b,
            v,
            _native.ptr(x),
            *_params(x, temperature, top_k, top_p, min_p),
            _native.ptr(out),
            _native.ptr(valid),
            device,
            stream,
        )
    return out, valid


#: ``rsfast::tokens_filter(x, temperature, top_k, top_p, min_p, input, order, mode) -> (out [B, V] float32,
#: valid [B])``: mode 0 the filtered probabilities, 1 the logits masked with -inf.
tokens_filter_op = define(
    "rsfast::tokens_filter", _filter_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@tokens_filter_op.register_fake
def _filter_fake(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor]:
    return x.new_empty(x.shape, dtype=torch.float32), x.new_empty((x.shape[0],), dtype=torch.bool)


def tokens_filter(
    x: Tensor,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor]:
    """Kernel entry of :func:`rsfast.tokens.renorm_probs` / :func:`rsfast.tokens.mask_logits`."""
    args = (x, temperature, top_k, top_p, min_p, input, order, mode)
    return call(_filter_impl, tokens_filter_op, [x, temperature, top_k, top_p, min_p], *args)


# ------------------------------------------------------------------ verify


def _verify_impl(
    draft: Tensor,
    target: Tensor,
    draft_probs: Optional[Tensor],
    cu: Optional[Tensor],
    num_drafts: int,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    b = temperature.shape[0]
    v = target.shape[-1]
    dev = target.device
    ids = torch.empty((b, num_drafts + 1), dtype=torch.int64, device=dev)
    acc = torch.empty(b, dtype=torch.int64, device=dev)
    emitted = torch.empty(b, dtype=torch.int64, device=dev)
    valid = torch.empty(b, dtype=torch.bool, device=dev)
    if b > 0:
        device, stream = _native.device_args(target)
        qcode = X_DTYPES[draft_probs.dtype if draft_probs is not None else torch.float32]
        _C.tokens_verify(
            X_DTYPES[target.dtype],
            qcode,
            input,
            order,
            mode,
            b,
            v,
            num_drafts,
            _native.ptr(cu),
            draft.numel(),
            _native.ptr(draft),
            _native.ptr(target),
            _native.ptr(draft_probs),
            *_params(target, temperature, top_k, top_p, min_p),
            _native.ptr(seeds),
            _native.ptr(offsets),
            per_row_stream,
            _native.ptr(ids),
            _native.ptr(acc),
            _native.ptr(emitted),
            _native.ptr(valid),
            device,
            stream,
        )
    return ids, acc, emitted, valid


#: ``rsfast::tokens_verify(draft, target, draft_probs, cu, num_drafts, temperature, top_k, top_p, min_p,
#: seeds, offsets, per_row_stream, input, order, mode) -> (ids [B, S + 1], num_accepted, num_emitted,
#: valid)``.
tokens_verify_op = define(
    "rsfast::tokens_verify", _verify_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@tokens_verify_op.register_fake
def _verify_fake(
    draft: Tensor,
    target: Tensor,
    draft_probs: Optional[Tensor],
    cu: Optional[Tensor],
    num_drafts: int,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    b = temperature.shape[0]
    return (
        target.new_empty((b, num_drafts + 1), dtype=torch.int64),
        target.new_empty((b,), dtype=torch.int64),
        target.new_empty((b,), dtype=torch.int64),
        target.new_empty((b,), dtype=torch.bool),
    )


def tokens_verify(
    draft: Tensor,
    target: Tensor,
    draft_probs: Optional[Tensor],
    cu: Optional[Tensor],
    num_drafts: int,
    temperature: Tensor,
    top_k: Tensor,
    top_p: Tensor,
    min_p: Tensor,
    seeds: Tensor,
    offsets: Tensor,
    per_row_stream: bool,
    input: int,
    order: int,
    mode: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Kernel entry of :func:`rsfast.tokens.verify` (validated there)."""
    args = (
        draft,
        target,
        draft_probs,
        cu,
        num_drafts,
        temperature,
        top_k,
        top_p,
        min_p,
        seeds,
        offsets,
        per_row_stream,
        input,
        order,
        mode,
    )
    return call(
        _verify_impl,
        tokens_verify_op,
        [draft, target, draft_probs, cu, temperature, top_k, top_p, min_p, seeds, offsets],
        *args,
    )
