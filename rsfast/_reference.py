"""Pure-torch twins of the native kernels, and the baseline samplers.

* :func:`propose` and :func:`accept_compact` implement the same streams as the
  kernels (Philox4x32-10 written with int64 tensor arithmetic, the same
  word-to-uniform maps, Box-Muller with torch's log/sin/cos): the test oracle.
  They agree with the kernels to float rounding (a decision can differ only
  where log u and log p - log q - log M agree to an ulp).
* :func:`sample_torch_loop` is the carefully vectorised torch sampler (torch's
  own RNG, batches sized by the acceptance seen, mask, concatenate) and
  :func:`sample_per_sample` the textbook loop (one candidate at a time): the
  benchmark baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

from . import ops
from .proposals import MixtureNormal, Normal, Proposal, Uniform

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


def propose(kind: str, params: list[Tensor], m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
    """Twin of :func:`rsfast.ops.propose` (same streams)."""
    ref = params[-1]
    dtype, device = ref.dtype, ref.device
    rows = torch.arange(m, device=device, dtype=torch.int64)
    d = ops.derived_params(kind, params)
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


def log_uniform_accept(seed: int, m: int, offset: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """log u of rows 0..m-1 as accept_compact draws them."""
    words = philox_block(seed, torch.arange(m, device=device), offset, 0)
    if dtype == torch.float32:
        return torch.log(u01_log_arg(words[..., 0]))
    return torch.log(u01_f52(words[..., 0], words[..., 1]))


def accept_compact(
    x: Tensor,
    log_p: Tensor,
    log_q: Tensor,
    log_M: float,
    seed: int,
    offset: int,
    out: Tensor,
    counts: Tensor,
    max_log_ratio: Tensor,
) -> None:
    """Twin of :func:`rsfast.ops.accept_compact` (same streams, same mutations)."""
    m = x.shape[0]
    ratio = log_p - log_q
    nan = torch.isnan(ratio)
    posinf = log_p == math.inf
    log_M_t = torch.tensor(log_M, dtype=log_p.dtype).item()  # rounded to the dtype, as the kernel does
    log_u = log_uniform_accept(seed, m, offset, log_p.dtype, x.device)
    accept = ~nan & ~posinf & (log_u < ratio - log_M_t)
    over = ~nan & (ratio > log_M_t)
    kept = x[accept]
    base = int(counts[0])
    room = max(0, out.shape[0] - base)
    out[base : base + min(room, kept.shape[0])] = kept[:room]
    counts += torch.tensor(
        [int(accept.sum()), int(nan.sum()), int(over.sum()), int(posinf.sum())],
        dtype=torch.int64,
        device=counts.device,
    )
    if m:
        seen = torch.where(nan, torch.full_like(ratio, -math.inf), ratio).max().to(torch.float64)
        max_log_ratio.copy_(torch.maximum(max_log_ratio, seen.reshape(1)))


# ---------------------------------------------------------------- baselines


def _torch_draw(
    proposal: Proposal | Distribution, m: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """m candidates and log q with torch's own RNG, computed the cheapest way torch allows."""
    if isinstance(proposal, Normal):
        z = torch.randn(
            (m, proposal.loc.shape[0]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        const = -torch.log(proposal.scale).sum() - 0.5 * proposal.loc.shape[0] * _LOG_2PI
        return proposal.loc + proposal.scale * z, const - 0.5 * (z * z).sum(-1)
    if isinstance(proposal, Uniform):
        u = torch.rand(
            (m, proposal.low.shape[0]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        width = proposal.high - proposal.low
        return proposal.low + width * u, (-torch.log(width).sum()).expand(m)
    if isinstance(proposal, MixtureNormal):
        comp = torch.multinomial(torch.softmax(proposal.logits, 0), m, replacement=True, generator=generator)
        z = torch.randn(
            (m, proposal.loc.shape[1]), generator=generator, dtype=proposal.dtype, device=proposal.device
        )
        x = proposal.loc[comp] + proposal.scale[comp] * z
        return x, proposal.log_prob(x)
    x = proposal.sample((m,))
    lq = proposal.log_prob(x)
    return x, (lq.reshape(m, -1).sum(1) if lq.dim() > 1 else lq)


def sample_torch_loop(
    log_target: Callable[[Tensor], Tensor],
    proposal: Proposal | Distribution,
    n: int,
    log_M: float,
    generator: torch.Generator | None = None,
    max_proposals: int = 10**9,
) -> Tensor:
    """The vectorised pure-torch rejection sampler: batches sized from the acceptance seen so far
    (10 % overshoot), accept by ``log u < log p - log q - log M``, keep by boolean mask, concatenate."""
    chunks: list[Tensor] = []
    got = used = 0
    acc = 0.0
    with torch.no_grad():
        while got < n:
            if used >= max_proposals:
                raise RuntimeError(f"sample_torch_loop: no {n} samples within {max_proposals} proposals")
            need = n - got
            m = int(need / acc * 1.1) + 64 if acc > 0 else max(4 * need, 2 * used, 1024)
            x, lq = _torch_draw(proposal, m, generator)
            lp = log_target(x)
            u = torch.rand(m, generator=generator, dtype=lp.dtype, device=lp.device)
            keep = torch.log(u) < lp - lq - log_M
            kept = x[keep]
            chunks.append(kept)
            got += kept.shape[0]
            used += m
            acc = got / used
    return torch.cat(chunks)[:n]


def sample_per_sample(
    log_target: Callable[[Tensor], Tensor],
    proposal: Proposal | Distribution,
    n: int,
    log_M: float,
    generator: torch.Generator | None = None,
    max_proposals: int = 10**8,
) -> Tensor:
    """The textbook loop: draw one x, accept when u * M * q(x) <= p(x), repeat until n accepted."""
    M = math.exp(log_M)
    out = []
    used = 0
    with torch.no_grad():
        while len(out) < n:
            if used >= max_proposals:
                raise RuntimeError(f"sample_per_sample: no {n} samples within {max_proposals} proposals")
            x, lq = _torch_draw(proposal, 1, generator)
            used += 1
            u = float(torch.rand((), generator=generator, device=generator.device if generator else None))
            if u * M * math.exp(float(lq[0])) <= math.exp(float(log_target(x)[0])):
                out.append(x[0])
    return torch.stack(out) if out else torch.empty((0,))


# ---------------------------------------------------------------- perturb_

#: Counter word 3 of every perturb draw (kPerturbTag in csrc/include/rsfast/perturb.h): "pert".
PERTURB_TAG = 0x70657274


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


def perturb_noise(seed: int, index: int, numel: int, device: torch.device | str = "cpu") -> Tensor:
    """The float32 noise z [numel] that :func:`rsfast.ops.perturb_` adds (times scale) to the flat
    elements of the tensor at position ``index`` of its list (see the layout in perturb.h):
    element j takes normal (j // 16) % 4 of stream 16 (j // 64) + j % 16, Philox counter
    (index, stream, PERTURB_TAG). Bit-identical to the kernels."""
    tiles = (numel + 63) // 64
    streams = torch.arange(16 * tiles, dtype=torch.int64, device=device)
    w = philox_block(seed, streams, PERTURB_TAG, index)
    z0, z1 = box_muller_f32(w[:, 0], w[:, 1])
    z2, z3 = box_muller_f32(w[:, 2], w[:, 3])
    z = torch.stack([z0, z1, z2, z3], -1)  # [16 tiles, 4]: stream s = 16 t + l, normal k
    return z.view(tiles, 16, 4).permute(0, 2, 1).reshape(-1)[:numel]


def perturb_(tensors: list[Tensor] | Tensor, seed: int, scale: float) -> None:
    """Twin of :func:`rsfast.ops.perturb_`: the same noise and arithmetic in torch ops (float32 and the
    16-bit types bit-identical; float64 to a rounding of the product), with full-size temporaries.
    Contiguity is not required here (the noise follows the row-major element index)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    with torch.no_grad():
        for i, t in enumerate(tensors):
            if t.numel() == 0:
                continue
            z = perturb_noise(seed, i, t.numel(), t.device).view(t.shape)
            if t.dtype == torch.float64:
                t.copy_(t + z.double() * float(scale))
            elif t.dtype == torch.float32:
                t.copy_(t + z * float(scale))  # two rounded ops (torch's add with alpha may fuse)
            else:
                t.copy_((t.float() + z * float(scale)).to(t.dtype))


# ---------------------------------------------------------------- accept_compact_rows


def accept_compact_rows(
    log_ratio: Tensor,
    log_M: float | Tensor,
    tensors: list[Tensor],
    seed: int,
    offset: int = 0,
    *,
    sync: bool = True,
) -> tuple[list[Tensor], Tensor]:
    """Twin of :func:`rsfast.ops.accept_compact_rows` (same streams, same outputs): a boolean mask from the
    kernel's uniforms, then ``t[keep]`` per tensor (zero-padded to B rows when ``sync=False``)."""
    lr = log_ratio.float() if log_ratio.dtype in (torch.float16, torch.bfloat16) else log_ratio
    if isinstance(log_M, Tensor):
        lm = log_M.to(lr.dtype).reshape(())
    else:
        lm = torch.tensor(log_M, dtype=lr.dtype, device=lr.device)  # rounded to the dtype, as the kernel does
    b = lr.shape[0]
    keep = log_uniform_accept(seed, b, offset, lr.dtype, lr.device) < lr - lm
    count = keep.sum().to(torch.int64)
    outs = []
    for t in tensors:
        kept = t[keep]
        if not sync:
            kept = torch.cat(
                [kept, torch.zeros((b - kept.shape[0], *t.shape[1:]), dtype=t.dtype, device=t.device)]
            )
        outs.append(kept)
    return outs, count


# ---------------------------------------------------------------- fused_sample


def fused_layout(kind: str, dim: int, dtype: torch.dtype) -> tuple[int, int, int]:
    """(component words, value words, Philox blocks) of one try of :func:`rsfast.ops.fused_sample` (see
    csrc/include/rsfast/fused.h); the accept words follow the value words."""
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
    :func:`rsfast.ops.fused_target_params`: the largest component term plus log sum exp(term - largest)."""
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
    q = ops.derived_params(kind, params)
    p_loc, p_inv, p_c = ops.fused_target_params(logits, loc, scale)
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


# ---------------------------------------------------------------- slot mode (issue 3)
#
# Twins of the slot kernels (csrc/include/rsfast/slot.h): try t of element i reads Philox
# blocks K*t .. K*t + K - 1 of stream i. The float32 helpers below repeat the kernels'
# branch-free float arithmetic operation by operation (fast_logf, sincos, exp, atan), so that
# float32 twins agree with the kernels bit for bit; float64 twins use torch's log/sin/cos/atan2
# where the kernels use the C library (agreement to an ulp, and a decision can flip only where
# a comparison is that close).

#: Bound on the tries of one element (kSlotMaxTries in slot.h).
SLOT_MAX_TRIES = 10_000


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
    """Twin of fast_atan2_pos (slot.h): atan(y / x) for float32 y, x >= 0."""
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


class SlotWords:
    """Twin of SlotWords<K> (slot.h): the words [m, 4K] of one try of m elements, and the value maps."""

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


def _tn_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of TruncatedNormalLaw::prepare (laws_truncnorm.h), elementwise over [m] parameter rows."""
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


def _tn_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
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


def _vm_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of VonMisesLaw::prepare (laws_vonmises.h)."""
    loc, k = params
    pi = _pi(loc.dtype)
    two_pi = 2 * pi
    loc = loc - two_pi * torch.round(loc / two_pi)
    loc = torch.where(loc >= pi, loc - two_pi, loc)
    loc = torch.where(loc < -pi, loc + two_pi, loc)
    s = torch.where(k > 1, 2 * k * _sqrt(1 + 0.25 / (k * k)), _sqrt(1 + 4 * k * k))
    tau = 1 + s
    sq = _sqrt(2 * tau)
    den = tau + sq
    rho = 2 * k / den
    omr = (1 + 1 / (s + 2 * k) + sq) / den
    return dict(loc=loc, A=omr * omr, B=4 * rho, K1=(1 + rho) * (1 + rho) * den / 4, q=omr / (1 + rho))


def _vm_finish(q: dict[str, Tensor], half: Tensor, negative: Tensor) -> Tensor:
    pi = _pi(half.dtype)
    theta = 2 * half
    x = q["loc"] + torch.where(negative, -theta, theta)
    x = torch.where(x >= pi, x - 2 * pi, x)
    return torch.where(x < -pi, x + 2 * pi, x)


def _vm_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of VonMisesLaw::try_once."""
    if w.dtype == torch.float32:
        s, c = fast_sincos_turns(u01_f23(w.word(0)) * 0.25)
        u2 = u01_f23(w.word(1))
        cc = q["K1"] * q["A"] / (q["A"] + q["B"] * (c * c))
        ok = (cc * (2.0 - cc) > u2) | (fast_logf(cc / u2) + 1.0 - cc >= 0.0)
        ha = fast_atan2_pos(q["q"] * s, c)
        half = torch.where((w.word(0) & 1) != 0, -ha, ha)
        return _vm_finish(q, half, torch.zeros_like(ok)), ok
    h = 1.57079632679489661923 * w.uniform(0)
    u2 = w.uniform(2)
    s, c = torch.sin(h), torch.cos(h)
    cc = q["K1"] * q["A"] / (q["A"] + q["B"] * (c * c))
    ok = (cc * (2.0 - cc) > u2) | (torch.log(cc / u2) + 1.0 - cc >= 0.0)
    return _vm_finish(q, torch.atan2(q["q"] * s, c), (w.word(0) & 1) != 0), ok


def _mt_prepare(a: Tensor) -> dict[str, Tensor]:
    """Twin of mt_prepare (laws_gamma.h): Marsaglia-Tsang constants of concentration a."""
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
    direct = gx / (gx + gy)
    viaexp = 1 / (1 + _exp(_mt_log(my, gy, lby) - _mt_log(mx, gx, lbx)))
    v = torch.where(mx["boost"] | my["boost"], viaexp, direct)
    fi = torch.finfo(v.dtype)
    v = _clamp_below(v, fi.tiny)
    below_one = 1 - fi.eps / 2
    v = torch.where(v > below_one, torch.full_like(v, below_one), v)
    return v, okx & oky


#: law -> (Philox blocks per try for (float32, float64), prepare twin, try twin).
SLOT_TWINS: dict[str, tuple[tuple[int, int], Callable, Callable]] = {
    "truncated_normal": ((1, 1), _tn_prepare, _tn_try),
    "von_mises": ((1, 1), _vm_prepare, _vm_try),
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


# ---------------------------------------------------------------- group selection (rsfast.select)
#
# Vectorised pure-torch twins of the select kernels (the test oracle) and the benchmark baselines:
# :func:`rso_torch` (torch's own RNG) and the per-row Python loops ``*_per_row`` written the way the
# published code writes them (one group at a time, Python lists and dicts).

_F32 = torch.float32


def group_padded(rewards: Tensor, offsets: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Padded view of dense [P, N] or ragged (flat [M] + offsets [P + 1]) groups.

    Returns (values [P, W], valid bool [P, W], sizes int64 [P], flat int64 [P, W]) where W is the largest
    group, ``flat`` the index into the flattened input (0 where invalid) and padding sits at the end of a row.
    """
    if offsets is None:
        p, n = rewards.shape
        flat = torch.arange(p * n, device=rewards.device).reshape(p, n)
        sizes = torch.full((p,), n, dtype=torch.int64, device=rewards.device)
        return rewards, torch.ones((p, n), dtype=torch.bool, device=rewards.device), sizes, flat
    sizes = offsets[1:] - offsets[:-1]
    p = sizes.shape[0]
    w = int(sizes.max()) if p else 0
    col = torch.arange(w, device=rewards.device)
    valid = col < sizes[:, None]
    flat = torch.where(valid, offsets[:-1, None] + col, torch.zeros_like(col))
    vals = (
        rewards[flat] if rewards.numel() else torch.zeros((p, w), dtype=rewards.dtype, device=rewards.device)
    )
    return vals, valid, sizes, flat


def best_of_n(rewards: Tensor, k: int, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.best_of_n``: [P, k] within-group indices by reward descending, ties to the
    lower index, -1 where a group has fewer than k candidates."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    # Invalid slots (padding, at the end of a row) and NaN rank below every value; a stable descending
    # sort keeps equal rewards in index order.
    key = torch.where(valid & ~torch.isnan(vals), vals, torch.full_like(vals, -math.inf))
    rank_nan = (~valid).to(torch.int8) * 2 + torch.isnan(vals).to(torch.int8)
    order = torch.sort(rank_nan, dim=1, stable=True).indices
    order = torch.gather(
        order, 1, torch.sort(torch.gather(key, 1, order), dim=1, descending=True, stable=True).indices
    )
    out = torch.full((p, k), -1, dtype=torch.int64, device=rewards.device)
    kk = min(k, w)
    top = order[:, :kk]
    out[:, :kk] = torch.where(top < sizes[:, None], top, torch.full_like(top, -1))
    return out


_EXP_P = (1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1)
_EXP_Q = (
    3.00198505138664455042e-6,
    2.52448340349684104192e-3,
    2.27265548208155028766e-1,
    2.00000000000000000009e0,
)


def select_exp(x: Tensor) -> Tensor:
    """exp(x) in float64 for x in [-38, 0], bit-identical to the kernels' ``select_exp``."""
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


def _rso_accept_prob(vals: Tensor, rmax: Tensor, beta: float) -> Tensor:
    """exp((r - r_max) / beta) as the kernels compute it (0 where the accept can never happen)."""
    if vals.dtype == _F32:
        x = (vals - rmax) / torch.tensor(beta, dtype=_F32, device=vals.device)
        live = x >= -17.0
        return torch.where(live, fast_expf(torch.where(live, x, torch.zeros_like(x))), torch.zeros_like(x))
    x = (vals - rmax) / beta
    live = x >= -38.0
    return torch.where(live, select_exp(torch.where(live, x, torch.zeros_like(x))), torch.zeros_like(x))


def _rso_rounds(
    rewards: Tensor, k: int, beta: float, offsets: Tensor | None, uniforms: Callable[[int, int], Tensor]
) -> Tensor:
    """RSO (Liu et al. 2024, Algorithm 1) over all groups at once; ``uniforms(round, width)`` gives the
    [P, width] uniforms of a round."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    dev = vals.device
    out = torch.full((p, k), -1, dtype=torch.int64, device=dev)
    count = torch.zeros(p, dtype=torch.int64, device=dev)
    remaining = valid & ~torch.isnan(vals)
    col = torch.arange(w, device=dev).expand(p, w)
    neg_inf = torch.full_like(vals, -math.inf)
    for rnd in range(min(k, w)):
        live = (count < k) & remaining.any(1)
        if not bool(live.any()):
            break
        rmax = torch.where(remaining, vals, neg_inf).max(1, keepdim=True).values if w else vals[:, :1]
        prob = _rso_accept_prob(vals, rmax, beta)
        u = uniforms(rnd, w)
        hit = remaining & live[:, None] & ((vals == rmax) | (u < prob))
        # Visit in index order and stop the round once k are accepted.
        pos = count[:, None] + torch.cumsum(hit, 1) - 1
        take = hit & (pos < k)
        rows = torch.nonzero(take, as_tuple=True)
        out[rows[0], pos[take]] = col[take]
        remaining &= ~take
        count += take.sum(1)
    return out


def rso_block_layout(dtype: torch.dtype) -> int:
    """Uniforms per Philox block in rso: 4 (float32, 23-bit) or 2 (float64, 52-bit)."""
    return 4 if dtype == _F32 else 2


def rso(
    rewards: Tensor, k: int, beta: float, seed: int, offset: int, offsets: Tensor | None = None
) -> Tensor:
    """Twin of ``rsfast.select.rso`` with the kernels' streams: group g's uniform for candidate c in round t
    is lane c % V of Philox block ``t * ceil(n_g / V) + c // V`` of stream g at ``offset`` (V uniforms per
    block, :func:`rso_block_layout`)."""
    vals, valid, sizes, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    v = rso_block_layout(rewards.dtype)
    nb = (sizes + v - 1) // v
    groups = torch.arange(p, device=rewards.device, dtype=torch.int64)
    key = (seed & _MASK32, (seed >> 32) & _MASK32)

    def uniforms(rnd: int, width: int) -> Tensor:
        nblk = (width + v - 1) // v
        blocks = rnd * nb[:, None] + torch.arange(nblk, device=rewards.device)
        ctr = torch.stack(
            [
                blocks & _MASK32,
                (groups[:, None] & _MASK32).expand_as(blocks),
                ((groups[:, None] >> 32) & _MASK32).expand_as(blocks),
                torch.full_like(blocks, offset),
            ],
            -1,
        )
        u = _uniforms(philox4x32_10(ctr, key), rewards.dtype).to(rewards.dtype)
        return u.reshape(p, nblk * v)[:, :width]

    return _rso_rounds(rewards, k, beta, offsets, uniforms)


def rso_torch(
    rewards: Tensor,
    k: int,
    beta: float,
    offsets: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The vectorised torch RSO (the benchmark baseline): the paper's rounds for all groups at once, one
    [P, W] batch of ``torch.rand`` and ``torch.exp`` per round, the round cut at k by a cumulative sum,
    accepted indices scattered in acceptance order; stops when every group is done (one check per round)."""
    vals, valid, _, _ = group_padded(rewards, offsets)
    p, w = vals.shape
    dev = vals.device
    out = torch.full((p, k + 1), -1, dtype=torch.int64, device=dev)  # column k takes the rejected writes
    count = torch.zeros((p, 1), dtype=torch.int64, device=dev)
    remaining = valid.clone()
    col = torch.arange(w, device=dev).expand(p, w)
    dump = torch.full((p, w), k, dtype=torch.int64, device=dev)
    for _ in range(min(k, w)):
        rmax = torch.where(remaining, vals, -math.inf).amax(1, keepdim=True)
        u = torch.rand((p, w), generator=generator, dtype=vals.dtype, device=dev)
        # The clamp keeps exp out of the (slow) subnormal range; it decides nothing: exp(-80) < any u.
        hit = remaining & (u < torch.exp(((vals - rmax) / beta).clamp_(min=-80.0)))
        pos = count + torch.cumsum(hit, 1) - 1
        take = hit & (pos < k)
        out.scatter_(1, torch.where(take, pos, dump), col)
        remaining &= ~take
        count += take.sum(1, keepdim=True)
        if not bool(((count < k) & remaining.any(1, keepdim=True)).any()):
            break
    return out[:, :k]


def threshold(
    rewards: Tensor, min_reward: float, max_per_group: int | None = None, offsets: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Twin of ``rsfast.select.threshold``: (flat indices [S] of rewards >= min_reward in flat order, at most
    ``max_per_group`` per group, the first ones; per-group counts int64 [P])."""
    vals, valid, _, flat = group_padded(rewards, offsets)
    hit = valid & (vals >= min_reward)
    if max_per_group is not None:
        hit &= torch.cumsum(hit, 1) <= max_per_group
    return flat[hit], hit.sum(1)


top_fraction_count = ops.top_fraction_count


def top_fraction(rewards: Tensor, fraction: float, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.top_fraction``: the flat indices of the ceil(fraction * M) highest rewards of
    the whole batch (ties to the lower index), in increasing index order."""
    flat = rewards.reshape(-1)
    count = top_fraction_count(fraction, flat.shape[0])
    order = torch.sort(flat, descending=True, stable=True).indices[:count]
    return torch.sort(order).values


def filter_groups(metric: Tensor, offsets: Tensor | None = None) -> Tensor:
    """Twin of ``rsfast.select.filter_groups``: bool [P], True where a group's metric takes two or more
    distinct values (groups of 0 or 1 candidates are False)."""
    vals, valid, _, _ = group_padded(metric, offsets)
    if vals.shape[1] == 0:
        return torch.zeros(vals.shape[0], dtype=torch.bool, device=metric.device)
    return ((vals != vals[:, :1]) & valid).any(1)


def dedupe(keys: Tensor, groups: Tensor) -> Tensor:
    """Twin of ``rsfast.select.dedupe``: bool [M], True at the first occurrence of each (group, key)."""
    m = keys.shape[0]
    keep = torch.zeros(m, dtype=torch.bool, device=keys.device)
    if m == 0:
        return keep
    _, inverse = torch.unique(torch.stack([groups, keys], 1), dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), m, dtype=torch.int64, device=keys.device)
    first.scatter_reduce_(0, inverse, torch.arange(m, device=keys.device), reduce="amin")
    keep[first] = True
    return keep


# Per-row Python loops, the way the published code selects (TRL's best-of-n, the RSO paper's
# conduct_rejection_sampling, RAFT's sort of the batch, DAPO's per-group std filter): the slow baselines and
# a second, independent oracle. Groups are Python lists of floats.


def best_of_n_per_row(groups: list[list[float]], k: int) -> list[list[int]]:
    """Per group: indices of the k best rewards, descending, ties to the lower index; -1 padding."""
    out = []
    for r in groups:
        best = sorted(range(len(r)), key=lambda i: (-r[i], i))[:k]
        out.append(best + [-1] * (k - len(best)))
    return out


def rso_per_row(groups: list[list[float]], k: int, beta: float, rng: Callable[[], float]) -> list[list[int]]:
    """The RSO paper's algorithm, one group at a time: while fewer than k accepted, r_max over the
    candidates not yet accepted, visit the rest in index order and accept each with probability
    exp((r - r_max) / beta), stopping the round once k are accepted. ``rng()`` is a uniform in [0, 1)."""
    out = []
    for r in groups:
        candidates = dict(enumerate(r))
        accepted: list[int] = []
        while len(accepted) < k and candidates:
            r_max = max(candidates.values())
            taken = []
            for c, rc in candidates.items():
                if rng() < math.exp((rc - r_max) / beta):
                    accepted.append(c)
                    taken.append(c)
                    if len(accepted) == k:
                        break
            for c in taken:
                del candidates[c]
        out.append(accepted + [-1] * (k - len(accepted)))
    return out


def threshold_per_row(
    groups: list[list[float]], min_reward: float, max_per_group: int | None = None
) -> list[int]:
    """Flat indices of rewards >= min_reward, group by group, at most max_per_group each."""
    out, base = [], 0
    for r in groups:
        hits = [base + i for i, x in enumerate(r) if x >= min_reward]
        out += hits if max_per_group is None else hits[:max_per_group]
        base += len(r)
    return out


def top_fraction_per_row(groups: list[list[float]], fraction: float) -> list[int]:
    """RAFT's global rule: sort the whole batch by reward, keep the top ceil(fraction * M), in index order."""
    flat = [x for r in groups for x in r]
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
    return sorted(order[: top_fraction_count(fraction, len(flat))])


def filter_groups_per_row(groups: list[list[float]]) -> list[bool]:
    """DAPO's dynamic-sampling filter: keep a group whose metric is not the same for every candidate."""
    return [len(set(r)) > 1 for r in groups]


def dedupe_per_row(keys: list[int], groups: list[int]) -> list[bool]:
    """True at the first occurrence of each (group, key), one element at a time with a set."""
    seen: set[tuple[int, int]] = set()
    keep = []
    for g, key in zip(groups, keys):
        keep.append((g, key) not in seen)
        seen.add((g, key))
    return keep


# ---------------------------------------------------------------- slot mode: Poisson, Binomial (issue 3)
#
# Twins of PoissonLaw / BinomialLaw (csrc/include/rsfast/laws_discrete.h), operation by operation
# in float64 (the kernels compute in double for both dtypes); torch's log/exp/log1p stand in for
# the C library's, so a decision can differ only where a comparison is within an ulp.

_DISCRETE_INVERSION_MAX = 10.0  # kPoissonInversionMax, kBinomialInversionMax
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
    """(0, 1) from one word, float64: (w + 1/2) 2^-32 (u01_u32 in laws_discrete.h)."""
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


def _pois_prepare(params: list[Tensor]) -> dict[str, Tensor]:
    """Twin of poisson_prepare, elementwise over [m] rates."""
    lam = params[0].to(torch.float64)
    b = 0.931 + 2.53 * torch.sqrt(lam)
    mode = torch.where(lam > 0.0, torch.where(lam < _DISCRETE_INVERSION_MAX, 1, 2), 0)
    return dict(
        lam=lam,
        mode=mode,
        p0=torch.exp(-lam),
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


def _pois_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of PoissonLaw::try_once: (value, accepted) of one try of each element."""
    mode, lam = q["mode"], q["lam"]
    u_inv, cands = _discrete_uniforms(w)
    k = torch.zeros_like(lam)
    ok = mode == 0
    inv = mode == 1
    if bool(inv.any()):
        idx = inv.nonzero().squeeze(1)
        lam_i = lam[idx]
        ki, fi = _inversion(u_inv[idx], q["p0"][idx], lambda j: lam_i / float(j + 1))  # fmt: skip
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


def _binom_prepare(params: list[Tensor]) -> dict[str, Tensor]:
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
        p0=torch.exp(n * torch.log1p(-p)),
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


def _binom_try(q: dict[str, Tensor], w: SlotWords) -> tuple[Tensor, Tensor]:
    """Twin of BinomialLaw::try_once: (value, accepted) of one try of each element."""
    mode, n = q["mode"], q["n"]
    u_inv, cands = _discrete_uniforms(w)
    k = q["value"].clone()
    ok = mode == 0
    inv = mode == 1
    if bool(inv.any()):
        idx = inv.nonzero().squeeze(1)
        n_i, r_i = n[idx], q["r"][idx]
        ki, fi = _inversion(u_inv[idx], q["p0"][idx], lambda j: (n_i - float(j)) / float(j + 1) * r_i)
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


SLOT_TWINS["poisson"] = ((1, 1), _pois_prepare, _pois_try)
SLOT_TWINS["binomial"] = ((1, 1), _binom_prepare, _binom_try)
