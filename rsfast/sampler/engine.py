"""The generic rejection-sampling engine: ``rsfast.sample`` (the fused path is :mod:`.fused`).

A round draws m candidates and their log q (the fused ``propose`` kernel for
:mod:`rsfast.proposals`, torch for any ``torch.distributions`` object), asks the
user's ``log_target`` for log p, and runs ``accept_compact``, which appends the
accepted rows to the preallocated output at a device-side count. On CUDA a
round never synchronises with the host; the engine reads the count once per
batch of rounds sized from the acceptance seen so far. On the CPU rounds are
kept cache-sized so that the user's torch code runs on data in cache.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from .._checks import SamplingError
from .._random import check_generator, draw_seed
from ..ops.accept_compact import COUNT_SLOTS, accept_compact_into
from .args import _budget, _check_args, _Progress
from .fused import _fused_applies, _sample_fused
from .log_m import AUTO_PILOT_DRAWS, _auto_log_M
from .result import SampleResult, _warn_overweight
from .sources import LogTarget, ProposalLike, _log_p, _make_source

#: Hard bound on rounds of one call, whatever the other bounds.
MAX_ROUNDS = 1_000_000
# Rows per round: CPU rounds stay in cache (bytes of a row of x, log q, log p, flags, temporaries);
# CUDA rounds are large, the count is read once per batch of rounds.
_CPU_ROUND_BYTES = 1 << 22
_CPU_ROUND_ROWS = (1 << 12, 1 << 17)
_CUDA_ROUND_ROWS = (1 << 16, 1 << 22)
_MIN_ROUND_ROWS = 256
_OVERSHOOT = 1.1


def _round_rows(device: torch.device, row_bytes: int) -> int:
    if device.type == "cuda":
        return _CUDA_ROUND_ROWS[1]
    lo, hi = _CPU_ROUND_ROWS
    return max(lo, min(hi, _CPU_ROUND_BYTES // max(1, row_bytes + 16)))


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
    host = dict.fromkeys(COUNT_SLOTS, 0)
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
                    scratch = accept_compact_into(
                        x.contiguous(), lp, lq, log_M, seed, offset + 1, out, counts, max_ratio, scratch
                    )
                    offset += 2
                    plan -= m
                    used += m
                    rounds += 1
                    if not on_cuda:
                        break
                host = dict(zip(COUNT_SLOTS, counts.tolist()))  # one host synchronisation per batch
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
