"""Fine-tuning strategies built on rsfast's kernels (design §1): one module per idea."""

from .batch import BatchRejection, Selection
from .freeze import freeze
from .perturbation import PerturbationStep, PerturbationTuner
from .proposal import ModeCollapseWarning, ProposalMetrics, ProposalTuner, TuningReport

__all__ = [
    "BatchRejection",
    "ModeCollapseWarning",
    "PerturbationStep",
    "PerturbationTuner",
    "ProposalMetrics",
    "ProposalTuner",
    "Selection",
    "TuningReport",
    "freeze",
]
