"""The :class:`RejectionSamplingFineTuner` (one round: generate, score, filter, dedupe, select, fine-tune).

Its options are checked by :mod:`.options`; the selection step is :mod:`.selection`, the SFT step
:mod:`.sft`; this module runs the rounds."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ... import select as _select
from ..._checks import renamed_n
from ..._random import check_generator, draw_seed
from ...decoding.generate import generate
from .common import GenerateFn, RewardFn, Tokens, _as_tokens, _check_positive_int, _check_prompts, _mix64
from .distributed import _all_gather_objects, _all_sum, _dist_info
from .options import SelectionOptions, TrainingOptions, check_options
from .selection import _Group, _records, _select_candidates
from .sft import _finetune
from .stats import RoundStats, _pass_at_k, write_jsonl


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
        generate_fn: ``generate_fn(model, prompts, n) -> completions`` (P lists of N token
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
        options = check_options(
            selection=selection,
            samples_per_prompt=samples_per_prompt,
            k=k,
            beta=beta,
            min_reward=min_reward,
            fraction=fraction,
            max_per_prompt=max_per_prompt,
            pass_threshold=pass_threshold,
            dedupe=dedupe,
            dedupe_key=dedupe_key,
            restart_from_base=restart_from_base,
            filter_groups=filter_groups,
            max_refills=max_refills,
            generate_fn=generate_fn,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            eos_token_id=eos_token_id,
            generation_batch_size=generation_batch_size,
            generate_kwargs=generate_kwargs,
            pad_token_id=pad_token_id,
            lr=lr,
            sft_epochs=sft_epochs,
            batch_size=batch_size,
            max_grad_norm=max_grad_norm,
            base_data=base_data,
            keep_records=keep_records,
            pairs_per_prompt=pairs_per_prompt,
            decode=decode,
        )
        self.reward_fn = reward_fn
        # Every checked option is an attribute of its own name (self.selection, self.k, self.lr, ...);
        # the round's steps read them back from there (SelectionOptions.of(self), ...).
        for group in options:
            vars(self).update(group.attributes())
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
        self,
        prompts: Sequence[Tokens],
        n: int | None = None,
        *,
        seeds: Sequence[int] | None = None,
        num_samples: int | None = None,
    ) -> list[list[list[int]]]:
        """``n`` completions per prompt (default ``samples_per_prompt``) from the current model
        (``generate_fn`` when given), on this rank only; ``num_samples`` is the deprecated spelling of ``n``.

        Returns ``out[i][j]``, token lists."""
        prompt_lists = _check_prompts(prompts)
        n = renamed_n(n, num_samples, "generate")
        n = self.samples_per_prompt if n is None else _check_positive_int(n, "n")
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
        return _all_sum(ints, floats, self.world_size)

    def _select(
        self, groups: list[_Group], round_seed: int
    ) -> tuple[list[tuple[_Group, int, list[int], float]], int, list[tuple[_Group, int, int]]]:
        """Dedupe and select (see :mod:`.selection`)."""
        opts = SelectionOptions.of(self)
        return _select_candidates(groups, round_seed, opts, self.pairs_per_prompt, self.rank, self.world_size)

    def _records(
        self, accepted: list[tuple[_Group, int, list[int], float]], pairs: list[tuple[_Group, int, int]]
    ) -> tuple[list[dict], list[dict]]:
        """The round's accepted examples and DPO pairs as records (see :mod:`.selection`)."""
        return _records(accepted, pairs, self._round, self.decode)

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
        """SFT on (prompt, completion) pairs (see :mod:`.sft`), from the base weights with
        ``restart_from_base``. Returns (mean loss per token, steps, tokens)."""
        if self.restart_from_base:
            self.restore_base()
        opts = TrainingOptions.of(self)
        args = (data, round_seed, opts, self.rank, self.world_size)
        return _finetune(self.train_model, self.module, self.optimizer, *args)

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
