"""Benchmark cases of ``select``: select_rso, select_best_of_n, select_threshold, select_top_fraction,
select_filter_groups, select_dedupe."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ... import baselines, reference
from ..common import (
    SEED,
    BenchCase,
    Prepared,
    _device,
    _generator,
)

#: Place of these cases in the report.
ORDER = 7

#: Groups x candidates of the select cases (the RSO bar: [4096, 64], k = 8), quick and full alike.
SELECT_SHAPE = (4096, 64)
#: Groups given to the per-row Python loops of the published code: (full, quick).
SELECT_PER_ROW_GROUPS = (256, 64)
SELECT_K = 8
SELECT_BETA = 1.0


def _setup_select(
    name: str,
    quick: bool,
    device: str,
    rsfast_fn: Callable[[Tensor, torch.Generator], Any],
    torch_fn: Callable[[Tensor, torch.Generator], Any],
    per_row_fn: Callable[[list[list[float]]], Any],
    check_out: Callable[[str, Any, int], None],
    values: Callable[[torch.Generator, torch.device], Tensor] | None = None,
) -> Prepared:
    """A select case: ``rsfast`` (:mod:`rsfast.select`) and ``torch`` (the vectorised twin in
    :mod:`rsfast.reference`) on SELECT_SHAPE float32 rewards, ``per_row`` (the published per-row loop,
    Python lists) on the first SELECT_PER_ROW_GROUPS groups; items are groups."""
    dev = _device(device)
    p, n = SELECT_SHAPE
    g = _generator(dev)
    rewards = values(g, dev) if values is not None else torch.randn((p, n), generator=g, device=dev)
    p_slow = SELECT_PER_ROW_GROUPS[quick]
    rows_slow = rewards[:p_slow].cpu().tolist()

    def run_rsfast() -> Any:
        g.manual_seed(SEED)
        return rsfast_fn(rewards, g)

    def run_torch() -> Any:
        g.manual_seed(SEED)
        return torch_fn(rewards, g)

    def run_per_row() -> Any:
        return per_row_fn(rows_slow)

    items = {"rsfast": p, "torch": p, "per_row": p_slow}

    def check(method: str, out: Any) -> None:
        check_out(method, out, items[method])

    nbytes = rewards.numel() * rewards.element_size()
    return Prepared(
        case=name,
        unit="groups/s",
        methods={"rsfast": run_rsfast, "torch": run_torch, "per_row": run_per_row},
        items=items,
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: rewards",
        meta={"groups": p, "candidates": n, "dtype": "float32", "per_row_groups": p_slow},
    )


def _check_rows(k: int) -> Callable[[str, Any, int], None]:
    def check(method: str, out: Any, groups: int) -> None:
        rows = out.tolist() if isinstance(out, Tensor) else out
        assert len(rows) == groups and all(len(r) == k for r in rows), f"{method}: not [{groups}, {k}]"
        assert all(len(set(r)) == k and min(r) >= 0 for r in rows), f"{method}: invalid indices"

    return check


def _setup_select_rso(quick: bool, device: str) -> Prepared:
    from ... import select

    k, beta = SELECT_K, SELECT_BETA

    def per_row(rows: list[list[float]]) -> list[list[int]]:

        return baselines.rso_per_row(rows, k, beta, random.Random(SEED).random)

    return _setup_select(
        "select_rso",
        quick,
        device,
        lambda r, g: select.rso(r, k, beta, generator=g),
        lambda r, g: baselines.rso_torch(r, k, beta, generator=g),
        per_row,
        _check_rows(k),
    )


def _setup_select_best_of_n(quick: bool, device: str) -> Prepared:
    from ... import select

    k = SELECT_K
    return _setup_select(
        "select_best_of_n",
        quick,
        device,
        lambda r, g: select.best_of_n(r, k),
        lambda r, g: reference.best_of_n(r, k),
        lambda rows: baselines.best_of_n_per_row(rows, k),
        _check_rows(k),
    )


def _check_flat(method: str, out: Any, groups: int) -> None:
    idx = out[0] if isinstance(out, tuple) else out
    idx = idx.tolist() if isinstance(idx, Tensor) else idx
    assert len(idx) > 0 and idx == sorted(idx) and len(set(idx)) == len(idx), f"{method}: bad flat indices"


def _setup_select_threshold(quick: bool, device: str) -> Prepared:
    from ... import select

    return _setup_select(
        "select_threshold",
        quick,
        device,
        lambda r, g: select.threshold(r, 1.0, max_per_group=4),
        lambda r, g: reference.threshold(r, 1.0, 4),
        lambda rows: baselines.threshold_per_row(rows, 1.0, 4),
        _check_flat,
    )


def _setup_select_top_fraction(quick: bool, device: str) -> Prepared:
    from ... import select

    return _setup_select(
        "select_top_fraction",
        quick,
        device,
        lambda r, g: select.top_fraction(r, 0.1),
        lambda r, g: reference.top_fraction(r, 0.1),
        lambda rows: baselines.top_fraction_per_row(rows, 0.1),
        _check_flat,
    )


def _setup_select_filter_groups(quick: bool, device: str) -> Prepared:
    from ... import select

    def check(method: str, out: Any, groups: int) -> None:
        keep = out.tolist() if isinstance(out, Tensor) else out
        assert len(keep) == groups and 0 < sum(keep) < groups, f"{method}: {sum(keep)} of {groups} kept"

    def metric(g: torch.Generator, dev: torch.device) -> Tensor:
        # verifier accuracy: pass rate 3 % per candidate, so about 14 % of the groups are uniform (all 0)
        return (torch.rand(SELECT_SHAPE, generator=g, device=dev) < 0.03).float()

    return _setup_select(
        "select_filter_groups",
        quick,
        device,
        lambda r, g: select.filter_groups(r),
        lambda r, g: reference.filter_groups(r),
        baselines.filter_groups_per_row,
        check,
        metric,
    )


def _setup_select_dedupe(quick: bool, device: str) -> Prepared:
    from ... import select

    dev = _device(device)
    p, n = SELECT_SHAPE
    g = _generator(dev)
    # 64 completions per prompt drawn from 16 distinct answers: most are duplicates
    keys = torch.randint(0, 16, (p, n), generator=g, device=dev).reshape(-1) * 0x1E3779B97F4A7C15 % (2**61)
    groups = torch.arange(p, device=dev).repeat_interleave(n)
    p_slow = SELECT_PER_ROW_GROUPS[quick]
    keys_slow, groups_slow = keys[: p_slow * n].tolist(), groups[: p_slow * n].tolist()
    items = {"rsfast": p, "torch": p, "per_row": p_slow}

    def check(method: str, out: Any) -> None:
        keep = out.tolist() if isinstance(out, Tensor) else out
        assert len(keep) == items[method] * n and 0 < sum(keep) <= 16 * items[method], (
            f"{method}: {sum(keep)}"
        )

    nbytes = 2 * keys.numel() * 8
    return Prepared(
        case="select_dedupe",
        unit="groups/s",
        methods={
            "rsfast": lambda: select.dedupe(keys, groups),
            "torch": lambda: reference.dedupe(keys, groups),
            "per_row": lambda: baselines.dedupe_per_row(keys_slow, groups_slow),
        },
        items=items,
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: keys + groups",
        meta={"groups": p, "candidates": n, "distinct_per_group": 16, "per_row_groups": p_slow},
    )


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "select_rso",
        "RSO (Liu et al. 2024) on [4096, 64] float32 N(0, 1) rewards, k = 8, beta = 1",
        _setup_select_rso,
    ),
    BenchCase(
        "select_best_of_n",
        "best 8 of 64 per group, [4096, 64] float32 rewards",
        _setup_select_best_of_n,
    ),
    BenchCase(
        "select_threshold",
        "rewards >= 1, at most 4 per group, [4096, 64] float32 (flat indices + counts)",
        _setup_select_threshold,
    ),
    BenchCase(
        "select_top_fraction",
        "RAFT's global top 10 % of [4096, 64] float32 rewards (flat indices, increasing)",
        _setup_select_top_fraction,
    ),
    BenchCase(
        "select_filter_groups",
        "DAPO filter: groups whose 0/1 metric is not uniform, [4096, 64]",
        _setup_select_filter_groups,
    ),
    BenchCase(
        "select_dedupe",
        "first occurrence of each (group, key), 4096 groups x 64 int64 keys (16 distinct per group)",
        _setup_select_dedupe,
    ),
]
