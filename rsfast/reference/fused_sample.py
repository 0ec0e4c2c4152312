"""Twin of ``rsfast::fused_sample``: the same per-row streams, tries and counts, in torch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .philox import (
    philox_block,
    u01_f23,
    u01_f52,
    u01_log_arg,
)
from .propose import derived_params

__all__ = ["fused_target_params", "fused_layout", "mixture_log_density", "fused_sample"]


def fused_target_params(logits: Tensor, loc: Tensor, scale: Tensor) -> list[Tensor]:
    """loc [K, D], 1 / scale [K, D] and log w_k - sum_d log scale_kd - D/2 log 2 pi [K]: the arrays the
    fused kernel reads for its mixture-of-normals target (written again from the kernel's definition)."""
    const = (
        logits - torch.logsumexp(logits, 0) - scale.log().sum(1) - 0.5 * loc.shape[1] * math.log(2 * math.pi)
    )
    return [loc, 1 / scale, const]


def fused_layout(kind: str, dim: int, dtype: torch.dtype) -> tuple[int, int, int]:
    """(component words, value words, Philox blocks) of one try of :func:`rsfast.ops.fused_sample` (see
    csrc/ops/fused_sample/core.h); the accept words follow the value words."""
    w = 1 if dtype == torch.float32 else 2
    comp = w if kind == "mixture_normal" else 0
    values = w * dim if kind == "uniform" else 2 * w * ((dim + 1) // 2)
    return comp, values, (comp + values + w + 3) // 4


def _word_uniform(words: Tensor, j: int, dtype: torch.dtype) -> Tensor:
    if dtype == torch.float32:
        return u01_f23(words[:, j])
    return u01_f52(words[:, j], words[:, j + 1])


def _word_normals(words: Tensor, j: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    two_pi = 2 * math.pi
    if dtype == torch.float32:
        rad = torch.sqrt(-2.0 * torch.log(u01_log_arg(words[:, j])))
        ang = two_pi * u01_f23(words[:, j + 1])
    else:
        rad = torch.sqrt(-2.0 * torch.log(u01_f52(words[:, j], words[:, j + 1])))
        ang = two_pi * u01_f52(words[:, j + 2], words[:, j + 3])
    return rad * torch.cos(ang), rad * torch.sin(ang)


def mixture_log_density(loc: Tensor, inv_scale: Tensor, const: Tensor, x: Tensor) -> Tensor:
    """The fused kernel's mixture log density at x [m, D] from (loc, 1 / scale, const) of
    :func:`rsfast.fused_target_params`: the largest component term plus log sum exp(term - largest)."""
    t = (x.unsqueeze(1) - loc) * inv_scale
    v = const - 0.5 * (t * t).sum(-1)
    best = v.max(-1).values
    s = torch.exp(v - best.unsqueeze(-1)).sum(-1)
    return torch.where(best > -math.inf, best + torch.log(s), best)


def fused_sample(
    kind: str,
    params: list[Tensor],
    logits: Tensor,
    loc: Tensor,
    scale: Tensor,
    n: int,
    log_M: float,
    seed: int,
    offset: int,
    max_proposals: int = 2**62,
) -> tuple[Tensor, Tensor, Tensor]:
    """Twin of :func:`rsfast.ops.fused_sample` (same streams, same decisions up to float rounding): every
    pending row draws its try t at once, t = 0, 1, ... The twin stops (``counts[5] = 1``) after the
    first try round that passes ``max_proposals``."""
    ref = params[-1]
    dtype, device = ref.dtype, ref.device
    dim = loc.shape[1]
    q = derived_params(kind, params)
    p_loc, p_inv, p_c = fused_target_params(logits, loc, scale)
    comp_words, value_words, blocks = fused_layout(kind, dim, dtype)
    max_tries = 0xFFFFFFFF // blocks
    log_M_t = torch.tensor(log_M, dtype=dtype).item()  # rounded to the dtype, as the kernel does
    out = torch.empty((n, dim), dtype=dtype, device=device)
    counts = [0] * 6
    mx = -math.inf
    pending = torch.arange(n, device=device, dtype=torch.int64)
    t = 0
    while pending.numel():
        if t >= max_tries or counts[4] > max_proposals:
            counts[5] = 1
            break
        words = torch.cat([philox_block(seed, pending, offset, t * blocks + b) for b in range(blocks)], -1)
        if kind == "uniform":
            low, width, const = q
            w = 1 if dtype == torch.float32 else 2
            u = torch.stack([_word_uniform(words, w * d, dtype) for d in range(dim)], -1).to(dtype)
            x = low + width * u
            lq = const.expand(x.shape[0])
        else:
            a, b, c = q[:3]
            if kind == "mixture_normal":
                comp = (_word_uniform(words, 0, dtype).to(dtype).unsqueeze(-1) >= q[3][:-1]).sum(-1)
                a, b = a[comp], b[comp]
            zs = []
            w = 1 if dtype == torch.float32 else 2
            for d in range(0, dim, 2):
                zs += list(_word_normals(words, comp_words + w * d, dtype))
            z = torch.stack(zs[:dim], -1).to(dtype)
            x = a + b * z
            if kind == "mixture_normal":
                lq = mixture_log_density(q[0], 1 / q[1], c, x)
            else:
                lq = c - 0.5 * (z * z).sum(-1)
        lp = mixture_log_density(p_loc, p_inv, p_c, x)
        ja = comp_words + value_words
        if dtype == torch.float32:
            log_u = torch.log(u01_log_arg(words[:, ja]))
        else:
            log_u = torch.log(u01_f52(words[:, ja], words[:, ja + 1]))
        ratio = lp - lq
        nan = torch.isnan(ratio)
        posinf = lp == math.inf
        accept = ~nan & ~posinf & (log_u < ratio - log_M_t)
        counts[1] += int(nan.sum())
        counts[2] += int((~nan & (ratio > log_M_t)).sum())
        counts[3] += int(posinf.sum())
        counts[4] += pending.numel()
        if ratio.numel():
            mx = max(mx, float(torch.where(nan, torch.full_like(ratio, -math.inf), ratio).max()))
        out[pending[accept]] = x[accept]
        counts[0] += int(accept.sum())
        pending = pending[~accept]
        t += 1
    return (
        out,
        torch.tensor(counts, dtype=torch.int64, device=device),
        torch.tensor([mx], dtype=torch.float64, device=device),
    )
