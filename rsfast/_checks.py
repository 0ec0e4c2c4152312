"""Argument validators shared by every layer (ops, select, distributions, finetune, reference), and
:class:`SamplingError` (re-exported by :mod:`rsfast.sampler` and :mod:`rsfast`), which ops raise too.

Each validator raises TypeError (wrong type) or ValueError (wrong value) with a message that names the
argument.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

__all__ = [
    "SamplingError",
    "SEED_LIMIT",
    "OFFSET_LIMIT",
    "check_int",
    "check_real",
    "check_tensor",
    "check_tensor_list",
    "check_seed_offset",
    "check_finite_real",
    "check_sample_shape",
]

#: Seeds are in [0, 2**63) (the Philox key), offsets (call numbers) in [0, 2**32).
SEED_LIMIT = 2**63
OFFSET_LIMIT = 2**32


class SamplingError(RuntimeError):
    """Sampling stopped before ``n`` samples: a bound was reached or the envelope was proved wrong.

    Attributes: ``num_accepted``, ``num_proposals``, ``acceptance_rate`` (seen so far).
    """

    def __init__(self, message: str, num_accepted: int = 0, num_proposals: int = 0) -> None:
        super().__init__(message)
        self.num_accepted = num_accepted
        self.num_proposals = num_proposals
        self.acceptance_rate = num_accepted / num_proposals if num_proposals else 0.0


def check_int(value: object, name: str) -> int:
    """TypeError naming ``name`` unless ``value`` is an int (bool is not); returns it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def check_real(value: object, name: str) -> float:
    """TypeError naming ``name`` unless ``value`` is an int or float (bool is not); returns it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)


def check_finite_real(value: object, name: str) -> float:
    """:func:`check_real`, then ValueError unless the value is finite."""
    v = check_real(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_tensor(value: object, name: str) -> Tensor:
    """TypeError naming ``name`` unless ``value`` is a Tensor; returns it."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    return value


def check_tensor_list(value: object, name: str) -> list:
    """TypeError unless ``value`` is a list or tuple of Tensors (elements named ``name[i]``); returns a
    list."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of Tensors, got {type(value).__name__}")
    for i, t in enumerate(value):
        check_tensor(t, f"{name}[{i}]")
    return list(value)


def check_seed_offset(seed: int, offset: int) -> None:
    """ValueError unless seed is in [0, 2**63) and offset in [0, 2**32)."""
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if not 0 <= offset < OFFSET_LIMIT:
        raise ValueError(f"offset must be in [0, 2**32), got {offset}")


def check_sample_shape(sample_shape: object, name: str = "sample_shape") -> list[int]:
    """TypeError naming ``name`` unless ``sample_shape`` is a list, tuple or torch.Size of ints,
    ValueError if a size is negative; returns it as a list."""
    if not isinstance(sample_shape, (list, tuple, torch.Size)):
        raise TypeError(f"{name} must be a sequence of ints, got {type(sample_shape).__name__}")
    shape = list(sample_shape)
    for s in shape:
        check_int(s, name)
        if s < 0:
            raise ValueError(f"{name} must not have negative sizes, got {tuple(shape)}")
    return shape


def renamed_n(n: int | None, num_samples: int | None, where: str) -> int | None:
    """``n``, or the value of its deprecated spelling ``num_samples`` (with a DeprecationWarning pointing
    at the caller of ``where``); both given is a TypeError."""
    if num_samples is None:
        return n
    if n is not None:
        raise TypeError("pass n or its deprecated spelling num_samples, not both")
    warnings.warn(f"{where}(num_samples=) is deprecated: use n=", DeprecationWarning, stacklevel=3)
    return num_samples
