"""Fine-tuning strategies built on rsfast's kernels (design §1): one module per idea."""

from .batch import BatchRejection, Selection
from .freeze import freeze
from .perturbation import PerturbationStep, PerturbationTuner

__all__ = [
    "BatchRejection",
    "PerturbationStep",
    "PerturbationTuner",
    "Selection",
    "freeze",
]
