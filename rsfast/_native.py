"""The bridge to ``rsfast._C``: tensors in, raw pointers, sizes, dtype codes out.

Only this module and :mod:`rsfast.ops` touch the native module. Memory is always
allocated by torch here (its caching allocator owns it, scratch space included);
the native side only fills it, on the stream it is handed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

# Imported after torch: the native module then binds to the OpenMP runtime torch
# already loaded (one thread pool for both).
from . import _C  # noqa: E402

#: Every code that crosses into the native module comes from its own tables (rsfast._C.CODES, built
#: from the C++ enums): nothing here repeats a C++ number.
CODES: dict[str, dict[str, int]] = {table: dict(codes) for table, codes in _C.CODES.items()}


def _dtypes(table: str) -> dict[torch.dtype, int]:
    return {getattr(torch, name): code for name, code in CODES[table].items()}


def _slots(table: str) -> tuple[str, ...]:
    """Slot names of a counts vector, in index order."""
    return tuple(sorted(CODES[table], key=CODES[table].__getitem__))


DTYPE_CODES = _dtypes("dtype")
PROPOSAL_KINDS = CODES["proposal_kind"]
COUNT_SLOTS = _slots("count_slot")


def dtype_code(dtype: torch.dtype, name: str) -> int:
    """Native dtype code of a floating dtype; TypeError naming ``name`` otherwise."""
    try:
        return DTYPE_CODES[dtype]
    except KeyError:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {dtype}") from None


def device_args(t: torch.Tensor) -> tuple[int, int]:
    """(device index or -1 for the CPU, cudaStream_t as an int) for a kernel launch on ``t``'s device."""
    if t.device.type == "cpu":
        _follow_torch_threads()
        return -1, 0
    if t.device.type == "cuda":
        if not cuda_usable():
            raise RuntimeError(f"rsfast CUDA kernels are not usable: {cuda_status()[1]}")
        index = t.device.index if t.device.index is not None else torch.cuda.current_device()
        return index, torch.cuda.current_stream(index).cuda_stream
    raise ValueError(f"rsfast kernels run on cpu or cuda tensors, got device {t.device}")


_threads = 0


def _follow_torch_threads() -> None:
    """The CPU kernels use as many threads as torch does (torch.set_num_threads applies to rsfast)."""
    global _threads
    n = torch.get_num_threads()
    if n != _threads:
        _C.set_num_threads(n)
        _threads = n


def ptr(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


_cuda_status: tuple[bool, str] | None = None


def cuda_status() -> tuple[bool, str]:
    """(usable, why not): CUDA kernels compiled, a device visible to them, and torch sees CUDA."""
    global _cuda_status
    if _cuda_status is None:
        if not _C.build_info()["cuda_compiled"]:
            _cuda_status = (False, "rsfast was built without CUDA kernels (no nvcc at build time)")
        else:
            count, why = _C.cuda_device_count()
            if count == 0:
                _cuda_status = (False, why or "no CUDA device")
            elif not torch.cuda.is_available():
                _cuda_status = (False, "torch was built without CUDA or sees no device")
            else:
                _cuda_status = (True, "")
    return _cuda_status


def cuda_usable() -> bool:
    return cuda_status()[0]


def build_info() -> dict[str, Any]:
    """What was compiled and what is usable here.

    Keys: ``version``, ``cuda_compiled`` (bool), ``cuda_archs`` (list of ints),
    ``openmp`` (bool), ``openmp_threads`` (int), ``cuda_usable`` (bool),
    ``cuda_unusable_reason`` (str, only when not usable), ``torch`` (version).
    """
    from . import __version__

    _follow_torch_threads()
    info = dict(_C.build_info())
    info["version"] = __version__
    info["cuda_archs"] = [int(a) for a in info["cuda_archs"].split(",") if a]
    usable, why = cuda_status()
    info["cuda_usable"] = usable
    if not usable:
        info["cuda_unusable_reason"] = why
    info["torch"] = torch.__version__
    return info


def propose_into(
    kind: str,
    params: list[torch.Tensor],
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
    scratch: torch.Tensor | None = None,
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


# ---------------------------------------------------------------- perturb

#: Storage dtype codes of the perturb kernel (PerturbDType in csrc/ops/perturb/core.h).
PERTURB_DTYPE_CODES = _dtypes("perturb_dtype")


def perturb_into(tensors: list[torch.Tensor], indices: list[int], seed: int, scale: float) -> None:
    """Run the perturb kernel on ``tensors`` (contiguous, floating, one device, validated by
    :func:`rsfast.ops.perturb_`); ``indices[c]`` is tensor c's position in the caller's list."""
    if not tensors:
        return
    device, stream = device_args(tensors[0])
    _C.perturb(
        [ptr(t) for t in tensors], [t.numel() for t in tensors],
        [PERTURB_DTYPE_CODES[t.dtype] for t in tensors], list(indices), seed, float(scale), device, stream,
    )  # fmt: skip


# ---------------------------------------------------------------- accept_compact_rows


def accept_compact_rows_decide(
    log_ratio: torch.Tensor,
    log_M: float,
    log_M_tensor: torch.Tensor | None,
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
    src: list[torch.Tensor],
    dst: list[torch.Tensor],
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


#: Slots of the int64 statistics vector of fused_sample (FusedSlot in csrc/ops/fused_sample/core.h).
FUSED_COUNT_SLOTS = _slots("fused_slot")


def fused_sample_into(
    kind: str,
    q_derived: list[torch.Tensor],
    q_inv_scale: torch.Tensor | None,
    p_derived: list[torch.Tensor],
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


# ---------------------------------------------------------------- slot mode

#: Law codes of the slot kernels (SlotLaw in csrc/ops/slot_sample/core.h).
SLOT_LAW_CODES = CODES["slot_law"]


def slot_sample_into(
    law: str,
    params: list[torch.Tensor],
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


# ---- group selection (rsfast.select) ----

SELECT_OPS = CODES["select_op"]
SELECT_DTYPE_CODES = _dtypes("select_dtype")
SELECT_SCRATCH = CODES["select_scratch"]


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
    offsets: torch.Tensor | None,
    *,
    k: int = 0,
    beta: float = 1.0,
    seed: int = 0,
    offset: int = 0,
    min_reward: float = 0.0,
    max_per_group: int = -1,
    count: int = 0,
    out: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
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


# ---- token sampling (rsfast.tokens): the arguments of _C.tokens_* in order, after the tensors'
# pointers (see rsfast/ops/tokens.py)


def tokens_sample_into(*args: Any) -> None:
    """Fill ids, valid and logprobs of :func:`rsfast.ops.tokens_sample` (pointers and codes in)."""
    _C.tokens_sample(*args)


def tokens_filter_into(*args: Any) -> None:
    """Fill the filtered rows of :func:`rsfast.ops.tokens_filter`."""
    _C.tokens_filter(*args)


def tokens_verify_into(*args: Any) -> None:
    """Fill the outputs of :func:`rsfast.ops.tokens_verify`."""
    _C.tokens_verify(*args)
