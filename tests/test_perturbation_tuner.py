"""rsfast.finetune.PerturbationTuner: decreasing a loss, the Metropolis acceptance law, the greedy
tie rule, undo (float32 and bfloat16 with master weights), parameter subsets, determinism, σ
adaptation, input validation; and the ``rsfast demo perturb --json`` smoke test."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _helpers import ALPHA, binom_p, gen

import rsfast
from rsfast import cli
from rsfast.finetune import PerturbationStep, PerturbationTuner

pytestmark = pytest.mark.timeout(120)


def _quadratic(dim: int = 40, dtype: torch.dtype = torch.float32):
    target = torch.randn(dim, generator=gen(11))
    theta = torch.zeros(dim, dtype=dtype)
    return theta, target, lambda: ((theta.float() - target) ** 2).sum()


def test_decreases_a_loss_and_logs_history():
    theta, target, loss = _quadratic()
    tuner = PerturbationTuner([theta], loss, sigma=0.1, generator=gen(1), target_acceptance=0.2)
    recs = tuner.run(400)
    assert len(recs) == len(tuner.history) == 400 and all(isinstance(r, PerturbationStep) for r in recs)
    assert tuner.loss < 0.3 * tuner.initial_loss
    assert tuner.loss == pytest.approx(float(loss()), rel=1e-6)  # the remembered loss is the real one
    assert 0 < tuner.acceptance_rate < 1
    assert tuner.acceptance_rate == sum(r.accepted for r in recs) / 400
    losses = [r.loss for r in recs]
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # greedy: never worse
    for r in recs:
        assert r.loss == (r.proposed_loss if r.accepted else r.loss_before)


def _scripted(delta: float, temperature: float, steps: int, seed: int = 3):
    """A tuner whose loss_fn returns (current loss + delta) for every proposal: the acceptance
    probability is exactly min(1, exp(-delta / T))."""
    theta = torch.zeros(8)
    holder: dict = {}

    def loss_fn() -> float:
        t = holder.get("tuner")
        return 0.0 if t is None or t.loss is None else t.loss + delta

    tuner = PerturbationTuner(
        [theta], loss_fn, sigma=0.5, acceptance_temperature=temperature, generator=gen(seed)
    )
    holder["tuner"] = tuner
    tuner.run(steps)
    return tuner, theta


def test_metropolis_acceptance_law():
    """Δ = 0.5, T = 1: accepted with probability exp(-0.5) = 0.607 (binomial test); a wrong law
    (probability exp(-1)) is rejected by the same test; Δ < 0 is always accepted."""
    n = 2000
    tuner, _ = _scripted(0.5, 1.0, n)
    k = sum(r.accepted for r in tuner.history)
    assert binom_p(k, n, math.exp(-0.5)) > ALPHA
    assert binom_p(k, n, math.exp(-1.0)) < ALPHA  # negative control
    tuner, _ = _scripted(-0.1, 1.0, 50)
    assert all(r.accepted for r in tuner.history)


def test_greedy_rule_ties_accepted_worse_rejected_and_undone():
    tuner, theta = _scripted(0.0, 0.0, 20)
    assert all(r.accepted for r in tuner.history)
    assert theta.abs().max() > 0
    tuner, theta = _scripted(1e-9, 0.0, 50)
    assert not any(r.accepted for r in tuner.history)
    assert theta.abs().max() < 1e-5  # 50 undone moves of σ = 0.5: float32 rounding only


def test_nan_proposal_is_rejected():
    theta = torch.zeros(4)
    calls = []

    def loss_fn() -> float:
        calls.append(1)
        return 1.0 if len(calls) == 1 else math.nan

    tuner = PerturbationTuner([theta], loss_fn, sigma=0.1, acceptance_temperature=1.0, generator=gen(0))
    tuner.run(5)
    assert not any(r.accepted for r in tuner.history) and tuner.loss == 1.0


def test_bf16_master_weights_make_rejection_exact():
    """bfloat16 parameters: with the float32 master (default) 100 rejected moves leave the parameter
    bit-identical; in place (master_weights=False) rounding makes undo inexact and it drifts."""
    x0 = torch.randn(1000, generator=gen(4)).bfloat16()
    for master, exact in ((True, True), (False, False)):
        x = x0.clone()
        tuner = PerturbationTuner([x], _Counter(), sigma=0.01, generator=gen(5), master_weights=master)
        tuner.run(100)
        assert not any(r.accepted for r in tuner.history)
        assert torch.equal(x, x0) == exact


class _Counter:
    """A loss that grows with every call: every proposal is worse, so every move is rejected."""

    def __init__(self) -> None:
        self.step_count = 0

    def __call__(self) -> float:
        self.step_count += 1
        return float(self.step_count)


def test_bf16_master_weights_tune():
    theta, target, loss = _quadratic(dtype=torch.bfloat16)
    tuner = PerturbationTuner([theta], loss, sigma=0.1, generator=gen(6), target_acceptance=0.2)
    tuner.run(300)
    assert tuner.loss < 0.3 * tuner.initial_loss
    assert torch.equal(theta, tuner._targets[0].to(torch.bfloat16))  # the parameter is round(master)


def test_subset_only_tunes_the_given_tensors():
    torch.set_num_threads(1)  # tiny matmuls (restored by conftest)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(64, 4, generator=gen(7)), torch.randn(64, 1, generator=gen(8))
    body = [p.detach().clone() for p in model[0].parameters()]
    head = list(model[2].parameters())
    head0 = [p.detach().clone() for p in head]
    tuner = PerturbationTuner(head, lambda: torch.nn.functional.mse_loss(model(x), y), sigma=0.05,
                              generator=gen(9))  # fmt: skip
    tuner.run(100)
    assert all(torch.equal(a, b) for a, b in zip(body, model[0].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(head0, head))
    assert tuner.loss < tuner.initial_loss


def test_deterministic_for_a_generator_seed():
    runs = []
    for _ in range(2):
        theta, _, loss = _quadratic()
        tuner = PerturbationTuner([theta], loss, sigma=0.1, acceptance_temperature=0.05, generator=gen(12),
                                  target_acceptance=0.3)  # fmt: skip
        tuner.run(100)
        runs.append((theta.clone(), [(r.seed, r.accepted, r.sigma) for r in tuner.history]))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_sigma_adaptation_moves_toward_target():
    """Every proposal rejected: σ must shrink by exp(-adapt_rate * target) per step, down to sigma_min."""
    theta = torch.zeros(4)
    tuner = PerturbationTuner([theta], _Counter(), sigma=1.0, generator=gen(0), target_acceptance=0.25,
                              adapt_rate=0.1, sigma_min=0.5)  # fmt: skip
    tuner.run(10)
    assert tuner.sigma == pytest.approx(math.exp(-0.25), rel=1e-12)
    tuner.run(100)
    assert tuner.sigma == 0.5
    theta2, _, loss = _quadratic()
    tuner = PerturbationTuner([theta2], loss, sigma=1.0, generator=gen(1), target_acceptance=0.3)
    tuner.run(300)
    late = tuner.history[150:]
    assert abs(sum(r.accepted for r in late) / len(late) - 0.3) < 0.15


def test_replaying_a_step_seed_reproduces_the_move():
    """An accepted move is exactly perturb_(params, record.seed, record.sigma)."""
    a, b = torch.randn(100, generator=gen(2)), torch.randn(7, generator=gen(3))
    start = [a.clone(), b.clone()]
    tuner = PerturbationTuner([a, b], lambda: 0.0, sigma=0.1, generator=gen(2))  # ties: accepted
    rec = tuner.step()
    assert rec.accepted
    rsfast.perturb_(start, rec.seed, rec.sigma)
    assert torch.equal(a, start[0]) and torch.equal(b, start[1])


def test_progress_bar_runs():
    pytest.importorskip("tqdm")
    theta, _, loss = _quadratic()
    PerturbationTuner([theta], loss, sigma=0.1, generator=gen(2)).run(5, progress=True)


def test_bad_inputs():
    theta = torch.zeros(4)

    def loss() -> float:
        return 0.0

    with pytest.raises(ValueError, match="empty"):
        PerturbationTuner([], loss, 0.1)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        PerturbationTuner([3.0], loss, 0.1)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        PerturbationTuner([torch.zeros(3, dtype=torch.int64)], loss, 0.1)
    with pytest.raises(ValueError, match=r"params\[0\].*contiguous"):
        PerturbationTuner([torch.zeros(3, 4).t()], loss, 0.1)
    with pytest.raises(TypeError, match="params"):
        PerturbationTuner(5, loss, 0.1)
    with pytest.raises(TypeError, match="loss_fn"):
        PerturbationTuner([theta], "loss", 0.1)
    for bad in (0.0, -1.0, math.nan, math.inf, 100.0):
        with pytest.raises(ValueError, match="sigma"):
            PerturbationTuner([theta], loss, bad)
    with pytest.raises(TypeError, match="sigma"):
        PerturbationTuner([theta], loss, "0.1")
    for bad in (-1.0, math.inf):
        with pytest.raises(ValueError, match="acceptance_temperature"):
            PerturbationTuner([theta], loss, 0.1, bad)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="target_acceptance"):
            PerturbationTuner([theta], loss, 0.1, target_acceptance=bad)
    with pytest.raises(ValueError, match="adapt_rate"):
        PerturbationTuner([theta], loss, 0.1, adapt_rate=0.0)
    with pytest.raises(TypeError, match="generator"):
        PerturbationTuner([theta], loss, 0.1, generator=0)
    with pytest.raises(TypeError, match="master_weights"):
        PerturbationTuner([theta], loss, 0.1, master_weights="auto")
    tuner = PerturbationTuner([theta], loss, 0.1)
    for bad, exc in ((-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="steps"):
            tuner.run(bad)
    with pytest.raises(TypeError, match="loss_fn must return"):
        PerturbationTuner([theta], lambda: "x", 0.1).step()
    with pytest.raises(ValueError, match="scalar"):
        PerturbationTuner([theta], lambda: torch.zeros(2), 0.1).step()


def test_module_and_duplicates():
    lin = torch.nn.Linear(3, 2)
    tuner = PerturbationTuner(lin, lambda: 0.0, 0.1)
    assert len(tuner.params) == 2
    tuner = PerturbationTuner([lin.weight, lin.weight], lambda: 0.0, 0.1)
    assert len(tuner.params) == 1


def test_demo_json_quick(capsys, monkeypatch):
    """``rsfast demo perturb --json`` (quick setting): one JSON line with the required keys; the
    loss decreases, acceptance is strictly between 0 and 1 and tuning needs no more memory than a
    forward pass (ratio 1), while a backprop step needs more (the ratio is measured, not assumed)."""
    monkeypatch.setenv("RSFAST_DEMO_QUICK", "1")
    assert cli.main(["demo", "perturb", "--json"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1
    m = json.loads(lines[0])
    for key in ("loss_before", "loss_after", "acceptance_rate", "peak_memory_ratio", "seconds"):
        assert key in m
    assert m["loss_after"] <= 0.7 * m["loss_before"]
    assert 0 < m["acceptance_rate"] < 1
    assert 0.99 <= m["peak_memory_ratio"] < 1.2
    assert m["backprop_memory_ratio"] > m["peak_memory_ratio"]


def test_temperature_is_a_deprecated_spelling_of_acceptance_temperature():
    theta = torch.zeros(3)
    with pytest.warns(DeprecationWarning, match="acceptance_temperature"):
        tuner = PerturbationTuner([theta], lambda: float(theta.sum()), sigma=0.1, temperature=0.5)
    assert tuner.acceptance_temperature == 0.5
    with pytest.warns(DeprecationWarning):
        assert tuner.temperature == 0.5
