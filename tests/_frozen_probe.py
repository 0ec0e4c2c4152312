"""Run by tests/test_frozen.py under different OMP_NUM_THREADS (and CPU ISA builds): prints one JSON
line {case: sha256 of the outputs} for every op on fixed inputs, seed and offset. Not a test module.

The inputs are built from torch's CPU generator and linspace only, and the ops are called through
their public entry points (``rsfast.ops.*``, ``rsfast.select.*``, ``rsfast.perturb_``), so that the
digests pin the kernels' bits across any reorganisation of the code around them."""

from __future__ import annotations

import json
import math
import os

import torch
from _helpers import KINDS, SEED, digest, proposal_params

import rsfast
from rsfast import ops

M = 100_003  # above the kernels' single-thread cutoff (2**15 rows), not a multiple of any SIMD width


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def slot_params(law: str, n: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Parameters over each law's whole range (every branch of its sampler), [n]."""
    g = gen(17)

    def u(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)).to(dtype)

    if law == "truncated_normal":
        loc, scale, a = u(-2, 2), u(0.2, 3), u(-6, 4)
        return [loc, scale, loc + a * scale, loc + (a + u(0.05, 5)) * scale]
    if law == "von_mises":
        return [u(-3, 3), torch.exp(u(-6, 6))]
    if law == "gamma":
        return [torch.exp(u(-4, 5)), u(0.1, 5)]
    if law == "beta":
        return [torch.exp(u(-4, 4)), torch.exp(u(-4, 4))]
    if law == "poisson":
        return [torch.exp(u(-3, 9))]
    if law == "binomial":
        return [torch.floor(torch.exp(u(0, 9))), u(0, 1)]
    raise ValueError(law)


SLOT_LAWS = ["truncated_normal", "von_mises", "gamma", "beta", "poisson", "binomial"]


def main() -> None:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    res: dict[str, object] = {}
    dtypes = (torch.float32, torch.float64)
    for kind in KINDS:
        for dtype in dtypes:
            x, lq = ops.propose(kind, proposal_params(kind, 5, dtype), M, SEED, 11)
            res[f"propose/{kind}/{dtype}"] = digest(x, lq)
    for dtype in dtypes:
        g = gen(5)
        x = torch.randn(M, 3, generator=g, dtype=torch.float64).to(dtype)
        lp = torch.randn(M, generator=g, dtype=torch.float64).to(dtype)
        lp[::1001] = float("nan")
        lp[7::2003] = 5.0  # overweight rows
        lq = torch.zeros(M, dtype=dtype)
        out = torch.zeros_like(x)
        counts = torch.tensor([7, 0, 0, 0], dtype=torch.int64)
        mx = torch.full((1,), -math.inf, dtype=torch.float64)
        ops.accept_compact(x, lp, lq, 1.0, SEED, 3, out, counts, mx)
        res[f"accept_compact/{dtype}"] = digest(out, counts, mx)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        g = gen(6)
        log_ratio = torch.randn(M, generator=g, dtype=torch.float64).to(dtype)
        rows = [
            torch.arange(M, dtype=torch.int64),
            torch.randn(M, 4, generator=g, dtype=torch.float64).float(),
            (torch.rand(M, 2, 3, generator=g) < 0.5),
        ]
        for sync in (True, False):
            outs, count = ops.accept_compact_rows(log_ratio, 0.25, rows, SEED, 9, sync=sync)
            res[f"accept_compact_rows/{dtype}/sync={sync}"] = digest(*outs, count.reshape(1))
    for kind in KINDS:
        for dtype in dtypes:
            g = gen(8)
            logits = torch.tensor([0.5, -0.3, 0.0], dtype=dtype)
            loc = (torch.randn(3, 2, generator=g, dtype=torch.float64) * 2).to(dtype)
            scale = (torch.rand(3, 2, generator=g, dtype=torch.float64) + 0.5).to(dtype)
            params = {
                "normal": [torch.zeros(2, dtype=dtype), torch.full((2,), 3.0, dtype=dtype)],
                "uniform": [torch.full((2,), -6.0, dtype=dtype), torch.full((2,), 6.0, dtype=dtype)],
                "mixture_normal": proposal_params(kind, 2, dtype),
            }[kind]
            # log_M = 4: about 2% acceptance, some overweight tries counted.
            outs = ops.fused_sample(kind, params, logits, loc, scale, 20_001, 4.0, SEED, 13)
            res[f"fused_sample/{kind}/{dtype}"] = digest(*outs)
    for law in SLOT_LAWS:
        for dtype in dtypes:
            params = slot_params(law, 20_003, dtype)
            out, exhausted = ops.slot_sample(law, params, [2], SEED, 21)
            res[f"slot_sample/{law}/{dtype}"] = digest(out, exhausted)
            # Few rows, many samples each: the kernel's per-row (vectorised across samples) path.
            out, exhausted = ops.slot_sample(law, [p[:3] for p in params], [4_000], SEED, 22)
            res[f"slot_sample/{law}/{dtype}/rows"] = digest(out, exhausted)
    g = gen(9)
    dense = torch.randn(4_001, 16, generator=g, dtype=torch.float64)
    lens = torch.randint(0, 40, (4_001,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)])
    flat = torch.randn(int(offsets[-1]), generator=g, dtype=torch.float64)
    for dtype in dtypes:
        d, f = dense.to(dtype), flat.to(dtype)
        res[f"best_of_n/{dtype}"] = digest(
            rsfast.select.best_of_n(d, 3), rsfast.select.best_of_n(f, 3, offsets=offsets)
        )
        res[f"rso/{dtype}"] = digest(
            rsfast.select.rso(d, 4, beta=0.7, generator=gen(3)),
            rsfast.select.rso(f, 4, beta=2.0, offsets=offsets, generator=gen(4)),
        )
        res[f"threshold/{dtype}"] = digest(
            *rsfast.select.threshold(d, 0.5, max_per_group=3),
            *rsfast.select.threshold(f, 0.0, offsets=offsets),
        )
        res[f"top_fraction/{dtype}"] = digest(
            rsfast.select.top_fraction(d, 0.13), rsfast.select.top_fraction(f, 0.31, offsets=offsets)
        )
    metric = (dense > 0.8).sum(1)
    res["filter_groups"] = digest(
        rsfast.select.filter_groups((dense > 1.5).to(torch.int64)),
        rsfast.select.filter_groups(flat > 0.0, offsets=offsets),
        metric,
    )
    keys = torch.randint(0, 50, (M,), generator=g, dtype=torch.int64)
    groups = torch.randint(0, 300, (M,), generator=g, dtype=torch.int64)
    res["dedupe"] = digest(rsfast.select.dedupe(keys, groups))
    tensors = [
        torch.zeros(M, dtype=torch.float32),
        torch.zeros(301, 7, dtype=torch.float64),
        torch.zeros(M // 2, dtype=torch.float16),
        torch.zeros(1_003, dtype=torch.bfloat16),
    ]
    rsfast.perturb_(tensors, SEED, 0.5)
    res["perturb_"] = digest(*tensors)
    logits = 3 * torch.randn(64, 2_003, generator=gen(31))
    kw = dict(temperature=0.8, top_k=50, top_p=0.9, min_p=0.02)
    r = rsfast.tokens.sample(logits, seeds=torch.arange(64), offsets=7, n=3, return_logprobs=True, **kw)
    res["tokens/sample"] = digest(
        r.ids, r.valid, r.logprobs, rsfast.tokens.renorm_probs(logits, input="logits", **kw)
    )
    draft = torch.randint(0, 2_003, (64, 3), generator=gen(32))
    target = 3 * torch.randn(64, 4, 2_003, generator=gen(33))
    res["tokens/verify"] = digest(*rsfast.tokens.verify(draft, target, seeds=torch.arange(64), top_k=100))
    res["openmp_threads"] = rsfast.build_info()["openmp_threads"]
    res["cpu_isa"] = rsfast.build_info()["cpu_isa"]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
