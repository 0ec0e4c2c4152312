"""Fixtures of the RejectionSamplingFineTuner tests (test_rft.py, test_rft_inputs.py)."""

from __future__ import annotations

import torch

from rsfast.demos.rft import TinyCausalLM
from rsfast.finetune import RejectionSamplingFineTuner

VOCAB, EOS = 8, 7


def tiny_model(seed: int = 0) -> TinyCausalLM:
    torch.manual_seed(seed)
    return TinyCausalLM(VOCAB, 16, d_model=16, n_layers=1, n_heads=2)


def some_prompts(count: int = 6, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, EOS, (2 + i % 3,), generator=g).tolist() for i in range(count)]


class RecordingReward:
    """Reward = a fixed function of (prompt, completion), recording every call's candidates."""

    def __init__(self, fn=None):
        self.fn = fn or (lambda p, c: float(sum(c) % 5))
        self.calls: list[tuple[list, list]] = []

    def __call__(self, prompts, completions, references):
        self.calls.append((prompts, completions))
        return torch.tensor([self.fn(p, c) for p, c in zip(prompts, completions)])

    def groups(self, n: int) -> list[tuple[list[int], list[list[int]], list[float]]]:
        """(prompt, its N completions, their rewards) of every group scored, in call order."""
        out = []
        for prompts, comps in self.calls:
            for s in range(0, len(comps), n):
                out.append((prompts[s], comps[s : s + n], [self.fn(prompts[s], c) for c in comps[s : s + n]]))
        return out


def tuner_for(reward, **kw) -> RejectionSamplingFineTuner:
    args = dict(
        samples_per_prompt=6,
        max_new_tokens=3,
        eos_token_id=EOS,
        lr=1e-3,
        batch_size=8,
        generator=torch.Generator().manual_seed(3),
    )
    args.update(kw)
    model = args.pop("model", None) or tiny_model()
    return RejectionSamplingFineTuner(model, reward, **args)


def unique_candidates(comps: list[list[int]], rewards: list[float]) -> list[tuple[int, list[int], float]]:
    """(index, completion, reward) of the first occurrences, in index order."""
    seen, out = set(), []
    for j, (c, r) in enumerate(zip(comps, rewards)):
        if tuple(c) not in seen:
            seen.add(tuple(c))
            out.append((j, c, r))
    return out
