"""What both paths of :func:`rsfast.sample` share about a call: the argument checks, the proposal
budget and the progress bar."""

from __future__ import annotations

import math
import warnings
from typing import Any

#: Default ``max_proposals`` is ``max(DEFAULT_MIN_PROPOSALS, DEFAULT_PROPOSALS_PER_SAMPLE * n)``.
DEFAULT_MIN_PROPOSALS = 10**8
DEFAULT_PROPOSALS_PER_SAMPLE = 1000


def _check_args(
    log_target: Any, n: Any, log_M: Any, max_proposals: Any, on_overweight: Any, progress: Any
) -> None:
    if not callable(log_target):
        raise TypeError(f"log_target must be callable [m, *event] -> [m], got {type(log_target).__name__}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if isinstance(log_M, str):
        if log_M != "auto":
            raise ValueError(f'log_M must be a float or "auto", got {log_M!r}')
    elif isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f'log_M must be a float or "auto", got {type(log_M).__name__}')
    elif not math.isfinite(log_M):
        raise ValueError(f"log_M must be finite, got {log_M}")
    if max_proposals is not None and (
        isinstance(max_proposals, bool) or not isinstance(max_proposals, int) or max_proposals <= 0
    ):
        raise ValueError(f"max_proposals must be a positive int or None, got {max_proposals!r}")
    if on_overweight not in ("warn", "raise", "ignore"):
        raise ValueError(f'on_overweight must be "warn", "raise" or "ignore", got {on_overweight!r}')
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")


def _budget(n: int, max_proposals: int | None) -> int:
    """The proposal bound of a call: ``max_proposals``, else max(10**8, 1000 n)."""
    if max_proposals is not None:
        return max_proposals
    return max(DEFAULT_MIN_PROPOSALS, DEFAULT_PROPOSALS_PER_SAMPLE * n)


class _Progress:
    """A tqdm bar of the samples accepted so far (nothing when disabled or without tqdm)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                warnings.warn("progress=True needs tqdm (pip install tqdm); no bar shown", stacklevel=3)
            else:
                self.bar = tqdm(total=total, unit="samples", desc="rsfast.sample")

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(min(done, self.bar.total) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
