"""rsfast: fast exact rejection sampling for PyTorch on CPU and CUDA, and the rejection-sampling
fine-tuning strategies built on it (:mod:`rsfast.finetune`)."""

from __future__ import annotations

__version__ = "0.1.0"

from . import distributions, finetune, ops, proposals, select, targets, tokens  # noqa: E402
from ._native import build_info  # noqa: E402
from .compact_rows import accept_compact_rows  # noqa: E402
from .decoding import Generation, generate  # noqa: E402
from .ops import perturb_  # noqa: E402
from .sampler import (  # noqa: E402
    OverweightWarning,
    SampleResult,
    SamplingError,
    estimate_log_M,
    sample,
)

__all__ = [
    "__version__",
    "build_info",
    "ops",
    "distributions",
    "proposals",
    "targets",
    "select",
    "tokens",
    "generate",
    "Generation",
    "finetune",
    "sample",
    "estimate_log_M",
    "SampleResult",
    "SamplingError",
    "OverweightWarning",
    "accept_compact_rows",
    "perturb_",
]
