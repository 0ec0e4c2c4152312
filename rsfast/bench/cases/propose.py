"""Benchmark cases of ``propose``: propose_normal."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ... import ops
from ..common import (
    _DIM,
    _PROPOSAL_SCALE,
    OP_ROWS,
    SEED,
    BenchCase,
    Prepared,
    _device,
    _generator,
)

#: Place of these cases in the report.
ORDER = 2


def _setup_propose_normal(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    m = OP_ROWS
    loc = torch.zeros(_DIM, device=dev)
    scale = torch.full((_DIM,), _PROPOSAL_SCALE, device=dev)
    g = _generator(dev)
    log_2pi = math.log(2 * math.pi)

    def run_rsfast() -> tuple[Tensor, Tensor]:
        return ops.propose("normal", [loc, scale], m, SEED, 0)

    def run_torch() -> tuple[Tensor, Tensor]:
        z = torch.randn((m, _DIM), generator=g, dtype=loc.dtype, device=dev)
        const = -torch.log(scale).sum() - 0.5 * _DIM * log_2pi
        return loc + scale * z, const - 0.5 * (z * z).sum(-1)

    def check(method: str, res: Any) -> None:
        x, log_q = res
        assert tuple(x.shape) == (m, _DIM) and tuple(log_q.shape) == (m,), f"{method}: shapes"
        assert bool(torch.isfinite(log_q).all()), f"{method}: non-finite log q"

    nbytes = m * (_DIM + 1) * 4
    return Prepared(
        case="propose_normal",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": m, "torch": m},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="written: x + log_q",
        meta={"m": m, "dim": _DIM, "dtype": "float32"},
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "propose_normal",
        "1M rows of a diagonal normal on R^2 and their log q (float32)",
        _setup_propose_normal,
    ),
]
