"""The generic rejection-sampling engine: ``rsfast.sample``.

A round draws m candidates and their log q (the fused ``propose`` kernel for
:mod:`rsfast.proposals`, torch for any ``torch.distributions`` object), asks the
user's ``log_target`` for log p, and runs ``accept_compact``, which appends the
accepted rows to the preallocated output at a device-side count. On CUDA a
round never synchronises with the host; the engine reads the count once per
batch of rounds sized from the acceptance seen so far. On the CPU rounds are
kept cache-sized so that the user's torch code runs on data in cache.
"""

from __future__ import annotations

import abc
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import Tensor
from torch.distributions import Distribution

from . import _native, ops
from ._checks import SamplingError
from ._random import check_generator, draw_seed, seeded_global_rng
from .proposals import Proposal, Uniform

__all__ = ["sample", "estimate_log_M", "SampleResult", "SamplingError", "OverweightWarning"]

LogTarget = Callable[[Tensor], Tensor]
ProposalLike = Union[Proposal, Distribution]

#: ``log_M="auto"`` adds this to the largest log p - log q it finds (M grows by 10 %).
AUTO_LOG_MARGIN = math.log(1.1)
#: Pilot draws of ``log_M="auto"``.
AUTO_PILOT_DRAWS = 1 << 16
#: Starting points and Adam steps of the local maximisation of ``log_M="auto"``.
AUTO_ASCENT_STARTS = 16
AUTO_ASCENT_STEPS = 150
#: Default ``max_proposals`` is ``max(DEFAULT_MIN_PROPOSALS, DEFAULT_PROPOSALS_PER_SAMPLE * n)``.
DEFAULT_MIN_PROPOSALS = 10**8
DEFAULT_PROPOSALS_PER_SAMPLE = 1000
#: Hard bound on rounds of one call, whatever the other bounds.
MAX_ROUNDS = 1_000_000
# Rows per round: CPU rounds stay in cache (bytes of a row of x, log q, log p, flags, temporaries);
# CUDA rounds are large, the count is read once per batch of rounds.
_CPU_ROUND_BYTES = 1 << 22
_CPU_ROUND_ROWS = (1 << 12, 1 << 17)
_CUDA_ROUND_ROWS = (1 << 16, 1 << 22)
_MIN_ROUND_ROWS = 256
_OVERSHOOT = 1.1


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


# ---------------------------------------------------------------- candidate sources


class _Source(abc.ABC):
    """Draws (x [m, *event], log q [m]) for Philox (seed, offset) and scores log q differentiably."""

    device: torch.device

    @abc.abstractmethod
    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        """m candidates and their log q."""

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """log q at x [m, *event] -> [m], differentiable."""


class _KernelSource(_Source):
    """A built-in proposal: the native propose kernel, derived parameters computed once per call."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.device = proposal.device
        self.derived = ops.derived_params(proposal.kind, proposal.params())

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        p = self.proposal
        x = torch.empty((m, p.event_shape[0]), dtype=p.dtype, device=self.device)
        lq = torch.empty((m,), dtype=p.dtype, device=self.device)
        if m:
            _native.propose_into(p.kind, self.derived, m, seed, offset, x, lq)
        return x, lq

    def log_prob(self, x: Tensor) -> Tensor:
        return self.proposal.log_prob(x)


class _TorchSource(_Source):
    """Any torch.distributions object; its batch dims count as event dims of a product proposal."""

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self.device = _distribution_device(dist)

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        with seeded_global_rng(self.device, (seed ^ (offset * 0x9E3779B97F4A7C15)) & (2**63 - 1)):
            x = self.dist.sample((m,))
        return x, self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        lq = self.dist.log_prob(x)
        return lq.reshape(lq.shape[0], -1).sum(1) if lq.dim() > 1 else lq


class _ModuleSource(_TorchSource):
    """Any other object with ``log_prob`` and ``sample`` or ``rsample`` (a normalizing-flow module, say):
    drawn under no_grad with the global RNG seeded from (seed, offset), see :func:`draw_module`."""

    def __init__(self, module: Any) -> None:
        self.dist = module
        self.device = module_device(module)

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        with (
            torch.no_grad(),
            seeded_global_rng(self.device, (seed ^ (offset * 0x9E3779B97F4A7C15)) & (2**63 - 1)),
        ):
            x = draw_module(self.dist, m)
            return x, self.log_prob(x)


def draw_module(module: Any, m: int) -> Tensor:
    """m draws [m, *event] from a generic proposal with the global RNG: ``sample((m,))`` (or ``rsample``
    when it has no ``sample``), torch.distributions style; falls back to ``sample(m)`` and takes the
    first element of a returned tuple (normflows' ``sample(num_samples) -> (x, log_q)``)."""
    fn = getattr(module, "sample", None) or module.rsample
    try:
        x = fn(torch.Size((m,)))
    except TypeError:
        x = fn(m)
    if isinstance(x, (tuple, list)):
        x = x[0]
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] != m:
        raise ValueError(f"proposal.sample must return [m, *event] draws; for m = {m} it returned {x!r:.80}")
    return x


def module_device(module: Any) -> torch.device:
    """The device of a module's first parameter or buffer (or of the tensors in its attributes)."""
    for attr in ("parameters", "buffers"):
        for t in getattr(module, attr, lambda: ())():
            return t.device
    return _distribution_device(module)


_module_device = module_device  # the former private name


def _make_source(proposal: Any) -> _Source:
    if isinstance(proposal, Proposal):
        return _KernelSource(proposal)
    if isinstance(proposal, Distribution):
        return _TorchSource(proposal)
    if callable(getattr(proposal, "log_prob", None)) and (
        callable(getattr(proposal, "sample", None)) or callable(getattr(proposal, "rsample", None))
    ):
        return _ModuleSource(proposal)
    raise TypeError(
        "proposal must be an rsfast.proposals object (Normal, Uniform, MixtureNormal), a "
        "torch.distributions.Distribution, or a module with log_prob and sample/rsample, got "
        f"{type(proposal).__name__}"
    )


def _distribution_device(dist: Distribution) -> torch.device:
    """The device of the first tensor parameter (the CPU when it has none)."""
    for value in vars(dist).values():
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


def _log_p(log_target: LogTarget, x: Tensor, dtype: torch.dtype) -> Tensor:
    """log_target(x) checked to be a [m] floating tensor on x's device, cast to ``dtype``."""
    lp = log_target(x)
    m = x.shape[0]
    if not isinstance(lp, Tensor):
        raise TypeError(f"log_target must return a Tensor, got {type(lp).__name__}")
    if lp.shape != (m,):
        raise ValueError(
            f"log_target must map x [m, *event] to [m]; for x of shape {tuple(x.shape)} it returned "
            f"shape {tuple(lp.shape)}"
        )
    if lp.device != x.device:
        raise ValueError(f"log_target returned a tensor on {lp.device} for x on {x.device}")
    if not lp.is_floating_point():
        raise TypeError(f"log_target must return a floating tensor, got {lp.dtype}")
    return (lp if lp.dtype == dtype else lp.to(dtype)).contiguous()


# ---------------------------------------------------------------- log M


def _ratio_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _auto_log_M(
    log_target: LogTarget, source: _Source, seed: int, offset: int, pilot: int
) -> tuple[float, float | None]:
    """(log M, estimated acceptance) from pilot draws and a local ascent; see :func:`estimate_log_M`."""
    x, lq = source.draw(pilot, seed, offset)
    with torch.no_grad():
        lp = _log_p(log_target, x, _ratio_dtype(lq.dtype))
    if bool(torch.isposinf(lp).any()):
        raise ValueError("log_target returned +inf; a log density must be finite or -inf")
    w = lp.double() - lq.double()
    w = torch.where(torch.isnan(w), torch.full_like(w, -math.inf), w)
    finite = torch.isfinite(w)
    if not bool(finite.any()):
        raise SamplingError(
            f"log_target is -inf or NaN at all {pilot} pilot draws: the proposal misses the target's support",
            0,
            pilot,
        )
    best = float(w[finite].max())
    if x.is_floating_point():
        best = max(best, _ascend(log_target, source, x, w, finite))
    log_M = best + AUTO_LOG_MARGIN
    acc = float(torch.exp(w - log_M).clamp(max=1).mean())
    return log_M, (acc if acc > 0 else None)


def _ascend(log_target: LogTarget, source: _Source, x: Tensor, w: Tensor, finite: Tensor) -> float:
    """Largest finite log p - log q found by Adam from the best pilot points (-inf if none or if the
    target is not differentiable)."""
    k = min(AUTO_ASCENT_STARTS, int(finite.sum()))
    start = x[torch.topk(w, k).indices].detach()
    spread = x[finite].std(0) if int(finite.sum()) > 1 else torch.ones_like(x[0])
    spread = torch.nan_to_num(spread, nan=1.0).clamp_min(1e-6)
    box = (
        source.proposal
        if isinstance(source, _KernelSource) and isinstance(source.proposal, Uniform)
        else None
    )
    y = torch.zeros_like(start, requires_grad=True)
    opt = torch.optim.Adam([y], lr=0.05)
    best = -math.inf
    try:
        with torch.enable_grad():
            for _ in range(AUTO_ASCENT_STEPS):
                xs = start + spread * y
                if box is not None:
                    xs = torch.maximum(torch.minimum(xs, box.high), box.low)
                f = log_target(xs).to(torch.float64) - source.log_prob(xs).to(torch.float64)
                ok = torch.isfinite(f)
                if not bool(ok.any()):
                    break
                best = max(best, float(f.detach()[ok].max()))
                # autograd.grad, not backward(): a trainable proposal's parameters collect no gradient.
                (g,) = torch.autograd.grad(
                    -torch.where(ok, f, torch.zeros_like(f)).sum(), y, allow_unused=True
                )
                if g is None:
                    break
                y.grad = g.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
                opt.step()
    except (RuntimeError, TypeError):
        pass  # not differentiable: the pilot maximum stands
    return best


def estimate_log_M(
    log_target: LogTarget,
    proposal: ProposalLike,
    *,
    generator: torch.Generator | None = None,
    pilot: int = AUTO_PILOT_DRAWS,
) -> float:
    """The envelope ``log_M="auto"`` uses, natural log.

    Draws ``pilot`` candidates from the proposal, takes the largest finite
    ``w = log p - log q`` among them, then runs Adam (``AUTO_ASCENT_STEPS`` steps,
    learning rate 0.05 in units of the pilot standard deviation per coordinate,
    clamped to the box of a Uniform proposal) on ``log p - log q`` from the
    ``AUTO_ASCENT_STARTS`` best pilot points, and returns the largest value seen
    plus ``AUTO_LOG_MARGIN`` (log 1.1). A target that autograd cannot
    differentiate keeps the pilot maximum. The estimate is a local maximum: a
    mode the pilot never visits is missed, which :func:`sample` then counts as
    overweight proposals.
    """
    if isinstance(pilot, bool) or not isinstance(pilot, int):
        raise TypeError(f"pilot must be an int, got {type(pilot).__name__}")
    if pilot < 1:
        raise ValueError(f"pilot must be >= 1, got {pilot}")
    if not callable(log_target):
        raise TypeError(f"log_target must be callable [m, *event] -> [m], got {type(log_target).__name__}")
    source = _make_source(proposal)
    check_generator(generator, source.device)
    return _auto_log_M(log_target, source, draw_seed(generator), 0, pilot)[0]


# ---------------------------------------------------------------- the engine


def _check_args(
    log_target: Any, n: Any, log_M: Any, max_proposals: Any, on_overweight: Any, progress: Any
) -> None:
    if not callable(log_target):
        raise TypeError(f"log_target must be callable [m, *event] -> [m], got {type(log_target).__name__}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if isinstance(log_M, str):
        if log_M != "auto":
            raise ValueError(f'log_M must be a float or "auto", got {log_M!r}')
    elif isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
        raise TypeError(f'log_M must be a float or "auto", got {type(log_M).__name__}')
    elif not math.isfinite(log_M):
        raise ValueError(f"log_M must be finite, got {log_M}")
    if max_proposals is not None and (
        isinstance(max_proposals, bool) or not isinstance(max_proposals, int) or max_proposals <= 0
    ):
        raise ValueError(f"max_proposals must be a positive int or None, got {max_proposals!r}")
    if on_overweight not in ("warn", "raise", "ignore"):
        raise ValueError(f'on_overweight must be "warn", "raise" or "ignore", got {on_overweight!r}')
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, got {type(progress).__name__}")


def _round_rows(device: torch.device, row_bytes: int) -> int:
    if device.type == "cuda":
        return _CUDA_ROUND_ROWS[1]
    lo, hi = _CPU_ROUND_ROWS
    return max(lo, min(hi, _CPU_ROUND_BYTES // max(1, row_bytes + 16)))


class _Progress:
    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                warnings.warn("progress=True needs tqdm (pip install tqdm); no bar shown", stacklevel=3)
            else:
                self.bar = tqdm(total=total, unit="samples", desc="rsfast.sample")

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(min(done, self.bar.total) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sample(
    log_target: LogTarget,
    proposal: ProposalLike,
    n: int,
    *,
    log_M: float | str = "auto",
    generator: torch.Generator | None = None,
    max_proposals: int | None = None,
    on_overweight: str = "warn",
    progress: bool = False,
    fused: bool = True,
) -> SampleResult:
    """Draw ``n`` iid samples of the normalised target exp(log_target) by rejection from ``proposal``.

    Args:
        log_target: unnormalised log density written in torch, x [m, *event] -> [m]. NaN counts
            as rejection (reported as ``num_nan``); +inf raises ValueError.
        proposal: an :mod:`rsfast.proposals` object (fused native propose kernel) or any
            ``torch.distributions.Distribution`` (drawn and scored in torch; its batch dims are
            event dims of a product proposal, log_prob summed over them).
        n: number of samples, >= 0.
        log_M: log of the envelope M with p <= M q (exact if you know it), or ``"auto"``:
            see :func:`estimate_log_M`.
        generator: torch.Generator on the proposal's device; one seed is drawn from it, every
            random number of the call is then a function of that seed.
        max_proposals: bound on candidates drawn; default
            ``max(10**8, 1000 * n)``. Past it :class:`SamplingError` is raised.
        on_overweight: what to do when some candidate has log p - log q > log M (the envelope is
            wrong and the samples are biased there): ``"warn"`` (:class:`OverweightWarning`),
            ``"raise"`` (:class:`SamplingError`) or ``"ignore"``.
        progress: show a tqdm bar (needs tqdm).
        fused: with an :class:`rsfast.targets.MixtureNormal` log_target and an :mod:`rsfast.proposals`
            proposal of the same dtype, device and dimension, run the fused kernel
            (:func:`rsfast.ops.fused_sample`: propose, evaluate, accept in one launch; same law,
            other random streams). ``False`` forces the generic path.

    Returns:
        :class:`SampleResult` with ``samples`` [n, *event] on the proposal's device.
    """
    _check_args(log_target, n, log_M, max_proposals, on_overweight, progress)
    # Fused path: a built-in target with a built-in proposal runs in one kernel launch.
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be a bool, got {type(fused).__name__}")
    if fused and _fused_applies(log_target, proposal):
        args = (n, log_M, generator, max_proposals, on_overweight, progress)
        return _sample_fused(log_target, proposal, *args)
    source = _make_source(proposal)
    device = source.device
    check_generator(generator, device)
    seed = draw_seed(generator)
    offset = 0
    budget = _budget(n, max_proposals)

    t0 = time.perf_counter()
    acc_est: float | None = None
    if log_M == "auto":
        log_M, acc_est = _auto_log_M(log_target, source, seed, offset, AUTO_PILOT_DRAWS)
        offset += 1
    log_M = float(log_M)
    t1 = time.perf_counter()

    counts = torch.zeros(4, dtype=torch.int64, device=device)
    max_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=device)
    out: Tensor | None = None
    scratch: Tensor | None = None
    used = rounds = accepted = 0
    host = dict.fromkeys(_native.COUNT_SLOTS, 0)
    on_cuda = device.type == "cuda"
    cap = _round_rows(device, 8)  # rows per round; refined once the row size is known
    bar = _Progress(progress, n)
    try:
        with torch.no_grad():
            while accepted < n:
                remaining_budget = budget - used
                if remaining_budget <= 0 or rounds >= MAX_ROUNDS:
                    raise SamplingError(
                        f"stopped after {used:,} proposals and {rounds} rounds with {accepted:,} of {n:,} "
                        f"samples (acceptance {accepted / max(used, 1):.3g}); raise max_proposals, improve "
                        "the proposal or lower log_M",
                        accepted,
                        used,
                    )
                need = n - accepted
                if acc_est:
                    plan = int(need / acc_est * _OVERSHOOT) + 64
                else:  # nothing accepted yet: grow geometrically
                    plan = max(2 * used, 4 * need, _MIN_ROUND_ROWS)
                plan = min(max(plan, _MIN_ROUND_ROWS), remaining_budget)
                # CUDA: the whole plan without reading the count; CPU: one cache-sized round.
                while plan > 0 and rounds < MAX_ROUNDS:
                    m = min(plan, cap)
                    x, lq = source.draw(m, seed, offset)
                    lp = _log_p(log_target, x, lq.dtype)
                    if out is None:
                        out = x.new_empty((n, *x.shape[1:]))
                        cap = _round_rows(device, x[0].numel() * x.element_size())
                    # The kernel behind ops.accept_compact, called directly: shapes are right by
                    # construction, and the scratch is reused across rounds.
                    scratch = _native.accept_compact_into(
                        x.contiguous(), lp, lq, log_M, seed, offset + 1, out, counts, max_ratio, scratch
                    )
                    offset += 2
                    plan -= m
                    used += m
                    rounds += 1
                    if not on_cuda:
                        break
                host = dict(zip(_native.COUNT_SLOTS, counts.tolist()))  # one host synchronisation per batch
                accepted = host["accepted"]
                bar.update(accepted)
                if host["posinf"]:
                    raise ValueError(
                        f"log_target returned +inf for {host['posinf']} candidates; a log density "
                        "must be finite or -inf"
                    )
                if host["overweight"] and on_overweight == "raise":
                    raise SamplingError(
                        f"{host['overweight']} proposals had log p - log q > log_M = {log_M:.6g} (largest "
                        f"{float(max_ratio):.6g}): the envelope is wrong; raise log_M",
                        accepted,
                        used,
                    )
                # Nothing accepted yet: forget the pilot's estimate and grow rounds geometrically.
                acc_est = accepted / used if accepted else None
    finally:
        bar.close()
    if out is None:  # n == 0
        x, _ = source.draw(0, seed, offset)
        out = x.new_empty((0, *x.shape[1:]))
    t2 = time.perf_counter()
    max_log_ratio = float(max_ratio)
    if host["overweight"] and on_overweight == "warn":
        _warn_overweight(host["overweight"], used, log_M, max_log_ratio, stacklevel=3)
    return SampleResult(
        samples=out,
        log_M=log_M,
        acceptance_rate=host["accepted"] / used if used else 0.0,
        num_proposals=used,
        num_accepted=host["accepted"],
        num_rounds=rounds,
        num_overweight=host["overweight"],
        num_nan=host["nan"],
        max_log_ratio=max_log_ratio,
        setup_seconds=t1 - t0,
        seconds=t2 - t1,
    )


def _budget(n: int, max_proposals: int | None) -> int:
    """The proposal bound of a call: ``max_proposals``, else max(10**8, 1000 n)."""
    if max_proposals is not None:
        return max_proposals
    return max(DEFAULT_MIN_PROPOSALS, DEFAULT_PROPOSALS_PER_SAMPLE * n)


def _warn_overweight(over: int, used: int, log_M: float, max_log_ratio: float, stacklevel: int) -> None:
    """The OverweightWarning of ``on_overweight="warn"`` (stacklevel pointing at the caller of sample)."""
    warnings.warn(
        f"{over} of {used} proposals had log p - log q > log_M = {log_M:.6g} (largest "
        f"{max_log_ratio:.6g}): the envelope is wrong there and the samples are biased; pass "
        f"log_M >= {max_log_ratio:.6g}",
        OverweightWarning,
        stacklevel=stacklevel,
    )


# ---------------------------------------------------------------- fused path (rsfast.targets)


def _fused_applies(log_target: Any, proposal: Any) -> bool:
    """True for an rsfast.targets.MixtureNormal with a built-in proposal of its dtype, device and D."""
    from .targets import MixtureNormal as MixtureTarget

    return (
        isinstance(log_target, MixtureTarget)
        and isinstance(proposal, Proposal)
        and proposal.dtype == log_target.dtype
        and proposal.device == log_target.device
        and proposal.event_shape == (log_target.dim,)
    )


def _sample_fused(
    target: Any,
    proposal: Proposal,
    n: int,
    log_M: float | str,
    generator: torch.Generator | None,
    max_proposals: int | None,
    on_overweight: str,
    progress: bool = False,
) -> SampleResult:
    """:func:`sample` by the fused kernel (one launch, one host synchronisation to read the counts; a
    progress bar jumps to the end when the launch is done)."""
    device = proposal.device
    check_generator(generator, device)
    seed = draw_seed(generator)
    offset = 0
    budget = _budget(n, max_proposals)
    t0 = time.perf_counter()
    if log_M == "auto":
        log_M, _ = _auto_log_M(target, _KernelSource(proposal), seed, offset, AUTO_PILOT_DRAWS)
        offset += 1
    log_M = float(log_M)
    t1 = time.perf_counter()
    kind = proposal.kind
    out = torch.empty((n, target.dim), dtype=proposal.dtype, device=device)
    counts = torch.zeros(len(_native.FUSED_COUNT_SLOTS), dtype=torch.int64, device=device)
    max_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=device)
    if n:
        with torch.no_grad():
            q = ops.derived_params(kind, proposal.params())
            q_inv = (1 / q[1]).contiguous() if kind == "mixture_normal" else None
            p = ops.fused_target_params(target.logits, target.loc, target.scale)
            _native.fused_sample_into(
                kind, q, q_inv, p, n, log_M, seed, offset, budget, out, counts, max_ratio
            )  # fmt: skip
    c = dict(zip(_native.FUSED_COUNT_SLOTS, counts.tolist()))
    accepted, nan, over, posinf = c["accepted"], c["nan"], c["overweight"], c["posinf"]
    used, stopped = c["proposals"], c["stopped"]
    t2 = time.perf_counter()
    bar = _Progress(progress, n)
    bar.update(min(accepted, n))
    bar.close()
    if stopped or used > budget:
        raise SamplingError(
            f"fused kernel stopped after about {used:,} proposals with {accepted:,} of {n:,} samples "
            f"(acceptance {accepted / max(used, 1):.3g}); raise max_proposals, improve the proposal or "
            "lower log_M",
            accepted,
            used,
        )
    if posinf:
        raise ValueError(f"the target's log density was +inf for {posinf} candidates")
    max_log_ratio = float(max_ratio)
    if over and on_overweight == "raise":
        raise SamplingError(
            f"{over} proposals had log p - log q > log_M = {log_M:.6g} (largest {max_log_ratio:.6g}): "
            "the envelope is wrong; raise log_M",
            accepted,
            used,
        )
    if over and on_overweight == "warn":
        _warn_overweight(over, used, log_M, max_log_ratio, stacklevel=4)
    return SampleResult(
        samples=out,
        log_M=log_M,
        acceptance_rate=accepted / used if used else 0.0,
        num_proposals=used,
        num_accepted=accepted,
        num_rounds=1 if n else 0,
        num_overweight=over,
        num_nan=nan,
        max_log_ratio=max_log_ratio,
        setup_seconds=t1 - t0,
        seconds=t2 - t1,
    )
