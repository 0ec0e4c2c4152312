"""Run by tests/test_accept_compact_rows.py under different OMP_NUM_THREADS: prints one JSON line of
digests of accept_compact_rows outputs large enough to be split across threads. Not a test module."""

from __future__ import annotations

import json
import os

import torch
from _helpers import SEED, digest

import rsfast
from rsfast import ops

M = 300_007  # well above the kernels' single-thread cutoff, not a multiple of the chunk size


def digests() -> dict:
    """{dtype/sync: digest of the outputs and count} at torch's current thread count."""
    res = {}
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(M, 5, generator=g)
    labels = torch.randint(0, 7, (M,), generator=g)
    flags = torch.rand(M, generator=g) < 0.5
    for dtype in (torch.float32, torch.float64):
        lr = torch.randn(M, generator=g, dtype=dtype)
        for sync in (True, False):
            outs, count = ops.accept_compact_rows(lr, 0.25, [feats, labels, flags], SEED, 3, sync=sync)
            res[f"{dtype}/{sync}"] = digest(*outs, count.reshape(1))
    return res


def main() -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    res = digests()
    res["torch_threads"] = torch.get_num_threads()
    res["openmp_threads"] = rsfast.build_info()["openmp_threads"]  # what the kernels above ran with
    print(json.dumps(res))


if __name__ == "__main__":
    main()
