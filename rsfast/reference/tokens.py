"""Pure-torch twins of :mod:`rsfast.tokens`: the sort-based filtered law (the oracle, float64), a sampler
drawing from it and a vectorised verification. Imports nothing from the kernels' modules.
The speed baselines are in :mod:`rsfast.baselines`.

The law (the rule the kernels share): values ``x`` are the rows as float32; logits give
``z = (x - max x) / T`` in float32 and weights ``exp(z)`` in float64; probs give weights ``x``.
top-k keeps ``x >= `` the k-th largest value; top-p keeps the values whose strictly larger values carry
less than ``p`` of the (top-k survivors' in order "hf", whole row's in "joint") mass; min-p keeps
``z >= log(min_p)`` (logits) or ``x >= min_p * max x`` (probs). ``T = 0``: one-hot on the first argmax.
"""

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["tokens_bad_rows", "tokens_filtered_probs", "tokens_sample", "tokens_verify"]


def _rows(value: object, b: int, dtype: torch.dtype, default: float) -> Tensor:
    if value is None:
        value = default
    if isinstance(value, Tensor):
        return value.reshape(-1).expand(b).to(dtype=dtype, device="cpu")
    return torch.full((b,), value, dtype=dtype)


def tokens_bad_rows(x: Tensor, input: str = "logits") -> Tensor:
    """[B] bool: rows with NaN, +inf logits, all -inf logits, or negative / inf / all-zero probabilities."""
    x = x.float()
    nan = torch.isnan(x).any(-1)
    if input == "logits":
        return nan | (x == math.inf).any(-1) | ~(x > -math.inf).any(-1)
    return nan | (x < 0).any(-1) | (x == math.inf).any(-1) | ~(x > 0).any(-1)


def tokens_filtered_probs(
    x: Tensor,
    temperature: object = 1.0,
    top_k: object = None,
    top_p: object = None,
    min_p: object = None,
    input: str = "logits",
    order: str = "hf",
) -> tuple[Tensor, Tensor]:
    """(law [B, V] float64 on the CPU, valid [B]): the filtered, renormalised distribution of each row,
    by sorting. Invalid rows (bad values or parameters) are all zero."""
    x = x.detach().float().cpu()
    b, v = x.shape
    t = _rows(temperature, b, torch.float32, 1.0)
    k = _rows(top_k, b, torch.int64, 0)
    p = _rows(top_p, b, torch.float64, 1.0)
    mp = _rows(min_p, b, torch.float64, 0.0)
    valid = (
        ~tokens_bad_rows(x, input) & (t >= 0) & torch.isfinite(t) & (p > 0) & (p <= 1) & (mp >= 0) & (mp <= 1)
    )
    if input == "probs":
        valid &= (t == 0) | (t == 1)
    law = torch.zeros((b, v), dtype=torch.float64)
    for r in range(b):
        if not bool(valid[r]):
            continue
        row = x[r]
        if float(t[r]) == 0.0:
            law[r, int(torch.argmax(row))] = 1.0
            continue
        m = row.max()
        if input == "logits":
            z = (row - m) / t[r]  # float32, as the kernels
            w = torch.exp(z.double())
            keep_min = (
                z.double() >= math.log(float(mp[r])) if float(mp[r]) > 0 else torch.ones(v, dtype=torch.bool)
            )
        else:
            w = row.double()
            keep_min = w >= float(mp[r]) * float(m)
        keep = torch.ones(v, dtype=torch.bool)
        kk = int(k[r])
        if 1 <= kk < v:
            kth = torch.sort(row, descending=True).values[kk - 1]
            keep &= row >= kth
        pp = float(p[r])
        if pp < 1.0:
            wk = torch.where(keep, w, torch.zeros_like(w)) if order == "hf" else w
            vals, idx = torch.sort(row, descending=True)
            ws = wk[idx]
            excl = torch.cumsum(ws, 0) - ws
            # mass strictly above a value: the exclusive sum at its group's first position
            neg = -vals
            first = torch.searchsorted(neg.contiguous(), neg.contiguous(), right=False)
            above = excl[first]
            keep_sorted = above < pp * wk.sum()
            keep_p = torch.zeros(v, dtype=torch.bool)
            keep_p[idx] = keep_sorted
            keep &= keep_p
        keep &= keep_min
        wk = torch.where(keep, w, torch.zeros_like(w))
        law[r] = wk / wk.sum()
    return law, valid


def tokens_sample(law: Tensor, valid: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Ids [B] drawn from a law of :func:`tokens_filtered_probs` (invalid rows: 0), by torch.multinomial."""
    safe = torch.where(valid[:, None], law, torch.ones_like(law))
    ids = torch.multinomial(safe, 1, generator=generator)[:, 0]
    return torch.where(valid, ids, torch.zeros_like(ids))


def tokens_verify(
    draft: Tensor,
    target_law: Tensor,
    draft_probs: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[Tensor, Tensor]:
    """Vectorised chain verification over dense laws: ``draft`` [B, S], ``target_law`` [B, S + 1, V]
    (filtered, normalised), ``draft_probs`` [B, S, V] or None (one-hot). Returns (ids [B, S + 1] padded with
    -1, num_accepted [B])."""
    b, s = draft.shape
    v = target_law.shape[-1]
    p = target_law[:, :s]
    q = draft_probs if draft_probs is not None else torch.nn.functional.one_hot(draft, v).to(p.dtype)
    pd = p.gather(2, draft[..., None])[..., 0]
    qd = q.gather(2, draft[..., None])[..., 0]
    u = torch.rand((b, s), dtype=p.dtype, generator=generator, device=p.device)
    accept = u * qd < pd
    n_acc = torch.cumprod(accept.to(torch.int64), 1).sum(1)
    resid = (p - q).clamp_min(0)
    resid = torch.cat([resid, target_law[:, s:]], 1)  # position S: the bonus row
    rows = resid[torch.arange(b), n_acc]
    mass = rows.sum(-1, keepdim=True)
    rows = torch.where(mass > 0, rows, target_law[torch.arange(b), n_acc])
    last = torch.multinomial(rows, 1, generator=generator)[:, 0]
    pos = torch.arange(s + 1, device=draft.device)
    ids = torch.where(pos[None, :s] < n_acc[:, None], draft, torch.full_like(draft, -1))
    ids = torch.cat([ids, torch.full((b, 1), -1, dtype=ids.dtype, device=ids.device)], 1)
    ids[torch.arange(b), n_acc] = last
    return ids, n_acc
