"""Twins of the discrete slot laws (poisson, binomial) of ``rsfast::slot_sample``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .fastmath import fast_exp, fast_log1p
from .philox import (
    u01_f52,
)
from .slot_sample import SLOT_TWINS, SlotWords

__all__ = ["stirling_correction", "poisson_log_pmf", "u01_u32", "pow_small", "binomial_p0"]

# ---------------------------------------------------------------- slot mode: Poisson, Binomial
#
# Twins of PoissonLaw / BinomialLaw (csrc/ops/slot_sample/laws/discrete.h), operation by operation
# in float64 (the kernels compute in double for both dtypes). The inversion cells use the kernels'
# own fast_exp / fast_log1p (bit for bit); elsewhere torch's log/log1p stand in for the C library's,
# so a rejection decision can differ only where a comparison is within an ulp.

_DISCRETE_INVERSION_MAX = 10.0  # kPoissonInversionMax, kBinomialInversionMax
_BINOMIAL_POW_MAX = 128.0  # kBinomialPowMax
_INVERSION_MAX_CELLS = 120  # kInversionMaxCells
_HALF_LOG_2PI = 0.91893853320467274178
_FC_TABLE = (
    8.10614667953272611e-02, 4.13406959554092970e-02, 2.76779256849983384e-02, 2.07906721037650934e-02,
    1.66446911898211931e-02, 1.38761288230707484e-02, 1.18967099458917695e-02, 1.04112652619720962e-02,
    9.25546218271273285e-03, 8.33056343336287079e-03, 7.57367548795184059e-03, 6.94284010720952992e-03,
    6.40899418800420714e-03, 5.95137011275884750e-03, 5.55473355196280105e-03, 5.20765591960964044e-03,
)  # fmt: skip


def stirling_correction(k: Tensor) -> Tensor:
    """Twin of stirling_correction: log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi)/2], float64 k."""
    table = torch.tensor(_FC_TABLE, dtype=torch.float64, device=k.device)
    r = 1.0 / (k + 1.0)
    r2 = r * r
    series = r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 * (1.0 / 1680))))
    return torch.where(k < 16.0, table[k.clamp(0, 15).long()], series)


def poisson_log_pmf(k: Tensor, lam: Tensor) -> Tensor:
    """Twin of poisson_log_pmf: log of the Poisson(lam) pmf at integer-valued float64 k >= 0."""
    k1 = k + 1.0
    t = torch.where(k > 0.0, k * torch.log1p((lam - k1) / k1), torch.zeros_like(k))
    return t + (k1 - lam) - 0.5 * torch.log(k1) - _HALF_LOG_2PI - stirling_correction(k)


def u01_u32(w: Tensor) -> Tensor:
    """(0, 1) from one word, float64: (w + 1/2) 2^-32 (u01_u32 in slot_sample/laws/discrete.h)."""
    return (w.to(torch.float64) + 0.5) * 2.0**-32


def _discrete_uniforms(w: SlotWords) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """The uniforms of one try of a discrete law: (inversion u, [(u, v) per rejection candidate])."""
    if w.dtype == torch.float32:
        u = [u01_u32(w.word(i)) for i in range(4)]
        return u[0], [(u[0], u[1]), (u[2], u[3])]
    u0, u1 = u01_f52(w.word(0), w.word(1)), u01_f52(w.word(2), w.word(3))
    return u0, [(u0, u1)]


def _inversion(u: Tensor, p0: Tensor, factor: Callable[[int], Tensor]) -> tuple[Tensor, Tensor]:
    """Twin of inversion_table + inversion_search, vectorised: the first j < kInversionMaxCells with
    u <= F_j, where F_j = F_{j-1} + p_j, p_j = p_{j-1} * factor(j - 1), F_0 = p_0; (k, found)."""
    k = torch.zeros_like(u)
    found = torch.zeros_like(u, dtype=torch.bool)
    p, f = p0, p0
    for j in range(_INVERSION_MAX_CELLS):
        if j:
            p = p * factor(j - 1)
            f = f + p
        hit = ~found & (u <= f)
        k = torch.where(hit, float(j), k)
        found = found | hit
        if bool(found.all()):
            break
    return k, found


def _poisson_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of poisson_prepare, elementwise over [m] rates."""
    lam = params[0].to(torch.float64)
    b = 0.931 + 2.53 * torch.sqrt(lam)
    mode = torch.where(lam > 0.0, torch.where(lam < _DISCRETE_INVERSION_MAX, 1, 2), 0)
    return dict(
        lam=lam,
        mode=mode,
        p0=fast_exp(-lam),
        b=b,
        a=-0.059 + 0.02483 * b,
        inv_alpha=1.1239 + 1.1328 / (b - 3.4),
        vr=0.9277 - 3.6224 / (b - 2.0),
    )


def _ptrs(q: dict[str, Tensor], u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Twin of poisson_ptrs: (k, accepted) of one candidate."""
    u = u - 0.5
    us = 0.5 - u.abs()
    k = torch.floor((2.0 * q["a"] / us + q["b"]) * u + q["lam"] + 0.43)
    squeeze = (us >= 0.07) & (v <= q["vr"])
    kk = k.clamp_min(0.0)
    exact = torch.log(v * q["inv_alpha"] / (q["a"] / (us * us) + q["b"])) <= poisson_log_pmf(kk, q["lam"])
    ok = squeeze | ((k >= 0.0) & ~((us < 0.013) & (v > us)) & exact)
    return k, ok


def _poisson_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of PoissonLaw::try_once: (value, accepted) of one try of each element."""
    mode, lam = q["mode"], q["lam"]
    u_inv, cands = _discrete_uniforms(w)
    k = torch.zeros_like(lam)
    ok = mode == 0
    inv = mode == 1
    if bool(inv.any()):
        idx = inv.nonzero().squeeze(1)
        lam_i = lam[idx]
        ki, fi = _inversion(u_inv[idx], q["p0"][idx], lambda j: lam_i * (1.0 / (j + 1)))
        k[idx], ok[idx] = ki, fi
    rej = mode == 2
    if bool(rej.any()):
        idx = rej.nonzero().squeeze(1)
        qi = {n: q[n][idx] for n in ("lam", "a", "b", "inv_alpha", "vr")}
        kr, okr = _ptrs(qi, cands[0][0][idx], cands[0][1][idx])
        for u, v in cands[1:]:
            k2, ok2 = _ptrs(qi, u[idx], v[idx])
            kr, okr = torch.where(okr, kr, k2), okr | ok2
        k[idx], ok[idx] = kr, okr
    return k.to(w.dtype), ok


def pow_small(q: Tensor, n: Tensor) -> Tensor:
    """Twin of pow_small: q^n for integer-valued float64 n in [0, 128), the product of q^(2^b)
    over the bits of n, in the kernel's order."""
    bits = n.to(torch.int64)
    acc = torch.ones_like(q)
    s = q
    for b in range(7):
        acc = acc * torch.where((bits >> b) & 1 == 1, s, torch.ones_like(s))
        s = s * s
    return acc


def binomial_p0(n: Tensor, p: Tensor) -> Tensor:
    """Twin of binomial_p0: (1 - p)^n for p <= 1/2, n p < 10 (float64); by squaring below n = 128,
    else exp(n log1p(-p))."""
    by_squares = pow_small(1.0 - p, torch.where(n < _BINOMIAL_POW_MAX, n, torch.zeros_like(n)))
    return torch.where(n < _BINOMIAL_POW_MAX, by_squares, fast_exp(n * fast_log1p(-p)))


def _binomial_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of binomial_prepare, elementwise over [m] (total_count, probs) rows."""
    n, prob = (p.to(torch.float64) for p in params)
    flip = prob > 0.5
    p = torch.where(flip, 1.0 - prob, prob)
    qq = 1.0 - p
    const = (n <= 0.0) | (p <= 0.0)
    mode = torch.where(const, 0, torch.where(n * p < _DISCRETE_INVERSION_MAX, 1, 2))
    r = p / qq
    spq = torch.sqrt(n * p * qq)
    b = 1.15 + 2.53 * spq
    m = torch.floor((n + 1.0) * p)
    h = (
        (m + 0.5) * torch.log((m + 1.0) / (r * (n - m + 1.0)))
        + stirling_correction(m)
        + stirling_correction((n - m).clamp_min(0.0))
    )
    return dict(
        n=n,
        p=p,
        r=r,
        flip=flip,
        mode=mode,
        value=torch.where(flip, n, torch.zeros_like(n)),
        p0=binomial_p0(n, p),
        b=b,
        a=-0.0873 + 0.0248 * b + 0.01 * p,
        c=n * p + 0.5,
        vr=0.92 - 4.2 / b,
        alpha=(2.83 + 5.1 / b) * spq,
        m=m,
        h=h,
    )


def _btrs(q: dict[str, Tensor], u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Twin of binomial_btrs: (k, accepted) of one candidate."""
    n = q["n"]
    u = u - 0.5
    us = 0.5 - u.abs()
    k = torch.floor((2.0 * q["a"] / us + q["b"]) * u + q["c"])
    squeeze = (us >= 0.07) & (v <= q["vr"])
    inside = (k >= 0.0) & (k <= n)
    kk = torch.minimum(k.clamp_min(0.0), n)
    lv = torch.log(v * q["alpha"] / (q["a"] / (us * us) + q["b"]))
    nk = n - kk + 1.0
    bound = (
        q["h"]
        + (n + 1.0) * torch.log1p((kk - q["m"]) / nk)
        + (kk + 0.5) * torch.log(q["r"] * nk / (kk + 1.0))
        - stirling_correction(kk)
        - stirling_correction(n - kk)
    )
    return k, squeeze | (inside & (lv <= bound))


def _binomial_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of BinomialLaw::try_once: (value, accepted) of one try of each element."""
    mode, n = q["mode"], q["n"]
    u_inv, cands = _discrete_uniforms(w)
    k = q["value"].clone()
    ok = mode == 0
    inv = mode == 1
    if bool(inv.any()):
        idx = inv.nonzero().squeeze(1)
        n_i, r_i = n[idx], q["r"][idx]
        ki, fi = _inversion(u_inv[idx], q["p0"][idx], lambda j: (n_i - float(j)) * (1.0 / (j + 1)) * r_i)
        k[idx], ok[idx] = ki, fi
    rej = mode == 2
    if bool(rej.any()):
        idx = rej.nonzero().squeeze(1)
        qi = {name: q[name][idx] for name in ("n", "a", "b", "c", "vr", "alpha", "m", "h", "r")}
        kr, okr = _btrs(qi, cands[0][0][idx], cands[0][1][idx])
        for u, v in cands[1:]:
            k2, ok2 = _btrs(qi, u[idx], v[idx])
            kr, okr = torch.where(okr, kr, k2), okr | ok2
        k[idx], ok[idx] = kr, okr
    k = torch.where((mode != 0) & q["flip"], n - k, k)
    return k.to(w.dtype), ok


SLOT_TWINS["poisson"] = ((1, 1), _poisson_prepare, _poisson_try)
SLOT_TWINS["binomial"] = ((1, 1), _binomial_prepare, _binomial_try)
