"""``rsfast.generate``: batched, KV-cached sampling of completions from a causal LM with rsfast's token
kernel, seeded per prompt; speculative decoding when a draft model is given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import tokens
from .._checks import SamplingError
from .._random import check_generator, draw_seed
from .args import Tokens, as_tokens, check_positive_int, mix64
from .model_io import ModelCall, Stream, left_pad
from .speculative import speculative_batch

__all__ = ["Generation", "generate"]

#: Speculative decoding: the most draft tokens per target forward.
MAX_DRAFT_TOKENS = 64


@dataclass
class Generation:
    """What :func:`generate` returns.

    Attributes:
        sequences: [P, n, T] int64: the new tokens of completion j of prompt i (not the prompt), padded
            after its end with ``pad_token_id``; T is the longest completion.
        lengths: [P, n] int64: tokens in each completion (an emitted EOS counts).
        logprobs: [P, n, T] float32: each token's log-probability under the distribution it was sampled
            from (temperature and filters applied; 0 for greedy rows and after the end).
        acceptance_rate: speculative decoding: accepted draft tokens / proposed draft tokens; else None.
        tokens_per_target_call: speculative decoding: tokens emitted per row per target forward; else None.
        target_calls: forwards of the model after the prompt (decoding steps), over all batches.
    """

    sequences: Tensor
    lengths: Tensor
    logprobs: Tensor
    acceptance_rate: float | None = None
    tokens_per_target_call: float | None = None
    target_calls: int = 0

    def completions(self) -> list[list[list[int]]]:
        """``out[i][j]``: completion j of prompt i as a list of token ids (its ``lengths[i, j]`` tokens)."""
        seqs, lens = self.sequences.tolist(), self.lengths.tolist()
        return [[row[:k] for row, k in zip(s, ln)] for s, ln in zip(seqs, lens)]


@dataclass
class _Args:
    """The checked sampling arguments shared by the plain and the speculative loop."""

    n: int
    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    min_p: float | None
    eos: Tensor | None  # [E] int64 stop tokens on the model's device
    pad: int

    def sample_kw(self) -> dict[str, Any]:
        return dict(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, min_p=self.min_p)


def _check_number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and (value > low if low_open else value >= low) and value <= high):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got {value}")
    return value


def _token_ids(value: Any, name: str) -> list[int]:
    ids = [value] if not isinstance(value, (list, tuple, Tensor)) else value
    if isinstance(ids, Tensor):
        ids = ids.reshape(-1).tolist()
    out = []
    for t in ids:
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"{name} must be a token id >= 0 (or a list of them), got {value!r}")
        out.append(int(t))
    return out


def _prompt_seeds(seeds: Sequence[int] | None, generator: torch.Generator | None, p: int) -> list[int]:
    if seeds is None:
        check_generator(generator, torch.device("cpu"))
        base = draw_seed(generator)
        return [mix64(base, i) for i in range(p)]
    if isinstance(seeds, Tensor):
        seeds = seeds.tolist()
    if not isinstance(seeds, (list, tuple)) or len(seeds) != p:
        raise ValueError(f"seeds must hold one int per prompt ({p})")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise TypeError(f"seeds must hold ints, got {type(s).__name__}")
    return [int(s) % 2**63 for s in seeds]


def _batches(lengths: list[int], n: int, batch_size: int, padding: str) -> list[list[int]]:
    """Prompt indices per batch: sorted by length (stable), at most ``batch_size`` rows (prompts x n,
    one prompt at least); ``padding="none"`` never mixes lengths in a batch."""
    per_batch = max(1, batch_size // n)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < per_batch and (padding == "left" or lengths[out[-1][-1]] == lengths[i]):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional (the "progress" extra)
        return None
    return tqdm(total=total, desc="generate", unit="tok")


def _plain_batch(
    call: ModelCall, prompts: list[list[int]], row_seeds: Tensor, a: _Args, bar: Any
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Decode one batch; returns (tokens [R, T], logprobs [R, T], lengths [R], forwards) with R = P * n."""
    dev = call.device
    ids, valid = left_pad(prompts, a.pad, dev)
    stream = Stream(call)
    logits = stream.feed(ids, valid)[:, -1]
    stream.repeat(a.n)
    logits = logits.repeat_interleave(a.n, dim=0)
    rows = logits.shape[0]
    out = torch.full((rows, a.max_new_tokens), a.pad, dtype=torch.int64, device=dev)
    lps = torch.zeros((rows, a.max_new_tokens), dtype=torch.float32, device=dev)
    lengths = torch.full((rows,), a.max_new_tokens, dtype=torch.int64, device=dev)
    where = torch.arange(rows, device=dev)  # stream row -> output row
    alive = torch.ones(rows, dtype=torch.bool, device=dev)  # stream rows still decoding
    dead = 0
    forwards = 0
    for t in range(a.max_new_tokens):
        s = tokens.sample(logits, seeds=row_seeds[where], offsets=t, return_logprobs=True, **a.sample_kw())
        if not bool(s.valid.all()):
            bad = int(where[~s.valid][0])
            raise SamplingError(
                f"the model's logits for completion {bad % a.n} of a prompt at step {t} are not a "
                "distribution (NaN, +inf or all -inf)"
            )
        out[where[alive], t] = s.ids[alive]
        lps[where[alive], t] = s.logprobs[alive]
        if bar is not None:
            bar.update(int(alive.sum()))
        s_ids = s.ids
        if a.eos is not None:
            stop = alive & torch.isin(s_ids, a.eos)
            if bool(stop.any()):
                lengths[where[stop]] = t + 1
                alive &= ~stop
                dead += int(stop.sum())
                if dead == alive.shape[0]:
                    break
                if 4 * dead >= alive.shape[0]:  # drop finished rows once they are a quarter of the batch
                    keep = alive.nonzero().squeeze(1)
                    stream.select(keep)
                    where, alive, s_ids = where[keep], alive[keep], s_ids[keep]
                    dead = 0
        if t + 1 == a.max_new_tokens:
            break
        logits = stream.feed(s_ids.unsqueeze(1))[:, -1]
        forwards += 1
    return out, lps, lengths, forwards


@torch.no_grad()
def generate(
    model: nn.Module,
    prompts: Sequence[Tokens],
    n: int = 1,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    generator: torch.Generator | None = None,
    seeds: Sequence[int] | None = None,
    draft_model: nn.Module | None = None,
    num_draft_tokens: int = 4,
    draft_sampling: str = "sample",
    batch_size: int = 256,
    padding: str = "left",
    progress: bool = False,
) -> Generation:
    """Sample ``n`` completions for every prompt from a causal LM, batched, with a KV cache.

    Each step draws every row's next token with one :func:`rsfast.tokens.sample` call (temperature,
    top-k, top-p and min-p in one kernel, Hugging Face's filter order). Completion j of prompt i draws
    with the seed ``mix(seeds[i], j)`` at offset t for its token t, so a prompt's completions do not depend
    on the other prompts of its batch, the batch size or the rank (bit for bit when the model's logits
    for the prompt do not: with ``padding="none"``, or whenever a batch needs no padding).

    The model: a Hugging Face causal LM (``past_key_values`` / ``use_cache``, a ``DynamicCache`` or
    tuples), rsfast's demo :class:`~rsfast.demos._tiny_lm.TinyCausalLM`, or any module whose forward takes
    the same keywords; a model without them gets the whole prefix at every step (a warning says so).
    The prompt is computed once per prompt and its cache shared by its ``n`` completions; rows that
    emitted EOS leave the batch.

    Args:
        model: the causal LM; ``model(input_ids [B, T], ...)`` returns logits [B, T, V], ``.logits`` or a
            tuple starting with them.
        prompts: P non-empty token sequences (lists of ints or 1-D integer tensors).
        n: completions per prompt, >= 1.
        max_new_tokens: most tokens per completion, >= 1 (prompt + completion must fit the model's
            context when the model states one).
        temperature: >= 0 (0: greedy, the first argmax). top_k: keep the k most likely (None: all).
            top_p: in (0, 1] (None: 1). min_p: in [0, 1] (None: 0).
        eos_token_id: a token id or a list of them: a completion ends after emitting one.
        pad_token_id: fills ``sequences`` after each completion's end and the left padding of prompts;
            None: the first ``eos_token_id``, else 0.
        generator: CPU generator of the per-prompt seeds when ``seeds`` is None (the default one when None).
        seeds: one int per prompt (overrides ``generator``).
        draft_model: a smaller causal LM with the same vocabulary: speculative decoding with
            ``num_draft_tokens`` draft tokens per target forward (see :mod:`rsfast.decoding.speculative`);
            the output law is the plain law of ``model``.
        num_draft_tokens: draft tokens per target forward, in [1, 64].
        draft_sampling: ``"sample"`` (drafts drawn from the draft's filtered law q, passed to the
            verification) or ``"greedy"`` (the draft's argmax, q one-hot: two kernel calls fewer per
            draft token, fewer acceptances where the target is uncertain). Exact either way.
        batch_size: most rows (prompts x n) decoded together.
        padding: ``"left"`` (prompts of different lengths share batches, left-padded with an attention
            mask) or ``"none"`` (a batch holds prompts of one length: no padding ever).
        progress: show a tqdm bar (tokens) when tqdm is installed.

    Returns:
        :class:`Generation`.
    """
    call = ModelCall(model, "model")
    if isinstance(prompts, Tensor) or not isinstance(prompts, (list, tuple)):
        raise TypeError(f"prompts must be a list of token sequences, got {type(prompts).__name__}")
    if not prompts:
        raise ValueError("prompts is empty")
    prompt_lists = [as_tokens(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    eos = None if eos_token_id is None else _token_ids(eos_token_id, "eos_token_id")
    if pad_token_id is None:
        pad = eos[0] if eos else 0
    else:
        pad = _token_ids(pad_token_id, "pad_token_id")[0]
    args = _Args(
        n=check_positive_int(n, "n"),
        max_new_tokens=check_positive_int(max_new_tokens, "max_new_tokens"),
        temperature=_check_number(temperature, "temperature", 0.0, math.inf),
        top_k=None if top_k is None else check_positive_int(top_k, "top_k"),
        top_p=None if top_p is None else _check_number(top_p, "top_p", 0.0, 1.0, low_open=True),
        min_p=None if min_p is None else _check_number(min_p, "min_p", 0.0, 1.0),
        eos=None if eos is None else torch.tensor(eos, dtype=torch.int64, device=call.device),
        pad=pad,
    )
    batch_size = check_positive_int(batch_size, "batch_size")
    if padding not in ("left", "none"):
        raise ValueError(f"padding must be 'left' or 'none', got {padding!r}")
    longest = max(len(p) for p in prompt_lists)
    if call.context is not None and longest + args.max_new_tokens > call.context:
        raise ValueError(
            f"the longest prompt ({longest} tokens) + max_new_tokens ({args.max_new_tokens}) exceeds the "
            f"model's context of {call.context} positions"
        )
    draft_call = None
    if draft_model is not None:
        draft_call = ModelCall(draft_model, "draft_model")
        num_draft_tokens = check_positive_int(num_draft_tokens, "num_draft_tokens")
        if draft_sampling not in ("sample", "greedy"):
            raise ValueError(f"draft_sampling must be 'sample' or 'greedy', got {draft_sampling!r}")
        if num_draft_tokens > MAX_DRAFT_TOKENS:
            raise ValueError(f"num_draft_tokens must be <= {MAX_DRAFT_TOKENS}, got {num_draft_tokens}")
        for c in (call, draft_call):
            if not (c.cached and c.masked):
                raise ValueError(
                    f"speculative decoding needs {c.name} to take past_key_values (or cache), use_cache, "
                    "attention_mask and position_ids (a key/value cache with masks)"
                )
            if c.device != call.device:
                raise ValueError(f"draft_model is on {draft_call.device} but model is on {call.device}")
    elif not call.cached:
        call.warn_no_cache()
    if not (call.masked or call.cached) or (not call.masked and padding == "left"):
        padding = "none"  # a model that takes no attention mask never sees padding
    prompt_seeds = _prompt_seeds(seeds, generator, len(prompt_lists))

    p, nn_ = len(prompt_lists), args.n
    seq = torch.full((p * nn_, args.max_new_tokens), args.pad, dtype=torch.int64, device=call.device)
    lps = torch.zeros((p * nn_, args.max_new_tokens), dtype=torch.float32, device=call.device)
    lens = torch.zeros(p * nn_, dtype=torch.int64, device=call.device)
    stats = [0, 0, 0, 0]  # speculative: accepted, proposed, emitted, row-forwards
    forwards = 0
    bar = _progress(p * nn_ * args.max_new_tokens, progress)
    was_training = [(m, m.training) for m in (model, draft_model) if m is not None]
    for m, _ in was_training:
        m.eval()
    try:
        for batch in _batches([len(x) for x in prompt_lists], nn_, batch_size, padding):
            row_seeds = torch.tensor(
                [mix64(prompt_seeds[i], j) for i in batch for j in range(nn_)], dtype=torch.int64
            ).to(call.device)
            group = [prompt_lists[i] for i in batch]
            if draft_call is None:
                out, lp, ln, f = _plain_batch(call, group, row_seeds, args, bar)
            else:
                out, lp, ln, f, counts = speculative_batch(
                    call,
                    draft_call,
                    group,
                    row_seeds,
                    args,
                    num_draft_tokens,
                    bar,
                    greedy_draft=draft_sampling == "greedy",
                )
                stats = [x + y for x, y in zip(stats, counts)]
            forwards += f
            dest = torch.tensor([i * nn_ + j for i in batch for j in range(nn_)], device=call.device)
            seq[dest], lps[dest], lens[dest] = out, lp, ln
    finally:
        for m, mode in was_training:
            m.train(mode)
        if bar is not None:
            bar.close()
    width = max(int(lens.max()), 1) if lens.numel() else 1
    result = Generation(
        seq[:, :width].reshape(p, nn_, width),
        lens.reshape(p, nn_),
        lps[:, :width].reshape(p, nn_, width),
        target_calls=forwards,
    )
    if draft_call is not None:
        result.acceptance_rate = stats[0] / max(stats[1], 1)
        result.tokens_per_target_call = stats[2] / max(stats[3], 1)
    return result
