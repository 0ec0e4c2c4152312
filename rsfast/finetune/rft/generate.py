"""The earlier built-in sampler of completions (no KV cache; temperature, top-k), seeded per prompt: kept
as a reference and as the ``previous`` baseline of the generation benchmark (:func:`rsfast.generate`
replaced it in the fine-tuner)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..._checks import renamed_n
from ..._random import check_generator, draw_seed
from .common import (
    Tokens,
    _check_float,
    _check_positive_int,
    _check_prompts,
    _logits_of,
    _mix64,
)


@torch.no_grad()
def sample_completions(
    model: nn.Module,
    prompts: Sequence[Tokens],
    n: int | None = None,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    eos_token_id: int | None = None,
    seeds: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
    num_samples: int | None = None,
) -> list[list[list[int]]]:
    """Sample ``n`` completions for every prompt from a causal LM, batched.

    Prompts of equal length are batched together (``batch_size`` rows of [prompt, sample] per forward),
    so the model needs no attention mask. Each step recomputes the whole prefix (no KV cache), which is
    what ``model(input_ids) -> logits`` allows; pass a ``generate_fn`` to the fine-tuner for a cached
    sampler (e.g. Hugging Face ``generate``). Rows that emitted ``eos_token_id`` stop.

    Token t of sample j of prompt i is the inverse-CDF draw of ``softmax(logits / temperature)`` (after
    top-k) at a uniform that depends only on ``seeds[i]`` (float64 uniforms [n, max_new_tokens]
    from ``torch.Generator().manual_seed(seeds[i])``), never on the batch: a prompt gets the same
    completions whatever it is batched with, on any number of ranks.

    Args:
        model: causal LM, ``model(input_ids [B, T]) -> logits [B, T, V]`` (or ``.logits``).
        prompts: P token sequences (lists of ints or 1-D integer tensors), each non-empty.
        n: completions per prompt, >= 1.
        max_new_tokens: most tokens per completion, >= 1.
        temperature: > 0 samples, 0 is greedy (ties to the lower token id).
        top_k: sample among the k most likely tokens only; None: all.
        eos_token_id: a row stops after emitting it (it is part of the completion).
        seeds: one int per prompt; None: derived from one seed drawn from ``generator`` and the prompt's
            position in ``prompts``.
        generator: used only when ``seeds`` is None (default CPU generator when None).
        batch_size: most rows per forward.
        num_samples: deprecated spelling of ``n``.

    Returns:
        ``out[i][j]``: the token ids of completion j of prompt i (ending with ``eos_token_id`` if it was
        emitted, otherwise ``max_new_tokens`` long).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    prompt_lists = _check_prompts(list(prompts) if isinstance(prompts, (list, tuple)) else prompts)
    n = renamed_n(n, num_samples, "sample_completions")
    if n is None:
        raise TypeError("sample_completions() missing the number of completions per prompt: n")
    n = _check_positive_int(n, "n")
    max_new_tokens = _check_positive_int(max_new_tokens, "max_new_tokens")
    batch_size = _check_positive_int(batch_size, "batch_size")
    temperature = _check_float(temperature, "temperature")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None:
        top_k = _check_positive_int(top_k, "top_k")
    if eos_token_id is not None:
        eos_token_id = _check_positive_int(eos_token_id, "eos_token_id", minimum=0)
    if seeds is None:
        check_generator(generator, torch.device("cpu"))
        base = draw_seed(generator)
        seeds = [_mix64(base, i) for i in range(len(prompt_lists))]
    elif len(seeds) != len(prompt_lists):
        raise ValueError(f"seeds must have one seed per prompt ({len(prompt_lists)}), got {len(seeds)}")
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")

    out: list[list[list[int]]] = [[[] for _ in range(n)] for _ in prompt_lists]
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompt_lists):
        by_length.setdefault(len(p), []).append(i)
    rows_all = [(i, j) for length in sorted(by_length) for i in by_length[length] for j in range(n)]
    uniforms: dict[int, Tensor] = {}
    start = 0
    while start < len(rows_all):
        # A batch holds rows of one prompt length only.
        length = len(prompt_lists[rows_all[start][0]])
        stop = start
        while stop < len(rows_all) and stop - start < batch_size:
            if len(prompt_lists[rows_all[stop][0]]) != length:
                break
            stop += 1
        rows = rows_all[start:stop]
        start = stop
        for i, _ in rows:
            if i not in uniforms:
                g = torch.Generator().manual_seed(int(seeds[i]) % 2**63)
                uniforms[i] = torch.rand(n, max_new_tokens, dtype=torch.float64, generator=g)
        u = torch.stack([uniforms[i][j] for i, j in rows]).to(device)
        seq = torch.tensor([prompt_lists[i] for i, _ in rows], dtype=torch.long, device=device)
        new = torch.zeros(len(rows), max_new_tokens, dtype=torch.long, device=device)
        lengths = torch.full((len(rows),), max_new_tokens, dtype=torch.long)
        active = torch.arange(len(rows), device=device)
        for t in range(max_new_tokens):
            logits = _logits_of(model(torch.cat([seq[active], new[active, :t]], dim=1)))[:, -1, :]
            tok = _draw_tokens(logits.double(), u[active, t], temperature, top_k)
            new[active, t] = tok
            if eos_token_id is not None:
                done = tok == eos_token_id
                if bool(done.any()):
                    lengths[active[done].cpu()] = t + 1
                    active = active[~done]
                    if active.numel() == 0:
                        break
        new_cpu = new.cpu().tolist()
        for r, (i, j) in enumerate(rows):
            out[i][j] = new_cpu[r][: int(lengths[r])]
        # A prompt's rows are consecutive: all but the batch's last prompt are done.
        for i in {i for i, _ in rows} - {rows[-1][0]}:
            uniforms.pop(i, None)
    return out


def _draw_tokens(logits: Tensor, u: Tensor, temperature: float, top_k: int | None) -> Tensor:
    """Inverse-CDF categorical draw per row at uniform ``u`` (greedy when temperature == 0)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    cdf = probs.cumsum(dim=-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    # u * total can round up to total; never return a token of probability 0.
    vocab = torch.arange(probs.shape[-1], device=probs.device)
    last_nonzero = torch.where(probs > 0, vocab, 0).amax(dim=-1)
    return torch.minimum(idx, last_nonzero)
