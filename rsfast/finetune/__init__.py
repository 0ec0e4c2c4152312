"""Fine-tuning strategies built on rsfast's kernels (see the design, section 1)."""

from .perturbation import PerturbationStep, PerturbationTuner  # noqa: F401
