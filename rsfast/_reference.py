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


def _f32(v: float) -> Tensor:
    return torch.tensor(v, dtype=_F32)


# Cephes expf coefficients; the kernel (select.h, select_expf) runs the same float32 operations in the
# same order, so both give the same bits.
_EXPF_POLY = (
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)


def select_expf(x: Tensor) -> Tensor:
    """exp(x) in float32 for x in [-18, 0], bit-identical to the kernels' ``select_expf``."""
    dev = x.device
    t = x * _f32(1.44269504088896341).to(dev)
    n = torch.trunc(t - _f32(0.5).to(dev))
    r = x - n * _f32(0.693359375).to(dev)
    r = r - n * _f32(-2.12194440e-4).to(dev)
    z = r * r
    y = _f32(_EXPF_POLY[0]).to(dev).expand_as(r)
    for c in _EXPF_POLY[1:]:
        y = y * r + _f32(c).to(dev)
    y = y * z + r + _f32(1.0).to(dev)
    scale = ((n.to(torch.int32) + 127) << 23).view(_F32)
    return y * scale


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
        x = (vals - rmax) / _f32(beta).to(vals.device)
        live = x >= -17.0
        return torch.where(live, select_expf(torch.where(live, x, torch.zeros_like(x))), torch.zeros_like(x))
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
