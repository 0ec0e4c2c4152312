"""``rsfast::slot_sample``: every output element runs its law's rejection loop on its own Philox stream
(the laws behind :mod:`rsfast.distributions`), and the registry of slot laws with their parameter
checks. Twin: :func:`rsfast.reference.slot_sample`."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import SamplingError, check_int, check_sample_shape, check_seed_offset, check_tensor
from .._native import DTYPE_CODES, device_args, ptr
from ._define import define, direct

__all__ = [
    "slot_sample",
    "slot_sample_op",
    "dist_draw",
    "dist_draw_op",
    "SLOT_LAWS",
    "SlotLawSpec",
    "register_slot_law",
    "require_finite",
    "require_positive",
]

#: Law codes of the slot kernels (SlotLaw in csrc/include/rsfast/registry.h).
SLOT_LAW_CODES = _native.CODES["slot_law"]


@dataclass(frozen=True)
class SlotLawSpec:
    """A law of the slot kernel: its parameter names (kernel order), a value check and the messages
    of the kernel's own checks.

    ``check(params)`` gets the broadcast parameters and raises ValueError naming the offending
    argument (non-positive scale, NaN, empty interval, ...) with torch passes (for callers that
    validate outside a draw, e.g. a distribution's constructor). :func:`slot_sample` does not call it:
    the kernel checks every row as it reads it (the law's ``invalid`` in ``laws_*.h``) and reports
    the failed checks as bits; ``errors[k]`` is the message of bit k (the lowest set bit is raised).
    """

    name: str
    params: Tuple[str, ...]
    check: Callable[[List[Tensor]], None]
    errors: Tuple[str, ...] = ()

    def error(self, bits: int) -> str:
        """The ValueError message of the kernel's check bits (lowest set bit first)."""
        k = (bits & -bits).bit_length() - 1
        what = self.errors[k] if k < len(self.errors) else f"invalid parameters (check bits {bits:#x})"
        return f"{self.name}: {what}"


#: The laws of :func:`slot_sample`, by name. Add one with :func:`register_slot_law`.
SLOT_LAWS: dict[str, SlotLawSpec] = {}


def register_slot_law(
    name: str, params: Sequence[str], check: Callable[[List[Tensor]], None], errors: Sequence[str] = ()
) -> None:
    """Register a slot law (its code must be in ``rsfast.SLOT_LAW_CODES``); ``errors[k]`` is
    the message of bit k of the kernel's parameter check (naming the parameter)."""
    if name not in SLOT_LAW_CODES:
        raise ValueError(f"law {name!r} has no native code in rsfast.SLOT_LAW_CODES")
    SLOT_LAWS[name] = SlotLawSpec(name, tuple(params), check, tuple(errors))


def _positive_errors(name: str) -> Tuple[str, str, str]:
    """Messages of slot_check_positive's three bits (NaN, inf, not > 0)."""
    return (f"{name} must not be NaN", f"{name} must be finite", f"{name} must be > 0")


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


def _check_truncated_normal(params: List[Tensor]) -> None:
    loc, scale, low, high = params
    require_finite(loc, "loc")
    require_positive(scale, "scale")
    _require(~torch.isnan(low), "low must not be NaN")
    _require(~torch.isnan(high), "high must not be NaN")
    _require(low < high, "low must be < high (the interval [low, high] must not be empty)")
    # The kernel works in standard units a = (low - loc) / scale, b = (high - loc) / scale in the
    # parameters' dtype: a finite end must stay finite there, with room for the tail proposal's
    # a + sqrt(a^2 + 4) (else no try is ever accepted), and a^2 must be finite in float64, where
    # log_prob and its friends are computed.
    limit = min(torch.finfo(loc.dtype).max / 4, 1e150)
    a, b = (low - loc) / scale, (high - loc) / scale
    ok = (torch.isinf(low) | (a.abs() <= limit)) & (torch.isinf(high) | (b.abs() <= limit))
    _require(
        ok,
        "scale is too small for the interval: (low - loc) / scale and (high - loc) / scale must be at "
        f"most {limit:.3g} in magnitude for finite low and high",
    )


register_slot_law(
    "truncated_normal",
    ("loc", "scale", "low", "high"),
    _check_truncated_normal,
    (
        "loc must be finite (no NaN or inf)",
        *_positive_errors("scale"),
        "low must not be NaN",
        "high must not be NaN",
        "low must be < high (the interval [low, high] must not be empty)",
        "scale is too small for the interval: (low - loc) / scale and (high - loc) / scale must be at most "
        "max / 4 of the dtype (float32) or 1e150 (float64) in magnitude for finite low and high",
    ),
)


def _slot_batch(law: str, params: List[Tensor]) -> Tuple[SlotLawSpec, torch.Size]:
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


def _slot_sample_impl(
    law: str, params: List[Tensor], sample_shape: List[int], seed: int, offset: int
) -> Tuple[Tensor, Tensor]:
    spec, batch = _slot_batch(law, params)
    check_sample_shape(sample_shape)
    check_seed_offset(seed, offset)
    flat = [p.expand(batch).contiguous().reshape(-1) for p in params]
    ref = params[0]
    out = torch.empty((*sample_shape, *batch), dtype=ref.dtype, device=ref.device)
    exhausted = torch.zeros((1,), dtype=torch.int64, device=ref.device)
    invalid = torch.zeros((1,), dtype=torch.int64, device=ref.device)  # bits of the failed checks
    if out.numel() > 0:
        slot_sample_into(law, flat, seed, offset, out, exhausted, invalid)
        if ref.device.type == "cpu" and int(invalid[0]):
            raise ValueError(spec.error(int(invalid[0])))
    elif ref.device.type == "cpu":
        spec.check(flat)  # no element drawn, so no kernel check: torch passes (cheap, nothing to draw)
    return out, exhausted


#: The registered op ``rsfast::slot_sample`` (see :func:`slot_sample`): for torch.compile and opcheck.
slot_sample_op = define(
    "rsfast::slot_sample", _slot_sample_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@slot_sample_op.register_fake
def _slot_sample_fake(
    law: str, params: List[Tensor], sample_shape: List[int], seed: int, offset: int
) -> Tuple[Tensor, Tensor]:
    _, batch = _slot_batch(law, params)
    check_sample_shape(sample_shape)
    ref = params[0]
    return ref.new_empty((*sample_shape, *batch)), ref.new_empty((1,), dtype=torch.int64)


def slot_sample(
    law: str, params: List[Tensor], sample_shape: Sequence[int], seed: int, offset: int
) -> Tuple[Tensor, Tensor]:
    """Fused ("slot") sampling: every output element runs ``law``'s rejection loop on its own Philox
    stream until it accepts, in one kernel, with no intermediate memory.

    Args:
        law: a name in :data:`SLOT_LAWS` (``"truncated_normal"``: loc, scale, low, high; ...).
        params: the law's parameters (float32 or float64, one dtype and device), broadcast together to
            the batch shape like torch.distributions parameters. Values are checked inside the kernel as
            it reads them (no separate torch passes). On CPU a bad value raises ValueError naming the
            parameter (e.g. ``"gamma: concentration must be > 0"``); on CUDA reading the check would
            synchronise, so elements with bad parameters are written NaN and counted in ``exhausted``
            (no error is raised; :data:`SLOT_LAWS` ``[law].check`` names the parameter on request).
        sample_shape: leading sample dimensions.
        seed, offset: the Philox key and call number. Element i (row-major over the output) reads
            stream i; the result depends only on (params, seed, offset), not on threads or device.

    Returns:
        (samples [*sample_shape, *batch_shape] in the params' dtype, exhausted int64 [1]): the number
        of elements written NaN: their bounded tries (``kSlotMaxTries`` = 10,000 proposals) ran out, or
        (CUDA) their parameters are invalid. For valid parameters every law keeps acceptance >= 0.4,
        so this is 0 unless something is wrong.
    """
    if not isinstance(law, str):
        raise TypeError(f"law must be a str, got {type(law).__name__}")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of Tensors, got {type(params).__name__}")
    for i, p in enumerate(params):
        check_tensor(p, f"params[{i}]")
    shape = check_sample_shape(sample_shape)
    check_int(seed, "seed")
    check_int(offset, "offset")
    if direct(list(params)):
        return _slot_sample_impl(law, list(params), shape, seed, offset)
    return slot_sample_op(law, list(params), shape, seed, offset)


def _dist_draw_impl(
    law: str, params: List[Tensor], sample_shape: List[int], seed: Tensor, who: str
) -> Tensor:
    out, exhausted = _slot_sample_impl(law, list(params), list(sample_shape), int(seed), 0)
    # On CUDA reading the count would synchronise: exhausted elements are NaN there (their
    # probability is below 1e-2000 for valid parameters).
    if out.device.type == "cpu" and int(exhausted[0]) > 0:
        raise SamplingError(f"{who}: {int(exhausted[0])} elements exhausted their tries")
    return out


#: The registered op ``rsfast::dist_draw`` (see :func:`dist_draw`): for torch.jit.trace, torch.compile
#: and opcheck.
dist_draw_op = define("rsfast::dist_draw", _dist_draw_impl, mutates_args=(), device_types=("cpu", "cuda"))


@dist_draw_op.register_fake
def _dist_draw_fake(
    law: str, params: List[Tensor], sample_shape: List[int], seed: Tensor, who: str
) -> Tensor:
    _, batch = _slot_batch(law, params)
    return params[0].new_empty((*sample_shape, *batch))


def dist_draw(law: str, params: List[Tensor], sample_shape: Sequence[int], seed: Tensor, who: str) -> Tensor:
    """:func:`slot_sample` for the distributions: the seed is a 0-d int64 *tensor* (drawn by
    ``torch.randint``, so that ``torch.jit.trace`` and ``torch.compile`` record the draw and every call
    of a traced function samples afresh), and an element that exhausted its tries raises
    :class:`rsfast.SamplingError` naming ``who`` (on the CPU; on CUDA it is NaN, as reading the count
    would synchronise). Returns the samples ``[*sample_shape, *batch_shape]``.
    """
    shape = check_sample_shape(sample_shape)
    params = [check_tensor(p, f"params[{i}]") for i, p in enumerate(params)]
    check_tensor(seed, "seed")
    if direct([*params, seed]) and not torch.jit.is_tracing():
        return _dist_draw_impl(law, params, shape, seed, who)
    return dist_draw_op(law, params, shape, seed, who)


def _check_von_mises(params: List[Tensor]) -> None:
    loc, concentration = params
    require_finite(loc, "loc")
    require_positive(concentration, "concentration")


def _check_gamma(params: List[Tensor]) -> None:
    concentration, rate = params
    require_positive(concentration, "concentration")
    require_positive(rate, "rate")


def _check_beta(params: List[Tensor]) -> None:
    concentration1, concentration0 = params
    require_positive(concentration1, "concentration1")
    require_positive(concentration0, "concentration0")


register_slot_law(
    "von_mises",
    ("loc", "concentration"),
    _check_von_mises,
    ("loc must be finite (no NaN or inf)", *_positive_errors("concentration")),
)
register_slot_law(
    "gamma",
    ("concentration", "rate"),
    _check_gamma,
    (*_positive_errors("concentration"), *_positive_errors("rate")),
)
register_slot_law(
    "beta",
    ("concentration1", "concentration0"),
    _check_beta,
    (*_positive_errors("concentration1"), *_positive_errors("concentration0")),
)


def _check_poisson(params: List[Tensor]) -> None:
    (rate,) = params
    # One fused test (one host sync) on the common path; the messages only when it fails.
    if rate.numel() and bool((torch.isfinite(rate) & (rate >= 0)).all()):
        return
    _require(~torch.isnan(rate), "rate must not be NaN")
    _require(torch.isfinite(rate), "rate must be finite")
    _require(rate >= 0, "rate must be >= 0")


def _check_binomial(params: List[Tensor]) -> None:
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


register_slot_law(
    "poisson", ("rate",), _check_poisson, ("rate must not be NaN", "rate must be finite", "rate must be >= 0")
)
register_slot_law(
    "binomial",
    ("total_count", "probs"),
    _check_binomial,
    (
        "total_count must not be NaN",
        "total_count must be finite",
        "total_count must be >= 0",
        "total_count must be an integer",
        "probs must not be NaN",
        "probs must be in [0, 1]",
    ),
)


# ---------------------------------------------------------------- the native bridge


def slot_sample_into(
    law: str,
    params: List[torch.Tensor],
    seed: int,
    offset: int,
    out: torch.Tensor,
    exhausted: torch.Tensor,
    invalid: torch.Tensor,
) -> None:
    """Fill ``out`` (contiguous, n = sample_numel * B elements) with slot-mode draws of ``law``;
    ``params`` are contiguous [B] arrays (element i uses row i % B); ``exhausted`` (int64 [1]) is
    incremented by the elements written NaN (tries ran out, or parameters invalid) and ``invalid``
    (int64 [1]) OR-ed with the bits of the failed parameter checks (the law's ``invalid`` in
    csrc/include/rsfast/laws_*.h). Shapes, dtypes and devices already validated."""
    device, stream = device_args(out)
    batch = params[0].numel()
    _C.slot_sample(
        SLOT_LAW_CODES[law], DTYPE_CODES[out.dtype], out.numel(), batch, [ptr(p) for p in params],
        seed, offset, ptr(out), ptr(exhausted), ptr(invalid), device, stream,
    )  # fmt: skip
