"""``rsfast::perturb_``: add ``scale * z`` in place to a list of tensors, z ~ N(0, I) from Philox(seed).
Twin: :func:`rsfast.reference.perturb_`."""

import math
from typing import List, Tuple, Union

import torch
from torch import Tensor

from .. import _C, _native
from .._checks import check_int, check_seed_offset, check_tensor
from .._compat import increment_version
from .._native import device_args, ptr
from ._define import define, direct

__all__ = ["perturb_", "perturb_op", "PERTURB_DTYPES"]

#: Storage dtypes of the perturb kernel.
PERTURB_DTYPE_CODES = _native.dtypes("float32", "float64", "float16", "bfloat16")

#: Dtypes :func:`perturb_` accepts (the noise is made in float32 for all of them).
PERTURB_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_MAX_PERTURB_TENSORS = 2**32


def _check_perturb(tensors: List[Tensor], scale: float) -> None:
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


def _perturb_impl(tensors: List[Tensor], seed: int, scale: float) -> None:
    _check_perturb(tensors, scale)
    check_seed_offset(seed, 0)
    # One kernel call per device, each tensor keeping its index in the caller's list.
    groups: dict[torch.device, List[int]] = {}
    for i, t in enumerate(tensors):
        if t.numel() > 0:
            groups.setdefault(t.device, []).append(i)
    for idx in groups.values():
        perturb_into([tensors[i] for i in idx], idx, seed, scale)


#: The registered op ``rsfast::perturb_`` (see :func:`perturb_`): for torch.compile and opcheck. It
#: mutates its tensor list in place and returns nothing.
perturb_op = define(
    "rsfast::perturb_", _perturb_impl, mutates_args=("tensors",), device_types=("cpu", "cuda")
)


@perturb_op.register_fake
def _perturb_fake(tensors: List[Tensor], seed: int, scale: float) -> None:
    _check_perturb(tensors, scale)


def perturb_(tensors: Union[List[Tensor], Tuple[Tensor, ...], Tensor], seed: int, scale: float) -> None:
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

    Noise layout (the same on CPU and CUDA; :func:`rsfast.reference.perturb_noise` is its torch
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
        check_tensor(t, f"tensors[{i}]")
    check_int(seed, "seed")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float, got {type(scale).__name__}")
    scale = float(scale)
    if not tensors:
        return
    with torch.no_grad():
        if direct(tensors, parameters=True):
            _perturb_impl(tensors, seed, scale)
            increment_version(tensors)  # torch 2.4 takes one tensor, not a list
        else:
            perturb_op(tensors, seed, scale)


# ---------------------------------------------------------------- the native bridge


def perturb_into(tensors: List[torch.Tensor], indices: List[int], seed: int, scale: float) -> None:
    """Run the perturb kernel on ``tensors`` (contiguous, floating, one device, validated by
    :func:`rsfast.ops.perturb_`); ``indices[c]`` is tensor c's position in the caller's list."""
    if not tensors:
        return
    device, stream = device_args(tensors[0])
    _C.perturb(
        [ptr(t) for t in tensors], [t.numel() for t in tensors],
        [PERTURB_DTYPE_CODES[t.dtype] for t in tensors], list(indices), seed, float(scale), device, stream,
    )  # fmt: skip
