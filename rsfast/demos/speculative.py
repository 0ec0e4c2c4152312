"""``rsfast demo speculative``: speculative decoding of a small transformer with a smaller draft.

Both models learn, from scratch, a built-in "phrase language": sentences are chains of phrases (fixed
token runs of 3 to 6 tokens), each phrase followed by one of three phrases with probabilities .6/.3/.1.
Within a phrase the next token is nearly certain, so a one-layer draft guesses it; at phrase boundaries
both models must sample. Then the same prompts are decoded plainly and speculatively (``rsfast.generate``
with ``draft_model=``), timed, and the output laws compared: a chi-square test of homogeneity on the
first ``num_draft_tokens + 1`` tokens of many completions (which covers accepted drafts, replacements
and bonus tokens).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from ._tiny_lm import TinyCausalLM

#: One line for ``rsfast demo`` (the list) and its place in it.
DESCRIPTION = (
    "speculative decoding of a small transformer with a smaller draft (same output law, fewer target calls)"
)
ORDER = 4

__all__ = ["PhraseLanguage", "SpecConfig", "run_demo", "run"]

QUICK_ENV = "RSFAST_DEMO_QUICK"


class PhraseLanguage:
    """Sentences of ``length`` tokens: BOS (0), then phrases chained by a Markov chain over phrases.

    ``phrases`` fixed runs of 3-6 tokens over ids 1 .. vocab-1 and the successor table come from ``seed``."""

    BOS = 0

    def __init__(self, vocab: int = 48, phrases: int = 24, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.vocab = vocab
        self.phrases = [
            torch.randint(1, vocab, (int(torch.randint(3, 7, (1,), generator=g)),), generator=g).tolist()
            for _ in range(phrases)
        ]
        self.successors = torch.stack([torch.randperm(phrases, generator=g)[:3] for _ in range(phrases)])
        self.weights = torch.tensor([0.6, 0.3, 0.1])

    def sample(self, count: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """[count, length] int64 sentences (BOS first)."""
        out = torch.empty((count, length), dtype=torch.int64)
        for r in range(count):
            seq = [self.BOS]
            cur = int(torch.randint(0, len(self.phrases), (1,), generator=generator))
            for _ in range(length):  # bounded: each pass adds at least 3 tokens
                if len(seq) >= length:
                    break
                seq += self.phrases[cur]
                nxt = int(torch.multinomial(self.weights, 1, generator=generator))
                cur = int(self.successors[cur, nxt])
            out[r] = torch.tensor(seq[:length])
        return out


@dataclass
class SpecConfig:
    """Sizes of the demo; :meth:`quick` is a seconds-long smoke run."""

    seed: int = 0
    vocab: int = 48
    sentence: int = 80  # tokens per training sentence: covers prompt + new tokens (positions are learned)
    target_layers: int = 4
    target_d: int = 256
    draft_layers: int = 1
    draft_d: int = 64
    train_steps: int = 100
    draft_steps: int = 600  # the draft is cheap to train and must match the target closely
    train_batch: int = 12
    lr: float = 3e-3
    prompt_len: int = 8
    num_draft_tokens: int = 3
    draft_sampling: str = "sample"
    timing_prompts: int = 8
    timing_batch: int = 1  # rows decoded together when timing: speculative decoding's (latency) regime
    timing_repeats: int = 3
    new_tokens: int = 64
    law_prompts: int = 256
    law_samples: int = 16  # completions per prompt in the law test
    threads: int | None = None  # torch threads for the whole run (None: leave torch's setting)
    # Torch threads while decoding (both ways, restored after): one sequence at a time through these
    # small models is a stream of tiny ops, where a second OpenMP thread costs more than it gives.
    decode_threads: int | None = 1

    @classmethod
    def quick(cls, **kw: Any) -> SpecConfig:
        base = cls(
            target_layers=2, target_d=64, draft_d=32, train_steps=60, draft_steps=60, sentence=32,
            law_prompts=32, law_samples=8, new_tokens=16, timing_prompts=4, threads=1,
        )  # fmt: skip
        return replace(base, **kw)


def _train(
    model: TinyCausalLM, data: PhraseLanguage, cfg: SpecConfig, steps: int, g: torch.Generator
) -> float:  # noqa: E501
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / 30) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)),
    )
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        x = data.sample(cfg.train_batch, cfg.sentence, g)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return float(loss.detach())


def _law_p(plain: torch.Tensor, spec: torch.Tensor) -> tuple[float, int]:
    """Chi-square homogeneity p-value of two samples of token tuples [N, k] (tuples with fewer than 5
    expected counts in either sample are pooled into one category); returns (p, categories)."""
    from collections import Counter

    a = Counter(map(tuple, plain.tolist()))
    b = Counter(map(tuple, spec.tolist()))
    na, nb = plain.shape[0], spec.shape[0]
    cats = sorted(set(a) | set(b))
    big = [c for c in cats if (a[c] + b[c]) * min(na, nb) / (na + nb) >= 5]
    rest_a = na - sum(a[c] for c in big)
    rest_b = nb - sum(b[c] for c in big)
    table = [[a[c], b[c]] for c in big] + ([[rest_a, rest_b]] if rest_a + rest_b > 0 else [])
    if len(table) < 2:
        return 1.0, len(table)
    chi2 = 0.0
    for row in table:
        tot = row[0] + row[1]
        for j, n in enumerate((na, nb)):
            e = tot * n / (na + nb)
            chi2 += (row[j] - e) ** 2 / e
    df = len(table) - 1
    return float(
        torch.special.gammaincc(
            torch.tensor(df / 2, dtype=torch.float64), torch.tensor(chi2 / 2, dtype=torch.float64)
        )
    ), len(table)


def run_demo(cfg: SpecConfig, *, printer: Any = None) -> dict[str, Any]:
    """Train the two models, decode plainly and speculatively, compare; return the metrics."""
    from ..decoding import generate

    t0 = time.perf_counter()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    say = printer or (lambda line: None)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    data = PhraseLanguage(cfg.vocab, seed=cfg.seed)
    context = cfg.sentence + cfg.new_tokens
    target = TinyCausalLM(cfg.vocab, context, cfg.target_d, cfg.target_layers, 4)
    draft = TinyCausalLM(cfg.vocab, context, cfg.draft_d, cfg.draft_layers, 2)
    t_loss = _train(target, data, cfg, cfg.train_steps, g)
    d_loss = _train(draft, data, cfg, cfg.draft_steps, g)
    n_target = sum(p.numel() for p in target.parameters())
    n_draft = sum(p.numel() for p in draft.parameters())
    say(
        f"trained target ({n_target / 1e6:.2f} M parameters, loss {t_loss:.3f}) and draft "
        f"({n_draft / 1e6:.3f} M, loss {d_loss:.3f}) on the phrase language "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    s = cfg.num_draft_tokens
    prompts = data.sample(cfg.timing_prompts, cfg.prompt_len, g)
    kw = dict(max_new_tokens=cfg.new_tokens, seeds=list(range(len(prompts))), batch_size=cfg.timing_batch)
    spec_kw = dict(draft_model=draft, num_draft_tokens=s, draft_sampling=cfg.draft_sampling)
    generate(target, list(prompts[:1]), 1, max_new_tokens=2)  # warm-up (lazy initialisation)
    generate(target, list(prompts[:1]), 1, max_new_tokens=2, **spec_kw)
    plain_s = spec_s = math.inf
    threads_before = torch.get_num_threads()
    if cfg.decode_threads is not None:
        torch.set_num_threads(cfg.decode_threads)
    try:
        for _ in range(cfg.timing_repeats):  # alternate the two; the fastest run of each (loaded machines)
            t = time.perf_counter()
            plain = generate(target, list(prompts), **kw)
            plain_s = min(plain_s, time.perf_counter() - t)
            t = time.perf_counter()
            spec = generate(target, list(prompts), **spec_kw, **kw)
            spec_s = min(spec_s, time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads_before)
    tokens = int(plain.lengths.sum())
    say(
        f"{len(prompts)} prompts x {cfg.new_tokens} new tokens: plain {plain_s:.2f} s "
        f"({plain.target_calls} target calls), speculative {spec_s:.2f} s "
        f"({spec.target_calls} target calls, S = {s}): acceptance "
        f"{spec.acceptance_rate:.3f}, {spec.tokens_per_target_call:.2f} tokens per target call, "
        f"speedup {plain_s / spec_s:.2f}x"
    )
    law_prompts = list(data.sample(cfg.law_prompts, cfg.prompt_len, g))
    law_kw = dict(max_new_tokens=s + 1, seeds=list(range(len(law_prompts))), batch_size=1024)
    a = generate(target, law_prompts, cfg.law_samples, **law_kw)
    law_kw["seeds"] = [x + 10**6 for x in law_kw["seeds"]]
    b = generate(target, law_prompts, cfg.law_samples, **spec_kw, **law_kw)
    law_p, cats = _law_p(a.sequences.reshape(-1, s + 1), b.sequences.reshape(-1, s + 1))
    say(
        f"law: first {s + 1} tokens of {a.sequences.shape[0] * a.sequences.shape[1]} completions, plain vs "
        f"speculative, chi-square over {cats} categories: p = {law_p:.3g}"
    )
    return {
        "demo": "speculative",
        "acceptance_rate": spec.acceptance_rate,
        "tokens_per_target_call": spec.tokens_per_target_call,
        "speedup_vs_plain": plain_s / spec_s,
        "law_p": law_p,
        "law_categories": cats,
        "plain_seconds": plain_s,
        "speculative_seconds": spec_s,
        "tokens": tokens,
        "target_parameters": n_target,
        "draft_parameters": n_draft,
        "seconds": time.perf_counter() - t0,
        "config": asdict(cfg),
    }


def run(json_output: bool) -> int:
    """Entry point of ``rsfast demo speculative`` (the quick run when $RSFAST_DEMO_QUICK=1)."""
    quick = os.environ.get(QUICK_ENV, "") not in ("", "0")
    cfg = SpecConfig.quick() if quick else SpecConfig()
    result = run_demo(cfg, printer=None if json_output else print)
    if json_output:
        print(json.dumps(result))
    else:
        print(
            f"speculative decoding: {result['tokens_per_target_call']:.2f} tokens per target call, "
            f"{result['speedup_vs_plain']:.2f}x plain decoding, same law (p = {result['law_p']:.3g}), "
            f"{result['seconds']:.1f} s"
        )
    return 0
