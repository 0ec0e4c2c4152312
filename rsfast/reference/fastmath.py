"""The kernels' branch-free math (csrc/include/rsfast/fastmath.h) operation by operation in torch:
float32 fast_logf, fast_expf, sincos in turns, atan2, Box-Muller; float64 fast_exp, fast_log,
fast_log1p. Twins that use these agree with the kernels bit for bit."""

from __future__ import annotations

import torch
from torch import Tensor

from .philox import u01_f23, u01_log_arg

__all__ = [
    "fast_logf",
    "fast_sincos_turns",
    "box_muller_f32",
    "sqrtf",
    "fast_expf",
    "fast_atan2_pos",
    "fast_exp",
    "fast_log",
    "fast_log1p",
]


def _f32(t: Tensor, value: float) -> Tensor:
    """A float32 constant as the kernels round it (a C float literal)."""
    return torch.full_like(t, value, dtype=torch.float32)


def fast_logf(x: Tensor) -> Tensor:
    """Torch twin of ``fast_logf`` (csrc/include/rsfast/fastmath.h), op for op in float32, so that the
    result is bit-identical to the kernels' (they are compiled without FMA contraction)."""
    bits = x.view(torch.int32)
    e = ((bits >> 23) & 0xFF) - 126
    m = ((bits & 0x007FFFFF) | 0x3F000000).view(torch.float32)  # x > 0: the sign bit is clear
    small = m < 0.70710678118654752440
    e = torch.where(small, e - 1, e)
    m = torch.where(small, m + m - 1.0, m - 1.0)
    z = m * m
    y = _f32(m, 7.0376836292e-2)
    for c in (
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    ):
        y = y * m + c
    y = y * m * z
    fe = e.to(torch.float32)
    y = y + (-2.12194440e-4) * fe
    y = y + (-0.5) * z
    return m + y + 0.693359375 * fe


def fast_sincos_turns(t: Tensor) -> tuple[Tensor, Tensor]:
    """Torch twin of ``fast_sincos_turns``: (sin, cos) of 2 pi t for t in [0, 1], bit-identical."""
    q = (4.0 * t + 0.5).to(torch.int32)
    a = (t - 0.25 * q.to(torch.float32)) * 6.28318530717958647692
    z = a * a
    sa = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * a + a
    ca = (
        ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0
    )
    swap = (q & 1) != 0
    s0 = torch.where(swap, ca, sa)
    c0 = torch.where(swap, sa, ca)
    s = torch.where((q & 2) != 0, -s0, s0)
    c = torch.where(((q + 1) & 2) != 0, -c0, c0)
    return s, c


def box_muller_f32(r0: Tensor, r1: Tensor) -> tuple[Tensor, Tensor]:
    """Twin of the float32 ``box_muller`` of fastmath.h: two words -> (rad cos, rad sin), bit-identical."""
    # torch's float32 sqrt is not correctly rounded on every CPU build; sqrtf (and the float32 sqrt of
    # a double, which is exact before its one rounding) is.
    rad = torch.sqrt((-2.0 * fast_logf(u01_log_arg(r0))).double()).float()
    s, c = fast_sincos_turns(u01_f23(r1))
    return rad * c, rad * s


def sqrtf(x: Tensor) -> Tensor:
    """Correctly rounded float32 square root (as sqrtf in C): computed in float64 and rounded once
    (torch's float32 sqrt can be an ulp off)."""
    return torch.sqrt(x.double()).float()


def fast_expf(x: Tensor) -> Tensor:
    """Twin of fast_expf (fastmath.h), float32, bit for bit."""
    x = x.clamp(-103.9, 88.72)
    n = (x * 1.44269504088896341 + torch.where(x >= 0, 0.5, -0.5).to(torch.float32)).to(torch.int32)
    nf = n.to(torch.float32)
    r = x - nf * 0.693359375
    r = r + nf * 2.12194440e-4
    z = r * r
    p = torch.full_like(r, 1.9875691500e-4)
    for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = p * r + c
    e = p * z + r + 1.0
    n1 = torch.div(n, 2, rounding_mode="trunc")
    n2 = n - n1
    return e * ((n1 + 127) << 23).view(torch.float32) * ((n2 + 127) << 23).view(torch.float32)


def fast_atan2_pos(y: Tensor, x: Tensor) -> Tensor:
    """Twin of fast_atan2_pos (slot_sample/core.h): atan(y / x) for float32 y, x >= 0."""
    swap = y > x
    num = torch.where(swap, x, y)
    den = torch.where(swap, y, x)
    t = num / den
    mid = t > 0.41421356237309504880
    base = torch.where(mid, 0.78539816339744830962, 0.0).to(torch.float32)
    t = torch.where(mid, (t - 1.0) / (t + 1.0), t)
    z = t * t
    p = (
        ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1
    ) * z * t + t
    a = base + p
    return torch.where(swap, 1.57079632679489661923 - a, a)


# ---------------------------------------------------------------- float64

_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (
    3.00198505138664455042e-6,
    2.52448340349684104192e-3,
    2.27265548208155028766e-1,
    2.00000000000000000009e0,
)
# c_j = 2 / (2 j + 1), j = 1 .. 10: the series of log m in s^2 (fast_log, Estrin's scheme)
_LOG_C = tuple(2.0 / (2 * j + 1) for j in range(1, 11))
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10


def fast_exp(x: Tensor) -> Tensor:
    """Twin of fast_exp: exp(x) in float64 for x in [-38, 0], bit for bit."""
    t = x * 1.4426950408889634073599
    n = torch.trunc(t - 0.5)
    r = x - n * 6.93145751953125e-1
    r = r - n * 1.42860682030941723212e-6
    z = r * r
    p = r * ((_EXP_P[0] * z + _EXP_P[1]) * z + _EXP_P[2])
    q = ((_EXP_Q[0] * z + _EXP_Q[1]) * z + _EXP_Q[2]) * z + _EXP_Q[3]
    y = 1.0 + 2.0 * (p / (q - p))
    scale = ((n + 4503599627371519.0).view(torch.int64) << 52).view(torch.float64)  # 2^n
    return y * scale


def fast_log(x: Tensor) -> Tensor:
    """Twin of fast_log: log(x) for positive normal float64 x, bit for bit."""
    ix = x.view(torch.int64)
    # every step is a non-negative int64 (x > 0): the kernel's logical shifts
    kb = (ix - 0x3FE6A09E667F3BCD + 0x3FF0000000000000) >> 52
    m = (ix - (kb << 52) + 0x3FF0000000000000).view(torch.float64)
    k = (kb | 0x4330000000000000).view(torch.float64) - 4503599627371519.0
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    c = _LOG_C
    z2 = z * z
    z4 = z2 * z2
    z8 = z4 * z4
    a01, a23, a45, a67, a89 = (c[i] + c[i + 1] * z for i in range(0, 10, 2))
    r = ((a01 + a23 * z2) + (a45 + a67 * z2) * z4 + a89 * z8) * z
    lm = f - s * (f - r)
    return k * _LN2_HI + (lm + k * _LN2_LO)


def fast_log1p(x: Tensor) -> Tensor:
    """Twin of fast_log1p: log(1 + x) in float64 for x in [-1/2, 1], bit for bit."""
    u = 1.0 + x
    d = u - 1.0
    return fast_log(u) + (x - d) * (1.0 - d)
