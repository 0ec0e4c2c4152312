"""Arguments shared by the decoding loop and the fine-tuners: token sequences, seeds, model outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import torch
from torch import Tensor

#: A token sequence: a list of ints or a 1-D integer tensor.
Tokens = Union[Sequence[int], Tensor]

_MASK64 = (1 << 64) - 1


def mix64(*words: int) -> int:
    """SplitMix64-style mixing of integers into a seed in [0, 2**63): per-prompt sampling seeds."""
    h = 0x9E3779B97F4A7C15
    for w in words:
        h = (h ^ (w & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h & (2**63 - 1)


def logits_of(output: Any) -> Tensor:
    """The logits of a causal LM's output: a tensor, an object with ``.logits``, or a tuple."""
    if isinstance(output, Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(
        "model(input_ids) must return logits [B, T, V], an object with .logits, or a tuple starting "
        f"with the logits; got {type(output).__name__}"
    )


def as_tokens(seq: Any, name: str, allow_empty: bool = False) -> list[int]:
    if isinstance(seq, Tensor):
        if seq.dim() != 1 or seq.is_floating_point() or seq.is_complex() or seq.dtype == torch.bool:
            raise ValueError(f"{name} must be a 1-D integer tensor, got {seq.dtype} {tuple(seq.shape)}")
        out = [int(t) for t in seq.tolist()]
    elif isinstance(seq, (list, tuple)):
        out = []
        for t in seq:
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"{name} must hold ints, got {type(t).__name__}")
            out.append(int(t))
    else:
        raise TypeError(f"{name} must be a list of token ids or a 1-D tensor, got {type(seq).__name__}")
    if not out and not allow_empty:
        raise ValueError(f"{name} is empty")
    if any(t < 0 for t in out):
        raise ValueError(f"{name} has a negative token id")
    return out


def check_prompts(prompts: Any, name: str = "prompts") -> list[list[int]]:
    if isinstance(prompts, Tensor):
        if prompts.dim() != 2:
            raise ValueError(f"{name} as a tensor must be [P, T], got shape {tuple(prompts.shape)}")
        prompts = list(prompts)
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(f"{name} must be a list of token sequences, got {type(prompts).__name__}")
    if not prompts:
        raise ValueError(f"{name} is empty")
    return [as_tokens(p, f"{name}[{i}]") for i, p in enumerate(prompts)]


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
