"""Benchmark case of :func:`rsfast.generate` (``rsfast bench --case generate_gpt2``): sampling completions
from a GPT-2-shaped causal LM (random weights, built from a config: 6 layers, d = 256, 4 heads,
V = 32,000), 16-token prompts, top-k 50 + top-p 0.9, tokens/s.

Methods: ``rsfast`` (rsfast.generate: KV cache, prompt prefill shared by the n samples, one token kernel
per step), ``hf`` (Hugging Face ``model.generate(do_sample=True, top_k=50, top_p=0.9,
num_return_sequences=n)``; needs transformers) and ``previous`` (rsfast's earlier built-in sampler
:func:`rsfast.finetune.rft.sample_completions`: no cache, the whole prefix and its logits every step,
top-k only; on one prompt, so compare by throughput). Without transformers, rsfast and previous run the
demo transformer of the same shape and ``hf`` is skipped."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...decoding import generate
from ...finetune.rft.generate import sample_completions
from ..common import SEED, BenchCase, Prepared, _device

#: Place of this case in the report.
ORDER = 10

LAYERS, D_MODEL, HEADS, VOCAB, PROMPT_LEN = 6, 256, 4, 32_000, 16
#: (prompts, samples per prompt, new tokens): full, quick.
SHAPE = ((32, 8, 64), (4, 4, 16))
#: Prompts of the ``previous`` method (its n and new tokens are the case's).
PREVIOUS_PROMPTS = 1


def _model(dev: torch.device) -> tuple[nn.Module, str]:
    torch.manual_seed(SEED)
    try:
        import transformers
    except ImportError:
        from ...demos._tiny_lm import TinyCausalLM

        return TinyCausalLM(VOCAB, 128, D_MODEL, LAYERS, HEADS).to(dev).eval(), "TinyCausalLM"
    cfg = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=128, n_embd=D_MODEL, n_layer=LAYERS, n_head=HEADS,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(cfg).to(dev).eval()
    model.generation_config.eos_token_id = None  # every row generates all its tokens, in every method
    return model, "GPT2LMHeadModel"


def _setup(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    p, n, t = SHAPE[quick]
    model, kind = _model(dev)
    g = torch.Generator().manual_seed(SEED)
    prompts = torch.randint(1, VOCAB, (p, PROMPT_LEN), generator=g).to(dev)
    seeds = list(range(p))

    def run_rsfast() -> Any:
        return generate(model, list(prompts), n, max_new_tokens=t, top_k=50, top_p=0.9, seeds=seeds).sequences

    def run_previous() -> Any:
        out = sample_completions(
            model,
            list(prompts[:PREVIOUS_PROMPTS]),
            n,
            max_new_tokens=t,
            top_k=50,
            seeds=seeds[:PREVIOUS_PROMPTS],
        )
        return torch.tensor(out)

    def run_hf() -> Any:
        torch.manual_seed(SEED)
        out = model.generate(
            prompts, attention_mask=torch.ones_like(prompts), do_sample=True, top_k=50, top_p=0.9,
            num_return_sequences=n, max_new_tokens=t, min_new_tokens=t, pad_token_id=0,
        )  # fmt: skip
        return out[:, PROMPT_LEN:].reshape(p, n, t)

    methods = {"rsfast": run_rsfast, "hf": run_hf, "previous": run_previous}
    items = {"rsfast": p * n * t, "hf": p * n * t, "previous": PREVIOUS_PROMPTS * n * t}
    skipped = {}
    if kind != "GPT2LMHeadModel":
        del methods["hf"], items["hf"]
        skipped["hf"] = "transformers is not installed; the 'hf' extra brings it (pip install rsfast[hf])"

    def check(method: str, out: Any) -> None:
        rows = PREVIOUS_PROMPTS if method == "previous" else p
        assert tuple(out.shape) == (rows, n, t), f"{method}: shape {tuple(out.shape)}"
        assert bool(((out >= 0) & (out < VOCAB)).all()), f"{method}: token id out of range"

    # One short call per method warms up lazy initialisation; a full-size warm-up would double the time.
    def warm(fn_kind: str) -> Any:
        def w() -> Any:
            if fn_kind == "hf":
                one = prompts[:1]
                return model.generate(
                    one, attention_mask=torch.ones_like(one), do_sample=True, max_new_tokens=2, pad_token_id=0
                )
            if fn_kind == "previous":
                return sample_completions(model, [prompts[0]], 1, max_new_tokens=2)
            return generate(model, [prompts[0]], 1, max_new_tokens=2, top_k=50, top_p=0.9)

        return w

    return Prepared(
        case="generate_gpt2",
        unit="tokens/s",
        methods=methods,
        items=items,
        check=check,
        device=dev,
        meta={
            "model": kind,
            "layers": LAYERS,
            "d_model": D_MODEL,
            "vocab": VOCAB,
            "prompts": p,
            "n": n,
            "new_tokens": t,
            "prompt_len": PROMPT_LEN,
            "previous_prompts": PREVIOUS_PROMPTS,
        },  # fmt: skip
        skipped=skipped,
        warmups={m: warm(m) for m in methods},
    )


CASES = [
    BenchCase(
        "generate_gpt2",
        "tokens/s of a GPT-2-shaped LM (6x256, V=32k), top-k 50 + top-p 0.9: rsfast.generate vs HF generate",
        _setup,
    )
]
