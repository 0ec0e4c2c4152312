"""``rsfast::select_*``: the group-selection kernels behind :mod:`rsfast.select` (best-of-n, RSO,
threshold, top fraction, group filters, dedupe). Twins: :mod:`rsfast.reference.select`."""

import math
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import OFFSET_LIMIT, check_seed_offset
from .._native import device_args, ptr
from ._define import call, define

__all__ = [
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
    "check_layout",
    "check_layout_data",
]

SELECT_OPS = _native.CODES["select_op"]
SELECT_DTYPE_CODES = _native.dtypes("float32", "float64", "int64")
SELECT_SCRATCH = _native.CODES["select_scratch"]

# The kernels of rsfast.select as registered ops ``rsfast::select_*``. Groups are dense [P, N] values
# (offsets None) or flat [M] values with int64 offsets [P + 1]. The implementations read the data once to
# check it (offsets valid, no NaN rewards; on CUDA one host synchronisation), so a kernel never reads out
# of bounds; the fake kernels check shapes only. ``select_threshold`` has a data-dependent output size
# (``ctx.new_dynamic_size`` in its fake kernel); its CUDA implementation reads the total on the host.

_SELECT_FLOATS = (torch.float32, torch.float64)


def check_layout(values: Tensor, offsets: Optional[Tensor], name: str, *, flat_ok: bool = False) -> int:
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


def _check_select_dtype(values: Tensor, name: str, allowed: Tuple[torch.dtype, ...] = _SELECT_FLOATS) -> None:
    if values.dtype not in allowed:
        raise ValueError(f"{name} must be one of {[str(d) for d in allowed]}, got {values.dtype}")


def check_layout_data(values: Tensor, offsets: Optional[Tensor], name: str) -> None:
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


def _contig(values: Tensor, offsets: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
    return values.contiguous(), (None if offsets is None else offsets.contiguous())


def _check_k(values: Tensor, offsets: Optional[Tensor], k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if offsets is None and k > values.shape[1]:
        raise ValueError(f"k must be <= N = {values.shape[1]} (candidates per group), got {k}")


def _best_of_n_impl(rewards: Tensor, k: int, offsets: Optional[Tensor] = None) -> Tensor:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    out = torch.empty((p, k), dtype=torch.int64, device=rewards.device)
    if p > 0:
        # the CPU kernel sorts indices in scratch when k > 32
        scratch = select_scratch("best_of_n", rewards) if k > 32 else None
        select_groups_into("best_of_n", rewards, offsets, k=k, out=out, scratch=scratch)
    return out


#: ``rsfast::select_best_of_n(rewards, k, offsets=None) -> [P, k]`` (see :func:`rsfast.select.best_of_n`).
select_best_of_n_op = define(
    "rsfast::select_best_of_n", _best_of_n_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_best_of_n_op.register_fake
def _best_of_n_fake(rewards: Tensor, k: int, offsets: Optional[Tensor] = None) -> Tensor:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    return rewards.new_empty((p, k), dtype=torch.int64)


def _rso_check_blocks(rewards: Tensor, offsets: Optional[Tensor], k: int) -> None:
    """The Philox block counter of a round (t * ceil(n_g / V) + c / V) must fit in 32 bits."""
    v = 4 if rewards.dtype == torch.float32 else 2
    n_max = rewards.shape[1] if offsets is None else rewards.shape[0]
    if (
        offsets is not None
        and min(k, n_max) * ((n_max + v - 1) // v) >= OFFSET_LIMIT
        and offsets.shape[0] > 1
    ):
        n_max = int((offsets[1:] - offsets[:-1]).max())  # the bound on M failed: look at the real groups
    if min(k, n_max) * ((n_max + v - 1) // v) >= OFFSET_LIMIT:
        raise ValueError(
            f"rso: groups of {n_max} candidates with k = {k} exceed the 2**32 Philox blocks per group"
        )


def _rso_impl(
    rewards: Tensor, k: int, beta: float, seed: int, offset: int, offsets: Optional[Tensor] = None
) -> Tensor:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    check_seed_offset(seed, offset)
    _rso_check_blocks(rewards, offsets, k)
    check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    out = torch.empty((p, k), dtype=torch.int64, device=rewards.device)
    if p > 0:
        scratch = select_scratch("rso", rewards)
        select_groups_into(
            "rso", rewards, offsets, k=k, beta=beta, seed=seed, offset=offset, out=out, scratch=scratch
        )
    return out


#: ``rsfast::select_rso(rewards, k, beta, seed, offset, offsets=None) -> [P, k]``
#: (see :func:`rsfast.select.rso`).
select_rso_op = define("rsfast::select_rso", _rso_impl, mutates_args=(), device_types=("cpu", "cuda"))


@select_rso_op.register_fake
def _rso_fake(
    rewards: Tensor, k: int, beta: float, seed: int, offset: int, offsets: Optional[Tensor] = None
) -> Tensor:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    _check_k(rewards, offsets, k)
    return rewards.new_empty((p, k), dtype=torch.int64)


def _threshold_impl(
    rewards: Tensor, min_reward: float, max_per_group: int, offsets: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    if math.isnan(min_reward):
        raise ValueError("min_reward must not be NaN")
    check_layout_data(rewards, offsets, "rewards")
    rewards, offsets = _contig(rewards, offsets)
    counts = torch.zeros(p, dtype=torch.int64, device=rewards.device)
    if p == 0 or rewards.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=rewards.device), counts
    kw = dict(min_reward=min_reward, max_per_group=max_per_group)
    select_groups_into("threshold_count", rewards, offsets, counts=counts, **kw)
    ends = torch.cumsum(counts, 0)
    total = int(ends[-1])  # the output size depends on the data: one host read
    out = torch.empty(total, dtype=torch.int64, device=rewards.device)
    if total > 0:
        starts = ends - counts
        select_groups_into("threshold_write", rewards, offsets, counts=starts, out=out, **kw)
    return out, counts


#: ``rsfast::select_threshold(rewards, min_reward, max_per_group, offsets=None) -> (flat [S], counts [P])``;
#: ``max_per_group < 0`` means no cap (see :func:`rsfast.select.threshold`).
select_threshold_op = define(
    "rsfast::select_threshold", _threshold_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_threshold_op.register_fake
def _threshold_fake(
    rewards: Tensor, min_reward: float, max_per_group: int, offsets: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    p = check_layout(rewards, offsets, "rewards")
    _check_select_dtype(rewards, "rewards")
    total = torch.library.get_ctx().new_dynamic_size()
    return rewards.new_empty((total,), dtype=torch.int64), rewards.new_empty((p,), dtype=torch.int64)


def top_fraction_count(fraction: float, m: int) -> int:
    """How many rows top_fraction keeps: ceil(fraction * m), a product within 1e-9 (relative) of a positive
    integer taken as that integer (0.3 of 10 rows is 3, although the float product is 3.0000000000000004)."""
    x = fraction * m
    r = round(x)
    # Only a positive integer absorbs the product: a positive fraction of a non-empty batch keeps a row.
    return int(r) if r >= 1 and abs(x - r) <= 1e-9 * x else math.ceil(x)


def _top_fraction_impl(rewards: Tensor, count: int) -> Tensor:
    _check_select_dtype(rewards, "rewards")
    m = rewards.numel()
    if not 0 <= count <= m:
        raise ValueError(f"count must be in [0, {m}] (the number of rewards), got {count}")
    check_layout_data(rewards, None, "rewards")
    flat = rewards.contiguous().reshape(-1)
    out = torch.empty(count, dtype=torch.int64, device=rewards.device)
    if count > 0:
        scratch = select_scratch("top_fraction", flat)
        select_groups_into("top_fraction", flat, None, count=count, out=out, scratch=scratch)
    return out


#: ``rsfast::select_top_fraction(rewards, count) -> [count]``: the flat indices of the ``count`` highest
#: rewards of the whole tensor (ties to the lower index), increasing (see :func:`rsfast.select.top_fraction`).
select_top_fraction_op = define(
    "rsfast::select_top_fraction", _top_fraction_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_top_fraction_op.register_fake
def _top_fraction_fake(rewards: Tensor, count: int) -> Tensor:
    _check_select_dtype(rewards, "rewards")
    return rewards.new_empty((count,), dtype=torch.int64)


_METRIC_DTYPES = (torch.float32, torch.float64, torch.int64)


def _filter_groups_impl(metric: Tensor, offsets: Optional[Tensor] = None) -> Tensor:
    p = check_layout(metric, offsets, "metric")
    _check_select_dtype(metric, "metric", _METRIC_DTYPES)
    check_layout_data(metric, offsets, "metric")
    metric, offsets = _contig(metric, offsets)
    keep = torch.empty(p, dtype=torch.bool, device=metric.device)
    if p > 0:
        select_groups_into("filter_groups", metric, offsets, keep=keep)
    return keep


#: ``rsfast::select_filter_groups(metric, offsets) -> bool [P]`` (see :func:`rsfast.select.filter_groups`);
#: metric float32, float64 or int64.
select_filter_groups_op = define(
    "rsfast::select_filter_groups", _filter_groups_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_filter_groups_op.register_fake
def _filter_groups_fake(metric: Tensor, offsets: Optional[Tensor] = None) -> Tensor:
    p = check_layout(metric, offsets, "metric")
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
        select_dedupe_into(keys.contiguous(), groups.contiguous(), keep)
    return keep


#: ``rsfast::select_dedupe(keys, groups) -> bool [M]`` (see :func:`rsfast.select.dedupe`).
select_dedupe_op = define(
    "rsfast::select_dedupe", _dedupe_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@select_dedupe_op.register_fake
def _dedupe_fake(keys: Tensor, groups: Tensor) -> Tensor:
    _check_dedupe(keys, groups)
    return keys.new_empty(keys.shape, dtype=torch.bool)


def _deprecated_order(name: str) -> None:
    warnings.warn(
        f"rsfast.ops.{name}(rewards, offsets, ...) is deprecated: pass offsets last, as rsfast.select "
        "and the twins in rsfast.reference.select take it",
        DeprecationWarning,
        stacklevel=3,
    )


# Each entry below also takes the order of release 0.x (``offsets`` second, recognised by a tensor or
# None in the second place) for one more release, with a DeprecationWarning.


def select_best_of_n(rewards: Tensor, k: int, offsets: Optional[Tensor] = None) -> Tensor:
    """Kernel entry of :func:`rsfast.select.best_of_n` (validated there): int64 [P, k]."""
    if k is None or isinstance(k, Tensor):  # 0.x order (rewards, offsets, k)
        _deprecated_order("select_best_of_n")
        k, offsets = offsets, k  # type: ignore[assignment]
    return call(_best_of_n_impl, select_best_of_n_op, [rewards, offsets], rewards, k, offsets)  # type: ignore[return-value]


def select_rso(
    rewards: Tensor, k: int, beta: float, seed: int, offset: int, offsets: Optional[Tensor] = None
) -> Tensor:
    """Kernel entry of :func:`rsfast.select.rso` (Philox key ``seed``, call number ``offset``): [P, k]."""
    if k is None or isinstance(k, Tensor):  # 0.x order (rewards, offsets, k, beta, seed, offset)
        _deprecated_order("select_rso")
        k, beta, seed, offset, offsets = beta, seed, offset, offsets, k  # type: ignore[assignment]
    return call(_rso_impl, select_rso_op, [rewards, offsets], rewards, k, beta, seed, offset, offsets)  # type: ignore[return-value]


def select_threshold(
    rewards: Tensor, min_reward: float, max_per_group: int, offsets: Optional[Tensor] = None
) -> Tuple[Tensor, Tensor]:
    """Kernel entry of :func:`rsfast.select.threshold` (``max_per_group < 0``: no cap)."""
    if min_reward is None or isinstance(min_reward, Tensor):  # 0.x order (rewards, offsets, min, max)
        _deprecated_order("select_threshold")
        min_reward, max_per_group, offsets = max_per_group, offsets, min_reward  # type: ignore[assignment]
    return call(
        _threshold_impl, select_threshold_op, [rewards, offsets], rewards, min_reward, max_per_group, offsets
    )  # type: ignore[return-value]


def select_top_fraction(rewards: Tensor, count: int) -> Tensor:
    """Kernel entry of :func:`rsfast.select.top_fraction`: the ``count`` best flat indices, increasing."""
    return call(_top_fraction_impl, select_top_fraction_op, [rewards], rewards, count)  # type: ignore[return-value]


def select_filter_groups(metric: Tensor, offsets: Optional[Tensor] = None) -> Tensor:
    """Kernel entry of :func:`rsfast.select.filter_groups`: bool [P]."""
    return call(_filter_groups_impl, select_filter_groups_op, [metric, offsets], metric, offsets)  # type: ignore[return-value]


def select_dedupe(keys: Tensor, groups: Tensor) -> Tensor:
    """Kernel entry of :func:`rsfast.select.dedupe`: bool [M]."""
    return call(_dedupe_impl, select_dedupe_op, [keys, groups], keys, groups)  # type: ignore[return-value]


# ---------------------------------------------------------------- the native bridge


def select_scratch(op: str, values: torch.Tensor) -> torch.Tensor:
    """Scratch memory of a select kernel, allocated by torch on the values' device."""
    device, _ = device_args(values)
    need = _C.select_scratch_bytes(
        SELECT_SCRATCH[op], values.numel(), SELECT_DTYPE_CODES[values.dtype], device
    )
    return torch.empty(max(int(need), 1), dtype=torch.uint8, device=values.device)


def select_groups_into(
    op: str,
    values: torch.Tensor,
    offsets: Optional[torch.Tensor],
    *,
    k: int = 0,
    beta: float = 1.0,
    seed: int = 0,
    offset: int = 0,
    min_reward: float = 0.0,
    max_per_group: int = -1,
    count: int = 0,
    out: Optional[torch.Tensor] = None,
    counts: Optional[torch.Tensor] = None,
    keep: Optional[torch.Tensor] = None,
    scratch: Optional[torch.Tensor] = None,
) -> None:
    """Run one group selection kernel on dense ``values`` [P, N] (offsets None) or flat values + offsets;
    arguments already validated by :mod:`rsfast.ops`."""
    device, stream = device_args(values)
    if offsets is None:
        groups, n = (values.shape[0], values.shape[1]) if values.dim() == 2 else (1, values.shape[0])
    else:
        groups, n = offsets.shape[0] - 1, 0
    _C.select_groups(
        SELECT_OPS[op], SELECT_DTYPE_CODES[values.dtype], groups, n, ptr(offsets), ptr(values), k,
        float(beta),
        seed, offset, float(min_reward), max_per_group, count, ptr(out), ptr(counts), ptr(keep), ptr(scratch),
        device, stream,
    )  # fmt: skip


def select_dedupe_into(keys: torch.Tensor, groups: torch.Tensor, keep: torch.Tensor) -> None:
    """keep[i] = first occurrence of (groups[i], keys[i]); the hash table is scratch allocated here."""
    device, stream = device_args(keys)
    m = keys.shape[0]
    size = 1 << max(1, (2 * m - 1).bit_length())  # a power of two >= 2 m
    table = torch.empty(size, dtype=torch.int64, device=keys.device)
    _C.select_dedupe(m, ptr(keys), ptr(groups), ptr(keep), ptr(table), size, device, stream)
