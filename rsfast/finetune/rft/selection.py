"""The selection step of a round: dedupe, the selection rule, the DPO pairs, and the records of what was
accepted (on the rank that generated the candidates; ``top_fraction`` ranks all ranks' candidates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ... import select as _select
from .common import _mix64
from .distributed import _all_gather_objects
from .options import SelectionOptions


@dataclass
class _Group:
    """One prompt's candidates in a round (local to the rank that generated them)."""

    index: int  # global index of the prompt in the round (pass order, then position)
    prompt: list[int]
    reference: Any
    completions: list[list[int]]
    rewards: list[float]


#: (group, sample index, completion, reward) of an accepted candidate.
Accepted = tuple[_Group, int, list[int], float]
#: (group, chosen sample index, rejected sample index) of a DPO pair.
Pair = tuple[_Group, int, int]


def _select_candidates(
    groups: list[_Group],
    round_seed: int,
    opts: SelectionOptions,
    pairs_per_prompt: int,
    rank: int,
    world_size: int,
) -> tuple[list[Accepted], int, list[Pair]]:
    """Dedupe and select; return (accepted (group, sample index, completion, reward), duplicates
    removed, DPO pairs (group, chosen index, rejected index))."""
    n = opts.samples_per_prompt
    if not groups and opts.selection != "top_fraction":
        return [], 0, []
    rewards = torch.tensor([g.rewards for g in groups], dtype=torch.float64).reshape(len(groups), n)
    if opts.dedupe and groups:
        keys = torch.tensor([opts.dedupe_key(c) for g in groups for c in g.completions], dtype=torch.int64)
        owner = torch.arange(len(groups), dtype=torch.int64).repeat_interleave(n)
        keep = _select.dedupe(keys, owner)
    else:
        keep = torch.ones(len(groups) * n, dtype=torch.bool)
    duplicates = int((~keep).sum())
    flat = rewards.reshape(-1)[keep]
    sample_of = torch.arange(n).repeat(len(groups))[keep]  # within-group index of each survivor
    counts = keep.view(len(groups), n).sum(dim=1) if groups else torch.zeros(0, dtype=torch.int64)
    offsets = torch.zeros(len(groups) + 1, dtype=torch.int64)
    offsets[1:] = counts.cumsum(0)

    chosen: list[tuple[int, int]] = []  # (group position, survivor flat index)
    if opts.selection in ("verifier", "threshold"):
        bar = opts.pass_threshold if opts.selection == "verifier" else opts.min_reward
        idx, cnt = _select.threshold(flat, bar, max_per_group=opts.max_per_prompt, offsets=offsets)
        owner_of = torch.repeat_interleave(torch.arange(len(groups)), cnt)
        chosen = list(zip(owner_of.tolist(), idx.tolist()))
    elif opts.selection in ("best_of_n", "rso"):
        if opts.selection == "best_of_n":
            picks = _select.best_of_n(flat, opts.k, offsets=offsets)
        else:
            g = torch.Generator().manual_seed(_mix64(round_seed, 0x5250, rank))
            picks = _select.rso(flat, opts.k, opts.beta, offsets=offsets, generator=g)
        for gi, row in enumerate(picks.tolist()):
            chosen.extend((gi, int(offsets[gi]) + j) for j in row if j >= 0)
    else:  # top_fraction: a global rule, over all ranks' candidates
        chosen = _top_fraction(groups, flat, offsets, opts.fraction, rank, world_size)

    accepted = []
    chosen_set: dict[int, set[int]] = {}
    for gi, fi in chosen:
        g = groups[gi]
        j = int(sample_of[fi])
        accepted.append((g, j, g.completions[j], g.rewards[j]))
        chosen_set.setdefault(gi, set()).add(j)

    pairs: list[Pair] = []
    if pairs_per_prompt:
        for gi, g in enumerate(groups):
            picked = chosen_set.get(gi)
            if not picked:
                continue
            lo, hi = int(offsets[gi]), int(offsets[gi + 1])
            survivors = [int(sample_of[f]) for f in range(lo, hi)]
            best = sorted(picked, key=lambda j: (-g.rewards[j], j))
            worst = sorted((j for j in survivors if j not in picked), key=lambda j: (g.rewards[j], j))
            for c, r in zip(best[:pairs_per_prompt], worst):
                if g.rewards[r] < g.rewards[c]:
                    pairs.append((g, c, r))
    return accepted, duplicates, pairs


def _top_fraction(
    groups: list[_Group], flat: Tensor, offsets: Tensor, fraction: float | None, rank: int, world_size: int
) -> list[tuple[int, int]]:
    """(group position, survivor flat index) of this rank's candidates among the global top ``fraction``."""
    counts = (offsets[1:] - offsets[:-1]).tolist()
    owners = [g.index for g in groups]
    parts = _all_gather_objects((owners, counts, flat.tolist()), world_size)
    # Lay all ranks' candidates out in global prompt order, as one process would.
    entries = []
    for part_rank, (owner_list, count_list, values) in enumerate(parts):
        pos = 0
        for gi, (owner, c) in enumerate(zip(owner_list, count_list)):
            for j in range(c):
                entries.append((owner, j, part_rank, gi, pos + j, values[pos + j]))
            pos += c
    entries.sort(key=lambda e: (e[0], e[1]))
    if not entries:
        return []
    picked = _select.top_fraction(torch.tensor([e[5] for e in entries], dtype=torch.float64), fraction)
    return [(entries[i][3], entries[i][4]) for i in picked.tolist() if entries[i][2] == rank]


def _records(
    accepted: list[Accepted],
    pairs: list[Pair],
    round_index: int,
    decode: Callable[[list[int]], str] | None,
) -> tuple[list[dict], list[dict]]:
    """The accepted examples and the DPO pairs as the dicts of :attr:`accepted_records` and
    :attr:`preference_pairs` (with the text too when ``decode`` is given)."""
    recs = []
    for g, j, comp, r in accepted:
        rec = {
            "round": round_index,
            "prompt_index": g.index,
            "sample_index": j,
            "prompt": g.prompt,
            "completion": comp,
            "reward": r,
        }
        if g.reference is not None:
            rec["reference"] = g.reference
        if decode is not None:
            rec["prompt_text"] = decode(g.prompt)
            rec["completion_text"] = decode(comp)
        recs.append(rec)
    prs = []
    for g, c, r in pairs:
        rec = {
            "round": round_index,
            "prompt_index": g.index,
            "prompt": g.prompt,
            "chosen": g.completions[c],
            "rejected": g.completions[r],
            "chosen_reward": g.rewards[c],
            "rejected_reward": g.rewards[r],
        }
        if decode is not None:
            rec["prompt_text"] = decode(g.prompt)
            rec["chosen_text"] = decode(g.completions[c])
            rec["rejected_text"] = decode(g.completions[r])
        prs.append(rec)
    return recs, prs
