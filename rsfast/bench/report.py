"""The text table of a benchmark run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of :func:`run_all` as an aligned text table: case, method, items per call, median time per
    call, throughput, GB/s (where defined) and ``rsfast x`` (rsfast throughput / this method's)."""
    header = ("case", "method", "items/call", "time/call", "throughput", "GB/s", "rsfast x")
    body = []
    for r in rows:
        speed = r.get("rsfast_speedup")
        gbps = r.get("gb_per_s")
        body.append(
            (
                r["case"],
                r["method"],
                f"{r['items']:,}",
                _duration(r["seconds"]),
                f"{_si(r['throughput'])}{r['unit']}",
                f"{gbps:.3g}" if gbps is not None else "-",
                f"{speed:.3g}" if speed is not None else "-",
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    right = {2, 3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    out = [line(header), line(["-" * w for w in widths])]
    prev = None
    for b in body:
        if prev is not None and b[0] != prev:
            out.append("")
        out.append(line(b))
        prev = b[0]
    return "\n".join(out)
