"""``rsfast demo rft``: rejection-sampling fine-tuning of a tiny transformer on multi-digit addition.

A 2-layer transformer is trained from scratch, with supervision, on a small labelled set of additions
``"a+b="`` → the digits of the sum (least significant first, then an end token), until it is partly
right. Then RFT rounds run on unlabelled prompts: sample several completions per prompt at temperature
1, keep the ones the exact-match verifier accepts, dedupe them, fine-tune on them (plus the labelled
set, as in Yuan et al. 2023). Accuracy is greedy exact match on held-out problems.

The pieces (:class:`TinyCausalLM`, :class:`AdditionTask`, :class:`DemoConfig`, :func:`run_demo`) are
importable so that tests can run them small.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from ._tiny_lm import TinyCausalLM

#: One line for ``rsfast demo`` (the list) and its place in it.
DESCRIPTION = "rejection-sampling fine-tuning (RFT) of a tiny transformer on 2-digit addition"
ORDER = 0

__all__ = ["TinyCausalLM", "AdditionTask", "DemoConfig", "run_demo", "run", "QUICK_ENV"]

#: Environment variable: set to 1 for a small, fast run of the demo (used by the smoke test).
QUICK_ENV = "RSFAST_DEMO_QUICK"


class AdditionTask:
    """``a+b=`` with ``digits``-digit operands (leading zeros kept); the answer is the ``digits + 1``
    digits of the sum, least significant first, then EOS. Tokens: 0-9 digits, 10 '+', 11 '=', 12 EOS."""

    PLUS, EQ, EOS = 10, 11, 12
    VOCAB = 13

    def __init__(self, digits: int) -> None:
        if digits < 1:
            raise ValueError(f"digits must be >= 1, got {digits}")
        self.digits = digits

    @property
    def prompt_len(self) -> int:
        return 2 * self.digits + 2

    @property
    def answer_len(self) -> int:
        return self.digits + 2  # sum digits + EOS

    def sample_pairs(self, count: int, generator: torch.Generator, exclude: set | None = None) -> list:
        """``count`` distinct (a, b) pairs not in ``exclude``."""
        hi = 10**self.digits
        if count > hi * hi - len(exclude or ()):
            raise ValueError(f"count {count} exceeds the {hi * hi} distinct problems")
        seen = set(exclude or ())
        out = []
        for _ in range(100 * count + 100):  # bounded: rejection of repeats
            if len(out) == count:
                break
            a, b = torch.randint(0, hi, (2,), generator=generator).tolist()
            if (a, b) not in seen:
                seen.add((a, b))
                out.append((a, b))
        if len(out) != count:
            raise RuntimeError("could not draw distinct problems")
        return out

    def prompt(self, a: int, b: int) -> list[int]:
        d = self.digits
        return [*map(int, f"{a:0{d}d}"), self.PLUS, *map(int, f"{b:0{d}d}"), self.EQ]

    def answer(self, a: int, b: int) -> list[int]:
        return [*map(int, reversed(f"{a + b:0{self.digits + 1}d}")), self.EOS]

    def decode(self, tokens: list[int]) -> str:
        return "".join("0123456789+=$"[t] if 0 <= t < self.VOCAB else "?" for t in tokens)

    def verify(self, prompts: list, completions: list, references: list | None) -> list[float]:
        """Exact-match verifier: 1.0 where the completion is the reference answer, else 0.0."""
        if references is None:
            raise ValueError("the addition verifier needs references (the right answers)")
        return [float(list(c) == list(r)) for c, r in zip(completions, references)]


@dataclass
class DemoConfig:
    """Sizes of the demo. The defaults are the full demo; :meth:`quick` a seconds-long smoke run."""

    seed: int = 0
    digits: int = 2
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    labelled: int = 800  # SFT set: small enough that the model is only partly right on held-out problems
    unlabelled: int = 8000  # RFT prompt pool (answers used only by the verifier)
    held_out: int = 1000
    sft_steps: int = 800
    sft_batch: int = 64
    sft_lr: float = 3e-3
    rounds: int = 4
    prompts_per_round: int = 1500
    samples_per_prompt: int = 8
    temperature: float = 1.0
    rft_lr: float = 5e-4
    rft_epochs: int = 2
    rft_batch: int = 64
    threads: int | None = None  # torch.set_num_threads for the run; None: leave torch's setting

    @classmethod
    def quick(cls, **kw: Any) -> DemoConfig:
        base = cls(
            labelled=64,
            unlabelled=64,
            held_out=32,
            sft_steps=20,
            rounds=1,
            prompts_per_round=16,
            samples_per_prompt=4,
            rft_epochs=1,
            d_model=32,
            n_layers=1,
            threads=1,
        )
        return replace(base, **kw)


@torch.no_grad()
def accuracy(model: nn.Module, task: AdditionTask, pairs: list, batch: int = 500) -> float:
    """Greedy exact-match accuracy of ``model`` on (a, b) pairs."""
    from ..decoding import generate

    was = model.training
    model.eval()
    try:
        correct = 0
        for s in range(0, len(pairs), batch):
            chunk = pairs[s : s + batch]
            out = generate(
                model,
                [task.prompt(a, b) for a, b in chunk],
                1,
                max_new_tokens=task.answer_len,
                temperature=0.0,
                eos_token_id=task.EOS,
                seeds=[0] * len(chunk),
                batch_size=batch,
            ).completions()
            correct += sum(o[0] == task.answer(a, b) for o, (a, b) in zip(out, chunk))
    finally:
        model.train(was)
    return correct / max(len(pairs), 1)


def _sft(model: nn.Module, task: AdditionTask, pairs: list, cfg: DemoConfig, g: torch.Generator) -> float:
    """Supervised training from scratch on the labelled pairs (AdamW, 50 warm-up steps, then cosine decay
    to 0); returns the last minibatch loss."""
    from ..finetune.rft import completion_loss

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.sft_steps) / cfg.sft_steps))
        ),
    )
    prompts = [task.prompt(a, b) for a, b in pairs]
    answers = [task.answer(a, b) for a, b in pairs]
    loss = torch.tensor(float("nan"))
    model.train()
    for _ in range(cfg.sft_steps):
        idx = torch.randint(0, len(pairs), (min(cfg.sft_batch, len(pairs)),), generator=g).tolist()
        loss, _ = completion_loss(model, [prompts[i] for i in idx], [answers[i] for i in idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return float(loss.detach())


def run_demo(cfg: DemoConfig, *, printer: Any = None) -> dict[str, Any]:
    """Run the demo with ``cfg``; return the final metrics. ``printer(line)`` receives the table lines."""
    from ..finetune.rft import RejectionSamplingFineTuner

    t0 = time.perf_counter()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    say = printer or (lambda line: None)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    task = AdditionTask(cfg.digits)
    test = task.sample_pairs(cfg.held_out, g)
    labelled = task.sample_pairs(cfg.labelled, g, exclude=set(test))
    pool = task.sample_pairs(cfg.unlabelled, g, exclude=set(test) | set(labelled))
    model = TinyCausalLM(
        task.VOCAB, task.prompt_len + task.answer_len, cfg.d_model, cfg.n_layers, cfg.n_heads
    )
    sft_loss = _sft(model, task, labelled, cfg, g)
    acc_before = accuracy(model, task, test)
    sft_seconds = time.perf_counter() - t0
    say(
        f"SFT on {len(labelled)} labelled problems ({cfg.digits}-digit addition), {cfg.sft_steps} steps: "
        f"loss {sft_loss:.3f}, held-out exact match {acc_before:.3f} ({sft_seconds:.1f} s)"
    )

    tuner = RejectionSamplingFineTuner(
        model,
        task.verify,
        selection="verifier",
        samples_per_prompt=cfg.samples_per_prompt,
        dedupe=True,
        max_new_tokens=task.answer_len,
        temperature=cfg.temperature,
        eos_token_id=task.EOS,
        optimizer=lambda params: torch.optim.AdamW(params, lr=cfg.rft_lr, weight_decay=0.01),
        sft_epochs=cfg.rft_epochs,
        batch_size=cfg.rft_batch,
        base_data=[(task.prompt(a, b), task.answer(a, b)) for a, b in labelled],
        keep_records=False,
        generation_batch_size=1024,
        generator=torch.Generator().manual_seed(cfg.seed + 1),
    )
    header = f"{'round':>5} {'pass@1':>7} {'pass@' + str(cfg.samples_per_prompt):>7} {'accepted':>8} "
    header += f"{'dupes':>6} {'loss':>6} {'held-out':>8} {'s':>6}"
    say(header)
    say(f"{'-':>5} {'':>7} {'':>7} {'':>8} {'':>6} {'':>6} {acc_before:>8.3f} {sft_seconds:>6.1f}")
    prompts = [task.prompt(a, b) for a, b in pool]
    refs = [task.answer(a, b) for a, b in pool]
    accepted = 0
    rows = []
    acc = acc_before

    def report(stats: Any) -> None:
        nonlocal accepted, acc
        accepted += stats.accepted
        acc = accuracy(model, task, test)
        n = cfg.samples_per_prompt
        rows.append({"round": stats.round, "accepted": stats.accepted, "accuracy": acc, "loss": stats.loss})
        say(
            f"{stats.round:>5} {stats.pass_at_k[1]:>7.3f} {stats.pass_at_k[n]:>7.3f} {stats.accepted:>8} "
            f"{stats.duplicates:>6} {stats.loss:>6.3f} {acc:>8.3f} {time.perf_counter() - t0:>6.1f}"
        )

    tuner.fit(prompts, refs, rounds=cfg.rounds, prompts_per_round=cfg.prompts_per_round, callback=report)
    return {
        "demo": "rft",
        "accuracy_before": acc_before,
        "accuracy_after": acc,
        "gain": acc - acc_before,
        "rounds": cfg.rounds,
        "accepted": accepted,
        "seconds": time.perf_counter() - t0,
        "per_round": rows,
        "config": asdict(cfg),
    }


def run(json_output: bool) -> int:
    """Entry point of ``rsfast demo rft``: the full demo, or the quick one when $RSFAST_DEMO_QUICK=1."""
    quick = os.environ.get(QUICK_ENV, "") not in ("", "0")
    cfg = DemoConfig.quick() if quick else DemoConfig()
    result = run_demo(cfg, printer=None if json_output else print)
    if json_output:
        print(json.dumps(result))
    else:
        print(
            f"held-out exact match {result['accuracy_before']:.3f} -> {result['accuracy_after']:.3f} "
            f"(+{100 * result['gain']:.1f} points), {result['accepted']} accepted completions, "
            f"{result['seconds']:.1f} s"
        )
    return 0
