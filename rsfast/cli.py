"""The ``rsfast`` command line: ``rsfast info``, ``rsfast bench``, ``rsfast demo``.

Also runnable as ``python -m rsfast``. :func:`main` returns the exit status: 0 on
success, 2 on bad usage (unknown subcommand, case or demo, unusable device).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "build_parser", "DEMOS"]


def _demo_runner(name: str) -> Callable[[bool], int]:
    def run(json_output: bool) -> int:
        from . import demos

        return demos.load(name).run(json_output)

    return run


def _demos() -> dict[str, tuple[str, Callable[[bool], int]]]:
    from . import demos

    return {name: (demos.load(name).DESCRIPTION, _demo_runner(name)) for name in demos.names()}


#: Demos of ``rsfast demo NAME`` (the modules of :mod:`rsfast.demos`): name -> (one-line description,
#: ``run(json_output) -> exit status``).
DEMOS: dict[str, tuple[str, Callable[[bool], int]]] = _demos()


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) if value else "-"
    return str(value)


def _cmd_info(args: argparse.Namespace) -> int:
    import rsfast

    from ._compat import torch_support

    info = {**rsfast.build_info(), **torch_support()}
    if args.json:
        print(json.dumps(info, sort_keys=False))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key.ljust(width)} : {_format_value(value)}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import os

    import torch

    from . import bench

    # RSFAST_BENCH_QUICK=1 means --quick (CI runs the README's command verbatim with the quick sizes).
    args.quick = args.quick or os.environ.get("RSFAST_BENCH_QUICK", "") not in ("", "0")

    cases = [bench.resolve(c) for c in args.case] if args.case else None
    if cases:
        unknown = [c for c in cases if c not in bench.CASES]
        if unknown:
            print(
                f"rsfast bench: unknown case(s) {', '.join(unknown)}; known: {', '.join(bench.CASES)}",
                file=sys.stderr,
            )
            return 2
    if args.device == "cuda":
        from ._native import cuda_status

        usable, why = cuda_status()
        if not usable:
            print(f"rsfast bench: --device cuda is not usable here: {why}", file=sys.stderr)
            return 2
    if args.threads is not None:
        if args.threads < 1:
            print(f"rsfast bench: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)  # rsfast's OpenMP kernels follow torch's thread count
    if not args.json:
        from ._native import build_info

        info = build_info()
        mode = "quick" if args.quick else "full"
        print(
            f"rsfast {info['version']} bench ({mode}) on {args.device}: torch {info['torch']}, "
            f"torch threads {torch.get_num_threads()}, "
            f"rsfast OpenMP threads {info.get('openmp_threads', '?')}; "
            f"median of {bench.repeats_for(args.quick)} calls after a warm-up",
            flush=True,
        )
    skipped: list[str] = []
    rows = bench.run_all(args.quick, args.device, cases, skipped=skipped)
    for line in skipped:
        print(f"rsfast bench: {line}", file=sys.stderr, flush=True)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(bench.format_table(rows))
        print(
            "rsfast x: rsfast throughput / this method's throughput, same run (per_sample runs on a small n)."
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.name is None:
        if not DEMOS:
            print("no demos in this version")
            return 0
        width = max(map(len, DEMOS))
        for name, (description, _) in DEMOS.items():
            print(f"{name.ljust(width)}  {description}")
        return 0
    if args.name not in DEMOS:
        known = ", ".join(DEMOS) if DEMOS else "no demos in this version"
        print(f"rsfast demo: unknown demo {args.name!r} ({known})", file=sys.stderr)
        return 2
    return DEMOS[args.name][1](args.json)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``rsfast`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="rsfast", description="Fast exact rejection sampling for PyTorch: build info, benchmarks, demos."
    )
    parser.add_argument("--version", action="version", version=f"rsfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "info",
        help="version, CUDA kernels compiled and for which architectures, OpenMP threads, GPU usable",
        description="Print rsfast.build_info() as aligned 'key : value' lines.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "bench",
        help="microbenchmarks against the pure-torch and per-sample baselines",
        description=(
            "Time rsfast against its baselines on each benchmark case (median of 5 calls after a warm-up; "
            "3 with --quick) and print a table: case, method, items per call, time per call, throughput, "
            "GB/s where defined, and 'rsfast x' = rsfast throughput / the method's throughput. "
            "The full run takes up to a few minutes on a small CPU, --quick well under a minute."
        ),
    )
    p.add_argument(
        "--quick", action="store_true", help="smaller problems and 3 repeats (also: RSFAST_BENCH_QUICK=1)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help=(
            "print JSON Lines: one JSON object per line, one line per (case, method), keys case, method, "
            "device, items, seconds (median per call), throughput, unit, gb_per_s, repeats, rsfast_speedup"
        ),
    )
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where inputs live (default: cpu)"
    )
    p.add_argument(
        "--case", action="append", metavar="NAME", help="run only this case (repeatable; default: all)"
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads for torch and the rsfast kernels during the run (default: torch's current setting)",
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "demo",
        help="fine-tuning strategies end to end on built-in data (lists demos without NAME)",
        description="Run demo NAME, or list the demos when NAME is omitted. Exit status 2 for an unknown "
        "NAME.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="demo to run")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON line")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rsfast`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
