"""``rsfast::propose``: draw m rows of a built-in proposal (normal, uniform, mixture of normals) and their
log density in one pass. Twin: :func:`rsfast.reference.propose`."""

import math
from typing import List, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import check_int, check_seed_offset, check_tensor
from .._native import DTYPE_CODES, device_args, ptr
from ._define import define, direct

__all__ = ["propose", "propose_op", "derived_params", "PROPOSAL_PARAMS"]

#: Proposal kind codes (ProposalKind in csrc/include/rsfast/registry.h).
PROPOSAL_KINDS = _native.CODES["proposal_kind"]

# Parameters of each built-in proposal kind, in the order ops.propose takes them.
PROPOSAL_PARAMS = {
    "normal": ("loc", "scale"),
    "uniform": ("low", "high"),
    "mixture_normal": ("logits", "loc", "scale"),
}
LOG_2PI = math.log(2 * math.pi)


def check_proposal(kind: str, params: List[Tensor]) -> Tuple[int, int]:
    """Validate shapes, dtypes and devices of a proposal's parameters; return (D, K)."""
    if kind not in PROPOSAL_PARAMS:
        raise ValueError(f"kind must be one of {sorted(PROPOSAL_PARAMS)}, got {kind!r}")
    names = PROPOSAL_PARAMS[kind]
    if len(params) != len(names):
        raise ValueError(f"params of {kind!r} must be {list(names)}, got {len(params)} tensors")
    ref = params[-1]
    for name, p in zip(names, params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(p).__name__}")
        _native.dtype_code(p.dtype, name)
        if p.dtype != ref.dtype or p.device != ref.device:
            raise ValueError(
                f"{name}: all parameters must share dtype and device ({ref.dtype}, {ref.device})"
            )
    if kind == "mixture_normal":
        logits, loc, scale = params
        if loc.dim() != 2 or scale.shape != loc.shape or logits.shape != (loc.shape[0],):
            raise ValueError(
                f"mixture_normal needs logits [K], loc [K, D], scale [K, D]; got {tuple(logits.shape)}, "
                f"{tuple(loc.shape)}, {tuple(scale.shape)}"
            )
        return loc.shape[1], loc.shape[0]
    a, b = params
    if a.dim() != 1 or b.shape != a.shape:
        raise ValueError(
            f"{kind} needs {names[0]} [D] and {names[1]} [D]; got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return a.shape[0], 1


def derived_params(kind: str, params: List[Tensor]) -> List[Tensor]:
    """The arrays the propose kernel reads (see ``ProposalParams`` in csrc/ops/propose/core.h), computed in
    torch on the parameters' device so that no host synchronisation is needed."""
    if kind == "normal":
        loc, scale = params
        const = -torch.log(scale).sum(0, keepdim=True) - 0.5 * loc.shape[0] * LOG_2PI
        return [loc.contiguous(), scale.contiguous(), const]
    if kind == "uniform":
        low, high = params
        width = high - low
        return [low.contiguous(), width.contiguous(), -torch.log(width).sum(0, keepdim=True)]
    logits, loc, scale = params
    logw = torch.log_softmax(logits, 0)
    const = logw - torch.log(scale).sum(1) - 0.5 * loc.shape[1] * LOG_2PI
    cdf = torch.cumsum(torch.exp(logw), 0)
    cdf = torch.cat([cdf[:-1], torch.ones_like(cdf[-1:])])  # the last component catches rounding
    return [loc.contiguous(), scale.contiguous(), const.contiguous(), cdf]


def _propose_impl(kind: str, params: List[Tensor], m: int, seed: int, offset: int) -> Tuple[Tensor, Tensor]:
    dim, _ = check_proposal(kind, params)
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    check_seed_offset(seed, offset)
    ref = params[-1]
    x = torch.empty((m, dim), dtype=ref.dtype, device=ref.device)
    log_q = torch.empty((m,), dtype=ref.dtype, device=ref.device)
    if m > 0:
        propose_into(kind, derived_params(kind, params), m, seed, offset, x, log_q)
    return x, log_q


#: The registered op ``rsfast::propose`` (see :func:`propose`): for torch.compile and opcheck.
propose_op = define("rsfast::propose", _propose_impl, mutates_args=(), device_types=("cpu", "cuda"))


def propose(kind: str, params: List[Tensor], m: int, seed: int, offset: int) -> Tuple[Tensor, Tensor]:
    """Draw ``m`` rows of a built-in proposal and their log density, in one pass.

    Args:
        kind: ``"normal"`` (params loc [D], scale [D]; diagonal), ``"uniform"`` (low [D], high [D];
            a box) or ``"mixture_normal"`` (logits [K], loc [K, D], scale [K, D]).
        params: the tensors above, one floating dtype (float32 or float64) and device.
        m: number of rows, >= 0.
        seed, offset: the Philox key and call number.

    Returns:
        x [m, D] and log_q [m] (natural log of the normalised density at x), in the params' dtype.

    Arguments are checked here (TypeError/ValueError naming the argument). Under ``torch.compile`` or
    a dispatch mode this calls the registered op :data:`propose_op`; on plain tensors in eager mode
    it runs the kernel directly, without the dispatcher's overhead.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of Tensors, got {type(params).__name__}")
    for i, p in enumerate(params):
        check_tensor(p, f"params[{i}]")
    check_int(m, "m")
    check_int(seed, "seed")
    check_int(offset, "offset")
    if direct(list(params)):
        return _propose_impl(kind, list(params), m, seed, offset)
    return propose_op(kind, list(params), m, seed, offset)


@propose_op.register_fake
def _propose_fake(kind: str, params: List[Tensor], m: int, seed: int, offset: int) -> Tuple[Tensor, Tensor]:
    dim, _ = check_proposal(kind, params)
    ref = params[-1]
    return ref.new_empty((m, dim)), ref.new_empty((m,))


# ---------------------------------------------------------------- the native bridge


def propose_into(
    kind: str,
    params: List[torch.Tensor],
    m: int,
    seed: int,
    offset: int,
    x: torch.Tensor,
    log_q: torch.Tensor,
) -> None:
    """Fill x [m, D] and log_q [m] from the derived parameters of :func:`rsfast.ops.propose`."""
    device, stream = device_args(x)
    a, b, c, cdf = (params + [None] * 4)[:4]
    dim = x.shape[1]
    ncomp = c.shape[0] if kind == "mixture_normal" else 1
    _C.propose(
        PROPOSAL_KINDS[kind], DTYPE_CODES[x.dtype], dim, ncomp, m, seed, offset,
        ptr(a), ptr(b), ptr(c), ptr(cdf), ptr(x), ptr(log_q), device, stream,
    )  # fmt: skip
