"""Benchmark cases of ``perturb``: perturb, perturb_bf16."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ... import ops
from ..common import (
    SEED,
    BenchCase,
    Prepared,
    _device,
    _generator,
)

#: Place of these cases in the report.
ORDER = 3

#: Elements of the perturb cases: (full, quick).
PERTURB_NUMEL = (16 * 2**20, 4 * 2**20)
PERTURB_SCALE = 1e-3


def _setup_perturb(dtype: torch.dtype) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        dev = _device(device)
        n = PERTURB_NUMEL[quick]
        g = _generator(dev)
        params = {m: torch.randn(n, generator=g, device=dev).to(dtype) for m in ("rsfast", "torch")}
        start = params["rsfast"].clone()

        def run_rsfast() -> Tensor:
            ops.perturb_(params["rsfast"], SEED, PERTURB_SCALE)
            return params["rsfast"]

        def run_torch() -> Tensor:
            p = params["torch"]
            return p.add_(torch.randn_like(p, generator=g), alpha=PERTURB_SCALE)

        def check(method: str, out: Any) -> None:
            assert out.shape == (n,) and out.dtype == dtype, f"{method}: {out.shape} {out.dtype}"
            assert bool(torch.isfinite(out).all()), f"{method}: non-finite parameters"
            assert bool((out != start).any()), f"{method}: nothing was perturbed"

        nbytes = 2 * n * params["rsfast"].element_size()
        return Prepared(
            case="perturb" if dtype == torch.float32 else "perturb_bf16",
            unit="elements/s",
            methods={"rsfast": run_rsfast, "torch": run_torch},
            items={"rsfast": n, "torch": n},
            check=check,
            device=dev,
            bytes_per_call={"rsfast": nbytes, "torch": nbytes},
            bytes_note="parameters read + written",
            meta={"numel": n, "dtype": str(dtype), "scale": PERTURB_SCALE},
        )

    return setup


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "perturb",
        "p += s * N(0, I) in place on 16M float32 elements (quick: 4M) vs p.add_(randn_like(p), alpha=s)",
        _setup_perturb(torch.float32),
    ),
    BenchCase(
        "perturb_bf16",
        "the same on bfloat16 parameters (noise in float32, rounded once)",
        _setup_perturb(torch.bfloat16),
    ),
]
