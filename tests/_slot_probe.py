"""Run by tests/test_slot.py under different OMP_NUM_THREADS: prints one JSON line of digests of
slot_sample outputs large enough to be split across threads. Not a test module."""

from __future__ import annotations

import json
import os

import torch
from _helpers import SEED, digest

import rsfast
from rsfast import ops

N = 100_003  # several chunks, not a multiple of the chunk or SIMD width

INF = float("inf")
# (law, parameters): one batched case per law, rows of different algorithm branches, so that rows
# (and, on the per-element path, variants) vary inside a chunk.
CASES = {
    "truncated_normal": [
        [0.0, 0.5, -1.0, 0.0],
        [1.0, 2.0, 0.3, 1.0],
        [-1.0, 3.0, -INF, 2.0],
        [1.0, INF, 0.0, 2.05],
    ],
    "von_mises": [[0.5, 3.1, -2.0], [1e-3, 10.0, 1e4]],
    "gamma": [[0.01, 2.5, 0.3], [2.0, 3.0, 1.0]],
    "beta": [[0.05, 300.0, 0.3], [0.1, 100.0, 40.0]],
    "poisson": [[3.0, 100.0, 0.0]],
    "binomial": [[20.0, 100.0, 1000.0], [0.2, 0.6, 0.01]],
}


def main() -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    res = {"openmp_threads": rsfast.build_info()["openmp_threads"]}
    for law, params in CASES.items():
        if law not in ops.SLOT_LAWS:
            continue
        for dtype in (torch.float32, torch.float64):
            ps = [torch.tensor(p, dtype=dtype) for p in params]
            out, exhausted = ops.slot_sample(law, ps, [N // len(params[0])], SEED, 9)
            res[f"{law}/{dtype}/batched"] = digest(out, exhausted)
            out, exhausted = ops.slot_sample(law, [p[:1] for p in ps], [N], SEED, 10)
            res[f"{law}/{dtype}/single"] = digest(out, exhausted)
            # Many rows, few samples each: the per-element path of the CPU driver.
            wide = [p.repeat(10_001) for p in ps]
            out, exhausted = ops.slot_sample(law, wide, [2], SEED, 11)
            res[f"{law}/{dtype}/wide"] = digest(out, exhausted)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
