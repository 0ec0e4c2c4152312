"""What :func:`rsfast.sample` reports: :class:`SampleResult`, and :class:`OverweightWarning` when the
envelope was wrong somewhere."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from torch import Tensor


class OverweightWarning(RuntimeWarning):
    """Some proposals had log p - log q > log M: the envelope is wrong there and samples are biased."""


@dataclass(repr=False)
class SampleResult:
    """What :func:`sample` returns.

    Attributes:
        samples: [n, *event_shape], iid from the normalised target (when ``num_overweight`` is 0).
        log_M: the envelope used, natural log.
        acceptance_rate: accepted / proposed over all rounds (an estimate of Z / M).
        num_proposals: candidates drawn (pilot draws of ``log_M="auto"`` not included).
        num_accepted: candidates accepted (may exceed n: the first n in order are kept).
        num_rounds: propose-evaluate-accept rounds.
        num_overweight: candidates with log p - log q > log M.
        num_nan: candidates whose log p was NaN (rejected).
        max_log_ratio: the largest log p - log q seen.
        setup_seconds: time spent choosing log M (0 when given).
        seconds: time spent sampling.
    """

    samples: Tensor
    log_M: float
    acceptance_rate: float
    num_proposals: int
    num_accepted: int
    num_rounds: int
    num_overweight: int
    num_nan: int
    max_log_ratio: float
    setup_seconds: float
    seconds: float

    def __repr__(self) -> str:
        s = self.samples
        return (
            f"SampleResult(samples=[{', '.join(map(str, s.shape))}] {str(s.dtype).replace('torch.', '')} "
            f"on {s.device}, log_M={self.log_M:.4g}, acceptance_rate={self.acceptance_rate:.4g}, "
            f"num_proposals={self.num_proposals:,}, num_rounds={self.num_rounds}, "
            f"num_overweight={self.num_overweight}, num_nan={self.num_nan}, "
            f"max_log_ratio={self.max_log_ratio:.4g}, seconds={self.seconds:.3g})"
        )


def _warn_overweight(over: int, used: int, log_M: float, max_log_ratio: float, stacklevel: int) -> None:
    """The OverweightWarning of ``on_overweight="warn"`` (stacklevel pointing at the caller of sample)."""
    warnings.warn(
        f"{over} of {used} proposals had log p - log q > log_M = {log_M:.6g} (largest "
        f"{max_log_ratio:.6g}): the envelope is wrong there and the samples are biased; pass "
        f"log_M >= {max_log_ratio:.6g}",
        OverweightWarning,
        stacklevel=stacklevel,
    )
