"""The bridge to ``rsfast._C``: the code tables, pointers, devices and build facts that every op uses.

Only this module and :mod:`rsfast.ops` touch the native module; each op's own bridge (its ``*_into``
functions: tensors in, raw pointers, sizes and codes out) lives in its module ``rsfast/ops/<op>.py``.
Memory is always allocated by torch (its caching allocator owns it, scratch space included); the native
side only fills it, on the stream it is handed.
"""

from __future__ import annotations

from typing import Any

import torch

# Imported after torch: the native module then binds to the OpenMP runtime torch
# already loaded (one thread pool for both).
from . import _C  # noqa: E402

#: Every code that crosses into the native module comes from its own tables (rsfast._C.CODES, generated
#: from csrc/include/rsfast/registry.h): no Python file repeats a native number.
CODES: dict[str, dict[str, int]] = {table: dict(codes) for table, codes in _C.CODES.items()}


def dtypes(*names: str) -> dict[torch.dtype, int]:
    """{torch dtype: native DType code} of the named dtypes (names of CODES["dtype"])."""
    return {getattr(torch, name): CODES["dtype"][name] for name in names}


def slots(table: str) -> tuple[str, ...]:
    """Slot names of a counts vector, in index order."""
    return tuple(sorted(CODES[table], key=CODES[table].__getitem__))


#: The float32/float64 ops' dtypes (most kernels); the token ops and perturb also take the half types.
DTYPE_CODES = dtypes("float32", "float64")


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
