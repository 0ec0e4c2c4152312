"""rsfast.select's registered ops: opcheck, fake kernels, every op on every layer, torch.compile, and
one argument order across rsfast.select, rsfast.ops and the twins."""

from __future__ import annotations

import pytest
import torch
from _helpers import SEED, gen
from _select_inputs import dense_rewards, ragged_rewards

from rsfast import baselines as B
from rsfast import ops, select
from rsfast import reference as R

# ---------------------------------------------------------------- opcheck


def _opcheck_cases():
    r, off = ragged_rewards(torch.float32, ties=True)
    d = dense_rewards(9, 7, torch.float64, ties=True)
    keys = torch.randint(0, 4, (50,), generator=gen(0))
    return [
        (ops.select_best_of_n_op, (d, 3, None)),
        (ops.select_best_of_n_op, (r, 4, off)),
        (ops.select_rso_op, (d, 3, 0.5, SEED, 1, None)),
        (ops.select_rso_op, (r, 5, 2.0, SEED, 0, off)),
        (ops.select_threshold_op, (d, 0.0, 2, None)),
        (ops.select_threshold_op, (r, 0.5, -1, off)),
        (ops.select_top_fraction_op, (d, 17)),
        (ops.select_filter_groups_op, (d, None)),
        (ops.select_filter_groups_op, ((r > 0).long(), off)),
        (ops.select_dedupe_op, (keys, keys % 3)),
    ]


@pytest.mark.parametrize("i", range(10))
def test_opcheck(i):
    op, args = _opcheck_cases()[i]
    torch.library.opcheck(op, args)


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        r = torch.empty(5, 8)
        assert select.best_of_n(r, 3).shape == (5, 3)
        assert ops.select_rso(r, 2, 1.0, 1, 0, None).shape == (5, 2)
        assert ops.select_top_fraction(r, 7).shape == (7,)
        idx, counts = ops.select_threshold(r, 0.0, -1, None)
        assert counts.shape == (5,) and idx.dim() == 1


def test_all_ops_exist_on_every_layer():
    for name in ("best_of_n", "rso", "threshold", "top_fraction", "filter_groups", "dedupe"):
        assert callable(getattr(select, name)) and callable(getattr(R, name))
        assert callable(getattr(ops, f"select_{name}")) and callable(getattr(B, f"{name}_per_row"))
    assert sorted(select.__all__) == sorted(
        ["best_of_n", "rso", "threshold", "top_fraction", "filter_groups", "dedupe"]
    )


def _selection_round(logits: torch.Tensor, offsets: torch.Tensor):
    rewards = torch.tanh(logits) * 2.0  # a reward model in torch
    flat = rewards.reshape(-1)
    return (
        select.best_of_n(rewards, 3),
        ops.select_rso(rewards, 4, 0.5, SEED, 1, None),
        ops.select_rso(flat, 2, 1.5, SEED, 2, offsets),
        select.top_fraction(rewards, 0.1),
        select.filter_groups((rewards > 1.0).float()),
        select.dedupe((logits * 3).round().long().reshape(-1), offsets[:-1].repeat_interleave(9)),
        *select.threshold(rewards, 0.5, max_per_group=2),
    )


@pytest.mark.timeout(240)
def test_compile_fullgraph_matches_eager():
    logits = torch.randn(40, 9, generator=gen(5))
    offsets = torch.arange(0, 361, 9)
    eager = _selection_round(logits, offsets)
    torch._dynamo.reset()
    # select_threshold has a data-dependent output size; torch < 2.5 captures such ops only when asked.
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(_selection_round, fullgraph=True, backend="aot_eager")(logits, offsets)
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b)


def test_select_entries_take_the_public_order_and_warn_on_the_old_one():
    """The select entries take ``offsets`` last, as rsfast.select and the twins do; the 0.x order
    (offsets second) still gives the same result for one release, with a DeprecationWarning."""
    r, off = ragged_rewards(torch.float32, ties=True)
    d = dense_rewards(9, 7, torch.float64, ties=True)
    for rewards, offsets in ((r, off), (d, None)):
        cases = [
            (ops.select_best_of_n, (rewards, 3, offsets), (rewards, offsets, 3)),
            (ops.select_rso, (rewards, 3, 0.5, SEED, 1, offsets), (rewards, offsets, 3, 0.5, SEED, 1)),
            (ops.select_threshold, (rewards, 0.0, 2, offsets), (rewards, offsets, 0.0, 2)),
        ]
        for fn, new, old in cases:
            want = fn(*new)
            with pytest.warns(DeprecationWarning, match="offsets last"):
                got = fn(*old)
            for a, b in zip(
                want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)
            ):
                assert torch.equal(a, b)
        assert torch.equal(
            ops.select_rso(rewards, 3, 0.5, SEED, 1, offsets=offsets), ops.select_rso(*cases[1][1])
        )
        assert torch.equal(ops.select_rso(*cases[1][1]), R.rso(rewards, 3, 0.5, SEED, 1, offsets))
