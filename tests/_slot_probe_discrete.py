"""Run by tests/test_distributions_discrete.py under different OMP_NUM_THREADS: prints one JSON line
of digests of Poisson / Binomial slot draws large enough to be split across threads. Not a test
module."""

from __future__ import annotations

import json
import os

import torch
from _helpers import SEED, digest

import rsfast
from rsfast import ops

M = 50_001  # samples per row: several chunks, not a multiple of the chunk or SIMD width

# One batched case per law: every sampler mode in one batch, so rows vary inside a chunk.
CASES = {
    "poisson": [[0.0, 0.4, 7.0, 10.0, 333.0, 1e6]],
    "binomial": [[0.0, 9.0, 100.0, 1000.0, 30.0, 5e5], [0.3, 0.6, 0.3, 0.99, 1.0, 0.5]],
}


def digests() -> dict[str, str]:
    res = {}
    for law, params in CASES.items():
        for dtype in (torch.float32, torch.float64):
            ps = [torch.tensor(p, dtype=dtype) for p in params]
            out, exhausted = ops.slot_sample(law, ps, [M], SEED, 4)
            res[f"{law}/{dtype}/batched"] = digest(out, exhausted)
            out, exhausted = ops.slot_sample(law, [p[2:3] for p in ps], [6 * M], SEED, 5)
            res[f"{law}/{dtype}/single"] = digest(out, exhausted)
    return res


def main() -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    res = digests()
    res["openmp_threads"] = rsfast.build_info()["openmp_threads"]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
