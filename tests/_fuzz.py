"""Shared pieces of the property-based fuzz tests (tests/test_fuzz_*.py).

Strategies draw tensors of every dtype, shapes with 0- and 1-sized dims, special values (NaN, +-inf, huge,
tiny, -0.0) and layouts (contiguous, transposed, strided, expanded). :func:`attempt` runs one call of the
public surface: it may return (the test then checks the result) or raise ValueError, TypeError or
rsfast.SamplingError whose message names one of the call's arguments; anything else fails the example.

Profiles (registered in conftest.py): ``rsfast-ci`` (the default: derandomised, 200 examples per entry
point, per-example deadline) and ``rsfast-long`` (5,000 random examples): select one with
``pytest tests/test_fuzz_*.py --hypothesis-profile=rsfast-long`` (or RSFAST_FUZZ_PROFILE=rsfast-long).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from hypothesis import strategies as st

import rsfast

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
COMPLEX = [torch.complex64, torch.complex128]
ALL_DTYPES = [torch.bool, *INTS, *FLOATS, *COMPLEX]

#: Values every float parameter is drawn from, besides ordinary ones.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -3.0, 1e-30, 1e-300, 5e-324, 1e30, 1e300, -1e300,
           math.nan, math.inf, -math.inf]  # fmt: skip

ACCEPTED = (ValueError, TypeError, rsfast.SamplingError)


def values(special: Sequence[float] = SPECIAL) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(list(special)),
        st.floats(-10, 10, allow_nan=False),
        st.floats(allow_nan=True, allow_infinity=True, width=64),
    )


def _layout(draw: st.DrawFn, shape: tuple[int, ...], build: Callable[[tuple[int, ...]], torch.Tensor]):
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided", "expanded"]))
    if layout == "transposed" and len(shape) >= 2:
        t = build((*shape[:-2], shape[-1], shape[-2]))
        return t.transpose(-1, -2)
    if layout == "strided" and len(shape) >= 1:
        t = build((*shape[:-1], 2 * shape[-1]))
        return t[..., ::2]
    if layout == "expanded" and len(shape) >= 1:
        t = build((1, *shape[1:]))
        return t.expand(shape)
    return build(shape)


@st.composite
def tensors(
    draw: st.DrawFn,
    dtypes: Sequence[torch.dtype] = tuple(ALL_DTYPES),
    shape: tuple[int, ...] | None = None,
    min_dims: int = 0,
    max_dims: int = 3,
    max_side: int = 4,
    elements: st.SearchStrategy[float] | None = None,
) -> torch.Tensor:
    """A tensor of any of ``dtypes``, of ``shape`` (or a drawn one), any layout, any values."""
    dtype = draw(st.sampled_from(list(dtypes)))
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims)))
    elements = values() if elements is None else elements

    def build(s: tuple[int, ...]) -> torch.Tensor:
        n = math.prod(s)
        vals = draw(st.lists(elements, min_size=n, max_size=n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = torch.tensor(vals, dtype=torch.float64).reshape(s)
            if dtype.is_complex:
                return torch.complex(t, torch.flip(t, [-1]) if t.dim() else t).to(dtype)
            if not dtype.is_floating_point:
                t = torch.nan_to_num(t, nan=0.0).clamp(-1e6, 1e6)  # a NaN->int cast is undefined in C++
            return t.to(dtype)

    return _layout(draw, shape, build)


def float_params(
    shape: tuple[int, ...] | None = None, dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64)
) -> st.SearchStrategy[Any]:
    """A distribution/proposal parameter: a tensor (mostly floating, sometimes any dtype), a Python
    number, or junk."""
    return st.one_of(
        tensors(dtypes=dtypes, shape=shape),
        tensors(shape=shape),
        values(),
        st.sampled_from([None, "1.0", [1.0, 2.0], True, 3]),
    )


def seeds() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(0, 2**64 - 1), st.integers(-(2**70), 2**70), st.sampled_from([1.5, None, "0", True])
    )


def attempt(fn: Callable[[], Any], names: Sequence[str]) -> tuple[bool, Any]:
    """(True, result) or (False, exception) when ``fn`` raised one of :data:`ACCEPTED` naming one of
    ``names``; any other exception, or an accepted one that names no argument, fails the example."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return True, fn()
    except ACCEPTED as e:
        msg = str(e)
        assert any(n in msg for n in names), (
            f"{type(e).__name__} names none of the arguments {list(names)}: {msg}"
        )
        return False, e


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())
