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
select_best_of_n_op = torch.library.custom_op(
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
select_rso_op = torch.library.custom_op(
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
select_threshold_op = torch.library.custom_op(
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
select_top_fraction_op = torch.library.custom_op(
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
select_filter_groups_op = torch.library.custom_op(
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
select_dedupe_op = torch.library.custom_op(
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
