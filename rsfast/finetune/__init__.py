"""Fine-tuning strategies built on rsfast's kernels, one module per idea:

- :mod:`.rft`: generate by a model, score, select, fine-tune on the accepted (RFT, best-of-n, RSO,
  RAFT, ReST-EM) — :class:`RejectionSamplingFineTuner`;
- :mod:`.proposal`: tune the proposal q toward the target p — :class:`ProposalTuner`;
- :mod:`.perturbation`: accept/reject parameter perturbations — :class:`PerturbationTuner`;
- :mod:`.batch`: accept training examples in a batch by a ratio — :class:`BatchRejection`, :func:`freeze`.
"""

from .batch import BatchRejection, Selection
from .freeze import freeze
from .perturbation import PerturbationStep, PerturbationTuner
from .proposal import ModeCollapseWarning, ProposalMetrics, ProposalTuner, TuningReport
from .rft import RejectionSamplingFineTuner, RoundStats, write_jsonl

__all__ = [
    "BatchRejection",
    "ModeCollapseWarning",
    "PerturbationStep",
    "PerturbationTuner",
    "ProposalMetrics",
    "ProposalTuner",
    "RejectionSamplingFineTuner",
    "RoundStats",
    "Selection",
    "TuningReport",
    "freeze",
    "write_jsonl",
]
