"""Twin of ``rsfast::slot_sample`` and of its continuous laws (truncated_normal, von_mises, gamma, beta);
the discrete laws are in :mod:`rsfast.reference.slot_discrete`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .fastmath import fast_atan2_pos, fast_expf, fast_logf, fast_sincos_turns, sqrtf
from .philox import (
    _MASK32,
    philox4x32_10,
    u01_f23,
    u01_f52,
    u01_log_arg,
)

__all__ = ["SLOT_MAX_TRIES", "SlotWords", "SLOT_TWINS", "slot_sample"]

# Twins of the slot kernels (csrc/ops/slot_sample/core.h): try t of element i reads Philox
# blocks K*t .. K*t + K - 1 of stream i. The float32 helpers below repeat the kernels'
# branch-free float arithmetic operation by operation (fast_logf, sincos, exp, atan), so that
# float32 twins agree with the kernels bit for bit; float64 twins use torch's log/sin/cos/atan2
# where the kernels use the C library (agreement to an ulp, and a decision can flip only where
# a comparison is that close).

#: Bound on the tries of one element (kSlotMaxTries in slot_sample/core.h).
SLOT_MAX_TRIES = 10_000


class SlotWords:
    """Twin of SlotWords<K> (slot_sample/core.h): the words [m, 4K] of one try of m elements, and the value
    maps."""

    def __init__(self, seed: int, elems: Tensor, offset: int, t: int, blocks: int, dtype: torch.dtype):
        self.dtype = dtype
        key = (seed & _MASK32, (seed >> 32) & _MASK32)
        cols = []
        for b in range(blocks):
            ctr = torch.stack(
                [
                    torch.full_like(elems, blocks * t + b),
                    elems & _MASK32,
                    (elems >> 32) & _MASK32,
                    torch.full_like(elems, offset),
                ],
                -1,
            )
            cols.append(philox4x32_10(ctr, key))
        self.w = torch.cat(cols, -1)

    def word(self, i: int) -> Tensor:
        return self.w[:, i]

    def uniform(self, i: int) -> Tensor:
        if self.dtype == torch.float32:
            return u01_f23(self.w[:, i])
        return u01_f52(self.w[:, i], self.w[:, i + 1])

    def exponential(self, i: int) -> Tensor:
        if self.dtype == torch.float32:
            return -fast_logf(u01_log_arg(self.w[:, i]))
        return -torch.log(u01_f52(self.w[:, i], self.w[:, i + 1]))

    def normal_pair(self, i: int) -> tuple[Tensor, Tensor]:
        if self.dtype == torch.float32:
            rad = sqrtf(-2.0 * fast_logf(u01_log_arg(self.w[:, i])))
            s, c = fast_sincos_turns(u01_f23(self.w[:, i + 1]))
            return rad * c, rad * s
        u = u01_f52(self.w[:, i], self.w[:, i + 1])
        a = 2 * math.pi * u01_f52(self.w[:, i + 2], self.w[:, i + 3])
        rad = torch.sqrt(-2.0 * torch.log(u))
        return rad * torch.cos(a), rad * torch.sin(a)


def _truncated_normal_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of TruncatedNormalLaw::prepare (slot_sample/laws/truncated_normal.h), elementwise over [m]
    parameter rows."""
    loc, scale, low, high = params
    a = (low - loc) / scale
    b = (high - loc) / scale
    flip = b <= 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    sign = torch.where(flip, -1.0, 1.0).to(loc.dtype)
    a_pos = a.clamp_min(0)
    sq = a_pos * a_pos + 4.0
    root = torch.where(
        a_pos > 1e6, a_pos + 2.0 / a_pos, sqrtf(sq) if sq.dtype == torch.float32 else sq.sqrt()
    )
    lam = (a_pos + root) / 2.0
    bound = 2.0 / (a_pos + root) * torch.exp(-a_pos / (a_pos + root) + 0.5)
    central = a < 0
    mode = torch.where(
        central,
        torch.where(b - a > 2.5066282746310002, 0, 1),
        torch.where(b - a < bound, 1, 2),
    )
    s = torch.where(central, torch.zeros_like(a), a)
    lam = torch.where(central, torch.ones_like(lam), lam)
    return dict(loc=loc, scale=scale, low=low, high=high, a=a, b=b, s=s, lam=lam, sign=sign, mode=mode)


def _truncated_normal_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of TruncatedNormalLaw::try_once: (value, accepted) of one try of each element."""
    a, b, s, lam, mode = q["a"], q["b"], q["s"], q["lam"], q["mode"]

    def uni(u: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        z = a + (b - a) * u
        return z, e > (z - s) * (z + s) * 0.5

    def exp(e0: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        z = a + e0 / lam
        d = z - lam
        return z, (z <= b) & (e > d * d * 0.5)

    z0, z1 = w.normal_pair(0)
    n0 = (z0 >= a) & (z0 <= b)
    n1 = (z1 >= a) & (z1 <= b)
    if w.dtype == torch.float32:
        ua, oua = uni(w.uniform(0), w.exponential(1))
        xa, oxa = exp(w.exponential(0), w.exponential(1))
    else:
        ua, oua = uni(w.uniform(0), w.exponential(2))
        xa, oxa = exp(w.exponential(0), w.exponential(2))
    za = torch.where(mode == 0, z0, torch.where(mode == 1, ua, xa))
    oka = torch.where(mode == 0, n0, torch.where(mode == 1, oua, oxa))
    zb, okb = z1, (mode == 0) & n1
    z = torch.where(oka, za, zb)
    v = q["loc"] + q["scale"] * (q["sign"] * z)
    v = torch.minimum(torch.maximum(v, q["low"]), q["high"])
    return v, oka | okb


def _pi(dtype: torch.dtype) -> Tensor:
    return torch.tensor(math.pi, dtype=dtype)


def _sqrt(x: Tensor) -> Tensor:
    return sqrtf(x) if x.dtype == torch.float32 else torch.sqrt(x)


def _log(x: Tensor) -> Tensor:
    return fast_logf(x) if x.dtype == torch.float32 else torch.log(x)


def _exp(x: Tensor) -> Tensor:
    return fast_expf(x) if x.dtype == torch.float32 else torch.exp(x)


def _von_mises_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of VonMisesLaw::prepare (slot_sample/laws/von_mises.h)."""
    loc, k = params
    pi = _pi(loc.dtype)
    two_pi = 2 * pi
    far = loc.abs() >= 1048576  # exact fmod there, as the kernel
    loc = torch.where(far, torch.fmod(loc, two_pi), loc - two_pi * torch.round(loc / two_pi))
    loc = torch.where(loc >= pi, loc - two_pi, loc)
    loc = torch.where(loc < -pi, loc + two_pi, loc)
    s = torch.where(k > 1, 2 * k * _sqrt(1 + 0.25 / (k * k)), _sqrt(1 + 4 * k * k))
    tau = 1 + s
    sq = _sqrt(2 * tau)
    den = tau + sq
    rho = 2 * k / den
    omr = (1 + 1 / (s + 2 * k) + sq) / den
    return dict(loc=loc, A=omr * omr, B=4 * rho, K1=(1 + rho) * (1 + rho) * den / 4, q=omr / (1 + rho))


def _von_mises_finish(q: dict[str, Tensor], half: Tensor, negative: Tensor) -> Tensor:
    pi = _pi(half.dtype)
    theta = 2 * half
    x = q["loc"] + torch.where(negative, -theta, theta)
    x = torch.where(x >= pi, x - 2 * pi, x)
    return torch.where(x < -pi, x + 2 * pi, x)


def _von_mises_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of VonMisesLaw::try_once."""
    if w.dtype == torch.float32:
        s, c = fast_sincos_turns(u01_f23(w.word(0)) * 0.25)
        u2 = u01_f23(w.word(1))
        cc = q["K1"] * q["A"] / (q["A"] + q["B"] * (c * c))
        ok = (cc * (2.0 - cc) > u2) | (fast_logf(cc / u2) + 1.0 - cc >= 0.0)
        ha = fast_atan2_pos(q["q"] * s, c)
        half = torch.where((w.word(0) & 1) != 0, -ha, ha)
        return _von_mises_finish(q, half, torch.zeros_like(ok)), ok
    h = 1.57079632679489661923 * w.uniform(0)
    u2 = w.uniform(2)
    s, c = torch.sin(h), torch.cos(h)
    cc = q["K1"] * q["A"] / (q["A"] + q["B"] * (c * c))
    ok = (cc * (2.0 - cc) > u2) | (torch.log(cc / u2) + 1.0 - cc >= 0.0)
    return _von_mises_finish(q, torch.atan2(q["q"] * s, c), (w.word(0) & 1) != 0), ok


def _mt_prepare(a: Tensor) -> dict[str, Tensor]:
    """Twin of mt_prepare (slot_sample/laws/gamma.h): Marsaglia-Tsang constants of concentration a."""
    boost = a < 1
    d = torch.where(boost, a + 1, a) - 1 / 3
    return dict(
        d=d, c=1 / _sqrt(9 * d), boost=boost, boost_scale=torch.where(boost, 1 / a, torch.zeros_like(a))
    )


def _mt_try(m: dict[str, Tensor], z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Twin of mt_try: (accepted, d v)."""
    v = 1 + m["c"] * z
    v3 = v * v * v
    z2 = z * z
    g = m["d"] * v3
    if z.dtype == torch.float32:
        ok = (u < 1.0 - 0.0331 * (z2 * z2)) | (fast_logf(u) < 0.5 * z2 + m["d"] * (1.0 - v3 + fast_logf(v3)))
    else:
        safe = torch.where(v3 > 0, v3, torch.ones_like(v3))
        ok = (u < 1.0 - 0.0331 * (z2 * z2)) | (
            torch.log(u) < 0.5 * z2 + m["d"] * (1.0 - v3 + torch.log(safe))
        )
    return (v > 0) & ok, g


def _mt_log(m: dict[str, Tensor], g: Tensor, log_ub: Tensor) -> Tensor:
    return _log(g) + m["boost_scale"] * log_ub


def _clamp_below(v: Tensor, lo: float) -> Tensor:
    return torch.where(v < lo, torch.full_like(v, lo), v)


def _gamma_prepare(params: list[Tensor]) -> dict:
    concentration, rate = params
    return dict(m=_mt_prepare(concentration), rate=rate)


def _gamma_try(q: dict, w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of GammaLaw::try_once."""
    z, _ = w.normal_pair(0)
    if w.dtype == torch.float32:
        u = u01_f23(w.word(2))
        log_ub = fast_logf(u01_log_arg(w.word(3)))
    else:
        u = u01_f52(w.word(4), w.word(5))
        log_ub = torch.log(u01_f52(w.word(6), w.word(7)))
    m = q["m"]
    ok, g = _mt_try(m, z, u)
    boosted = _exp(_mt_log(m, g, log_ub))
    v = torch.where(m["boost"], boosted, g) / q["rate"]
    return _clamp_below(v, torch.finfo(v.dtype).tiny), ok


def _beta_share(x_larger: Tensor, sx: Tensor, sy: Tensor) -> Tensor:
    """Twin of beta_share: x from its shares sx = X / (X + Y), sy = Y / (X + Y), the larger as 1 - the
    smaller (relative precision near 0 and near 1)."""
    return torch.where(x_larger, 1 - sy, sx)


def _beta_prepare(params: list[Tensor]) -> dict:
    c1, c0 = params
    return dict(mx=_mt_prepare(c1), my=_mt_prepare(c0))


def _beta_try(q: dict, w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of BetaLaw::try_once."""
    zx, zy = w.normal_pair(0)
    if w.dtype == torch.float32:
        ux, uy = u01_f23(w.word(2)), u01_f23(w.word(3))
        lbx, lby = fast_logf(u01_log_arg(w.word(4))), fast_logf(u01_log_arg(w.word(5)))
    else:
        ux, uy = u01_f52(w.word(4), w.word(5)), u01_f52(w.word(6), w.word(7))
        lbx, lby = torch.log(u01_f52(w.word(8), w.word(9))), torch.log(u01_f52(w.word(10), w.word(11)))
    mx, my = q["mx"], q["my"]
    okx, gx = _mt_try(mx, zx, ux)
    oky, gy = _mt_try(my, zy, uy)
    s = gx + gy
    direct = _beta_share(gx > gy, gx / s, gy / s)
    e = _exp(_mt_log(my, gy, lby) - _mt_log(mx, gx, lbx))
    viaexp = _beta_share(e < 1, 1 / (1 + e), e / (1 + e))
    v = torch.where(mx["boost"] | my["boost"], viaexp, direct)
    fi = torch.finfo(v.dtype)
    v = _clamp_below(v, fi.tiny)
    below_one = 1 - fi.eps / 2
    v = torch.where(v > below_one, torch.full_like(v, below_one), v)
    return v, okx & oky


#: law -> (Philox blocks per try for (float32, float64), prepare twin, try twin).
SLOT_TWINS: dict[str, tuple[tuple[int, int], Callable, Callable]] = {
    "truncated_normal": ((1, 1), _truncated_normal_prepare, _truncated_normal_try),
    "von_mises": ((1, 1), _von_mises_prepare, _von_mises_try),
    "gamma": ((1, 2), _gamma_prepare, _gamma_try),
    "beta": ((2, 3), _beta_prepare, _beta_try),
}


def slot_sample(
    law: str, params: list[Tensor], sample_shape: list[int] | tuple[int, ...], seed: int, offset: int
) -> tuple[Tensor, Tensor]:
    """Twin of :func:`rsfast.ops.slot_sample` (same streams): rounds t = 0, 1, ... of try t over the
    elements still pending. Returns (samples [*sample_shape, *batch_shape], exhausted int64 [1])."""
    blocks2, prepare, try_once = SLOT_TWINS[law]
    batch = torch.broadcast_shapes(*(p.shape for p in params))
    flat = [p.expand(batch).reshape(-1) for p in params]
    dtype, device = flat[0].dtype, flat[0].device
    blocks = blocks2[dtype == torch.float64]
    bsize = max(1, math.prod(batch))
    n = math.prod(sample_shape) * math.prod(batch)
    out = torch.full((n,), math.nan, dtype=dtype, device=device)
    pending = torch.arange(n, device=device, dtype=torch.int64)
    for t in range(SLOT_MAX_TRIES):
        if pending.numel() == 0:
            break
        rows = pending % bsize
        q = prepare([p[rows] for p in flat])
        x, ok = try_once(q, SlotWords(seed, pending, offset, t, blocks, dtype))
        out[pending[ok]] = x[ok]
        pending = pending[~ok]
    exhausted = torch.tensor([pending.numel()], dtype=torch.int64, device=device)
    return out.reshape(*sample_shape, *batch), exhausted
