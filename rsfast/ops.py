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

from . import _native

__all__ = [
    "propose",
    "accept_compact",
    "propose_op",
    "accept_compact_op",
    "derived_params",
    "PROPOSAL_PARAMS",
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
propose_op = torch.library.custom_op(
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
accept_compact_op = torch.library.custom_op(
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
slot_sample_op = torch.library.custom_op(
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
