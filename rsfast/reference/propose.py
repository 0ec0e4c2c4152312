"""Twin of ``rsfast::propose``: the same Philox streams and word maps, in torch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .philox import (
    _draw_values,
    _uniforms,
    philox_block,
)

__all__ = ["derived_params", "propose"]

_LOG_2PI = math.log(2 * math.pi)


def derived_params(kind: str, params: list[Tensor]) -> list[Tensor]:
    """The arrays the propose kernel reads (``ProposalParams`` in propose/core.h), written here again from the
    kernel's definition (the oracle shares no code with :mod:`rsfast.ops`): normal (loc, scale,
    const = -sum log scale - D/2 log 2 pi), uniform (low, width, -sum log width), mixture_normal (loc,
    scale, const_k = log w_k - sum_d log scale_kd - D/2 log 2 pi, cdf of the weights with a last entry
    of exactly 1)."""
    if kind == "normal":
        loc, scale = params
        return [loc, scale, (-scale.log().sum() - 0.5 * loc.shape[0] * _LOG_2PI).reshape(1)]
    if kind == "uniform":
        low, high = params
        width = high - low
        return [low, width, (-width.log().sum()).reshape(1)]
    logits, loc, scale = params
    logw = logits - torch.logsumexp(logits, 0)
    const = logw - scale.log().sum(1) - 0.5 * loc.shape[1] * _LOG_2PI
    cdf = torch.cumsum(logw.exp(), 0)
    cdf[-1] = 1.0
    return [loc, scale, const, cdf]


def propose(kind: str, params: list[Tensor], m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
    """Twin of :func:`rsfast.ops.propose` (same streams)."""
    ref = params[-1]
    dtype, device = ref.dtype, ref.device
    rows = torch.arange(m, device=device, dtype=torch.int64)
    d = derived_params(kind, params)
    if kind == "uniform":
        low, width, const = d
        u = _draw_values("uniform", seed, rows, offset, 0, low.shape[0], dtype)
        return low + width * u, const.expand(m).clone()
    if kind == "normal":
        loc, scale, const = d
        z = _draw_values("normal", seed, rows, offset, 0, loc.shape[0], dtype)
        return loc + scale * z, const - 0.5 * (z * z).sum(-1)
    loc, scale, const, cdf = d
    u = _uniforms(philox_block(seed, rows, offset, 0), dtype)[..., 0].to(dtype)
    comp = (u.unsqueeze(-1) >= cdf[:-1]).sum(-1)
    z = _draw_values("normal", seed, rows, offset, 1, loc.shape[1], dtype)
    x = loc[comp] + scale[comp] * z
    zz = (x.unsqueeze(1) - loc) / scale
    return x, torch.logsumexp(const - 0.5 * (zz * zz).sum(-1), -1)
