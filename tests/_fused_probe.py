"""Run by tests/test_fused.py under different OMP_NUM_THREADS / RSFAST_CPU_ISA: prints one JSON line of
digests of fused_sample outputs large enough to be split across threads. Not a test module."""

from __future__ import annotations

import json
import os

import torch
from _helpers import SEED, digest

import rsfast
from rsfast import ops, proposals

N = 30_003  # above the kernel's single-thread cutoff, not a multiple of the lane width


def main() -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    g = torch.Generator().manual_seed(11)
    res = {}
    for dtype in (torch.float32, torch.float64):
        for d in (1, 3):
            logits = torch.randn(3, generator=g, dtype=dtype)
            loc = torch.randn(3, d, generator=g, dtype=dtype) * 2
            scale = torch.rand(3, d, generator=g, dtype=dtype) + 0.5
            for q in (
                proposals.Normal(torch.zeros(d, dtype=dtype), torch.full((d,), 4.0, dtype=dtype)),
                proposals.Uniform(torch.full((d,), -9.0, dtype=dtype), torch.full((d,), 9.0, dtype=dtype)),
                proposals.MixtureNormal(logits, loc, scale * 1.5),
            ):
                out = ops.fused_sample(q.kind, q.params(), logits, loc, scale, N, 2.0 + d, SEED, 17)
                res[f"{q.kind}/{dtype}/{d}"] = digest(*out)
    info = rsfast.build_info()
    print(json.dumps({"digests": res, "threads": info["openmp_threads"], "isa": info["cpu_isa"]}))


if __name__ == "__main__":
    main()
