"""Philox4x32-10 in int64 tensor arithmetic and the word-to-uniform/normal maps of the kernels
(csrc/include/rsfast/philox.h): the base of every twin."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["philox4x32_10", "philox_block", "u01_f23", "u01_log_arg", "u01_f52"]

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = 0xFFFFFFFF
_LOG_2PI = math.log(2 * math.pi)


def _mulhilo(a: int, b: Tensor) -> tuple[Tensor, Tensor]:
    """(hi, lo) 32-bit words of a * b for a 32-bit constant a and int64 tensor b of 32-bit values,
    without overflowing int64 (b split into 16-bit halves)."""
    b_lo = b & 0xFFFF
    b_hi = b >> 16
    t1 = a * b_lo  # < 2**48
    t2 = a * b_hi  # < 2**48
    low_sum = t1 + ((t2 & 0xFFFF) << 16)
    lo = low_sum & _MASK32
    hi = (t2 >> 16) + (low_sum >> 32)
    return hi & _MASK32, lo


def philox4x32_10(counter: Tensor, key: tuple[int, int]) -> Tensor:
    """Philox4x32-10 of int64 counters [..., 4] (32-bit values) under key (k0, k1) -> [..., 4]."""
    c0, c1, c2, c3 = (counter[..., i].to(torch.int64) for i in range(4))
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return torch.stack([c0, c1, c2, c3], -1)


def philox_block(seed: int, stream: Tensor, offset: int, block: int) -> Tensor:
    """Block ``block`` of streams ``stream`` (int64 [...]) at ``offset``: counter
    (block, stream_lo, stream_hi, offset), key (seed_lo, seed_hi) -> [..., 4] words."""
    stream = stream.to(torch.int64)
    ctr = torch.stack(
        [
            torch.full_like(stream, block),
            stream & _MASK32,
            (stream >> 32) & _MASK32,
            torch.full_like(stream, offset),
        ],
        -1,
    )
    return philox4x32_10(ctr, (seed & _MASK32, (seed >> 32) & _MASK32))


def u01_f23(w: Tensor) -> Tensor:
    """(0, 1) on the 2^-23 grid, float32: (k + 0.5) * 2^-23 for the top 23 bits k (exact)."""
    return ((w >> 9).to(torch.float32) + 0.5) * 2.0**-23


def u01_log_arg(w: Tensor) -> Tensor:
    """(0, 1], 31-bit resolution near 0, float32 (argument of log)."""
    return ((w >> 1).to(torch.float32) + 0.5) * 2.0**-31


def u01_f52(hi: Tensor, lo: Tensor) -> Tensor:
    """(0, 1) on the 2^-52 grid from two words, float64."""
    k = ((hi >> 6) << 26) | (lo >> 6)
    return (k.to(torch.float64) + 0.5) * 2.0**-52


def _normals(words: Tensor, dtype: torch.dtype) -> Tensor:
    """Box-Muller normals of blocks [..., 4]: 4 per block in float32, 2 in float64."""
    two_pi = 2 * math.pi
    if dtype == torch.float32:
        out = []
        for a, b in ((0, 1), (2, 3)):
            rad = torch.sqrt(-2.0 * torch.log(u01_log_arg(words[..., a])))
            ang = two_pi * u01_f23(words[..., b])
            out += [rad * torch.cos(ang), rad * torch.sin(ang)]
        return torch.stack(out, -1)
    u = u01_f52(words[..., 0], words[..., 1])
    t = u01_f52(words[..., 2], words[..., 3])
    rad = torch.sqrt(-2.0 * torch.log(u))
    return torch.stack([rad * torch.cos(two_pi * t), rad * torch.sin(two_pi * t)], -1)


def _uniforms(words: Tensor, dtype: torch.dtype) -> Tensor:
    if dtype == torch.float32:
        return u01_f23(words)
    return torch.stack([u01_f52(words[..., 0], words[..., 1]), u01_f52(words[..., 2], words[..., 3])], -1)


def _per_block(dtype: torch.dtype) -> int:
    return 4 if dtype == torch.float32 else 2


def _draw_values(
    kind: str, seed: int, rows: Tensor, offset: int, first: int, dim: int, dtype: torch.dtype
) -> Tensor:
    """[m, dim] normals or uniforms of the streams ``rows``, blocks first, first + 1, ..."""
    v = _per_block(dtype)
    cols = []
    for b in range((dim + v - 1) // v):
        words = philox_block(seed, rows, offset, first + b)
        cols.append(_normals(words, dtype) if kind == "normal" else _uniforms(words, dtype))
    return torch.cat(cols, -1)[:, :dim].to(dtype)
