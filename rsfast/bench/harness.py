"""Timing of the benchmark cases: one warm-up call, then the median of ``repeats`` calls per method."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .cases import CASES
from .common import METHOD_BUDGET_S, REPEATS, BenchCase, Prepared


def repeats_for(quick: bool) -> int:
    """Timed calls per method: 3 quick, 5 full."""
    return REPEATS[quick]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], Any],
    repeats: int,
    device: torch.device,
    budget_s: float = math.inf,
    warmup: Callable[[], Any] | None = None,
) -> tuple[list[float], Any]:
    """Seconds of each of ``repeats`` calls of ``fn`` after one untimed warm-up call.

    On CUDA the device is synchronised before and after each call. A safety valve for loaded
    machines: once at least one call is timed, no further call starts when the timed calls so far
    plus one more call of their median length would pass ``budget_s`` (warm-up not counted, since a
    first call pays one-time costs). ``warmup`` replaces ``fn`` in the warm-up call.
    Returns (the per-call seconds, the last call's output).
    """
    _sync(device)
    out = (warmup or fn)()
    _sync(device)
    times: list[float] = []
    for _ in range(repeats):
        if times and sum(times) + statistics.median(times) > budget_s:
            break
        _sync(device)
        t = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times, out


def measure(prepared: Prepared, method: str, seconds: float, repeats: int = 1) -> dict[str, Any]:
    """The report row of one method given its median seconds per call (``rsfast_speedup`` left None)."""
    items = prepared.items[method]
    nbytes = prepared.bytes_per_call.get(method)
    return {
        "case": prepared.case,
        "method": method,
        "device": str(prepared.device),
        "items": items,
        "seconds": seconds,
        "throughput": items / seconds if seconds > 0 else math.inf,
        "unit": prepared.unit,
        "gb_per_s": nbytes / seconds / 1e9 if nbytes and seconds > 0 else None,
        "repeats": repeats,
        "rsfast_speedup": None,
    }


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    ref = next((r for r in rows if r["method"] == "rsfast"), None)
    for r in rows:
        if ref is not None and r["throughput"] > 0:
            r["rsfast_speedup"] = ref["throughput"] / r["throughput"]


def run_case(
    case: BenchCase | str,
    quick: bool,
    device: str = "cpu",
    methods: Sequence[str] | None = None,
    check: bool = True,
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Time every method of one case (or those named in ``methods``); one row per method.

    Row keys: ``case``, ``method``, ``device``, ``items`` (samples or rows per call), ``seconds``
    (median seconds per call), ``throughput`` (items / seconds), ``unit``, ``gb_per_s`` (None when
    the case defines no byte count), ``repeats`` (timed calls), ``rsfast_speedup`` (rsfast
    throughput / this method's throughput; 1.0 for rsfast; None when rsfast was not run).
    A baseline whose optional package is missing is not run; one line per such baseline (which one,
    and which extra brings it) is appended to ``skipped`` when given.
    """
    c = CASES[case] if isinstance(case, str) else case
    prepared = c.setup(quick, device)
    if skipped is not None:
        skipped += [f"{prepared.case}: baseline {m} skipped ({why})" for m, why in prepared.skipped.items()]
    repeats = repeats_for(quick)
    budget = METHOD_BUDGET_S[quick]
    rows = []
    for name, fn in prepared.methods.items():
        if methods is not None and name not in methods:
            continue
        times, out = time_calls(fn, repeats, prepared.device, budget, prepared.warmups.get(name))
        if check:
            prepared.check(name, out)
        rows.append(measure(prepared, name, statistics.median(times), len(times)))
    _add_speedups(rows)
    return rows


def run_all(
    quick: bool, device: str = "cpu", cases: Sequence[str] | None = None, skipped: list[str] | None = None
) -> list[dict[str, Any]]:
    """Run every case (or those named in ``cases``) on ``device``; rows and ``skipped`` as in
    :func:`run_case`."""
    names = list(CASES) if cases is None else list(cases)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; known: {list(CASES)}")
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for name in names:
            rows += run_case(name, quick, device, skipped=skipped)
    return rows
