"""Group selection for rejection-sampling fine-tuning: best-of-n, RSO, threshold, top fraction, group
filters and dedupe, on many groups at once.

Groups come in two layouts:

* dense: ``rewards`` [P, N], P groups (prompts) of N candidates each;
* ragged: ``rewards`` [M] flat and ``offsets`` int64 [P + 1] (nondecreasing, ``offsets[0] == 0``,
  ``offsets[-1] == M``): group g is ``rewards[offsets[g]:offsets[g + 1]]``.

Candidate indices returned per group ([P, k] results) are positions within the group; "flat" indices index
the flattened rewards (``rewards.reshape(-1)``). Where a ragged group has fewer than k candidates its row is
padded with -1.

Rewards are float32 or float64; float16, bfloat16, bool (a verifier's verdict) and 8/16-bit integers are
widened to float32 and wider integers to float64 (exactly, up to 2**53). NaN rewards raise
ValueError naming ``rewards`` (a reward model that returns NaN is broken; silently ranking or dropping such
candidates would hide it); -inf and +inf are ordinary values (see :func:`rso` for what they do there).
Checking for NaN and validating ``offsets`` reads the data once, which on CUDA costs one host
synchronisation per call. Results are deterministic: the same on any thread count, and for :func:`rso` a
pure function of the rewards and the seed drawn from ``generator``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import ops
from ._random import check_generator, draw_seed

__all__ = ["best_of_n", "rso", "threshold", "top_fraction", "filter_groups", "dedupe"]

_FLOATS = (torch.float32, torch.float64)
_WIDEN = (torch.float16, torch.bfloat16)
_SMALL_INTS = (torch.bool, torch.uint8, torch.int8, torch.int16)


def _check_real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _check_groups(
    values: object, offsets: object, name: str, *, floating: bool = True, flat_ok: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Type checks of dense [P, N] or ragged [M] + offsets values (shapes, values and NaN are checked by
    the op); float16/bfloat16 widened to float32, bool and integer metrics to int64."""
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(values).__name__}")
    if offsets is not None and not isinstance(offsets, Tensor):
        raise TypeError(f"offsets must be a Tensor or None, got {type(offsets).__name__}")
    values = values.detach()  # selection is not differentiable; rewards from a model may carry grad
    if values.is_complex():
        raise ValueError(f"{name} must be real or bool, got {values.dtype}")
    if values.dtype in _WIDEN:
        values = values.float()
    elif not values.is_floating_point():
        if not floating:
            values = values.to(torch.int64)  # metrics compare exactly as integers
        elif values.dtype in _SMALL_INTS:
            values = values.float()  # exact
        else:
            values = values.double()  # exact up to 2**53
    if floating and values.dtype not in _FLOATS:
        raise ValueError(f"{name} must be a real or bool tensor, got {values.dtype}")
    if offsets is None and not (values.dim() == 2 or (flat_ok and values.dim() == 1)):
        raise ValueError(f"{name} must be [P, N] (or flat [M] with offsets), got shape {tuple(values.shape)}")
    return values, offsets


def best_of_n(rewards: Tensor, k: int = 1, *, offsets: Tensor | None = None) -> Tensor:
    """The k best candidates of every group (Llama 2 / RAFT best-of-K).

    Args:
        rewards: [P, N] dense, or flat [M] with ``offsets`` [P + 1] (ragged groups).
        k: candidates per group, 1 <= k (dense: k <= N).

    Returns:
        int64 [P, k]: within-group indices by reward descending, equal rewards in index order (lower
        index first). Ragged groups with fewer than k candidates are padded with -1.
    """
    k = _check_int(k, "k")
    rewards, offsets = _check_groups(rewards, offsets, "rewards")
    return ops.select_best_of_n(rewards, k, offsets)


def rso(
    rewards: Tensor,
    k: int,
    beta: float,
    *,
    offsets: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Statistical rejection sampling (RSO, Liu et al., ICLR 2024): k candidates per group drawn without
    replacement toward pi* proportional to pi_sft * exp(r / beta).

    The law is the paper's algorithm, per group: until k are accepted, r_max = the largest reward among the
    candidates not yet accepted; visit those candidates in index order and accept each with probability
    exp((r - r_max) / beta), ending the round as soon as k are accepted. A candidate whose reward equals r_max
    is always accepted, so there are at most k rounds. -inf rewards are accepted only once every remaining
    candidate is -inf; +inf rewards are accepted first (probability 1), the others of that round never.

    Args:
        rewards: [P, N] dense, or flat [M] with ``offsets`` [P + 1].
        k: candidates to accept per group, 1 <= k (dense: k <= N).
        beta: temperature, finite and > 0.
        generator: draws the Philox seed (the default CPU generator when None). Group g's uniforms are a pure
            function of (seed, g, round, candidate): the result does not depend on the thread count or
            the device.

    Returns:
        int64 [P, k]: within-group indices in acceptance order (round by round, index order within a round);
        ragged groups with fewer than k candidates are padded with -1.
    """
    k = _check_int(k, "k")
    beta = _check_real(beta, "beta")
    rewards, offsets = _check_groups(rewards, offsets, "rewards")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    check_generator(generator, rewards.device)
    seed = draw_seed(generator)
    return ops.select_rso(rewards, k, beta, seed, 0, offsets)


def threshold(
    rewards: Tensor,
    min_reward: float,
    *,
    max_per_group: int | None = None,
    offsets: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Candidates whose reward is >= ``min_reward`` (RFT / ReST-EM filtering by a verifier or a reward).

    Args:
        rewards: [P, N] dense, or flat [M] with ``offsets`` [P + 1].
        min_reward: the bar (not NaN; -inf keeps everything).
        max_per_group: keep at most this many per group (the first ones in index order); None: no cap.

    Returns:
        (flat_indices int64 [S] into ``rewards.reshape(-1)``, in increasing order; counts int64 [P], the
        number kept per group, so that ``flat_indices`` splits by ``counts``).
    """
    min_reward = _check_real(min_reward, "min_reward")
    if max_per_group is not None:
        max_per_group = _check_int(max_per_group, "max_per_group")
    rewards, offsets = _check_groups(rewards, offsets, "rewards")
    if math.isnan(min_reward):
        raise ValueError("min_reward must not be NaN")
    if max_per_group is not None and max_per_group < 1:
        raise ValueError(f"max_per_group must be >= 1 or None, got {max_per_group}")
    return ops.select_threshold(rewards, min_reward, -1 if max_per_group is None else max_per_group, offsets)


def top_fraction(rewards: Tensor, fraction: float, *, offsets: Tensor | None = None) -> Tensor:
    """RAFT's global rule: the ceil(fraction * M) highest rewards of the whole batch (M = all candidates of
    all groups; equal rewards to the lower flat index).

    ``fraction * M`` within 1e-9 (relative) of an integer counts as that integer (0.3 of 10 is 3 rows).
    ``offsets`` only validates the ragged layout: the rule ignores group boundaries.

    Args:
        rewards: [P, N], flat [M] (one batch), or flat [M] with ``offsets`` [P + 1].
        fraction: in (0, 1].

    Returns:
        int64 flat indices into ``rewards.reshape(-1)``, in increasing index order (not by reward).
    """
    fraction = _check_real(fraction, "fraction")
    rewards, offsets = _check_groups(rewards, offsets, "rewards", flat_ok=True)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if offsets is not None:  # the rule ignores the groups; only their layout is checked
        ops.check_layout(rewards, offsets, "rewards")
        ops.check_layout_data(rewards, offsets, "rewards")
    return ops.select_top_fraction(rewards, ops.top_fraction_count(fraction, rewards.numel()))


def filter_groups(metric: Tensor, *, offsets: Tensor | None = None) -> Tensor:
    """DAPO-style dynamic-sampling filter: which groups carry a learning signal.

    Args:
        metric: [P, N] dense or flat [M] with ``offsets``: any real or bool dtype (e.g. verifier accuracy);
            floating metrics must not be NaN.

    Returns:
        bool [P]: True where the group's metric takes at least two distinct values; groups of 0 or 1
        candidates are False (no contrast to learn from). -0.0 equals 0.0.
    """
    metric, offsets = _check_groups(metric, offsets, "metric", floating=False)
    return ops.select_filter_groups(metric, offsets)


def dedupe(keys: Tensor, groups: Tensor) -> Tensor:
    """Keep the first occurrence of each (group, key) pair (RFT's dedupe of equal completions per prompt).

    Args:
        keys: int64 [M], e.g. hashes of the completions.
        groups: int64 [M], the group (prompt) of each element; any values, in any order.

    Returns:
        bool [M]: True where no earlier element has the same (group, key).
    """
    for name, t in (("keys", keys), ("groups", groups)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(t).__name__}")
    return ops.select_dedupe(keys, groups)
