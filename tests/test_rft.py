"""Tests of rsfast.finetune.RejectionSamplingFineTuner, its sampler and loss, and ``rsfast demo rft``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from _helpers import ALPHA, TESTS_DIR, chisq_p, rsfast_root
from _rft_common import EOS, VOCAB, RecordingReward, some_prompts, tiny_model, tuner_for, unique_candidates
from torch import nn

import rsfast.select as select
from rsfast.demos.rft import QUICK_ENV, AdditionTask
from rsfast.finetune import RejectionSamplingFineTuner, RoundStats, write_jsonl
from rsfast.finetune.rft import SELECTION_RULES, completion_loss, sample_completions, token_hash


@pytest.fixture(autouse=True)
def _one_thread():
    """The models here are tiny: one thread is fastest (conftest restores the thread count)."""
    torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------- sampler


def test_sampler_independent_of_batching_and_stops_at_eos():
    model = tiny_model()
    prompts = some_prompts(5)
    seeds = [101, 202, 303, 404, 505]
    full = sample_completions(model, prompts, 4, max_new_tokens=5, eos_token_id=EOS, seeds=seeds)
    for i in range(len(prompts)):  # alone, in a batch of 1 row at a time
        alone = sample_completions(
            model, [prompts[i]], 4, max_new_tokens=5, eos_token_id=EOS, seeds=[seeds[i]]
        )
        assert alone[0] == full[i]
    small = sample_completions(
        model, prompts, 4, max_new_tokens=5, eos_token_id=EOS, seeds=seeds, batch_size=3
    )
    assert small == full
    for group in full:
        for c in group:
            assert 1 <= len(c) <= 5
            assert EOS not in c[:-1]
            assert len(c) == 5 or c[-1] == EOS
    other = sample_completions(
        model, prompts, 4, max_new_tokens=5, eos_token_id=EOS, seeds=[s + 1 for s in seeds]
    )
    assert other != full


def test_sampler_greedy_is_argmax():
    model = tiny_model()
    prompt = [1, 2, 3]
    out = sample_completions(model, [prompt], 2, max_new_tokens=4, temperature=0.0, seeds=[0])
    seq = list(prompt)
    for _ in range(4):
        seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert out[0] == [seq[3:], seq[3:]]


@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (0.5, 3)])
def test_sampler_law_chi_square(temperature, top_k):
    """First tokens follow softmax(logits / T) restricted to the top k; the same test rejects T' = 1.3 T."""
    model = tiny_model(4)
    with torch.no_grad():  # a known non-uniform law, whatever the input
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0.5, 1.0, -0.5, 0.3, 1.2, -1.0, 0.8]))
    prompt = [3, 1]
    n = 6000
    out = sample_completions(
        model, [prompt], n, max_new_tokens=1, temperature=temperature, top_k=top_k, seeds=[99]
    )
    counts = torch.bincount(torch.tensor([c[0] for c in out[0]]), minlength=VOCAB).double()
    logits = model(torch.tensor([prompt]))[0, -1].detach().double()

    def law(t):
        lg = logits.clone()
        if top_k is not None:
            lg[lg < torch.topk(lg, top_k).values[-1]] = -math.inf
        return torch.softmax(lg / t, 0)

    p = law(temperature)
    support = p > 0
    assert counts[~support].sum() == 0
    assert chisq_p(counts[support].numpy(), p[support].numpy()) > ALPHA
    assert chisq_p(counts[support].numpy(), law(1.3 * temperature)[support].numpy()) < ALPHA


# ---------------------------------------------------------------------------------------------- loss


def test_completion_loss_masks_prompt_tokens():
    model = tiny_model()
    captured = {}

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, ids):
            logits = self.inner(ids)
            logits.retain_grad()
            captured["logits"] = logits
            return logits

    prompts = [[1, 2, 3, 4], [5, 6]]
    comps = [[2, EOS], [3, 1, 4, EOS]]
    loss, tokens = completion_loss(Spy(), prompts, comps, pad_token_id=0)
    assert tokens == 6
    loss.backward()
    grad = captured["logits"].grad  # [2, T-1, V]; position t predicts token t + 1
    for r, (p, c) in enumerate(zip(prompts, comps)):
        targets = set(range(len(p) - 1, len(p) + len(c) - 1))
        for t in range(grad.shape[1]):
            nonzero = bool(grad[r, t].abs().sum() > 0)
            assert nonzero == (t in targets), (r, t)
    # Changing a prompt token's label (i.e. the prompt) only changes context, never adds a target term:
    # the loss equals the mean NLL of the completion tokens computed by hand.
    with torch.no_grad():
        nll = []
        for p, c in zip(prompts, comps):
            lg = model(torch.tensor([p + c]))[0].log_softmax(-1)
            nll += [-lg[len(p) - 1 + i, tok] for i, tok in enumerate(c)]
        assert torch.allclose(loss.detach(), torch.stack(nll).mean(), atol=1e-5)


def test_token_hash_stable_and_distinct():
    assert token_hash([1, 2, 3]) == token_hash((1, 2, 3))
    assert token_hash([1, 2, 3]) != token_hash([3, 2, 1])
    assert token_hash([]) != token_hash([0])
    assert -(2**63) <= token_hash([5] * 100) < 2**63


# ---------------------------------------------------------------------------------- selection rules


def _accepted_by_prompt(tuner: RejectionSamplingFineTuner) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in tuner.accepted_records:
        out.setdefault(r["prompt_index"], []).append(r)
    return out


@pytest.mark.parametrize("rule", SELECTION_RULES)
def test_selection_rules_end_to_end(rule):
    reward = RecordingReward()
    extra = {
        "verifier": dict(pass_threshold=2.0),
        "threshold": dict(min_reward=3.0, max_per_prompt=2),
        "best_of_n": dict(k=2),
        "rso": dict(k=2, beta=0.5),
        "top_fraction": dict(fraction=0.3),
    }[rule]
    tuner = tuner_for(reward, selection=rule, **extra)
    before = {k: v.clone() for k, v in tuner.module.state_dict().items()}
    prompts = some_prompts(6)
    stats = tuner.step(prompts)
    n = tuner.samples_per_prompt
    groups = reward.groups(n)
    assert [g[0] for g in groups] == prompts
    accepted = _accepted_by_prompt(tuner)
    expected_total = 0
    all_unique = [(gi, j, c, r) for gi, g in enumerate(groups) for j, c, r in unique_candidates(g[1], g[2])]
    for gi, (_prompt, comps, rewards) in enumerate(groups):
        uniq = unique_candidates(comps, rewards)
        got = [(r["sample_index"], r["completion"], r["reward"]) for r in accepted.get(gi, [])]
        if rule == "verifier":
            want = [u for u in uniq if u[2] >= 2.0]
        elif rule == "threshold":
            want = [u for u in uniq if u[2] >= 3.0][:2]
        elif rule == "best_of_n":
            want = sorted(sorted(uniq, key=lambda u: (-u[2], u[0]))[:2], key=lambda u: u[0])
            got = sorted(got, key=lambda u: u[0])
        elif rule == "rso":
            # The law is tested in test_select; here: min(k, unique) distinct candidates of this group.
            assert len(got) == min(2, len(uniq))
            assert len({g[0] for g in got}) == len(got)
            assert all(g in uniq for g in got)
            expected_total += len(got)
            continue
        else:
            count = math.ceil(0.3 * len(all_unique) - 1e-9)
            top = sorted(range(len(all_unique)), key=lambda i: (-all_unique[i][3], i))[:count]
            want = [all_unique[i][1:] for i in sorted(top) if all_unique[i][0] == gi]
        assert got == [tuple(w) for w in want], (rule, gi)
        expected_total += len(want)
    assert stats.accepted == expected_total == len(tuner.accepted_records)
    assert stats.sft_steps == math.ceil(stats.accepted / tuner.batch_size) if stats.accepted else 0
    if stats.accepted:
        assert any(not torch.equal(before[k], v) for k, v in tuner.module.state_dict().items())
        assert stats.loss > 0 and math.isfinite(stats.loss)


def test_rso_selection_is_seeded():
    results = []
    for _ in range(2):
        tuner = tuner_for(RecordingReward(), selection="rso", k=2, beta=0.3, sft_epochs=0)
        tuner.step(some_prompts(6))
        results.append([(r["prompt_index"], r["sample_index"]) for r in tuner.accepted_records])
    assert results[0] == results[1]


def test_verifier_matches_select_threshold_on_dense_rewards():
    """With dedupe off, the verifier rule is select.threshold on the [P, N] rewards."""
    reward = RecordingReward()
    tuner = tuner_for(reward, selection="verifier", pass_threshold=2.0, dedupe=False, sft_epochs=0)
    tuner.step(some_prompts(6))
    rewards = torch.tensor([g[2] for g in reward.groups(6)], dtype=torch.float64)
    idx, counts = select.threshold(rewards, 2.0)
    got = [r["prompt_index"] * 6 + r["sample_index"] for r in tuner.accepted_records]
    assert got == idx.tolist()
    assert tuner.history[0].accepted == int(counts.sum())


# --------------------------------------------------------------------------------------------- dedupe


def fixed_generate(completions_by_prompt):
    """A generate_fn returning fixed completions: prompt (tuple) -> N completions."""

    def gen(model, prompts, n):
        assert not torch.is_grad_enabled() and not model.training
        return [completions_by_prompt[tuple(p)][:n] for p in prompts]

    return gen


def test_dedupe_default_and_custom_key():
    prompts = [[1, 2], [3, 4]]
    comps = {
        (1, 2): [[5, EOS], [5, EOS], [6, EOS], [5, EOS]],
        (3, 4): [[1, 1, EOS], [2, EOS], [1, 1, EOS], [1, 2, EOS]],
    }
    reward = RecordingReward(lambda p, c: 1.0)  # everything passes
    tuner = tuner_for(reward, samples_per_prompt=4, generate_fn=fixed_generate(comps), sft_epochs=0)
    stats = tuner.step(prompts)
    assert stats.duplicates == 3 and stats.accepted == 5
    got = [(r["prompt_index"], r["sample_index"]) for r in tuner.accepted_records]
    assert got == [(0, 0), (0, 2), (1, 0), (1, 1), (1, 3)]  # first occurrences kept
    # a key on the first token only: [1, 1] and [1, 2] collide
    tuner = tuner_for(
        reward,
        samples_per_prompt=4,
        generate_fn=fixed_generate(comps),
        sft_epochs=0,
        dedupe_key=lambda c: c[0],
    )
    stats = tuner.step(prompts)
    assert stats.duplicates == 4
    assert [(r["prompt_index"], r["sample_index"]) for r in tuner.accepted_records] == [
        (0, 0),
        (0, 2),
        (1, 0),
        (1, 1),
    ]
    tuner = tuner_for(
        reward, samples_per_prompt=4, generate_fn=fixed_generate(comps), sft_epochs=0, dedupe=False
    )
    assert tuner.step(prompts).accepted == 8


def test_dedupe_happens_before_best_of_n():
    """best_of_n with k=2 never picks the same completion twice."""
    comps = {(1, 2): [[5, EOS], [5, EOS], [6, EOS], [4, EOS]]}
    reward = RecordingReward(lambda p, c: float(c[0]))
    tuner = tuner_for(
        reward,
        selection="best_of_n",
        k=2,
        samples_per_prompt=4,
        generate_fn=fixed_generate(comps),
        sft_epochs=0,
    )
    tuner.step([[1, 2]])
    assert [r["completion"] for r in tuner.accepted_records] == [[5, EOS], [6, EOS]]


# ------------------------------------------------------------------------------------- ReST-EM restart


def test_rest_em_restarts_from_base_weights():
    reward = RecordingReward(lambda p, c: float(c[0] % 2 == 0))
    starts = []
    base_model = tiny_model()
    base = {k: v.clone() for k, v in base_model.state_dict().items()}

    def factory(params):
        params = list(params)
        starts.append([p.detach().clone() for p in params])
        return torch.optim.SGD(params, lr=0.5)

    tuner = tuner_for(
        reward, model=base_model, restart_from_base=True, optimizer=factory, samples_per_prompt=8
    )
    prompts = some_prompts(6)
    s1 = tuner.step(prompts)
    after1 = [p.detach().clone() for p in tuner.module.parameters()]
    s2 = tuner.step(prompts)
    assert s1.accepted > 0 and s2.accepted > 0
    # construction + one optimizer per round, each built on the base weights
    assert len(starts) == 3
    for snapshot in starts:
        for p, (name, _) in zip(snapshot, tuner.module.named_parameters()):
            assert torch.equal(p, base[name])
    assert any(not torch.equal(a, base[n]) for a, (n, _) in zip(after1, tuner.module.named_parameters()))
    # round 2 generated with the round-1 model (ReST-EM's E-step uses the latest policy)
    assert reward.calls[1] != reward.calls[0]
    tuner.restore_base()
    assert all(torch.equal(v, base[k]) for k, v in tuner.module.state_dict().items())


def test_without_restart_training_continues():
    reward = RecordingReward(lambda p, c: float(c[0] % 2 == 0))
    starts = []

    def factory(params):
        params = list(params)
        starts.append(1)
        return torch.optim.SGD(params, lr=0.5)

    tuner = tuner_for(reward, optimizer=factory, samples_per_prompt=8)
    tuner.step(some_prompts(6))
    w1 = [p.detach().clone() for p in tuner.module.parameters()]
    tuner.step(some_prompts(6))
    assert len(starts) == 1
    assert any(not torch.equal(a, b) for a, b in zip(w1, tuner.module.parameters()))
    with pytest.raises(RuntimeError, match="restart_from_base"):
        tuner.restore_base()


# ---------------------------------------------------------------------------------------- group filter


def test_group_filter_and_refill_cap():
    # Prompts starting with 0 get a constant reward (uniform groups, dropped); others vary.
    def fn(p, c):
        return 1.0 if p[0] == 0 else float(c[0] % 2)

    n = 8
    pool = [[0, 1], [0, 2], [0, 3], [1, 1], [2, 2], [3, 3], [0, 4], [0, 5]]
    reward = RecordingReward(fn)
    tuner = tuner_for(reward, filter_groups=True, max_refills=2, samples_per_prompt=n, sft_epochs=0)
    stats = tuner.fit(pool, rounds=1, prompts_per_round=4)[0]
    groups = reward.groups(n)
    assert stats.prompts == len(groups) and stats.refills == len(reward.calls) - 1 <= 2
    keep = select.filter_groups(torch.tensor([g[2] for g in groups]))
    assert stats.groups_kept == int(keep.sum()) and stats.groups_dropped == len(groups) - int(keep.sum())
    # Only kept groups feed the selection: nothing accepted from prompts starting with 0.
    assert all(r["prompt"][0] != 0 for r in tuner.accepted_records)
    assert len({r["prompt_index"] for r in tuner.accepted_records}) <= stats.groups_kept
    # refills stop once the kept count reaches the round's size, or at the cap
    assert stats.groups_kept >= 4 or stats.refills == 2
    # all uniform: the cap bounds the work
    reward = RecordingReward(lambda p, c: 0.0)
    tuner = tuner_for(reward, filter_groups=True, max_refills=3, samples_per_prompt=n, sft_epochs=0)
    stats = tuner.fit(pool, rounds=1, prompts_per_round=4)[0]
    assert stats.refills == 3 and len(reward.calls) == 4 and stats.groups_kept == 0 and stats.accepted == 0
    # without refills, dropped groups are just dropped
    reward = RecordingReward(fn)
    tuner = tuner_for(reward, filter_groups=True, samples_per_prompt=n, sft_epochs=0)
    stats = tuner.step(pool[:4])
    assert stats.refills == 0 and stats.groups_dropped == 3 and stats.groups_kept == 1


# ---------------------------------------------------------------------------------- stats and export


def test_round_stats():
    reward = RecordingReward(lambda p, c: float(c[0] % 3 == 0))
    tuner = tuner_for(reward, samples_per_prompt=8, dedupe=False)
    stats = tuner.step(some_prompts(9))
    assert isinstance(stats, RoundStats) and tuner.history == [stats]
    groups = reward.groups(8)
    rewards = torch.tensor([g[2] for g in groups])
    correct = (rewards >= 0.5).sum(1)
    assert stats.prompts == 9 and stats.candidates == 72
    assert stats.pass_histogram == torch.bincount(correct, minlength=9).tolist()
    assert stats.mean_reward == pytest.approx(float(rewards.mean()))
    assert stats.pass_rate == pytest.approx(float(correct.sum()) / 72)
    assert stats.accepted == int(correct.sum())
    assert stats.acceptance == pytest.approx(stats.accepted / 72)
    assert stats.accepted_reward == pytest.approx(1.0)
    assert sorted(stats.pass_at_k) == [1, 2, 4, 8]
    for k, value in stats.pass_at_k.items():
        want = sum(1 - math.comb(8 - int(c), k) / math.comb(8, k) for c in correct) / 9
        assert value == pytest.approx(want)
    assert stats.pass_at_k[1] == pytest.approx(stats.pass_rate)
    assert stats.pass_at_k[8] == pytest.approx(float((correct > 0).float().mean()))
    assert stats.sft_tokens == sum(len(r["completion"]) for r in tuner.accepted_records)
    json.dumps(stats.to_dict())


def test_dpo_pairs_and_jsonl(tmp_path):
    reward = RecordingReward()
    task = AdditionTask(1)
    tuner = tuner_for(
        reward, selection="best_of_n", k=1, samples_per_prompt=6, pairs_per_prompt=1, decode=task.decode
    )
    tuner.step(some_prompts(6))
    groups = reward.groups(6)
    pairs = tuner.preference_pairs
    assert pairs
    for pr in pairs:
        prompt, comps, rewards = groups[pr["prompt_index"]]
        assert pr["prompt"] == prompt and pr["chosen_reward"] > pr["rejected_reward"]
        uniq = unique_candidates(comps, rewards)
        assert pr["chosen_reward"] == max(u[2] for u in uniq)
        assert pr["rejected_reward"] == min(u[2] for u in uniq)
        assert pr["chosen"] in comps and pr["rejected"] in comps
        assert pr["chosen_text"] == task.decode(pr["chosen"])
    # one pair for every prompt whose rewards are not all equal among the unique candidates
    contrast = sum(len({u[2] for u in unique_candidates(g[1], g[2])}) > 1 for g in groups)
    assert len(pairs) == contrast
    path = tmp_path / "pairs.jsonl"
    assert tuner.export_pairs(path) == len(pairs)
    assert [json.loads(line) for line in path.read_text().splitlines()] == pairs
    path = tmp_path / "accepted.jsonl"
    assert tuner.export_accepted(path) == len(tuner.accepted_records)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == tuner.accepted_records and {"prompt", "completion", "reward", "round"} <= set(lines[0])
    assert write_jsonl([{"t": torch.tensor([1, 2])}], tmp_path / "t.jsonl") == 1
    assert json.loads((tmp_path / "t.jsonl").read_text()) == {"t": [1, 2]}
    with pytest.raises(TypeError, match="records"):
        write_jsonl([1], tmp_path / "bad.jsonl")


# ------------------------------------------------------------------------------- models and progress


def test_model_returning_logits_object_and_base_data():
    @dataclass
    class Out:
        logits: torch.Tensor

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny_model()

        def forward(self, input_ids):
            return Out(self.inner(input_ids))

    reward = RecordingReward(lambda p, c: 0.0)  # nothing accepted: only base_data trains
    tuner = tuner_for(reward, model=Wrapped(), base_data=[([1, 2], [3, EOS]), ([4], [5, 6, EOS])])
    stats = tuner.step(some_prompts(3))
    assert stats.accepted == 0 and stats.sft_steps == 1 and stats.sft_tokens == 5


def test_fit_progress_bar_with_and_without_tqdm(monkeypatch, capsys):
    tuner = tuner_for(RecordingReward(), progress=True, sft_epochs=0)
    seen = []
    out = tuner.fit(some_prompts(4), rounds=2, prompts_per_round=3, callback=seen.append)
    assert len(out) == 2 and seen == out and all(s.prompts == 3 for s in out)
    assert "rft" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    tuner = tuner_for(RecordingReward(), progress=True, sft_epochs=0)
    assert len(tuner.fit(some_prompts(4), rounds=1)) == 1


def test_huggingface_gpt2_tiny():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)
    reward = RecordingReward(lambda p, c: float(c[0] % 2))
    tuner = tuner_for(reward, model=model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = tuner.step(some_prompts(4))
    assert stats.accepted > 0 and stats.sft_steps > 0
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------------------------------------ demo


def test_demo_rft_quick_json():
    env = dict(os.environ, PYTHONPATH=rsfast_root(), **{QUICK_ENV: "1"})
    out = subprocess.run(
        [sys.executable, "-m", "rsfast", "demo", "rft", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS_DIR,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in ("accuracy_before", "accuracy_after", "rounds", "accepted", "seconds"):
        assert key in result
    assert 0.0 <= result["accuracy_before"] <= 1.0 and 0.0 <= result["accuracy_after"] <= 1.0
    assert result["rounds"] == len(result["per_round"]) >= 1
    assert result["accepted"] == sum(r["accepted"] for r in result["per_round"])


def test_demo_listed_and_task_verifier():
    from rsfast.cli import DEMOS

    assert "rft" in DEMOS
    task = AdditionTask(2)
    assert task.prompt(7, 45) == [0, 7, 10, 4, 5, 11]
    assert task.answer(7, 45) == [2, 5, 0, AdditionTask.EOS]  # 52 -> "052" reversed, then EOS
    assert task.verify([[0]] * 2, [[2, 5, 0, 12], [2, 5, 1, 12]], [[2, 5, 0, 12]] * 2) == [1.0, 0.0]
