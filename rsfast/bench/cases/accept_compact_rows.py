"""Benchmark cases of ``accept_compact_rows``: accept_compact_rows."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ... import ops
from ..common import (
    OP_ROWS,
    SEED,
    BenchCase,
    Prepared,
    _device,
    _generator,
)

#: Place of these cases in the report.
ORDER = 4

#: Rows of the accept_compact_rows case and the training batch's trailing shape: features [B, 16] float32,
#: labels [B] int64, weights [B] float32.
ROWS_FEATURES = 16


def _setup_accept_compact_rows(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    b = OP_ROWS
    g = _generator(dev)
    feats = torch.randn((b, ROWS_FEATURES), generator=g, device=dev)
    labels = torch.randint(0, 10, (b,), generator=g, device=dev)
    weights = torch.rand((b,), generator=g, device=dev)
    # log ratios of a typical in-batch rejection: half the rows above log M (always kept), the rest
    # kept with probability e^(log_ratio - log_M); ~62 % accepted overall.
    log_ratio = torch.randn((b,), generator=g, device=dev) * 0.5
    log_M = 0.0
    tensors = [feats, labels, weights]

    def run_rsfast() -> tuple[list[Tensor], Tensor]:
        return ops.accept_compact_rows(log_ratio, log_M, tensors, SEED, 0)

    def run_torch() -> tuple[list[Tensor], Tensor]:
        log_u = torch.log(torch.rand((b,), generator=g, device=dev))
        keep = log_u < log_ratio - log_M
        return [t[keep] for t in tensors], keep.sum()

    expected = float(torch.minimum(torch.ones(()), torch.exp(log_ratio.double() - log_M).cpu()).sum())

    def check(method: str, res: Any) -> None:
        outs, count = res
        k = int(count)
        assert abs(k - expected) < 10 * math.sqrt(expected) + 10, (
            f"{method}: kept {k}, expected ~{expected:.0f}"
        )
        assert [tuple(o.shape) for o in outs] == [(k, ROWS_FEATURES), (k,), (k,)], f"{method}: shapes"
        assert outs[1].dtype == torch.int64, f"{method}: labels dtype {outs[1].dtype}"

    row_bytes = ROWS_FEATURES * 4 + 8 + 4
    nbytes = b * (row_bytes + 4) + int(expected) * row_bytes  # read every row and log_ratio, write the kept
    return Prepared(
        case="accept_compact_rows",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": b, "torch": b},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: features + labels + weights + log_ratio; written: the kept rows",
        meta={"B": b, "features": ROWS_FEATURES, "log_M": log_M, "acceptance": expected / b},
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "accept_compact_rows",
        "in-batch rejection of 1M rows (features [B,16] f32, labels [B] i64, weights [B] f32; 62 % kept)"
        " into exact-size outputs",
        _setup_accept_compact_rows,
    ),
]
