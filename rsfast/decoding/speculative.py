"""Speculative decoding: a draft model proposes S tokens, one forward of the target scores them all, and
:func:`rsfast.tokens.verify` keeps a prefix of them plus one token of its own, so that every emitted token
follows the target's filtered distribution exactly (Leviathan et al. 2023; Chen et al. 2023).

One round, for every row of the batch at once:

1. the draft model is fed the row's last emitted token (and, when the previous round accepted all S
   drafts, the last draft, which it had not seen) and proposes d_0 ... d_{S-1}, each drawn from its
   filtered distribution q (kept, [B, S, V], for the verification);
2. the target is fed [last, d_0, ..., d_{S-1}] in one call: S + 1 rows of logits, filtered into p;
3. ``verify`` accepts d_j with probability min(1, p/q) up to the first rejection, then draws the
   replacement from max(0, p - q) (or a bonus token from the last row when all were accepted);
4. in both caches the rejected drafts stay, masked out; each row's positions count only what it kept.

Rows advance by different numbers of tokens; the caches grow by S + 1 slots a round whatever was
accepted, and the masks say which slots are text. Randomness: drafts draw with the row's draft seed at
offset (position of the draft in the completion), verification with the row's verify seed at offset
(position of the round's first token): a fresh Philox stream per round, and the same tokens for a prompt
whatever batch it is in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import tokens
from .._checks import SamplingError
from .args import mix64
from .model_io import ModelCall, Stream, left_pad

__all__ = ["speculative_batch"]

_DRAFT_TAG, _VERIFY_TAG = 0x6472616674, 0x766572696679  # "draft", "verify": separate seed streams


def _derived(row_seeds: Tensor, tag: int) -> Tensor:
    return torch.tensor([mix64(int(s), tag) for s in row_seeds.tolist()], dtype=torch.int64).to(
        row_seeds.device
    )


def speculative_batch(
    call: ModelCall,
    draft_call: ModelCall,
    prompts: list[list[int]],
    row_seeds: Tensor,
    a: Any,
    s: int,
    bar: Any,
    greedy_draft: bool = False,
) -> tuple[Tensor, Tensor, Tensor, int, list[int]]:
    """Decode one batch speculatively; returns (tokens [R, T], logprobs [R, T], lengths [R], target
    forwards, [accepted, proposed, emitted, row-forwards]) with R = P * n."""
    dev = call.device
    greedy = a.temperature == 0
    kw = a.sample_kw()
    target, draft = Stream(call), Stream(draft_call)
    head, valid = left_pad([p[:-1] for p in prompts], a.pad, dev)
    for stream in (target, draft):
        stream.start(len(prompts), dev)
        if head.shape[1] > 0:
            stream.feed(head, valid)
        stream.repeat(a.n)
    rows = len(prompts) * a.n
    last = torch.tensor([p[-1] for p in prompts], dtype=torch.int64, device=dev).repeat_interleave(a.n)
    carry = torch.zeros(rows, dtype=torch.int64, device=dev)  # the last draft of a fully accepted round
    carry_ok = torch.zeros(rows, dtype=torch.bool, device=dev)
    draft_seeds, verify_seeds = _derived(row_seeds, _DRAFT_TAG), _derived(row_seeds, _VERIFY_TAG)
    t_max = a.max_new_tokens
    out = torch.full((rows, t_max), a.pad, dtype=torch.int64, device=dev)
    lps = torch.zeros((rows, t_max), dtype=torch.float32, device=dev)
    lengths = torch.zeros(rows, dtype=torch.int64, device=dev)
    where = torch.arange(rows, device=dev)  # stream row -> output row
    alive = torch.ones(rows, dtype=torch.bool, device=dev)
    counts = [0, 0, 0, 0]
    forwards = 0
    cols = torch.arange(s + 1, device=dev)
    for _ in range(t_max):  # every round emits at least one token per live row
        b = where.shape[0]
        pos = lengths[where]
        drafts = torch.empty((b, s), dtype=torch.int64, device=dev)
        q = None
        x, xv = torch.stack([carry, last], 1), torch.stack([carry_ok, torch.ones_like(carry_ok)], 1)
        for j in range(s):
            logits = draft.feed(x, xv)[:, -1]
            if greedy or greedy_draft:  # a deterministic draft: q is one-hot on it
                d = logits.argmax(-1)
            else:
                qj = tokens.renorm_probs(logits, input="logits", **kw)
                if q is None:
                    q = torch.empty((b, s, qj.shape[-1]), dtype=qj.dtype, device=dev)
                q[:, j] = qj
                d = tokens.sample(qj, input="probs", seeds=draft_seeds[where], offsets=pos + j).ids
            drafts[:, j] = d
            x, xv = d.unsqueeze(1), None
        tl = target.feed(
            torch.cat([last.unsqueeze(1), drafts], 1),
            None,
            keep=s + 1,
        )
        forwards += 1
        if greedy:
            v = tokens.verify(drafts, tl, None, mode="greedy", seeds=verify_seeds[where], offsets=pos)
            p = None
        else:
            p = tokens.renorm_probs(tl.reshape(b * (s + 1), -1), input="logits", **kw).view(b, s + 1, -1)
            v = tokens.verify(drafts, p, q, input="probs", seeds=verify_seeds[where], offsets=pos)
        if not bool(v.valid.all()):
            raise SamplingError(
                "the target's or the draft's logits are not a distribution (NaN, +inf or all -inf)"
            )
        acc, emitted = v.num_accepted, v.num_emitted
        target.discard(s, acc)  # of [last, d_0..d_{S-1}], last and the accepted drafts count
        draft.discard(s - 1, acc.clamp(max=s - 1))  # it was fed d_0..d_{S-2}
        carry, carry_ok = drafts[:, s - 1], acc == s
        # Emit ids[:, :e], cut at max_new_tokens and after the first EOS.
        keep = (cols.unsqueeze(0) < emitted.unsqueeze(1)) & (pos.unsqueeze(1) + cols < t_max)
        ids = v.ids.clamp(min=0)
        stop = torch.zeros(b, dtype=torch.bool, device=dev)
        if a.eos is not None:
            is_eos = keep & torch.isin(ids, a.eos)
            first = torch.where(is_eos, cols, s + 1).amin(1)
            keep &= cols.unsqueeze(0) <= first.unsqueeze(1)
            stop = first <= s
        r, c = keep.nonzero(as_tuple=True)
        out[where[r], pos[r] + c] = ids[r, c]
        if p is not None:
            lps[where[r], pos[r] + c] = p[r, c, ids[r, c]].log()
        n_kept = keep.sum(1)
        lengths[where] = pos + n_kept
        counts[0] += int(acc.sum())
        counts[1] += b * s
        counts[2] += int(n_kept.sum())
        counts[3] += b
        if bar is not None:
            bar.update(int(n_kept.sum()))
        last = v.ids.gather(1, (emitted - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        alive = ~stop & (lengths[where] < t_max)
        if not bool(alive.all()):
            if not bool(alive.any()):
                break
            live = alive.nonzero().squeeze(1)
            for stream in (target, draft):
                stream.select(live)
            where, last, carry, carry_ok = where[live], last[live], carry[live], carry_ok[live]
    return out, lps, lengths, forwards, counts
