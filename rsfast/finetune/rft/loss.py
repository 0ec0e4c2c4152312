"""Next-token cross-entropy on completions only (prompt tokens are context, never targets)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import (
    _logits_of,
)


def _pad_batch(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Right-padded [B, T] input ids and the bool [B, T-1] mask of positions whose target is a completion
    token."""
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(lengths), max(width - 1, 0), dtype=torch.bool)
    for r, (p, c) in enumerate(zip(prompts, completions)):
        ids[r, : len(p) + len(c)] = torch.tensor(list(p) + list(c), dtype=torch.long)
        # Target of position t is token t + 1: completion tokens are targets at positions len(p)-1 ...
        mask[r, len(p) - 1 : len(p) + len(c) - 1] = True
    return ids.to(device), mask.to(device)


def completion_loss(
    model: nn.Module,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_token_id: int = 0,
    reduction: str = "mean",
) -> tuple[Tensor, int]:
    """Next-token cross-entropy of the completions given their prompts; prompt tokens are never targets.

    The batch is right-padded with ``pad_token_id`` (masked out). ``reduction="mean"`` averages over the
    completion tokens of the batch, ``"sum"`` sums them.

    Returns:
        (loss, number of completion tokens).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if len(prompts) != len(completions):
        raise ValueError(
            f"completions must have one entry per prompt ({len(prompts)}), got {len(completions)}"
        )
    if not prompts:
        raise ValueError("prompts is empty")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    ids, mask = _pad_batch(prompts, completions, pad_token_id, device)
    logits = _logits_of(model(ids[:, :-1]))
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1), reduction="none"
    ).view_as(mask)
    tokens = int(mask.sum())
    total = (nll * mask).sum()
    if reduction == "sum":
        return total, tokens
    return total / max(tokens, 1), tokens
