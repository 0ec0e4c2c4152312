"""Round statistics, pass@k and JSON Lines output."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor


@dataclass
class RoundStats:
    """Statistics of one round, over all ranks (sums all-reduced under torch.distributed).

    Attributes:
        round: round number, from 0.
        prompts: prompts generated for this round (refills included).
        samples_per_prompt: N.
        candidates: completions generated (prompts * N).
        mean_reward: mean reward over all candidates.
        pass_rate: fraction of candidates with reward >= ``pass_threshold``.
        pass_histogram: ``pass_histogram[c]`` = number of prompts with exactly c passing completions
            (length N + 1).
        pass_at_k: {k: unbiased pass@k estimate (Chen et al. 2021)} for k = 1, 2, 4, ..., N.
        groups_kept: prompts kept by the group filter (all prompts when it is off).
        groups_dropped: prompts dropped by the group filter.
        refills: extra generation passes made to replace dropped prompts.
        duplicates: candidates removed by dedupe (in kept groups).
        accepted: completions selected for fine-tuning.
        acceptance: accepted / candidates.
        accepted_reward: mean reward of the accepted completions (NaN when none).
        loss: mean next-token cross-entropy over the completion tokens of the SFT steps (NaN when none).
        sft_steps: optimizer steps taken.
        sft_tokens: completion tokens trained on (all epochs).
        generate_seconds: wall time of generating and scoring; seconds: of the whole round.
    """

    round: int
    prompts: int
    samples_per_prompt: int
    candidates: int
    mean_reward: float
    pass_rate: float
    pass_histogram: list[int]
    pass_at_k: dict[int, float]
    groups_kept: int
    groups_dropped: int
    refills: int
    duplicates: int
    accepted: int
    acceptance: float
    accepted_reward: float
    loss: float
    sft_steps: int
    sft_tokens: int
    generate_seconds: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (pass_at_k keys become strings)."""
        d = asdict(self)
        d["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        return d


def _pass_at_k(histogram: Sequence[int], n: int) -> dict[int, float]:
    prompts = sum(histogram)
    ks = sorted({min(2**e, n) for e in range(n.bit_length() + 1)})
    out = {}
    for k in ks:
        total = 0.0
        for c, count in enumerate(histogram):
            if count:
                # 1 - C(n - c, k) / C(n, k): probability that k of the n without replacement include a pass.
                total += count * (1.0 - (math.comb(n - c, k) / math.comb(n, k)))
        out[k] = total / prompts if prompts else float("nan")
    return out


def write_jsonl(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> int:
    """Write ``records`` (dicts of JSON-serialisable values; tensors become lists) as JSON Lines to
    ``path``; return the number of lines written."""
    if not isinstance(records, (list, tuple)):
        raise TypeError(f"records must be a list of dicts, got {type(records).__name__}")
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            if not isinstance(r, dict):
                raise TypeError(f"records must hold dicts, got {type(r).__name__}")
            f.write(json.dumps(r, default=_json_default) + "\n")
    return len(records)


def _json_default(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
