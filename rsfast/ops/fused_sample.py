"""``rsfast::fused_sample``: n rows of the built-in mixture-of-normals target by rejection from a built-in
proposal, in one launch (propose, score, accept per output row). Twin:
:func:`rsfast.reference.fused_sample`."""

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import check_int, check_seed_offset, check_tensor
from .._native import DTYPE_CODES, device_args, ptr
from ._define import define, direct
from .propose import LOG_2PI, PROPOSAL_KINDS, check_proposal, derived_params

__all__ = ["fused_sample", "fused_sample_op", "fused_target_params", "FUSED_COUNT_SLOTS"]

#: Slots of the ``counts`` output of :func:`fused_sample`.
#: Slots of the int64 statistics vector of fused_sample (FusedSlot in csrc/include/rsfast/registry.h).
FUSED_COUNT_SLOTS = _native.slots("fused_slot")
_I64_LIMIT = 2**63


def fused_target_params(logits: Tensor, loc: Tensor, scale: Tensor) -> List[Tensor]:
    """The arrays the fused kernel reads for a mixture-of-normals target: loc [K, D], 1 / scale [K, D] and
    the per-component constant log w_k - sum_d log scale_kd - D/2 log 2 pi [K], in torch on the
    parameters' device (no host synchronisation)."""
    const = torch.log_softmax(logits, 0) - torch.log(scale).sum(1) - 0.5 * loc.shape[1] * LOG_2PI
    return [loc.contiguous(), (1 / scale).contiguous(), const.contiguous()]


def _check_fused(kind: str, params: List[Tensor], logits: Tensor, loc: Tensor, scale: Tensor) -> int:
    """Validate the proposal and the target's shapes, dtypes and devices; return D."""
    dim, _ = check_proposal(kind, params)
    ref = params[-1]
    for name, t in (("logits", logits), ("loc", loc), ("scale", scale)):
        check_tensor(t, name)
        if t.dtype != ref.dtype or t.device != ref.device:
            raise ValueError(
                f"{name}: the target must share the proposal's dtype and device ({ref.dtype}, {ref.device}), "
                f"got {t.dtype} on {t.device}"
            )
    if loc.dim() != 2 or scale.shape != loc.shape or logits.shape != (loc.shape[0],) or loc.shape[0] < 1:
        raise ValueError(
            f"the target needs logits [K], loc [K, D], scale [K, D] with K >= 1; got {tuple(logits.shape)}, "
            f"{tuple(loc.shape)}, {tuple(scale.shape)}"
        )
    if loc.shape[1] != dim or dim < 1:
        raise ValueError(f"loc: the target has D = {loc.shape[1]} but the proposal has D = {dim} (need >= 1)")
    return dim


def _check_fused_scalars(n: int, log_M: float, seed: int, offset: int, max_proposals: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not math.isfinite(log_M):
        raise ValueError(f"log_M must be finite, got {log_M}")
    if not 1 <= max_proposals < _I64_LIMIT:
        raise ValueError(f"max_proposals must be in [1, 2**63), got {max_proposals}")
    check_seed_offset(seed, offset)


def _fused_sample_impl(
    kind: str,
    params: List[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    dim = _check_fused(kind, params, logits, loc, scale)
    _check_fused_scalars(n, log_M, seed, offset, max_proposals)
    ref = params[-1]
    out = torch.empty((n, dim), dtype=ref.dtype, device=ref.device)
    counts = torch.zeros(len(FUSED_COUNT_SLOTS), dtype=torch.int64, device=ref.device)
    max_log_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=ref.device)
    if n > 0:
        q = derived_params(kind, params)
        q_inv = (1 / q[1]).contiguous() if kind == "mixture_normal" else None
        fused_sample_into(
            kind, q, q_inv, fused_target_params(logits, loc, scale), n, log_M, seed, offset, max_proposals,
            out, counts, max_log_ratio,
        )  # fmt: skip
    return out, counts, max_log_ratio


#: The registered op ``rsfast::fused_sample`` (see :func:`fused_sample`): for torch.compile and opcheck.
fused_sample_op = define(
    "rsfast::fused_sample", _fused_sample_impl, mutates_args=(), device_types=("cpu", "cuda")
)


def fused_sample(
    kind: str,
    params: List[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int = 2**62,
) -> Tuple[Tensor, Tensor, Tensor]:
    """``n`` iid rows of a mixture of diagonal normals (the target) by rejection from a built-in proposal,
    in one launch ("slot" mode, see docs/architecture.md): output row i tries candidates from its own
    Philox stream (key ``seed``, counter with i and ``offset``) until ``log u < log p - log q - log_M``.

    Args:
        kind, params: the proposal, as in :func:`propose` (``"normal"``, ``"uniform"``,
            ``"mixture_normal"``).
        logits [K], loc [K, D], scale [K, D]: the target, weights softmax(logits), scale > 0; the
            proposal's dtype (float32 or float64) and device.
        n: rows, >= 0.
        log_M: the envelope, natural log, against the normalised target density.
        seed, offset: the Philox key and call number.
        max_proposals: bound on tries over all rows, checked coarsely; past it the kernel stops and
            ``counts[5]`` is 1 (the rows are then unusable).

    Returns:
        ``samples`` [n, D]; ``counts`` int64 [6]: rows accepted, tries with a NaN ratio, overweight
        tries (log p - log q > log_M), tries with log p = +inf, tries counted (row i counts its tries
        up to and including the accepted one), stopped flag; ``max_log_ratio`` float64 [1]: the
        largest log p - log q among the counted tries. Every output is a pure function of the
        inputs, ``seed`` and ``offset`` (any thread count) unless the bound stopped the kernel.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of Tensors, got {type(params).__name__}")
    for i, p in enumerate(params):
        check_tensor(p, f"params[{i}]")
    for name, t in (("logits", logits), ("loc", loc), ("scale", scale)):
        check_tensor(t, name)
    for name, v in (("n", n), ("seed", seed), ("offset", offset), ("max_proposals", max_proposals)):
        check_int(v, name)
    if isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f"log_M must be a float, got {type(log_M).__name__}")
    tensors = [*params, logits, loc, scale]
    if direct(tensors):
        _check_fused(kind, list(params), logits, loc, scale)
        for name, t in (("logits", logits), ("loc", loc), ("scale", scale)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} must be finite")
        if not bool((scale > 0).all()):
            raise ValueError("scale must be > 0")
        return _fused_sample_impl(
            kind, list(params), logits, loc, scale, n, float(log_M), seed, offset, max_proposals
        )
    return fused_sample_op(
        kind, list(params), logits, loc, scale, n, float(log_M), seed, offset, max_proposals
    )


@fused_sample_op.register_fake
def _fused_sample_fake(
    kind: str,
    params: List[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    dim = _check_fused(kind, params, logits, loc, scale)
    ref = params[-1]
    return (
        ref.new_empty((n, dim)),
        ref.new_empty((len(FUSED_COUNT_SLOTS),), dtype=torch.int64),
        ref.new_empty((1,), dtype=torch.float64),
    )


# ---------------------------------------------------------------- the native bridge


def fused_sample_into(
    kind: str,
    q_derived: List[torch.Tensor],
    q_inv_scale: Optional[torch.Tensor],
    p_derived: List[torch.Tensor],
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int,
    out: torch.Tensor,
    counts: torch.Tensor,
    max_log_ratio: torch.Tensor,
) -> None:
    """Run the fused_sample kernel into out [n, D], counts int64 [6] (zeroed) and max_log_ratio float64 [1]
    (-inf); arguments already validated by :mod:`rsfast.ops` or the engine. ``q_derived`` is
    :func:`rsfast.ops.derived_params` of the proposal, ``p_derived`` the target's (loc, 1 / scale, const)."""
    device, stream = device_args(out)
    a, b, c, cdf = (q_derived + [None] * 4)[:4]
    p_loc, p_inv, p_c = p_derived
    ncomp_q = c.shape[0] if kind == "mixture_normal" else 1
    _C.fused_sample(
        PROPOSAL_KINDS[kind], DTYPE_CODES[out.dtype], out.shape[1], ncomp_q, p_c.shape[0], n, seed, offset,
        float(log_M), max_proposals, ptr(a), ptr(b), ptr(c), ptr(cdf), ptr(q_inv_scale),
        ptr(p_loc), ptr(p_inv), ptr(p_c), ptr(out), ptr(counts), ptr(max_log_ratio), device, stream,
    )  # fmt: skip
