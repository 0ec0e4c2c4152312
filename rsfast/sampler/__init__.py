"""The generic rejection-sampling engine, :func:`rsfast.sample`, in modules of one idea each:

* :mod:`.engine`: :func:`sample` and its generic path (rounds of propose, evaluate, ``accept_compact``);
* :mod:`.fused`: the fused path (a :class:`rsfast.targets.MixtureNormal` target, one kernel launch);
* :mod:`.log_m`: the envelope of ``log_M="auto"`` (:func:`estimate_log_M`);
* :mod:`.sources`: candidate sources (built-in proposals, ``torch.distributions``, modules);
* :mod:`.args`: argument checks, the proposal budget and the progress bar both paths share;
* :mod:`.result`: :class:`SampleResult` and :class:`OverweightWarning`.

Every name the single module ``rsfast.sampler`` had is still importable from here.
"""

# ruff: noqa: F401  (the package re-exports the names of its modules)
from __future__ import annotations

from .._checks import SamplingError
from .args import (
    DEFAULT_MIN_PROPOSALS,
    DEFAULT_PROPOSALS_PER_SAMPLE,
    _budget,
    _check_args,
    _Progress,
)
from .engine import (
    _CPU_ROUND_BYTES,
    _CPU_ROUND_ROWS,
    _CUDA_ROUND_ROWS,
    _MIN_ROUND_ROWS,
    _OVERSHOOT,
    MAX_ROUNDS,
    _round_rows,
    sample,
)
from .fused import _fused_applies, _sample_fused
from .log_m import (
    AUTO_ASCENT_STARTS,
    AUTO_ASCENT_STEPS,
    AUTO_LOG_MARGIN,
    AUTO_PILOT_DRAWS,
    _ascend,
    _auto_log_M,
    _ratio_dtype,
    estimate_log_M,
)
from .result import OverweightWarning, SampleResult, _warn_overweight
from .sources import (
    LogTarget,
    ProposalLike,
    _distribution_device,
    _KernelSource,
    _log_p,
    _make_source,
    _module_device,
    _ModuleSource,
    _Source,
    _TorchSource,
    draw_module,
    module_device,
)

__all__ = ["sample", "estimate_log_M", "SampleResult", "SamplingError", "OverweightWarning"]
