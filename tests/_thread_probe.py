"""Run by tests (see _helpers.thread_digests) under different OMP_NUM_THREADS: prints one JSON
line of digests of kernel outputs large enough to be split across threads. Not a test module."""

from __future__ import annotations

import json
import math
import os

import torch
from _helpers import KINDS, SEED, digest, proposal_params

import rsfast
from rsfast import ops

M = 300_000  # well above the kernels' single-thread cutoff, not a multiple of the SIMD width


def main() -> None:
    # torch caps its default at the number of cores; rsfast's kernels follow torch's count.
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    res = {"torch_threads": torch.get_num_threads()}
    for kind in KINDS:
        for dtype in (torch.float32, torch.float64):
            x, lq = ops.propose(kind, proposal_params(kind, 5, dtype), M + 3, SEED, 11)
            res[f"propose/{kind}/{dtype}"] = digest(x, lq)
    g = torch.Generator().manual_seed(5)
    for dtype in (torch.float32, torch.float64):
        x = torch.arange(M + 5, dtype=torch.int64).unsqueeze(1).repeat(1, 3)
        lp = torch.randn(M + 5, generator=g, dtype=dtype)
        lq = torch.zeros(M + 5, dtype=dtype)
        out = torch.zeros_like(x)
        counts = torch.tensor([7, 0, 0, 0], dtype=torch.int64)
        mx = torch.full((1,), -math.inf, dtype=torch.float64)
        ops.accept_compact(x, lp, lq, 1.0, SEED, 3, out, counts, mx)
        res[f"accept_compact/{dtype}"] = digest(out, counts, mx)
    r = rsfast.sample(
        lambda x: -0.5 * (x * x).sum(-1),
        rsfast.proposals.Normal(torch.zeros(2), torch.full((2,), 1.5)),
        M,
        log_M=math.log(2 * math.pi * 2.25),
        generator=torch.Generator().manual_seed(1),
    )
    res["sample"] = digest(r.samples) + f"/{r.num_proposals}/{r.num_rounds}"
    res["openmp_threads"] = rsfast.build_info()["openmp_threads"]  # what the kernels above ran with
    res["cpu_isa"] = rsfast.build_info()["cpu_isa"]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
