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
