"""The fine-tuning step of a round: next-token cross-entropy on (prompt, completion) pairs, the same
update on any number of ranks."""

from __future__ import annotations

import torch
from torch import nn

from .common import _mix64
from .distributed import _all_sum
from .loss import completion_loss
from .options import TrainingOptions


def _finetune(
    train_model: nn.Module,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: list[tuple[list[int], list[int]]],
    round_seed: int,
    opts: TrainingOptions,
    rank: int,
    world_size: int,
) -> tuple[float, int, int]:
    """SFT on (prompt, completion) pairs, identical on every rank: each global minibatch is split
    across the ranks and the summed loss normalised by its global token count (DDP averages the
    gradients, hence the world_size factor). ``train_model`` is ``module`` or the DDP wrapper around it.
    Returns (mean loss per token, steps, tokens)."""
    data = [d for d in data if d[1]]  # empty completions have nothing to learn
    if not data or opts.sft_epochs == 0:
        return float("nan"), 0, 0
    g = torch.Generator().manual_seed(_mix64(round_seed, 0x5346))
    was_training = module.training
    train_model.train()
    loss_sum = 0.0
    token_sum = 0
    steps = 0
    try:
        for _ in range(opts.sft_epochs):
            order = torch.randperm(len(data), generator=g).tolist()
            for start in range(0, len(order), opts.batch_size):
                batch = [data[i] for i in order[start : start + opts.batch_size]]
                global_tokens = sum(len(c) for _, c in batch)
                mine = batch[rank::world_size]
                weight = 1.0
                if not mine:  # this rank still takes part in DDP's gradient all-reduce
                    mine, weight = batch[:1], 0.0
                total, _ = completion_loss(
                    train_model,
                    [p for p, _ in mine],
                    [c for _, c in mine],
                    pad_token_id=opts.pad_token_id,
                    reduction="sum",
                )
                loss = total * (weight * world_size / global_tokens)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if opts.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), opts.max_grad_norm)
                optimizer.step()
                loss_sum += float(total.detach()) * weight
                token_sum += global_tokens
                steps += 1
    finally:
        module.train(was_training)
    loss_sum = _all_sum([], [loss_sum], world_size)[0] if world_size > 1 else loss_sum
    return loss_sum / token_sum, steps, token_sum
