"""Benchmark cases of rsfast, shared by ``rsfast bench`` and ``benchmarks/`` (pytest-benchmark).

A :class:`BenchCase` names a workload; ``case.setup(quick, device)`` builds its
inputs once and returns a :class:`Prepared`: one zero-argument callable per
method (``"rsfast"`` first, then its baselines), the number of items (samples or
rows) one call of each method produces, the bytes one call moves (for GB/s) and
a sanity check of a call's output. Nothing is timed in ``setup``.

Cases:

* ``sample_bimodal_2d`` (the headline): n exact samples of a two-mode target on
  R^2 (modes at +-(2, 2), sd 0.5) from ``Normal(0, 3)``, with a fixed, exact
  envelope (acceptance ~3.5 %). Methods: ``rsfast`` (:func:`rsfast.sample`,
  generic path: the target is a torch function), ``torch_loop``
  (:func:`rsfast.baselines.sample_torch_loop`) and ``per_sample``
  (:func:`rsfast.baselines.sample_per_sample`, run on a small n because it is
  slow; compare it by throughput, not by time per call).
* ``accept_compact``: :func:`rsfast.ops.accept_compact` on 1M rows of the same
  problem (D=2, float32, ~3.5 % accepted) vs torch (``torch.rand``, log, mask,
  boolean index, copy into a preallocated output).
* ``propose_normal``: :func:`rsfast.ops.propose` ("normal", 1M rows, D=2) vs
  torch (``loc + scale * torch.randn`` and log q from z).
* ``perturb`` / ``perturb_bf16``: :func:`rsfast.perturb_` on 16M float32 / bfloat16 elements
  (quick: 4M) vs ``p.add_(torch.randn_like(p, generator=g), alpha=s)``.
* ``accept_compact_rows``: :func:`rsfast.ops.accept_compact_rows` on a training
  batch of 1M rows (features [B, 16] float32, labels [B] int64, weights [B]
  float32; ~62 % kept) vs torch (``torch.rand``, log, mask, ``t[keep]`` per tensor).

:func:`run_all` times every (case, method) in one run: one warm-up call, then
the median of ``repeats`` calls (3 quick, 5 full) with :func:`time.perf_counter`
(``torch.cuda.synchronize`` around each call on CUDA). Throughput is items per
second; ``rsfast_speedup`` is the rsfast throughput divided by the method's
throughput, both from the same run.
"""

from __future__ import annotations

from .cases import ALIASES, CASES, resolve
from .common import BIMODAL_LOG_M, BenchCase, Prepared, bimodal_log_M_exact, bimodal_log_target
from .harness import _add_speedups, measure, repeats_for, run_all, run_case, time_calls  # noqa: F401
from .report import format_table

__all__ = [
    "BenchCase",
    "Prepared",
    "CASES",
    "ALIASES",
    "resolve",
    "BIMODAL_LOG_M",
    "bimodal_log_target",
    "bimodal_log_M_exact",
    "repeats_for",
    "time_calls",
    "measure",
    "run_case",
    "run_all",
    "format_table",
]
