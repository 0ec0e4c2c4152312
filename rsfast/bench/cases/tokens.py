"""Benchmark cases of :mod:`rsfast.tokens` (``rsfast bench --case tokens_*``).

Decoding-step shapes: B = 64 rows of V = 128,256 float32 logits (Llama 3's vocabulary; quick: V = 32,000).
Methods: ``rsfast``, ``torch`` (the sort-based path of Hugging Face warpers / vLLM: temperature, softmax,
sort, cumulative-sum mask, multinomial; for verification a vectorised torch chain verification) and
``per_row`` (the same torch path called row by row from Python, on 8 rows)."""

from typing import Any, Callable

import torch
from torch import Tensor

from ... import baselines, tokens
from ..common import SEED, BenchCase, Prepared, _device, _generator

#: Place of these cases in the report.
ORDER = 9

TOKENS_B = 64
TOKENS_V = (128_256, 32_000)  # full, quick
PER_ROW_ROWS = 8
VERIFY_S = 4


def _check_ids(v: int) -> Callable[[str, Any], None]:
    def check(method: str, out: Any) -> None:
        ids = out.ids if isinstance(out, tokens.TokenSample) else out
        assert bool(((ids >= 0) & (ids < v)).all()), f"{method}: id out of range"

    return check


def _sample_setup(name: str, kw: dict[str, Any]) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        dev = _device(device)
        v = TOKENS_V[quick]
        g = _generator(dev)
        logits = 2.0 * torch.randn((TOKENS_B, v), generator=g, device=dev)
        seeds = torch.arange(TOKENS_B, device=dev)
        t = kw.get("temperature", 1.0)
        sort_kw = dict(temperature=t, top_k=kw.get("top_k"), top_p=kw.get("top_p"), min_p=kw.get("min_p"))

        def run_rsfast() -> Any:
            return tokens.sample(logits, seeds=seeds, **kw)

        def run_torch() -> Tensor:
            g.manual_seed(SEED)
            return baselines.tokens_sort_sample(logits, generator=g, **sort_kw)

        def run_per_row() -> Tensor:
            g.manual_seed(SEED)
            return torch.cat(
                [
                    baselines.tokens_sort_sample(logits[i : i + 1], generator=g, **sort_kw)
                    for i in range(PER_ROW_ROWS)
                ]
            )

        return Prepared(
            case=name,
            unit="rows/s",
            methods={"rsfast": run_rsfast, "torch": run_torch, "per_row": run_per_row},
            items={"rsfast": TOKENS_B, "torch": TOKENS_B, "per_row": PER_ROW_ROWS},
            check=_check_ids(v),
            device=dev,
            bytes_per_call={"rsfast": logits.numel() * 4, "torch": logits.numel() * 4},
            bytes_note="read: logits",
            meta={"B": TOKENS_B, "V": v, "dtype": "float32", **{k: str(x) for k, x in kw.items()}},
        )

    return setup


def _verify_setup(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    v, b, s = TOKENS_V[quick], TOKENS_B, VERIFY_S
    g = _generator(dev)
    target = 2.0 * torch.randn((b, s + 1, v), generator=g, device=dev)
    draft_logits = target[:, :s] + 0.5 * torch.randn((b, s, v), generator=g, device=dev)
    draft_probs = torch.softmax(draft_logits, -1)
    draft = torch.multinomial(draft_probs.reshape(-1, v), 1, generator=g).view(b, s)
    seeds = torch.arange(b, device=dev)

    def run_rsfast() -> Any:
        return tokens.verify(draft, target, draft_probs, seeds=seeds)

    def run_torch() -> Any:
        g.manual_seed(SEED)
        return baselines.tokens_sort_verify(draft, target, draft_probs, generator=g)

    def run_per_row() -> Any:
        g.manual_seed(SEED)
        return [
            baselines.tokens_sort_verify(
                draft[i : i + 1], target[i : i + 1], draft_probs[i : i + 1], generator=g
            )
            for i in range(PER_ROW_ROWS)
        ]

    def check(method: str, out: Any) -> None:
        ids = (
            out.ids if isinstance(out, tokens.Verification) else (out[0] if isinstance(out, tuple) else None)
        )
        if ids is not None:
            assert bool((ids < v).all() & (ids >= -1).all()), f"{method}: id out of range"

    return Prepared(
        case="tokens_verify",
        unit="requests/s",
        methods={"rsfast": run_rsfast, "torch": run_torch, "per_row": run_per_row},
        items={"rsfast": b, "torch": b, "per_row": PER_ROW_ROWS},
        check=check,
        device=dev,
        meta={"B": b, "S": s, "V": v, "dtype": "float32", "draft_probs": True},
    )


CASES = [
    BenchCase(
        "tokens_topk_topp",
        "next token of 64 rows x 128,256 float32 logits, T 0.8, top-k 50 + top-p 0.9 vs sort-based torch",
        _sample_setup("tokens_topk_topp", dict(temperature=0.8, top_k=50, top_p=0.9)),
    ),
    BenchCase(
        "tokens_topp",
        "next token of 64 rows x 128,256 float32 logits, top-p 0.9 vs sort-based torch",
        _sample_setup("tokens_topp", dict(top_p=0.9)),
    ),
    BenchCase(
        "tokens_minp",
        "next token of 64 rows x 128,256 float32 logits, min-p 0.1 vs torch (softmax, mask, multinomial)",
        _sample_setup("tokens_minp", dict(min_p=0.1)),
    ),
    BenchCase(
        "tokens_verify",
        "speculative verification, 64 requests x 4 drafts (+1 bonus) x 128,256 float32 target logits with"
        " draft probabilities vs vectorised torch",
        _verify_setup,
    ),
]
