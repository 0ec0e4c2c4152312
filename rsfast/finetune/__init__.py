"""Fine-tuning strategies built on the rejection-sampling kernels."""

from .proposal import ModeCollapseWarning, ProposalMetrics, ProposalTuner, TuningReport  # noqa: F401
