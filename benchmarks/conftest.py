"""pytest-benchmark setup shared by the benchmark files: the cases come from :mod:`rsfast.bench`.

Environment:
    RSFAST_BENCH_FULL=1      full problem sizes and 5 rounds (default: the quick sizes, 3 rounds)
    RSFAST_BENCH_DEVICE=cuda run on CUDA (default: cpu)

After the run a table of throughputs and rsfast speedups per group is printed (computed from the
median time of each benchmark), because a group's methods may run different problem sizes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from rsfast import bench

QUICK = os.environ.get("RSFAST_BENCH_FULL", "0") in ("", "0")
DEVICE = os.environ.get("RSFAST_BENCH_DEVICE", "cpu")

_prepared: dict[str, bench.Prepared] = {}
_rows: dict[str, list[dict[str, Any]]] = {}


def _get_prepared(case: str) -> bench.Prepared:
    if case not in _prepared:
        try:
            _prepared[case] = bench.CASES[case].setup(QUICK, DEVICE)
        except RuntimeError as e:  # e.g. CUDA requested but not usable
            pytest.skip(str(e))
    return _prepared[case]


@pytest.fixture
def run_bench(benchmark: Any) -> Callable[[str, str], Any]:
    """``run_bench(case, method)``: benchmark one method of a :data:`rsfast.bench.CASES` case with
    ``benchmark.pedantic`` (1 warm-up round, then 3 rounds quick / 5 full, 1 iteration each), in the
    pytest-benchmark group named after the case; check the output's sanity; return it."""

    def run(case: str, method: str) -> Any:
        prepared = _get_prepared(case)
        fn = prepared.methods[method]
        if prepared.device.type == "cuda":
            import torch

            inner = fn

            def fn() -> Any:
                out = inner()
                torch.cuda.synchronize(prepared.device)
                return out

        benchmark.group = case
        benchmark.extra_info.update(
            method=method, items=prepared.items[method], unit=prepared.unit, device=str(prepared.device)
        )
        warmup = prepared.warmups.get(method)
        if warmup is not None:  # a cheap warm-up instead of a full-size round
            warmup()
        out = benchmark.pedantic(
            fn, rounds=bench.repeats_for(QUICK), warmup_rounds=0 if warmup else 1, iterations=1
        )
        prepared.check(method, out)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and not getattr(benchmark, "disabled", False):
            median = stats.stats.median
            row = bench.measure(prepared, method, median, bench.repeats_for(QUICK))
            benchmark.extra_info["throughput"] = row["throughput"]
            _rows.setdefault(case, []).append(row)
        return out

    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print throughput and rsfast speedup (rsfast throughput / method throughput) per group."""
    if not _rows:
        return
    rows: list[dict[str, Any]] = []
    for case in bench.CASES:
        group = _rows.get(case, [])
        bench._add_speedups(group)
        rows += group
    terminalreporter.write_sep("-", "rsfast throughput (from the median of each benchmark)")
    terminalreporter.write_line(bench.format_table(rows))
