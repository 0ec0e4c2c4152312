"""rsfast: fast exact rejection sampling for PyTorch on CPU and CUDA."""

from __future__ import annotations

__version__ = "0.1.0"

from . import ops, proposals  # noqa: E402
from ._native import build_info  # noqa: E402
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
    "proposals",
    "sample",
    "estimate_log_M",
    "SampleResult",
    "SamplingError",
    "OverweightWarning",
]

from . import select  # noqa: E402

__all__ += ["select"]

from . import finetune  # noqa: E402

__all__ += ["finetune"]
