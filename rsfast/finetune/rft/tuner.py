"""The :class:`RejectionSamplingFineTuner` (one round: generate, score, filter, dedupe, select, fine-tune)."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ... import select as _select
from ..._random import check_generator, draw_seed
from ...decoding.generate import generate
from .common import (
    _MAX_REFILLS,
    SELECTION_RULES,
    GenerateFn,
    RewardFn,
    Tokens,
    _as_tokens,
    _check_float,
    _check_positive_int,
    _check_prompts,
    _mix64,
    token_hash,
)
from .distributed import _all_gather_objects, _dist_info
from .loss import completion_loss
from .stats import RoundStats, _pass_at_k, write_jsonl


@dataclass
class _Group:
    """One prompt's candidates in a round (local to the rank that generated them)."""

    index: int  # global index of the prompt in the round (pass order, then position)
    prompt: list[int]
    reference: Any
    completions: list[list[int]]
    rewards: list[float]


class RejectionSamplingFineTuner:
    """Rounds of generate → score → select → fine-tune for a torch causal LM.

    Covers RFT (``selection="verifier"``, ``dedupe=True``), Llama 2 rejection sampling and RAFT
    (``"best_of_n"``, ``"top_fraction"``), RSO (``"rso"``), ReST-EM (``"verifier"`` or ``"threshold"`` with
    ``restart_from_base=True``) and DAPO dynamic sampling (``filter_groups=True``, ``max_refills``).

    Args:
        model: causal LM, ``model(input_ids [B, T]) -> logits [B, T, V]`` (or an output with ``.logits``,
            e.g. Hugging Face), or a ``DistributedDataParallel`` around one.
        reward_fn: ``reward_fn(prompts, completions, references) -> rewards``: ``prompts[i]`` and
            ``completions[i]`` are token lists of candidate i (the prompt repeated for its N candidates),
            ``references[i]`` its prompt's reference (None when no references were given); returns M
            floats (a sequence or a tensor [M]). NaN rewards raise ValueError. A verifier returns 1.0 for
            correct and 0.0 for wrong.
        selection: one of :data:`SELECTION_RULES`:
            ``"verifier"``: every candidate with reward >= ``pass_threshold`` (at most ``max_per_prompt``);
            ``"threshold"``: reward >= ``min_reward`` (at most ``max_per_prompt``);
            ``"best_of_n"``: the ``k`` best of each prompt;
            ``"rso"``: ``k`` per prompt by RSO at temperature ``beta``;
            ``"top_fraction"``: the global top ``fraction`` of the round's candidates (RAFT).
        samples_per_prompt: N completions per prompt.
        k: per-prompt count of ``best_of_n`` / ``rso``.
        beta: RSO temperature (> 0).
        min_reward: bar of ``"threshold"``.
        fraction: share of ``"top_fraction"``, in (0, 1].
        max_per_prompt: cap of ``"verifier"`` / ``"threshold"`` (None: no cap).
        pass_threshold: reward at or above which a candidate counts as passing (verifier rule and the
            pass@k statistics).
        dedupe: drop repeated completions of a prompt (by ``dedupe_key``) before selecting.
        dedupe_key: ``key(completion_tokens) -> int`` (e.g. a hash of the final answer); default
            :func:`token_hash` of the completion.
        restart_from_base: ReST-EM: fine-tune each round from the weights the model had at construction
            (and a fresh optimizer state), on that round's accepted data.
        filter_groups: DAPO: drop prompts whose N rewards are all equal (nothing to contrast).
        max_refills: with ``filter_groups``, most extra generation passes per round over fresh prompts
            (from :meth:`fit`'s pool or ``step``'s ``refill``) to make up for dropped prompts.
        generate_fn: ``generate_fn(model, prompts, num_samples) -> completions`` (P lists of N token
            sequences) replacing the built-in sampler; called on the unwrapped model in eval mode, under
            ``torch.no_grad``.
        max_new_tokens, temperature, top_k, eos_token_id: the built-in sampler's settings
            (:func:`rsfast.generate`: KV-cached, seeded per prompt).
        generation_batch_size: most rows decoded together by the built-in sampler.
        generate_kwargs: further keyword arguments of :func:`rsfast.generate` (``top_p``, ``min_p``,
            ``draft_model``, ``num_draft_tokens``, ``padding``, ...).
        pad_token_id: padding of SFT batches (masked out); default ``eos_token_id`` or 0.
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters, a factory
            ``params -> Optimizer``, or None for ``AdamW(lr=lr)``.
        lr: learning rate of the default optimizer.
        sft_epochs: passes over the round's fine-tuning data.
        batch_size: sequences per optimizer step (global, over all ranks).
        max_grad_norm: clip the gradient norm (None: no clipping).
        base_data: (prompt, completion) pairs added to every round's fine-tuning data (RFT trains on the
            SFT set plus the accepted samples).
        keep_records: keep the accepted examples and DPO pairs of every round (:attr:`accepted_records`,
            :attr:`preference_pairs`).
        pairs_per_prompt: most chosen/rejected pairs exported per prompt.
        decode: ``decode(tokens) -> str``; when given, records also carry the text.
        generator: draws each round's seed (default CPU generator when None); under torch.distributed
            rank 0's draw is broadcast.
        progress: show a tqdm progress bar in :meth:`fit` (rank 0; silently none without tqdm).
        ddp: wrap the model in ``DistributedDataParallel`` when torch.distributed is initialised with
            more than one rank (None: yes unless it already is one; False: never).
    """

    def __init__(
        self,
        model: nn.Module,
        reward_fn: RewardFn,
        *,
        selection: str = "verifier",
        samples_per_prompt: int = 8,
        k: int = 1,
        beta: float = 1.0,
        min_reward: float | None = None,
        fraction: float | None = None,
        max_per_prompt: int | None = None,
        pass_threshold: float = 0.5,
        dedupe: bool = True,
        dedupe_key: Callable[[list[int]], int] | None = None,
        restart_from_base: bool = False,
        filter_groups: bool = False,
        max_refills: int = 0,
        generate_fn: GenerateFn | None = None,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_k: int | None = None,
        eos_token_id: int | None = None,
        generation_batch_size: int = 256,
        generate_kwargs: dict[str, Any] | None = None,
        pad_token_id: int | None = None,
        optimizer: torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer] | None = None,
        lr: float = 1e-4,
        sft_epochs: int = 1,
        batch_size: int = 32,
        max_grad_norm: float | None = None,
        base_data: Sequence[tuple[Tokens, Tokens]] | None = None,
        keep_records: bool = True,
        pairs_per_prompt: int = 1,
        decode: Callable[[list[int]], str] | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        ddp: bool | None = None,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel

        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable, got {type(reward_fn).__name__}")
        if not isinstance(selection, str):
            raise TypeError(f"selection must be a str, got {type(selection).__name__}")
        if selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {SELECTION_RULES}, got {selection!r}")
        self.reward_fn = reward_fn
        self.selection = selection
        self.samples_per_prompt = _check_positive_int(samples_per_prompt, "samples_per_prompt")
        self.k = _check_positive_int(k, "k")
        if selection in ("best_of_n", "rso") and self.k > self.samples_per_prompt:
            raise ValueError(f"k must be <= samples_per_prompt = {self.samples_per_prompt}, got {self.k}")
        self.beta = _check_float(beta, "beta")
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if selection == "threshold" and min_reward is None:
            raise ValueError("min_reward is required with selection='threshold'")
        self.min_reward = None if min_reward is None else _check_float(min_reward, "min_reward")
        if selection == "top_fraction" and fraction is None:
            raise ValueError("fraction is required with selection='top_fraction'")
        self.fraction = None if fraction is None else _check_float(fraction, "fraction")
        if self.fraction is not None and not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        self.max_per_prompt = (
            None if max_per_prompt is None else _check_positive_int(max_per_prompt, "max_per_prompt")
        )
        self.pass_threshold = _check_float(pass_threshold, "pass_threshold")
        if not isinstance(dedupe, bool):
            raise TypeError(f"dedupe must be a bool, got {type(dedupe).__name__}")
        self.dedupe = dedupe
        if dedupe_key is not None and not callable(dedupe_key):
            raise TypeError(f"dedupe_key must be callable or None, got {type(dedupe_key).__name__}")
        self.dedupe_key = dedupe_key or token_hash
        self.restart_from_base = bool(restart_from_base)
        self.filter_groups = bool(filter_groups)
        self.max_refills = _check_positive_int(max_refills, "max_refills", minimum=0)
        if self.max_refills > _MAX_REFILLS:
            raise ValueError(f"max_refills must be <= {_MAX_REFILLS}, got {self.max_refills}")
        if generate_fn is not None and not callable(generate_fn):
            raise TypeError(f"generate_fn must be callable or None, got {type(generate_fn).__name__}")
        self.generate_fn = generate_fn
        if generate_kwargs is not None and not isinstance(generate_kwargs, dict):
            raise TypeError(f"generate_kwargs must be a dict or None, got {type(generate_kwargs).__name__}")
        reserved = {
            "model",
            "prompts",
            "n",
            "max_new_tokens",
            "temperature",
            "top_k",
            "eos_token_id",
            "seeds",
            "generator",
            "batch_size",
        }
        clash = sorted(reserved & set(generate_kwargs or {}))
        if clash:
            raise ValueError(f"generate_kwargs must not set {clash}: they are the tuner's own arguments")
        self.generate_kwargs = dict(generate_kwargs or {})
        self.max_new_tokens = _check_positive_int(max_new_tokens, "max_new_tokens")
        self.temperature = _check_float(temperature, "temperature")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        self.top_k = None if top_k is None else _check_positive_int(top_k, "top_k")
        self.eos_token_id = (
            None if eos_token_id is None else _check_positive_int(eos_token_id, "eos_token_id", minimum=0)
        )
        self.generation_batch_size = _check_positive_int(generation_batch_size, "generation_batch_size")
        if pad_token_id is None:
            pad_token_id = self.eos_token_id if self.eos_token_id is not None else 0
        self.pad_token_id = _check_positive_int(pad_token_id, "pad_token_id", minimum=0)
        self.lr = _check_float(lr, "lr")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.sft_epochs = _check_positive_int(sft_epochs, "sft_epochs", minimum=0)
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.max_grad_norm = None if max_grad_norm is None else _check_float(max_grad_norm, "max_grad_norm")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        self.base_data: list[tuple[list[int], list[int]]] = []
        for i, pair in enumerate(base_data or []):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"base_data[{i}] must be a (prompt, completion) pair")
            self.base_data.append(
                (_as_tokens(pair[0], f"base_data[{i}][0]"), _as_tokens(pair[1], f"base_data[{i}][1]"))
            )
        self.keep_records = bool(keep_records)
        self.pairs_per_prompt = _check_positive_int(pairs_per_prompt, "pairs_per_prompt", minimum=0)
        if decode is not None and not callable(decode):
            raise TypeError(f"decode must be callable or None, got {type(decode).__name__}")
        self.decode = decode
        check_generator(generator, torch.device("cpu"))
        self.generator = generator
        self.progress = bool(progress)

        self.rank, self.world_size = _dist_info()
        if isinstance(model, DistributedDataParallel):
            self.module, self.train_model = model.module, model
        elif self.world_size > 1 and ddp is not False:
            self.module = model
            self.train_model = DistributedDataParallel(model)
        else:
            self.module, self.train_model = model, model
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters")
        if optimizer is None:
            self._optimizer_factory: Callable[[Any], torch.optim.Optimizer] | None = None
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=self.lr)
        elif isinstance(optimizer, torch.optim.Optimizer):
            self._optimizer_factory = None
            self.optimizer = optimizer
        elif callable(optimizer):
            self._optimizer_factory = optimizer
            self.optimizer = optimizer(params)
            if not isinstance(self.optimizer, torch.optim.Optimizer):
                raise TypeError(f"optimizer factory returned {type(self.optimizer).__name__}")
        else:
            raise TypeError(
                "optimizer must be a torch.optim.Optimizer, a factory or None, "
                f"got {type(optimizer).__name__}"
            )
        self._base_state = (
            {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            if self.restart_from_base
            else None
        )
        self._base_optimizer_state = (
            copy.deepcopy(self.optimizer.state_dict()) if self.restart_from_base else None
        )
        self.history: list[RoundStats] = []
        self.accepted_records: list[dict[str, Any]] = []
        self.preference_pairs: list[dict[str, Any]] = []
        self._round = 0

    # ------------------------------------------------------------------------------------ generation

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def _round_seed(self) -> int:
        seed = draw_seed(self.generator)
        if self.world_size > 1:
            t = torch.tensor([seed], dtype=torch.int64)
            torch.distributed.broadcast(t, src=0)
            seed = int(t.item())
        return seed

    def generate(
        self, prompts: Sequence[Tokens], num_samples: int | None = None, *, seeds: Sequence[int] | None = None
    ) -> list[list[list[int]]]:
        """N completions per prompt from the current model (``generate_fn`` when given), on this rank only.

        Returns ``out[i][j]``, token lists."""
        prompt_lists = _check_prompts(prompts)
        n = (
            self.samples_per_prompt
            if num_samples is None
            else _check_positive_int(num_samples, "num_samples")
        )
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                if self.generate_fn is not None:
                    raw = self.generate_fn(self.module, prompt_lists, n)
                    if not isinstance(raw, (list, tuple)) or len(raw) != len(prompt_lists):
                        raise ValueError(
                            "generate_fn must return one list of completions per prompt "
                            f"({len(prompt_lists)})"
                        )
                    out = []
                    for i, group in enumerate(raw):
                        if not isinstance(group, (list, tuple)) or len(group) != n:
                            raise ValueError(f"generate_fn must return {n} completions for prompt {i}")
                        out.append(
                            [_as_tokens(c, f"generate_fn completion {i}", allow_empty=True) for c in group]
                        )
                    return out
                return generate(
                    self.module,
                    prompt_lists,
                    n,
                    max_new_tokens=self.max_new_tokens,
                    temperature=self.temperature,
                    top_k=self.top_k,
                    eos_token_id=self.eos_token_id,
                    seeds=seeds,
                    generator=self.generator if seeds is None else None,
                    batch_size=self.generation_batch_size,
                    **self.generate_kwargs,
                ).completions()
        finally:
            self.module.train(was_training)

    def _score(self, groups: list[_Group], has_refs: bool) -> None:
        n = self.samples_per_prompt
        prompts = [g.prompt for g in groups for _ in range(n)]
        comps = [c for g in groups for c in g.completions]
        refs = [g.reference for g in groups for _ in range(n)] if has_refs else None
        raw = self.reward_fn(prompts, comps, refs)
        rewards = torch.as_tensor(raw if isinstance(raw, Tensor) else list(raw), dtype=torch.float64)
        rewards = rewards.detach().cpu().reshape(-1)
        if rewards.numel() != len(comps):
            raise ValueError(
                f"reward_fn must return {len(comps)} rewards (one per completion), got {rewards.numel()}"
            )
        if bool(torch.isnan(rewards).any()):
            raise ValueError("reward_fn returned NaN rewards")
        values = rewards.tolist()
        for gi, g in enumerate(groups):
            g.rewards = values[gi * n : (gi + 1) * n]

    # ------------------------------------------------------------------------------------------ round

    def step(
        self,
        prompts: Sequence[Tokens],
        references: Sequence[Any] | None = None,
        *,
        refill: Callable[[int], tuple[list, list | None]] | None = None,
    ) -> RoundStats:
        """One round on ``prompts`` (the same full list on every rank; each rank takes its shard).

        Args:
            prompts: P token sequences.
            references: P references handed to ``reward_fn`` (e.g. the right answers), or None.
            refill: with ``filter_groups``: ``refill(n) -> (prompts, references)`` returns up to n fresh
                prompts (the same on every rank) to replace dropped ones; called at most ``max_refills``
                times. None: no refills.

        Returns:
            the round's :class:`RoundStats` (also appended to :attr:`history`).
        """
        t0 = time.perf_counter()
        prompt_lists = _check_prompts(prompts)
        refs = self._check_references(references, len(prompt_lists))
        if refill is not None and not callable(refill):
            raise TypeError(f"refill must be callable or None, got {type(refill).__name__}")
        round_seed = self._round_seed()
        n = self.samples_per_prompt

        # generate, score, filter; refill dropped groups from fresh prompts
        kept: list[_Group] = []
        all_groups: list[_Group] = []
        dropped_total = refills = 0
        next_index = 0
        batch_prompts, batch_refs = prompt_lists, refs
        target = len(prompt_lists)
        for pass_no in range(self.max_refills + 1):
            local = list(range(self.rank, len(batch_prompts), self.world_size))
            groups = [
                _Group(next_index + i, batch_prompts[i], batch_refs[i] if batch_refs else None, [], [])
                for i in local
            ]
            next_index += len(batch_prompts)
            if groups:
                seeds = [_mix64(round_seed, g.index) for g in groups]
                comps = self.generate([g.prompt for g in groups], n, seeds=seeds)
                for g, c in zip(groups, comps):
                    g.completions = c
                self._score(groups, batch_refs is not None)
            all_groups.extend(groups)
            if self.filter_groups and groups:
                keep = _select.filter_groups(torch.tensor([g.rewards for g in groups], dtype=torch.float64))
                kept.extend(g for g, k in zip(groups, keep.tolist()) if k)
            elif not self.filter_groups:
                kept.extend(groups)
            if not self.filter_groups:
                break
            n_kept = self._all_sum([len(kept)])[0]
            missing = target - n_kept
            if missing <= 0 or refill is None or pass_no == self.max_refills:
                break
            more = refill(missing)
            if not isinstance(more, tuple) or len(more) != 2:
                raise TypeError("refill must return a (prompts, references) tuple")
            if not more[0]:
                break
            batch_prompts = _check_prompts(more[0], "refill prompts")
            batch_refs = self._check_references(more[1], len(batch_prompts), "refill references")
            refills += 1
        dropped_total = len(all_groups) - len(kept)
        generate_seconds = time.perf_counter() - t0

        # dedupe and select on the kept groups (ragged after dedupe)
        accepted, duplicates, pairs = self._select(kept, round_seed)

        # statistics (local sums, all-reduced)
        hist = [0] * (n + 1)
        reward_sum = 0.0
        passed = 0
        for g in all_groups:
            c = sum(r >= self.pass_threshold for r in g.rewards)
            hist[c] += 1
            passed += c
            reward_sum += sum(g.rewards)
        acc_reward_sum = sum(r for _, _, _, r in accepted)
        sums = self._all_sum(
            [len(all_groups), len(kept), dropped_total, duplicates, len(accepted), passed, *hist],
            [reward_sum, acc_reward_sum],
        )
        n_prompts, n_kept, n_dropped, n_dup, n_acc, n_passed, *hist = sums[:-2]
        reward_sum, acc_reward_sum = sums[-2:]

        # gather the accepted examples (same order as a single process), fine-tune
        records = self._records(accepted, pairs)
        gathered = _all_gather_objects(records, self.world_size)
        round_records = sorted(
            (r for part in gathered for r in part[0]), key=lambda r: (r["prompt_index"], r["sample_index"])
        )
        round_pairs = sorted((p for part in gathered for p in part[1]), key=lambda p: p["prompt_index"])
        if self.keep_records:
            self.accepted_records.extend(round_records)
            self.preference_pairs.extend(round_pairs)
        data = [(r["prompt"], r["completion"]) for r in round_records] + self.base_data
        loss, steps, tokens = self._finetune(data, round_seed)

        candidates = n_prompts * n
        stats = RoundStats(
            round=self._round,
            prompts=n_prompts,
            samples_per_prompt=n,
            candidates=candidates,
            mean_reward=reward_sum / candidates if candidates else float("nan"),
            pass_rate=n_passed / candidates if candidates else float("nan"),
            pass_histogram=list(hist),
            pass_at_k=_pass_at_k(hist, n),
            groups_kept=n_kept,
            groups_dropped=n_dropped,
            refills=refills,
            duplicates=n_dup,
            accepted=n_acc,
            acceptance=n_acc / candidates if candidates else float("nan"),
            accepted_reward=acc_reward_sum / n_acc if n_acc else float("nan"),
            loss=loss,
            sft_steps=steps,
            sft_tokens=tokens,
            generate_seconds=generate_seconds,
            seconds=time.perf_counter() - t0,
        )
        self.history.append(stats)
        self._round += 1
        return stats

    def _check_references(self, references: Any, p: int, name: str = "references") -> list | None:
        if references is None:
            return None
        if isinstance(references, Tensor):
            references = references.tolist()
        if not isinstance(references, (list, tuple)):
            raise TypeError(f"{name} must be a list or None, got {type(references).__name__}")
        if len(references) != p:
            raise ValueError(f"{name} must have one entry per prompt ({p}), got {len(references)}")
        return list(references)

    def _all_sum(self, ints: list[int], floats: list[float] | None = None) -> list:
        """Sum integer (exactly, int64) and float (float64) lists over the ranks."""
        floats = floats or []
        if self.world_size == 1:
            return list(ints) + list(floats)
        ti = torch.tensor(ints, dtype=torch.int64)
        tf = torch.tensor(floats if floats else [0.0], dtype=torch.float64)
        torch.distributed.all_reduce(ti)
        torch.distributed.all_reduce(tf)
        return [int(v) for v in ti.tolist()] + (tf.tolist() if floats else [])

    def _select(
        self, groups: list[_Group], round_seed: int
    ) -> tuple[list[tuple[_Group, int, list[int], float]], int, list[tuple[_Group, int, int]]]:
        """Dedupe and select; return (accepted (group, sample index, completion, reward), duplicates
        removed, DPO pairs (group, chosen index, rejected index))."""
        n = self.samples_per_prompt
        if not groups and self.selection != "top_fraction":
            return [], 0, []
        rewards = torch.tensor([g.rewards for g in groups], dtype=torch.float64).reshape(len(groups), n)
        if self.dedupe and groups:
            keys = torch.tensor(
                [self.dedupe_key(c) for g in groups for c in g.completions], dtype=torch.int64
            )
            owner = torch.arange(len(groups), dtype=torch.int64).repeat_interleave(n)
            keep = _select.dedupe(keys, owner)
        else:
            keep = torch.ones(len(groups) * n, dtype=torch.bool)
        duplicates = int((~keep).sum())
        flat = rewards.reshape(-1)[keep]
        sample_of = torch.arange(n).repeat(len(groups))[keep]  # within-group index of each survivor
        counts = keep.view(len(groups), n).sum(dim=1) if groups else torch.zeros(0, dtype=torch.int64)
        offsets = torch.zeros(len(groups) + 1, dtype=torch.int64)
        offsets[1:] = counts.cumsum(0)

        chosen: list[tuple[int, int]] = []  # (group position, survivor flat index)
        if self.selection in ("verifier", "threshold"):
            bar = self.pass_threshold if self.selection == "verifier" else self.min_reward
            idx, cnt = _select.threshold(flat, bar, max_per_group=self.max_per_prompt, offsets=offsets)
            owner_of = torch.repeat_interleave(torch.arange(len(groups)), cnt)
            chosen = list(zip(owner_of.tolist(), idx.tolist()))
        elif self.selection in ("best_of_n", "rso"):
            if self.selection == "best_of_n":
                picks = _select.best_of_n(flat, self.k, offsets=offsets)
            else:
                g = torch.Generator().manual_seed(_mix64(round_seed, 0x5250, self.rank))
                picks = _select.rso(flat, self.k, self.beta, offsets=offsets, generator=g)
            for gi, row in enumerate(picks.tolist()):
                chosen.extend((gi, int(offsets[gi]) + j) for j in row if j >= 0)
        else:  # top_fraction: a global rule, over all ranks' candidates
            chosen = self._top_fraction(groups, flat, offsets)

        accepted = []
        chosen_set: dict[int, set[int]] = {}
        for gi, fi in chosen:
            g = groups[gi]
            j = int(sample_of[fi])
            accepted.append((g, j, g.completions[j], g.rewards[j]))
            chosen_set.setdefault(gi, set()).add(j)

        pairs: list[tuple[_Group, int, int]] = []
        if self.pairs_per_prompt:
            for gi, g in enumerate(groups):
                picked = chosen_set.get(gi)
                if not picked:
                    continue
                lo, hi = int(offsets[gi]), int(offsets[gi + 1])
                survivors = [int(sample_of[f]) for f in range(lo, hi)]
                best = sorted(picked, key=lambda j: (-g.rewards[j], j))
                worst = sorted((j for j in survivors if j not in picked), key=lambda j: (g.rewards[j], j))
                for c, r in zip(best[: self.pairs_per_prompt], worst):
                    if g.rewards[r] < g.rewards[c]:
                        pairs.append((g, c, r))
        return accepted, duplicates, pairs

    def _top_fraction(self, groups: list[_Group], flat: Tensor, offsets: Tensor) -> list[tuple[int, int]]:
        counts = (offsets[1:] - offsets[:-1]).tolist()
        owners = [g.index for g in groups]
        parts = _all_gather_objects((owners, counts, flat.tolist()), self.world_size)
        # Lay all ranks' candidates out in global prompt order, as one process would.
        entries = []
        for rank, (owner_list, count_list, values) in enumerate(parts):
            pos = 0
            for gi, (owner, c) in enumerate(zip(owner_list, count_list)):
                for j in range(c):
                    entries.append((owner, j, rank, gi, pos + j, values[pos + j]))
                pos += c
        entries.sort(key=lambda e: (e[0], e[1]))
        if not entries:
            return []
        picked = _select.top_fraction(
            torch.tensor([e[5] for e in entries], dtype=torch.float64), self.fraction
        )
        return [(entries[i][3], entries[i][4]) for i in picked.tolist() if entries[i][2] == self.rank]

    def _records(
        self, accepted: list[tuple[_Group, int, list[int], float]], pairs: list[tuple[_Group, int, int]]
    ) -> tuple[list[dict], list[dict]]:
        recs = []
        for g, j, comp, r in accepted:
            rec = {
                "round": self._round,
                "prompt_index": g.index,
                "sample_index": j,
                "prompt": g.prompt,
                "completion": comp,
                "reward": r,
            }
            if g.reference is not None:
                rec["reference"] = g.reference
            if self.decode is not None:
                rec["prompt_text"] = self.decode(g.prompt)
                rec["completion_text"] = self.decode(comp)
            recs.append(rec)
        prs = []
        for g, c, r in pairs:
            rec = {
                "round": self._round,
                "prompt_index": g.index,
                "prompt": g.prompt,
                "chosen": g.completions[c],
                "rejected": g.completions[r],
                "chosen_reward": g.rewards[c],
                "rejected_reward": g.rewards[r],
            }
            if self.decode is not None:
                rec["prompt_text"] = self.decode(g.prompt)
                rec["chosen_text"] = self.decode(g.completions[c])
                rec["rejected_text"] = self.decode(g.completions[r])
            prs.append(rec)
        return recs, prs

    # -------------------------------------------------------------------------------------- fine-tune

    def restore_base(self) -> None:
        """Load the weights the model had at construction and reset the optimizer (ReST-EM)."""
        if self._base_state is None:
            raise RuntimeError("restore_base needs restart_from_base=True at construction")
        with torch.no_grad():
            self.module.load_state_dict(self._base_state)
        if self._optimizer_factory is not None:
            self.optimizer = self._optimizer_factory([p for p in self.module.parameters() if p.requires_grad])
        else:
            self.optimizer.load_state_dict(copy.deepcopy(self._base_optimizer_state))

    def _finetune(self, data: list[tuple[list[int], list[int]]], round_seed: int) -> tuple[float, int, int]:
        """SFT on (prompt, completion) pairs, identical on every rank: each global minibatch is split
        across the ranks and the summed loss normalised by its global token count (DDP averages the
        gradients, hence the world_size factor). Returns (mean loss per token, steps, tokens)."""
        if self.restart_from_base:
            self.restore_base()
        data = [d for d in data if d[1]]  # empty completions have nothing to learn
        if not data or self.sft_epochs == 0:
            return float("nan"), 0, 0
        g = torch.Generator().manual_seed(_mix64(round_seed, 0x5346))
        was_training = self.module.training
        self.train_model.train()
        loss_sum = 0.0
        token_sum = 0
        steps = 0
        try:
            for _ in range(self.sft_epochs):
                order = torch.randperm(len(data), generator=g).tolist()
                for start in range(0, len(order), self.batch_size):
                    batch = [data[i] for i in order[start : start + self.batch_size]]
                    global_tokens = sum(len(c) for _, c in batch)
                    mine = batch[self.rank :: self.world_size]
                    weight = 1.0
                    if not mine:  # this rank still takes part in DDP's gradient all-reduce
                        mine, weight = batch[:1], 0.0
                    total, _ = completion_loss(
                        self.train_model,
                        [p for p, _ in mine],
                        [c for _, c in mine],
                        pad_token_id=self.pad_token_id,
                        reduction="sum",
                    )
                    loss = total * (weight * self.world_size / global_tokens)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.max_grad_norm)
                    self.optimizer.step()
                    loss_sum += float(total.detach()) * weight
                    token_sum += global_tokens
                    steps += 1
        finally:
            self.module.train(was_training)
        loss_sum = self._all_sum([], [loss_sum])[0] if self.world_size > 1 else loss_sum
        return loss_sum / token_sum, steps, token_sum

    # --------------------------------------------------------------------------------------------- fit

    def fit(
        self,
        prompts: Sequence[Tokens],
        references: Sequence[Any] | None = None,
        *,
        rounds: int,
        prompts_per_round: int | None = None,
        callback: Callable[[RoundStats], None] | None = None,
    ) -> list[RoundStats]:
        """Run ``rounds`` rounds over a pool of prompts.

        Each round takes the next ``prompts_per_round`` prompts (default: all) of a stream that walks the
        pool in a fresh random order per pass (from ``generator``); refills of the group filter come from
        the same stream.

        Returns the rounds' :class:`RoundStats`."""
        pool = _check_prompts(prompts)
        refs = self._check_references(references, len(pool))
        rounds = _check_positive_int(rounds, "rounds", minimum=0)
        per_round = (
            len(pool)
            if prompts_per_round is None
            else _check_positive_int(prompts_per_round, "prompts_per_round")
        )
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        stream = self._prompt_stream(len(pool))

        def take(count: int) -> tuple[list, list | None]:
            idx = [next(stream) for _ in range(count)]
            return [pool[i] for i in idx], ([refs[i] for i in idx] if refs is not None else None)

        bar = _progress_bar(rounds) if self.progress and self.rank == 0 else None
        out = []
        try:
            for _ in range(rounds):
                batch, batch_refs = take(per_round)
                stats = self.step(batch, batch_refs, refill=take if self.filter_groups else None)
                out.append(stats)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(accepted=stats.accepted, pass1=f"{stats.pass_at_k[1]:.3f}")
                if callback is not None:
                    callback(stats)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _prompt_stream(self, size: int) -> Iterator[int]:
        seed = self._round_seed()
        g = torch.Generator().manual_seed(seed)
        while True:
            yield from torch.randperm(size, generator=g).tolist()

    # ------------------------------------------------------------------------------------------ export

    def export_accepted(self, path: str | os.PathLike) -> int:
        """Write :attr:`accepted_records` as JSON Lines; return the number of lines."""
        return write_jsonl(self.accepted_records, path)

    def export_pairs(self, path: str | os.PathLike) -> int:
        """Write :attr:`preference_pairs` (prompt, chosen, rejected, rewards) as JSON Lines for DPO."""
        return write_jsonl(self.preference_pairs, path)


def _progress_bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        return None
    return tqdm(total=total, desc="rft", unit="round")
