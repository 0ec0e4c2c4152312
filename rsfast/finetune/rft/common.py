"""What the RFT modules share: the selection rules, token hashing and argument checks."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any, Union

from torch import nn

from ...decoding.args import Tokens  # noqa: F401  (re-exported to the RFT modules)
from ...decoding.args import as_tokens as _as_tokens  # noqa: F401
from ...decoding.args import check_positive_int as _check_positive_int  # noqa: F401
from ...decoding.args import check_prompts as _check_prompts  # noqa: F401
from ...decoding.args import logits_of as _logits_of  # noqa: F401
from ...decoding.args import mix64 as _mix64  # noqa: F401

#: Selection rules of :class:`RejectionSamplingFineTuner` (``selection=``).
SELECTION_RULES = ("verifier", "best_of_n", "rso", "threshold", "top_fraction")

RewardFn = Callable[[list, list, Union[list, None]], Any]
GenerateFn = Callable[[nn.Module, list, int], Sequence[Sequence[Tokens]]]

# Most passes one round makes over fresh prompts (the first plus refills); a hard bound whatever
# max_refills says.
_MAX_REFILLS = 1000


def token_hash(tokens: Sequence[int]) -> int:
    """A stable 64-bit hash (as a signed int64) of a token sequence: the default dedupe key.

    BLAKE2b of the tokens as little-endian int64, so the same sequence gets the same key in every process
    (Python's ``hash`` of strings is salted per process)."""
    data = b"".join(int(t).to_bytes(8, "little", signed=True) for t in tokens)
    value = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return value - (1 << 64) if value >= 1 << 63 else value


def _check_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value
