"""The options of :class:`RejectionSamplingFineTuner`, checked: what a round generates, how it selects,
how it fine-tunes and what it records.

:func:`check_options` checks the constructor's keyword arguments (in the order the constructor lists
them, so the first bad one is the one reported) and returns them as four frozen dataclasses; the tuner
keeps every field as an attribute of the same name. ``SelectionOptions.of(tuner)`` (and so on) reads a
group back from those attributes when a step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from .common import (
    _MAX_REFILLS,
    SELECTION_RULES,
    GenerateFn,
    Tokens,
    _as_tokens,
    _check_float,
    _check_positive_int,
    token_hash,
)

# Keyword arguments of rsfast.generate that the tuner sets itself (generate_kwargs must not).
RESERVED_GENERATE_KWARGS = frozenset(
    {
        "model",
        "prompts",
        "n",
        "max_new_tokens",
        "temperature",
        "top_k",
        "eos_token_id",
        "seeds",
        "generator",
        "batch_size",
    }
)

_T = TypeVar("_T")


class _Options:
    """Reading a group of options back from an object holding them as attributes."""

    @classmethod
    def of(cls: type[_T], obj: Any) -> _T:
        """The group's fields as ``obj`` holds them now (attributes of the same names)."""
        return cls(**{f.name: getattr(obj, f.name) for f in fields(cls)})  # type: ignore[arg-type]

    def attributes(self) -> dict[str, Any]:
        """Field name -> value (not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class SelectionOptions(_Options):
    """Which candidates of a round are accepted (see the tuner's Args)."""

    selection: str
    samples_per_prompt: int
    k: int
    beta: float
    min_reward: float | None
    fraction: float | None
    max_per_prompt: int | None
    pass_threshold: float
    dedupe: bool
    dedupe_key: Callable[[list[int]], int]


@dataclass(frozen=True)
class GenerationOptions(_Options):
    """How a round's candidates are generated, and the DAPO group filter's refills."""

    filter_groups: bool
    max_refills: int
    generate_fn: GenerateFn | None
    generate_kwargs: dict[str, Any]
    max_new_tokens: int
    temperature: float
    top_k: int | None
    eos_token_id: int | None
    generation_batch_size: int


@dataclass(frozen=True)
class TrainingOptions(_Options):
    """The SFT step of a round."""

    restart_from_base: bool
    pad_token_id: int
    lr: float
    sft_epochs: int
    batch_size: int
    max_grad_norm: float | None
    base_data: list[tuple[list[int], list[int]]]


@dataclass(frozen=True)
class RecordOptions(_Options):
    """What a round keeps of its accepted examples and preference pairs."""

    keep_records: bool
    pairs_per_prompt: int
    decode: Callable[[list[int]], str] | None


def check_options(
    *,
    selection: Any,
    samples_per_prompt: Any,
    k: Any,
    beta: Any,
    min_reward: Any,
    fraction: Any,
    max_per_prompt: Any,
    pass_threshold: Any,
    dedupe: Any,
    dedupe_key: Any,
    restart_from_base: Any,
    filter_groups: Any,
    max_refills: Any,
    generate_fn: Any,
    max_new_tokens: Any,
    temperature: Any,
    top_k: Any,
    eos_token_id: Any,
    generation_batch_size: Any,
    generate_kwargs: Any,
    pad_token_id: Any,
    lr: Any,
    sft_epochs: Any,
    batch_size: Any,
    max_grad_norm: Any,
    base_data: Sequence[tuple[Tokens, Tokens]] | None,
    keep_records: Any,
    pairs_per_prompt: Any,
    decode: Any,
) -> tuple[SelectionOptions, GenerationOptions, TrainingOptions, RecordOptions]:
    """The tuner's options, checked and normalised (TypeError / ValueError naming the argument)."""
    if not isinstance(selection, str):
        raise TypeError(f"selection must be a str, got {type(selection).__name__}")
    if selection not in SELECTION_RULES:
        raise ValueError(f"selection must be one of {SELECTION_RULES}, got {selection!r}")
    samples_per_prompt = _check_positive_int(samples_per_prompt, "samples_per_prompt")
    k = _check_positive_int(k, "k")
    if selection in ("best_of_n", "rso") and k > samples_per_prompt:
        raise ValueError(f"k must be <= samples_per_prompt = {samples_per_prompt}, got {k}")
    beta = _check_float(beta, "beta")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if selection == "threshold" and min_reward is None:
        raise ValueError("min_reward is required with selection='threshold'")
    min_reward = None if min_reward is None else _check_float(min_reward, "min_reward")
    if selection == "top_fraction" and fraction is None:
        raise ValueError("fraction is required with selection='top_fraction'")
    fraction = None if fraction is None else _check_float(fraction, "fraction")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    max_per_prompt = None if max_per_prompt is None else _check_positive_int(max_per_prompt, "max_per_prompt")
    pass_threshold = _check_float(pass_threshold, "pass_threshold")
    if not isinstance(dedupe, bool):
        raise TypeError(f"dedupe must be a bool, got {type(dedupe).__name__}")
    if dedupe_key is not None and not callable(dedupe_key):
        raise TypeError(f"dedupe_key must be callable or None, got {type(dedupe_key).__name__}")
    chosen = SelectionOptions(
        selection,
        samples_per_prompt,
        k,
        beta,
        min_reward,
        fraction,
        max_per_prompt,
        pass_threshold,
        dedupe,
        dedupe_key or token_hash,
    )
    restart_from_base = bool(restart_from_base)
    filter_groups = bool(filter_groups)

    max_refills = _check_positive_int(max_refills, "max_refills", minimum=0)
    if max_refills > _MAX_REFILLS:
        raise ValueError(f"max_refills must be <= {_MAX_REFILLS}, got {max_refills}")
    if generate_fn is not None and not callable(generate_fn):
        raise TypeError(f"generate_fn must be callable or None, got {type(generate_fn).__name__}")
    if generate_kwargs is not None and not isinstance(generate_kwargs, dict):
        raise TypeError(f"generate_kwargs must be a dict or None, got {type(generate_kwargs).__name__}")
    clash = sorted(RESERVED_GENERATE_KWARGS & set(generate_kwargs or {}))
    if clash:
        raise ValueError(f"generate_kwargs must not set {clash}: they are the tuner's own arguments")
    max_new_tokens = _check_positive_int(max_new_tokens, "max_new_tokens")
    temperature = _check_float(temperature, "temperature")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    top_k = None if top_k is None else _check_positive_int(top_k, "top_k")
    if eos_token_id is not None:
        eos_token_id = _check_positive_int(eos_token_id, "eos_token_id", minimum=0)
    generation = GenerationOptions(
        filter_groups,
        max_refills,
        generate_fn,
        dict(generate_kwargs or {}),
        max_new_tokens,
        temperature,
        top_k,
        eos_token_id,
        _check_positive_int(generation_batch_size, "generation_batch_size"),
    )

    if pad_token_id is None:
        pad_token_id = eos_token_id if eos_token_id is not None else 0
    pad_token_id = _check_positive_int(pad_token_id, "pad_token_id", minimum=0)
    lr = _check_float(lr, "lr")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    sft_epochs = _check_positive_int(sft_epochs, "sft_epochs", minimum=0)
    batch_size = _check_positive_int(batch_size, "batch_size")
    max_grad_norm = None if max_grad_norm is None else _check_float(max_grad_norm, "max_grad_norm")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")
    pairs: list[tuple[list[int], list[int]]] = []
    for i, pair in enumerate(base_data or []):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"base_data[{i}] must be a (prompt, completion) pair")
        pairs.append((_as_tokens(pair[0], f"base_data[{i}][0]"), _as_tokens(pair[1], f"base_data[{i}][1]")))
    training = TrainingOptions(
        restart_from_base, pad_token_id, lr, sft_epochs, batch_size, max_grad_norm, pairs
    )

    keep_records = bool(keep_records)
    pairs_per_prompt = _check_positive_int(pairs_per_prompt, "pairs_per_prompt", minimum=0)
    if decode is not None and not callable(decode):
        raise TypeError(f"decode must be callable or None, got {type(decode).__name__}")
    return chosen, generation, training, RecordOptions(keep_records, pairs_per_prompt, decode)
