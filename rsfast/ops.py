"""Torch custom ops of rsfast (namespace ``rsfast``), torch.compile-safe.

Each op has a schema, a CPU and a CUDA implementation (the native kernels) and a
fake kernel, so that ``torch.compile(fullgraph=True)`` traces through a round.
:func:`propose` and :func:`accept_compact` check their arguments' types (the
dispatcher would answer a wrong type with a RuntimeError), then call the
registered ops :data:`propose_op` / :data:`accept_compact_op` under
``torch.compile``, fake tensors or any tensor subclass, and the kernels
directly on plain tensors in eager mode (no dispatcher overhead).
Outputs have fixed capacity plus a device-side count: no output shape depends
on data. The pure-torch twins of these ops are in :mod:`rsfast._reference`.

Random numbers are pure functions of ``(seed, offset)``: ``seed`` in
``[0, 2**63)`` keys Philox4x32-10, ``offset`` in ``[0, 2**32)`` names the call;
the engine gives every call of a sampling run its own offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from . import _compat, _native

__all__ = [
    "propose",
    "accept_compact",
    "propose_op",
    "accept_compact_op",
    "derived_params",
    "PROPOSAL_PARAMS",
    "accept_compact_rows",
    "accept_compact_rows_op",
    "slot_sample",
    "slot_sample_op",
    "SLOT_LAWS",
    "SlotLawSpec",
    "register_slot_law",
]

# Parameters of each built-in proposal kind, in the order ops.propose takes them.
PROPOSAL_PARAMS = {
    "normal": ("loc", "scale"),
    "uniform": ("low", "high"),
    "mixture_normal": ("logits", "loc", "scale"),
}
_LOG_2PI = math.log(2 * math.pi)
_U32 = 2**32
_SEED_LIMIT = 2**63


def _check_seed_offset(seed: int, offset: int) -> None:
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if not 0 <= offset < _U32:
        raise ValueError(f"offset must be in [0, 2**32), got {offset}")


def _check_proposal(kind: str, params: list[Tensor]) -> tuple[int, int]:
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


def derived_params(kind: str, params: list[Tensor]) -> list[Tensor]:
    """The arrays the propose kernel reads (see ``ProposalParams`` in propose.h), computed in torch on the
    parameters' device so that no host synchronisation is needed."""
    if kind == "normal":
        loc, scale = params
        const = -torch.log(scale).sum(0, keepdim=True) - 0.5 * loc.shape[0] * _LOG_2PI
        return [loc.contiguous(), scale.contiguous(), const]
    if kind == "uniform":
        low, high = params
        width = high - low
        return [low.contiguous(), width.contiguous(), -torch.log(width).sum(0, keepdim=True)]
    logits, loc, scale = params
    logw = torch.log_softmax(logits, 0)
    const = logw - torch.log(scale).sum(1) - 0.5 * loc.shape[1] * _LOG_2PI
    cdf = torch.cumsum(torch.exp(logw), 0)
    cdf = torch.cat([cdf[:-1], torch.ones_like(cdf[-1:])])  # the last component catches rounding
    return [loc.contiguous(), scale.contiguous(), const.contiguous(), cdf]


try:
    from torch.utils._python_dispatch import _get_current_dispatch_mode
except ImportError:  # pragma: no cover - older torch: always go through the dispatcher

    def _get_current_dispatch_mode() -> object:
        return True


def _direct(tensors: list[Tensor]) -> bool:
    """True when the kernel may run directly: eager mode, no dispatch mode (fake tensors, functionalisation)
    active, and plain tensors only. Anything else goes through the registered op."""
    if torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    return all(type(t) is Tensor for t in tensors)


def _check_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _check_tensor(value: object, name: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")


def _propose_impl(kind: str, params: list[Tensor], m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
    dim, _ = _check_proposal(kind, params)
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    _check_seed_offset(seed, offset)
    ref = params[-1]
    x = torch.empty((m, dim), dtype=ref.dtype, device=ref.device)
    log_q = torch.empty((m,), dtype=ref.dtype, device=ref.device)
    if m > 0:
        _native.propose_into(kind, derived_params(kind, params), m, seed, offset, x, log_q)
    return x, log_q


#: The registered op ``rsfast::propose`` (see :func:`propose`): for torch.compile and opcheck.
propose_op = _compat.custom_op(
    "rsfast::propose", _propose_impl, mutates_args=(), device_types=("cpu", "cuda")
)


def propose(kind: str, params: list[Tensor], m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
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
        _check_tensor(p, f"params[{i}]")
    _check_int(m, "m")
    _check_int(seed, "seed")
    _check_int(offset, "offset")
    if _direct(list(params)):
        return _propose_impl(kind, list(params), m, seed, offset)
    return propose_op(kind, list(params), m, seed, offset)


@propose_op.register_fake
def _propose_fake(kind: str, params: list[Tensor], m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
    dim, _ = _check_proposal(kind, params)
    ref = params[-1]
    return ref.new_empty((m, dim)), ref.new_empty((m,))


def _named(*tensors: Tensor) -> zip[tuple[str, Tensor]]:
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
    if counts.shape != (len(_native.COUNT_SLOTS),) or counts.dtype != torch.int64:
        raise ValueError(
            f"counts must be int64 [{len(_native.COUNT_SLOTS)}], got {counts.dtype} {tuple(counts.shape)}"
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
    _check_seed_offset(seed, offset)
    if x.shape[0] > 0:
        _native.accept_compact_into(x, log_p, log_q, log_M, seed, offset, out, counts, max_log_ratio)


#: The registered op ``rsfast::accept_compact`` (see :func:`accept_compact`): for torch.compile and
#: opcheck.
accept_compact_op = _compat.custom_op(
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
        _check_tensor(t, name)
    if isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f"log_M must be a float, got {type(log_M).__name__}")
    if math.isnan(log_M):
        raise ValueError("log_M must not be NaN")
    _check_int(seed, "seed")
    _check_int(offset, "offset")
    if _direct([x, log_p, log_q, out, counts, max_log_ratio]):
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


# ---------------------------------------------------------------- perturb_

__all__ += ["perturb_", "perturb_op", "PERTURB_DTYPES"]

#: Dtypes :func:`perturb_` accepts (the noise is made in float32 for all of them).
PERTURB_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_MAX_PERTURB_TENSORS = 2**32


def _check_perturb(tensors: list[Tensor], scale: float) -> None:
    """ValueError/TypeError naming ``tensors[i]`` or ``scale``; shared by the op and its fake kernel."""
    if len(tensors) >= _MAX_PERTURB_TENSORS:
        raise ValueError(f"tensors: at most 2**32 - 1 tensors per call, got {len(tensors)}")
    for i, t in enumerate(tensors):
        if t.dtype not in PERTURB_DTYPES:
            raise TypeError(
                f"tensors[{i}] has dtype {t.dtype}; perturb_ adds Gaussian noise to floating tensors only "
                f"(float32, float64, float16, bfloat16)"
            )
        if not t.is_contiguous():
            raise ValueError(
                f"tensors[{i}] is not contiguous (shape {tuple(t.shape)}, stride {t.stride()}); perturb_ "
                "works in place on contiguous tensors only (the noise follows the row-major element index)"
            )
        if t.device.type not in ("cpu", "cuda"):
            raise ValueError(f"tensors[{i}] is on {t.device}; perturb_ runs on cpu and cuda tensors")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")


def _perturb_impl(tensors: list[Tensor], seed: int, scale: float) -> None:
    _check_perturb(tensors, scale)
    _check_seed_offset(seed, 0)
    # One kernel call per device, each tensor keeping its index in the caller's list.
    groups: dict[torch.device, list[int]] = {}
    for i, t in enumerate(tensors):
        if t.numel() > 0:
            groups.setdefault(t.device, []).append(i)
    for idx in groups.values():
        _native.perturb_into([tensors[i] for i in idx], idx, seed, scale)


#: The registered op ``rsfast::perturb_`` (see :func:`perturb_`): for torch.compile and opcheck. It
#: mutates its tensor list in place and returns nothing.
perturb_op = _compat.custom_op(
    "rsfast::perturb_", _perturb_impl, mutates_args=("tensors",), device_types=("cpu", "cuda")
)


@perturb_op.register_fake
def _perturb_fake(tensors: list[Tensor], seed: int, scale: float) -> None:
    _check_perturb(tensors, scale)


def perturb_(tensors: list[Tensor] | tuple[Tensor, ...] | Tensor, seed: int, scale: float) -> None:
    """Add ``scale * z`` in place to every tensor, z ~ N(0, I) from Philox4x32-10 keyed by ``seed``.

    The noise of the i-th tensor is a function of (seed, i, flat element index) only: it does not
    depend on the other tensors of the list, their dtypes or devices, the thread count or the device.
    ``perturb_(tensors, seed, -scale)`` undoes the call up to rounding (float32: a few ulp per pair,
    see :class:`rsfast.finetune.PerturbationTuner`; float16/bfloat16: one rounding to the storage type
    per call, so undo is not exact there).

    Args:
        tensors: a Tensor or a list/tuple of Tensors (for a model: ``list(model.parameters())``),
            float32, float64, float16 or bfloat16, contiguous, on cpu or cuda (lists may mix devices:
            one kernel call per device, tensors keep their list index). Modified in place; no
            temporary of a tensor's size is allocated. The call is not recorded by autograd (it runs
            under ``torch.no_grad()``, like ``torch.nn.init``); version counters are bumped.
        seed: Philox key, an int in ``[0, 2**63)`` (e.g. from :func:`rsfast._random.draw_seed`).
        scale: standard deviation of the noise, a finite float (negative undoes).

    Noise layout (the same on CPU and CUDA; :func:`rsfast._reference.perturb_noise` is its torch
    twin): element j of tensor i gets normal ``(j // 16) % 4`` of Philox block
    (counter ``(i, s, 0x70657274)``, key ``seed``) with stream ``s = 16 (j // 64) + j % 16``, from
    the float32 Box-Muller of the kernels. Arithmetic: float32 ``x + float(scale) * z``;
    float16/bfloat16 ``round(float(x) + float(scale) * z)``, computed in float32 and rounded to
    nearest even once; float64 ``x + scale * double(z)``.

    Raises:
        TypeError: ``tensors`` not a Tensor or list/tuple of Tensors, an integer, bool or complex
            tensor, ``seed`` not an int, ``scale`` not a real number.
        ValueError: a non-contiguous tensor (named ``tensors[i]``), a device other than cpu/cuda,
            ``seed`` out of range, non-finite ``scale``.
    """
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    elif isinstance(tensors, (list, tuple)):
        tensors = list(tensors)
    else:
        raise TypeError(
            f"tensors must be a Tensor or a list of Tensors, got {type(tensors).__name__} "
            "(for a model pass list(model.parameters()))"
        )
    for i, t in enumerate(tensors):
        _check_tensor(t, f"tensors[{i}]")
    _check_int(seed, "seed")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float, got {type(scale).__name__}")
    scale = float(scale)
    if not tensors:
        return
    with torch.no_grad():
        if _direct_perturb(tensors):
            _perturb_impl(tensors, seed, scale)
            _compat.increment_version(tensors)
        else:
            perturb_op(tensors, seed, scale)


def _direct_perturb(tensors: list[Tensor]) -> bool:
    """Like :func:`_direct`, with nn.Parameter counted as a plain tensor (its data is a plain tensor)."""
    if torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    return all(type(t) is Tensor or type(t) is torch.nn.Parameter for t in tensors)


# ---------------------------------------------------------------- accept_compact_rows

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _rows_log_ratio(log_ratio: Tensor) -> Tensor:
    """log_ratio as the kernel reads it: float32/float64, contiguous (float16/bfloat16 widened to float32)."""
    if log_ratio.dtype in _HALF_DTYPES:
        log_ratio = log_ratio.float()
    return log_ratio.contiguous()


def _check_rows(log_ratio: Tensor, log_M_tensor: Tensor | None, tensors: list[Tensor]) -> None:
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
    log_ratio: Tensor, log_M_tensor: Tensor | None, tensors: list[Tensor]
) -> tuple[Tensor, Tensor | None, list[Tensor]]:
    lr = _rows_log_ratio(log_ratio)
    lmt = None if log_M_tensor is None else log_M_tensor.to(lr.dtype).reshape(1).contiguous()
    return lr, lmt, [t.contiguous() for t in tensors]


def _accept_compact_rows_impl(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Tensor | None,
    tensors: list[Tensor],
    seed: int,
    offset: int,
) -> tuple[list[Tensor], Tensor]:
    """Full-capacity form (the registered op): every output has B rows, the accepted rows first in row
    order and zeros after them; count is an int64 0-d tensor on log_ratio's device. No host sync."""
    _check_rows(log_ratio, log_M_tensor, tensors)
    _check_seed_offset(seed, offset)
    lr, lmt, srcs = _rows_prepare(log_ratio, log_M_tensor, tensors)
    b = lr.shape[0]
    outs = [torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in srcs]
    count = torch.zeros((), dtype=torch.int64, device=lr.device)
    if b > 0:
        scratch = _native.accept_compact_rows_decide(lr, log_M, lmt, seed, offset, count)
        _native.accept_compact_rows_gather(b, srcs, outs, b, True, scratch)
    return outs, count


def _accept_compact_rows_exact(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Tensor | None,
    tensors: list[Tensor],
    seed: int,
    offset: int,
) -> tuple[list[Tensor], Tensor]:
    """Exact-size form (eager, plain tensors): decide, read the count (one host sync on CUDA), allocate
    outputs of exactly count rows, gather. Nothing is written past the accepted rows."""
    _check_rows(log_ratio, log_M_tensor, tensors)
    _check_seed_offset(seed, offset)
    lr, lmt, srcs = _rows_prepare(log_ratio, log_M_tensor, tensors)
    b = lr.shape[0]
    count = torch.zeros((), dtype=torch.int64, device=lr.device)
    if b == 0:
        return [t.new_empty(t.shape) for t in srcs], count
    scratch = _native.accept_compact_rows_decide(lr, log_M, lmt, seed, offset, count)
    k = int(count)
    outs = [torch.empty((k, *t.shape[1:]), dtype=t.dtype, device=t.device) for t in srcs]
    _native.accept_compact_rows_gather(b, srcs, outs, k, False, scratch)
    return outs, count


#: The registered op ``rsfast::accept_compact_rows`` (full-capacity outputs + device-side count; see
#: :func:`accept_compact_rows`): for torch.compile, opcheck and autograd.
accept_compact_rows_op = _compat.custom_op(
    "rsfast::accept_compact_rows", _accept_compact_rows_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@accept_compact_rows_op.register_fake
def _accept_compact_rows_fake(
    log_ratio: Tensor,
    log_M: float,
    log_M_tensor: Tensor | None,
    tensors: list[Tensor],
    seed: int,
    offset: int,
) -> tuple[list[Tensor], Tensor]:
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
    log_M: float | Tensor,
    tensors: list[Tensor],
    seed: int,
    offset: int = 0,
    *,
    sync: bool = True,
) -> tuple[list[Tensor], Tensor]:
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
    _check_tensor(log_ratio, "log_ratio")
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"tensors must be a list of Tensors, got {type(tensors).__name__}")
    for i, t in enumerate(tensors):
        _check_tensor(t, f"tensors[{i}]")
    log_M_tensor: Tensor | None = None
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
    _check_int(seed, "seed")
    _check_int(offset, "offset")
    if not isinstance(sync, bool):
        raise TypeError(f"sync must be a bool, got {type(sync).__name__}")
    tensors = list(tensors)
    args = [log_ratio, *tensors] + ([log_M_tensor] if log_M_tensor is not None else [])
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    if _direct(args) and not needs_grad:
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


# ---------------------------------------------------------------- fused_sample

__all__ += ["fused_sample", "fused_sample_op", "fused_target_params", "FUSED_COUNT_SLOTS"]

#: Slots of the ``counts`` output of :func:`fused_sample`.
FUSED_COUNT_SLOTS = _native.FUSED_COUNT_SLOTS
_I64_LIMIT = 2**63


def fused_target_params(logits: Tensor, loc: Tensor, scale: Tensor) -> list[Tensor]:
    """The arrays the fused kernel reads for a mixture-of-normals target: loc [K, D], 1 / scale [K, D] and
    the per-component constant log w_k - sum_d log scale_kd - D/2 log 2 pi [K], in torch on the
    parameters' device (no host synchronisation)."""
    const = torch.log_softmax(logits, 0) - torch.log(scale).sum(1) - 0.5 * loc.shape[1] * _LOG_2PI
    return [loc.contiguous(), (1 / scale).contiguous(), const.contiguous()]


def _check_fused(kind: str, params: list[Tensor], logits: Tensor, loc: Tensor, scale: Tensor) -> int:
    """Validate the proposal and the target's shapes, dtypes and devices; return D."""
    dim, _ = _check_proposal(kind, params)
    ref = params[-1]
    for name, t in (("logits", logits), ("loc", loc), ("scale", scale)):
        _check_tensor(t, name)
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
    _check_seed_offset(seed, offset)


def _fused_sample_impl(
    kind: str,
    params: list[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int,
) -> tuple[Tensor, Tensor, Tensor]:
    dim = _check_fused(kind, params, logits, loc, scale)
    _check_fused_scalars(n, log_M, seed, offset, max_proposals)
    ref = params[-1]
    out = torch.empty((n, dim), dtype=ref.dtype, device=ref.device)
    counts = torch.zeros(len(FUSED_COUNT_SLOTS), dtype=torch.int64, device=ref.device)
    max_log_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=ref.device)
    if n > 0:
        q = derived_params(kind, params)
        q_inv = (1 / q[1]).contiguous() if kind == "mixture_normal" else None
        _native.fused_sample_into(
            kind, q, q_inv, fused_target_params(logits, loc, scale), n, log_M, seed, offset, max_proposals,
            out, counts, max_log_ratio,
        )  # fmt: skip
    return out, counts, max_log_ratio


#: The registered op ``rsfast::fused_sample`` (see :func:`fused_sample`): for torch.compile and opcheck.
fused_sample_op = _compat.custom_op(
    "rsfast::fused_sample", _fused_sample_impl, mutates_args=(), device_types=("cpu", "cuda")
)


def fused_sample(
    kind: str,
    params: list[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int = 2**62,
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` iid rows of a mixture of diagonal normals (the target) by rejection from a built-in proposal,
    in one launch (design §3, "slot" mode): output row i tries candidates from its own Philox stream
    (key ``seed``, counter with i and ``offset``) until ``log u < log p - log q - log_M``.

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
        _check_tensor(p, f"params[{i}]")
    for name, t in (("logits", logits), ("loc", loc), ("scale", scale)):
        _check_tensor(t, name)
    for name, v in (("n", n), ("seed", seed), ("offset", offset), ("max_proposals", max_proposals)):
        _check_int(v, name)
    if isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f"log_M must be a float, got {type(log_M).__name__}")
    tensors = [*params, logits, loc, scale]
    if _direct(tensors):
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
    params: list[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int,
) -> tuple[Tensor, Tensor, Tensor]:
    dim = _check_fused(kind, params, logits, loc, scale)
    ref = params[-1]
    return (
        ref.new_empty((n, dim)),
        ref.new_empty((len(FUSED_COUNT_SLOTS),), dtype=torch.int64),
        ref.new_empty((1,), dtype=torch.float64),
    )


# ---------------------------------------------------------------- slot mode (issue 3)


@dataclass(frozen=True)
class SlotLawSpec:
    """A law of the slot kernel: its parameter names (kernel order) and a value check.

    ``check(params)`` gets the broadcast parameters and raises ValueError naming the offending
    argument (non-positive scale, NaN, empty interval, ...).
    """

    name: str
    params: tuple[str, ...]
    check: Callable[[list[Tensor]], None]


#: The laws of :func:`slot_sample`, by name. Add one with :func:`register_slot_law`.
SLOT_LAWS: dict[str, SlotLawSpec] = {}


def register_slot_law(name: str, params: Sequence[str], check: Callable[[list[Tensor]], None]) -> None:
    """Register a slot law (its code must be in ``rsfast._native.SLOT_LAW_CODES``)."""
    if name not in _native.SLOT_LAW_CODES:
        raise ValueError(f"law {name!r} has no native code in rsfast._native.SLOT_LAW_CODES")
    SLOT_LAWS[name] = SlotLawSpec(name, tuple(params), check)


def _require(ok: Tensor, message: str) -> None:
    """ValueError(message) unless every element of the bool tensor ``ok`` is true (one host sync)."""
    if ok.numel() and not bool(ok.all()):
        raise ValueError(message)


def require_finite(t: Tensor, name: str) -> None:
    _require(torch.isfinite(t), f"{name} must be finite (no NaN or inf)")


def require_positive(t: Tensor, name: str, finite: bool = True) -> None:
    """ValueError naming ``name`` unless t > 0 everywhere (and finite when ``finite``)."""
    _require(~torch.isnan(t), f"{name} must not be NaN")
    if finite:
        _require(torch.isfinite(t), f"{name} must be finite")
    _require(t > 0, f"{name} must be > 0")


def _check_truncated_normal(params: list[Tensor]) -> None:
    loc, scale, low, high = params
    require_finite(loc, "loc")
    require_positive(scale, "scale")
    _require(~torch.isnan(low), "low must not be NaN")
    _require(~torch.isnan(high), "high must not be NaN")
    _require(low < high, "low must be < high (the interval [low, high] must not be empty)")


register_slot_law("truncated_normal", ("loc", "scale", "low", "high"), _check_truncated_normal)


def _slot_batch(law: str, params: list[Tensor]) -> tuple[SlotLawSpec, torch.Size]:
    """Validate types, dtypes, devices and count of a slot law's parameters; return (spec, batch_shape)."""
    if law not in SLOT_LAWS:
        raise ValueError(f"law must be one of {sorted(SLOT_LAWS)}, got {law!r}")
    spec = SLOT_LAWS[law]
    if len(params) != len(spec.params):
        raise ValueError(f"params of {law!r} must be {list(spec.params)}, got {len(params)} tensors")
    ref = params[0]
    for name, p in zip(spec.params, params):
        _native.dtype_code(p.dtype, name)
        if p.dtype != ref.dtype or p.device != ref.device:
            raise ValueError(
                f"{name}: all parameters must share dtype and device ({ref.dtype}, {ref.device})"
            )
    try:
        batch = torch.broadcast_shapes(*(p.shape for p in params))
    except RuntimeError as e:
        raise ValueError(f"parameters of {law!r} do not broadcast: {e}") from None
    return spec, batch


def _check_sample_shape(sample_shape: Sequence[int]) -> list[int]:
    if not isinstance(sample_shape, (list, tuple, torch.Size)):
        raise TypeError(f"sample_shape must be a sequence of ints, got {type(sample_shape).__name__}")
    shape = list(sample_shape)
    for s in shape:
        _check_int(s, "sample_shape")
        if s < 0:
            raise ValueError(f"sample_shape must not have negative sizes, got {tuple(shape)}")
    return shape


def _slot_sample_impl(
    law: str, params: list[Tensor], sample_shape: list[int], seed: int, offset: int
) -> tuple[Tensor, Tensor]:
    spec, batch = _slot_batch(law, params)
    _check_sample_shape(sample_shape)
    _check_seed_offset(seed, offset)
    flat = [p.expand(batch).contiguous().reshape(-1) for p in params]
    spec.check(flat)
    ref = params[0]
    out = torch.empty((*sample_shape, *batch), dtype=ref.dtype, device=ref.device)
    exhausted = torch.zeros((1,), dtype=torch.int64, device=ref.device)
    if out.numel() > 0:
        _native.slot_sample_into(law, flat, seed, offset, out, exhausted)
    return out, exhausted


#: The registered op ``rsfast::slot_sample`` (see :func:`slot_sample`): for torch.compile and opcheck.
slot_sample_op = _compat.custom_op(
    "rsfast::slot_sample", _slot_sample_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@slot_sample_op.register_fake
def _slot_sample_fake(
    law: str, params: list[Tensor], sample_shape: list[int], seed: int, offset: int
) -> tuple[Tensor, Tensor]:
    _, batch = _slot_batch(law, params)
    _check_sample_shape(sample_shape)
    ref = params[0]
    return ref.new_empty((*sample_shape, *batch)), ref.new_empty((1,), dtype=torch.int64)


def slot_sample(
    law: str, params: list[Tensor], sample_shape: Sequence[int], seed: int, offset: int
) -> tuple[Tensor, Tensor]:
    """Fused ("slot") sampling: every output element runs ``law``'s rejection loop on its own Philox
    stream until it accepts, in one kernel, with no intermediate memory.

    Args:
        law: a name in :data:`SLOT_LAWS` (``"truncated_normal"``: loc, scale, low, high; ...).
        params: the law's parameters (float32 or float64, one dtype and device), broadcast together to
            the batch shape like torch.distributions parameters. Values are checked (ValueError naming
            the parameter).
        sample_shape: leading sample dimensions.
        seed, offset: the Philox key and call number. Element i (row-major over the output) reads
            stream i; the result depends only on (params, seed, offset), not on threads or device.

    Returns:
        (samples [*sample_shape, *batch_shape] in the params' dtype, exhausted int64 [1]): the number
        of elements whose bounded tries (``kSlotMaxTries`` = 10,000 proposals) ran out; those are NaN.
        For valid parameters every law keeps acceptance >= 0.4, so this is 0 unless something is wrong.
    """
    if not isinstance(law, str):
        raise TypeError(f"law must be a str, got {type(law).__name__}")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of Tensors, got {type(params).__name__}")
    for i, p in enumerate(params):
        _check_tensor(p, f"params[{i}]")
    shape = _check_sample_shape(sample_shape)
    _check_int(seed, "seed")
    _check_int(offset, "offset")
    if _direct(list(params)):
        return _slot_sample_impl(law, list(params), shape, seed, offset)
    return slot_sample_op(law, list(params), shape, seed, offset)


def _check_von_mises(params: list[Tensor]) -> None:
    loc, concentration = params
    require_finite(loc, "loc")
    require_positive(concentration, "concentration")


def _check_gamma(params: list[Tensor]) -> None:
    concentration, rate = params
    require_positive(concentration, "concentration")
    require_positive(rate, "rate")


def _check_beta(params: list[Tensor]) -> None:
    concentration1, concentration0 = params
    require_positive(concentration1, "concentration1")
    require_positive(concentration0, "concentration0")


register_slot_law("von_mises", ("loc", "concentration"), _check_von_mises)
register_slot_law("gamma", ("concentration", "rate"), _check_gamma)
register_slot_law("beta", ("concentration1", "concentration0"), _check_beta)


# ---------------------------------------------------------------- group selection (rsfast.select)
#
# The kernels of rsfast.select as registered ops ``rsfast::select_*``. Groups are dense [P, N] values
# (offsets None) or flat [M] values with int64 offsets [P + 1]. The implementations read the data once to
# check it (offsets valid, no NaN rewards; on CUDA one host synchronisation), so a kernel never reads out
# of bounds; the fake kernels check shapes only. ``select_threshold`` has a data-dependent output size
# (``ctx.new_dynamic_size`` in its fake kernel); its CUDA implementation reads the total on the host.

_SELECT_FLOATS = (torch.float32, torch.float64)


def _check_layout(values: Tensor, offsets: Tensor | None, name: str, *, flat_ok: bool = False) -> int:
    """Shape/dtype/device checks of a group layout (no data read); returns P."""
    if offsets is None:
        if values.dim() == 1 and flat_ok:
            return 1
        if values.dim() != 2:
            raise ValueError(
                f"{name} must be [P, N] (or flat [M] with offsets), got shape {tuple(values.shape)}"
            )
        return values.shape[0]
    if values.dim() != 1:
        raise ValueError(f"{name} must be flat [M] when offsets are given, got shape {tuple(values.shape)}")
    if offsets.dtype != torch.int64 or offsets.dim() != 1 or offsets.shape[0] < 1:
        raise ValueError(f"offsets must be int64 [P + 1], got {offsets.dtype} {tuple(offsets.shape)}")
    if offsets.device != values.device:
        raise ValueError(f"offsets is on {offsets.device} but {name} is on {values.device}")
    return offsets.shape[0] - 1


def _check_select_dtype(values: Tensor, name: str, allowed: tuple[torch.dtype, ...] = _SELECT_FLOATS) -> None:
    if values.dtype not in allowed:
        raise ValueError(f"{name} must be one of {[str(d) for d in allowed]}, got {values.dtype}")


def _check_layout_data(values: Tensor, offsets: Tensor | None, name: str) -> None:
    """The data checks, read with one host transfer: offsets start at 0, end at M and never decrease; no
    NaN values (amax propagates NaN: one reduction pass, 15x cheaper than ``isnan(values).any()``)."""
    parts = []
    if offsets is not None:
        decreasing = (offsets[1:] < offsets[:-1]).any() if offsets.shape[0] > 1 else offsets.new_zeros(())
        parts += [offsets[0], offsets[-1], decreasing.to(torch.int64)]
    check_nan = values.is_floating_point() and values.numel() > 0
    if check_nan:
        parts.append(torch.isnan(values.amax()).to(torch.int64))
    if not parts:
        return
    got = torch.stack([t.to(torch.int64) for t in parts]).tolist()
    if offsets is not None:
        first, last, decreasing = got[:3]
        m = values.shape[0]
        if first != 0 or last != m:
            raise ValueError(
                f"offsets must start at 0 and end at {m} (the number of values), got {first} .. {last}"
            )
        if decreasing:
            raise ValueError("offsets must be nondecreasing")
    if check_nan and got[-1]:
        raise ValueError(f"{name} contains NaN")


def _contig(values: Tensor, offsets: Tensor | None) -> tuple[Tensor, Tensor | None]:
    return values.contiguous(), (None if offsets is None else offsets.contiguous())


def _check_k(values: Tensor, offsets: Tensor | None, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if offsets is None and k > values.shape[1]:
        raise ValueError(f"k must be <= N = {values.shape[1]} (candidates per group), got {k}")


def _best_of_n_impl(rewards: Tensor, offsets: Tensor | None, k: int) -> Tensor:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    _check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    out = torch.empty((p, k), dtype=torch.int64, device=rewards.device)
    if p > 0:
        # the CPU kernel sorts indices in scratch when k > 32
        scratch = _native.select_scratch("best_of_n", rewards) if k > 32 else None
        _native.select_groups_into("best_of_n", rewards, offsets, k=k, out=out, scratch=scratch)
    return out


#: ``rsfast::select_best_of_n(rewards, offsets, k) -> [P, k]`` (see :func:`rsfast.select.best_of_n`).
select_best_of_n_op = _compat.custom_op(
    "rsfast::select_best_of_n", _best_of_n_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_best_of_n_op.register_fake
def _best_of_n_fake(rewards: Tensor, offsets: Tensor | None, k: int) -> Tensor:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    return rewards.new_empty((p, k), dtype=torch.int64)


def _rso_check_blocks(rewards: Tensor, offsets: Tensor | None, k: int) -> None:
    """The Philox block counter of a round (t * ceil(n_g / V) + c / V) must fit in 32 bits."""
    v = 4 if rewards.dtype == torch.float32 else 2
    n_max = rewards.shape[1] if offsets is None else rewards.shape[0]
    if offsets is not None and min(k, n_max) * ((n_max + v - 1) // v) >= _U32 and offsets.shape[0] > 1:
        n_max = int((offsets[1:] - offsets[:-1]).max())  # the bound on M failed: look at the real groups
    if min(k, n_max) * ((n_max + v - 1) // v) >= _U32:
        raise ValueError(
            f"rso: groups of {n_max} candidates with k = {k} exceed the 2**32 Philox blocks per group"
        )


def _rso_impl(rewards: Tensor, offsets: Tensor | None, k: int, beta: float, seed: int, offset: int) -> Tensor:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    _check_seed_offset(seed, offset)
    _rso_check_blocks(rewards, offsets, k)
    _check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    out = torch.empty((p, k), dtype=torch.int64, device=rewards.device)
    if p > 0:
        scratch = _native.select_scratch("rso", rewards)
        _native.select_groups_into(
            "rso", rewards, offsets, k=k, beta=beta, seed=seed, offset=offset, out=out, scratch=scratch
        )
    return out


#: ``rsfast::select_rso(rewards, offsets, k, beta, seed, offset) -> [P, k]`` (see :func:`rsfast.select.rso`).
select_rso_op = _compat.custom_op(
    "rsfast::select_rso", _rso_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_rso_op.register_fake
def _rso_fake(rewards: Tensor, offsets: Tensor | None, k: int, beta: float, seed: int, offset: int) -> Tensor:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    return rewards.new_empty((p, k), dtype=torch.int64)


def _threshold_impl(
    rewards: Tensor, offsets: Tensor | None, min_reward: float, max_per_group: int
) -> tuple[Tensor, Tensor]:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    if math.isnan(min_reward):
        raise ValueError("min_reward must not be NaN")
    _check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    counts = torch.zeros(p, dtype=torch.int64, device=rewards.device)
    if p == 0 or rewards.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=rewards.device), counts
    kw = dict(min_reward=min_reward, max_per_group=max_per_group)
    _native.select_groups_into("threshold_count", rewards, offsets, counts=counts, **kw)
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1])  # the output size depends on the data: one host read
    out = torch.empty(total, dtype=torch.int64, device=rewards.device)
    if total > 0:
        starts = ends - counts
        _native.select_groups_into("threshold_write", rewards, offsets, counts=starts, out=out, **kw)
    return out, counts


#: ``rsfast::select_threshold(rewards, offsets, min_reward, max_per_group) -> (flat [S], counts [P])``;
#: ``max_per_group < 0`` means no cap (see :func:`rsfast.select.threshold`).
select_threshold_op = _compat.custom_op(
    "rsfast::select_threshold", _threshold_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_threshold_op.register_fake
def _threshold_fake(
    rewards: Tensor, offsets: Tensor | None, min_reward: float, max_per_group: int
) -> tuple[Tensor, Tensor]:
    p = _check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    total = torch.library.get_ctx().new_dynamic_size()
    return rewards.new_empty((total,), dtype=torch.int64), rewards.new_empty((p,), dtype=torch.int64)


def top_fraction_count(fraction: float, m: int) -> int:
    """How many rows top_fraction keeps: ceil(fraction * m), a product within 1e-9 (relative) of an integer
    taken as that integer (0.3 of 10 rows is 3, although the float product is 3.0000000000000004)."""
    x = fraction * m
    r = round(x)
    return int(r) if abs(x - r) <= 1e-9 * max(1.0, x) else math.ceil(x)


def _top_fraction_impl(rewards: Tensor, count: int) -> Tensor:
    _check_select_dtype(rewards, "rewards")
    m = rewards.numel()
    if not 0 <= count <= m:
        raise ValueError(f"count must be in [0, {m}] (the number of rewards), got {count}")
    _check_layout_data(rewards, None, "rewards")
    flat = rewards.contiguous().reshape(-1)
    out = torch.empty(count, dtype=torch.int64, device=rewards.device)
    if count > 0:
        scratch = _native.select_scratch("top_fraction", flat)
        _native.select_groups_into("top_fraction", flat, None, count=count, out=out, scratch=scratch)
    return out


#: ``rsfast::select_top_fraction(rewards, count) -> [count]``: the flat indices of the ``count`` highest
#: rewards of the whole tensor (ties to the lower index), increasing (see :func:`rsfast.select.top_fraction`).
select_top_fraction_op = _compat.custom_op(
    "rsfast::select_top_fraction", _top_fraction_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_top_fraction_op.register_fake
def _top_fraction_fake(rewards: Tensor, count: int) -> Tensor:
    _check_select_dtype(rewards, "rewards")
    return rewards.new_empty((count,), dtype=torch.int64)


_METRIC_DTYPES = (torch.float32, torch.float64, torch.int64)


def _filter_groups_impl(metric: Tensor, offsets: Tensor | None) -> Tensor:
    p = _check_layout(metric, offsets, "metric")
    _check_select_dtype(metric, "metric", _METRIC_DTYPES)
    _check_layout_data(metric, offsets, "metric")
    metric, offsets = _contig(metric, offsets)
    keep = torch.empty(p, dtype=torch.bool, device=metric.device)
    if p > 0:
        _native.select_groups_into("filter_groups", metric, offsets, keep=keep)
    return keep


#: ``rsfast::select_filter_groups(metric, offsets) -> bool [P]`` (see :func:`rsfast.select.filter_groups`);
#: metric float32, float64 or int64.
select_filter_groups_op = _compat.custom_op(
    "rsfast::select_filter_groups", _filter_groups_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_filter_groups_op.register_fake
def _filter_groups_fake(metric: Tensor, offsets: Tensor | None) -> Tensor:
    p = _check_layout(metric, offsets, "metric")
    _check_select_dtype(metric, "metric", _METRIC_DTYPES)
    return metric.new_empty((p,), dtype=torch.bool)


def _check_dedupe(keys: Tensor, groups: Tensor) -> None:
    for name, t in (("keys", keys), ("groups", groups)):
        if t.dtype != torch.int64 or t.dim() != 1:
            raise ValueError(f"{name} must be int64 [M], got {t.dtype} {tuple(t.shape)}")
    if groups.shape != keys.shape:
        raise ValueError(f"groups must have the shape of keys {tuple(keys.shape)}, got {tuple(groups.shape)}")
    if groups.device != keys.device:
        raise ValueError(f"groups is on {groups.device} but keys is on {keys.device}")


def _dedupe_impl(keys: Tensor, groups: Tensor) -> Tensor:
    _check_dedupe(keys, groups)
    keep = torch.empty(keys.shape[0], dtype=torch.bool, device=keys.device)
    if keys.shape[0] > 0:
        _native.select_dedupe_into(keys.contiguous(), groups.contiguous(), keep)
    return keep


#: ``rsfast::select_dedupe(keys, groups) -> bool [M]`` (see :func:`rsfast.select.dedupe`).
select_dedupe_op = _compat.custom_op(
    "rsfast::select_dedupe", _dedupe_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_dedupe_op.register_fake
def _dedupe_fake(keys: Tensor, groups: Tensor) -> Tensor:
    _check_dedupe(keys, groups)
    return keys.new_empty(keys.shape, dtype=torch.bool)


def _run(impl: object, op: object, tensors: list[Tensor | None], *args: object) -> object:
    """The kernel directly on plain eager tensors, else the registered op (as propose does)."""
    if _direct([t for t in tensors if t is not None]):
        return impl(*tensors, *args)  # type: ignore[operator]
    return op(*tensors, *args)  # type: ignore[operator]


def select_best_of_n(rewards: Tensor, offsets: Tensor | None, k: int) -> Tensor:
    """Kernel entry of :func:`rsfast.select.best_of_n` (validated there): int64 [P, k]."""
    return _run(_best_of_n_impl, select_best_of_n_op, [rewards, offsets], k)  # type: ignore[return-value]


def select_rso(
    rewards: Tensor, offsets: Tensor | None, k: int, beta: float, seed: int, offset: int
) -> Tensor:
    """Kernel entry of :func:`rsfast.select.rso` (Philox key ``seed``, call number ``offset``): [P, k]."""
    return _run(_rso_impl, select_rso_op, [rewards, offsets], k, beta, seed, offset)  # type: ignore[return-value]


def select_threshold(
    rewards: Tensor, offsets: Tensor | None, min_reward: float, max_per_group: int
) -> tuple[Tensor, Tensor]:
    """Kernel entry of :func:`rsfast.select.threshold` (``max_per_group < 0``: no cap)."""
    return _run(_threshold_impl, select_threshold_op, [rewards, offsets], min_reward, max_per_group)  # type: ignore[return-value]


def select_top_fraction(rewards: Tensor, count: int) -> Tensor:
    """Kernel entry of :func:`rsfast.select.top_fraction`: the ``count`` best flat indices, increasing."""
    return _run(_top_fraction_impl, select_top_fraction_op, [rewards], count)  # type: ignore[return-value]


def select_filter_groups(metric: Tensor, offsets: Tensor | None) -> Tensor:
    """Kernel entry of :func:`rsfast.select.filter_groups`: bool [P]."""
    return _run(_filter_groups_impl, select_filter_groups_op, [metric, offsets])  # type: ignore[return-value]


def select_dedupe(keys: Tensor, groups: Tensor) -> Tensor:
    """Kernel entry of :func:`rsfast.select.dedupe`: bool [M]."""
    return _run(_dedupe_impl, select_dedupe_op, [keys, groups])  # type: ignore[return-value]


__all__ += [
    "select_best_of_n",
    "select_rso",
    "select_threshold",
    "select_top_fraction",
    "select_filter_groups",
    "select_dedupe",
    "select_best_of_n_op",
    "select_rso_op",
    "select_threshold_op",
    "select_top_fraction_op",
    "select_filter_groups_op",
    "select_dedupe_op",
    "top_fraction_count",
]


def _check_poisson(params: list[Tensor]) -> None:
    (rate,) = params
    # One fused test (one host sync) on the common path; the messages only when it fails.
    if rate.numel() and bool((torch.isfinite(rate) & (rate >= 0)).all()):
        return
    _require(~torch.isnan(rate), "rate must not be NaN")
    _require(torch.isfinite(rate), "rate must be finite")
    _require(rate >= 0, "rate must be >= 0")


def _check_binomial(params: list[Tensor]) -> None:
    total_count, probs = params
    ok = torch.isfinite(total_count) & (total_count >= 0) & (total_count == torch.floor(total_count))
    if total_count.numel() and bool((ok & (probs >= 0) & (probs <= 1)).all()):
        return
    _require(~torch.isnan(total_count), "total_count must not be NaN")
    _require(torch.isfinite(total_count), "total_count must be finite")
    _require(total_count >= 0, "total_count must be >= 0")
    _require(total_count == torch.floor(total_count), "total_count must be an integer")
    _require(~torch.isnan(probs), "probs must not be NaN")
    _require((probs >= 0) & (probs <= 1), "probs must be in [0, 1]")


register_slot_law("poisson", ("rate",), _check_poisson)
register_slot_law("binomial", ("total_count", "probs"), _check_binomial)
