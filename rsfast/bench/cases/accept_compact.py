"""Benchmark cases of ``accept_compact``: accept_compact."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ... import ops
from ..common import (
    _DIM,
    BIMODAL_LOG_M,
    OP_ROWS,
    SEED,
    BenchCase,
    Prepared,
    _bimodal_proposal,
    _device,
    _generator,
    bimodal_log_target,
)

#: Place of these cases in the report.
ORDER = 1


def _bimodal_rows(m: int, dev: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """m candidates of the bimodal problem: x [m, 2], log_p [m], log_q [m], float32 on dev."""
    proposal = _bimodal_proposal(dev)
    x, log_q = ops.propose("normal", proposal.params(), m, SEED, 0)
    with torch.no_grad():
        log_p = bimodal_log_target(x)
    return x.contiguous(), log_p.contiguous(), log_q.contiguous()


def _setup_accept_compact(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    m = OP_ROWS
    x, log_p, log_q = _bimodal_rows(m, dev)
    log_M = BIMODAL_LOG_M
    out = torch.empty_like(x)  # capacity m: room for any outcome, for both methods
    counts = torch.zeros(4, dtype=torch.int64, device=dev)
    max_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=dev)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        counts.zero_()
        max_ratio.fill_(-math.inf)
        ops.accept_compact(x, log_p, log_q, log_M, SEED, 1, out, counts, max_ratio)
        return counts  # counts[0] rows of out are written; read lazily (no sync in the call)

    def run_torch() -> int:
        u = torch.rand(m, generator=g, dtype=log_p.dtype, device=dev)
        keep = torch.log(u) < (log_p - log_q) - log_M
        kept = x[keep]
        k = kept.shape[0]
        out[:k] = kept
        return k

    expected = m * math.pi / math.exp(log_M)

    def check(method: str, res: Any) -> None:
        k = int(res[0]) if isinstance(res, Tensor) else int(res)
        # ~35k expected; 10 standard deviations either way
        assert abs(k - expected) < 10 * math.sqrt(expected) + 10, (
            f"{method}: accepted {k}, expected ~{expected:.0f}"
        )
        if isinstance(res, Tensor):
            assert int(res[1]) == 0 and int(res[2]) == 0 and int(res[3]) == 0, (
                f"{method}: counts {res.tolist()}"
            )

    nbytes = x.numel() * x.element_size() + (log_p.numel() + log_q.numel()) * log_p.element_size()
    return Prepared(
        case="accept_compact",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": m, "torch": m},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: x + log_p + log_q",
        meta={"m": m, "dim": _DIM, "dtype": "float32", "log_M": log_M, "acceptance": expected / m},
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "accept_compact",
        "accept + stable compaction of 1M rows (D=2, float32, 3.5 % accepted) into a preallocated output",
        _setup_accept_compact,
    ),
]
