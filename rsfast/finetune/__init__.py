"""Fine-tuning strategies built on rsfast's rejection-sampling kernels."""

from .rft import RejectionSamplingFineTuner, RoundStats, write_jsonl  # noqa: F401
