"""Rejection-sampling fine-tuning of causal language models: RFT, best-of-n, RSO, RAFT, ReST-EM.

One round of :class:`RejectionSamplingFineTuner` is

1. **generate**: N completions per prompt from the current model (the proposal), with
   :func:`rsfast.generate` (KV-cached, seeded per prompt) or a user ``generate_fn``;
2. **score**: ``reward_fn`` (a reward model or a verifier) gives every completion a reward;
3. **filter** (optional, DAPO): drop the prompts whose rewards are all equal, generate for fresh prompts
   in their place, at most ``max_refills`` times;
4. **dedupe** (optional, RFT): keep the first of equal completions of a prompt;
5. **select**: with one of the group kernels of :mod:`rsfast.select` (``"verifier"``, ``"best_of_n"``,
   ``"rso"``, ``"threshold"``, ``"top_fraction"``);
6. **fine-tune**: next-token cross-entropy on the accepted completions only (prompt tokens are
   context, never targets), from the current weights or, ReST-EM style, from the base weights.

Models: any ``torch.nn.Module`` with ``model(input_ids [B, T]) -> logits [B, T, V]``, or returning an
object with ``.logits`` (Hugging Face ``*ForCausalLM``) or a tuple whose first item is the logits.
Sequences are tokens (lists of ints or 1-D integer tensors); SFT batches are right-padded (a causal
model never looks right, so padding changes nothing before it). :func:`sample_completions` is the
earlier cache-less sampler (equal-length prompts batched together, the whole prefix every step), kept
as a reference and as a benchmark baseline.

Under ``torch.distributed`` (e.g. ``torchrun`` with gloo on CPU or NCCL on GPU) every rank generates
and scores its shard of the prompts (prompt i goes to rank ``i % world_size``), the round statistics
are all-reduced, the accepted examples are gathered, and the SFT steps run through
``DistributedDataParallel`` with each global minibatch split across the ranks and the loss normalised
by the global token count, so the update equals the single-process one. Sampling randomness is drawn
per prompt from the round seed and the prompt's global index, so a prompt gets the same completions on
any number of ranks.
"""

from __future__ import annotations

from .common import SELECTION_RULES, token_hash
from .generate import sample_completions
from .loss import completion_loss
from .stats import RoundStats, write_jsonl
from .tuner import RejectionSamplingFineTuner

__all__ = [
    "RejectionSamplingFineTuner",
    "RoundStats",
    "SELECTION_RULES",
    "sample_completions",
    "completion_loss",
    "token_hash",
    "write_jsonl",
]
