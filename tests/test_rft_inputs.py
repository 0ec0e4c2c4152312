"""RejectionSamplingFineTuner on bad input (clear errors naming the argument) and across two DDP ranks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
from _helpers import TESTS_DIR, rsfast_root
from _rft_common import RecordingReward, tiny_model, tuner_for
from torch import nn

from rsfast.finetune import RejectionSamplingFineTuner
from rsfast.finetune.rft import sample_completions


@pytest.fixture(autouse=True)
def _one_thread():
    """The models here are tiny: one thread is fastest (conftest restores the thread count)."""
    torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------ bad input


BAD = [
    (dict(selection="nope"), ValueError, "selection"),
    (dict(selection=3), TypeError, "selection"),
    (dict(samples_per_prompt=0), ValueError, "samples_per_prompt"),
    (dict(samples_per_prompt=2.0), TypeError, "samples_per_prompt"),
    (dict(selection="best_of_n", k=7), ValueError, "k"),
    (dict(selection="rso", beta=0.0), ValueError, "beta"),
    (dict(selection="rso", beta=float("nan")), ValueError, "beta"),
    (dict(selection="threshold"), ValueError, "min_reward"),
    (dict(selection="top_fraction"), ValueError, "fraction"),
    (dict(selection="top_fraction", fraction=1.5), ValueError, "fraction"),
    (dict(temperature=-1.0), ValueError, "temperature"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens"),
    (dict(top_k=0), ValueError, "top_k"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(max_refills=-1), ValueError, "max_refills"),
    (dict(max_refills=10**6), ValueError, "max_refills"),
    (dict(dedupe_key=5), TypeError, "dedupe_key"),
    (dict(generate_fn="x"), TypeError, "generate_fn"),
    (dict(optimizer=5), TypeError, "optimizer"),
    (dict(base_data=[([1], [])]), ValueError, "base_data"),
    (dict(base_data=[[1, 2, 3]]), TypeError, "base_data"),
    (dict(generator=5), TypeError, "generator"),
]


@pytest.mark.parametrize("kw,exc,name", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_constructor_arguments(kw, exc, name):
    with pytest.raises(exc, match=name):
        tuner_for(RecordingReward(), **kw)


def test_bad_model_and_reward():
    with pytest.raises(TypeError, match="model"):
        RejectionSamplingFineTuner(lambda x: x, RecordingReward())
    with pytest.raises(TypeError, match="reward_fn"):
        RejectionSamplingFineTuner(tiny_model(), 3)


def test_bad_step_inputs():
    tuner = tuner_for(RecordingReward())
    for prompts, exc, name in [
        ([], ValueError, "prompts"),
        ("abc", TypeError, "prompts"),
        ([[1, 2], []], ValueError, r"prompts\[1\]"),
        ([[1, -2]], ValueError, r"prompts\[0\]"),
        ([[1, 2.5]], TypeError, r"prompts\[0\]"),
        ([torch.tensor([1.0, 2.0])], ValueError, r"prompts\[0\]"),
    ]:
        with pytest.raises(exc, match=name):
            tuner.step(prompts)
    with pytest.raises(ValueError, match="references"):
        tuner.step([[1, 2]], references=[1, 2])
    bad = tuner_for(lambda p, c, r: [float("nan")] * len(c))
    with pytest.raises(ValueError, match="NaN"):
        bad.step([[1, 2]])
    short = tuner_for(lambda p, c, r: [1.0])
    with pytest.raises(ValueError, match="reward_fn"):
        short.step([[1, 2]])
    wrong_gen = tuner_for(RecordingReward(), generate_fn=lambda m, p, n: [[[1]]] * len(p))
    with pytest.raises(ValueError, match="generate_fn"):
        wrong_gen.step([[1, 2]])
    with pytest.raises(TypeError, match="rounds"):
        tuner.fit([[1, 2]], rounds=1.5)
    with pytest.raises(ValueError, match="n must"):
        sample_completions(tiny_model(), [[1]], 0, max_new_tokens=2)
    with pytest.raises(ValueError, match="seeds"):
        sample_completions(tiny_model(), [[1], [2]], 1, max_new_tokens=2, seeds=[1])
    with pytest.raises(TypeError, match="model"):
        sample_completions(lambda x: x, [[1]], 1, max_new_tokens=2)

    class NoLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return {"x": x}

    with pytest.raises(TypeError, match="logits"):
        sample_completions(NoLogits(), [[1]], 1, max_new_tokens=2)


# ------------------------------------------------------------------------------------------ distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_ranks(tmp_path):
    """2 CPU processes (gloo): same weights on both ranks, statistics equal to one process's."""
    sys.path.insert(0, str(TESTS_DIR))
    try:
        import _rft_ddp_worker as worker
    finally:
        sys.path.pop(0)
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            PYTHONPATH=rsfast_root(),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(TESTS_DIR / "_rft_ddp_worker.py"), str(tmp_path / f"rank{rank}.pt")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    for p in procs:
        try:
            out, _ = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, out.decode()[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    single = worker.run()
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["train_model"] == "DistributedDataParallel" and single["train_model"] == "TinyCausalLM"
    for name, value in ranks[0]["weights"].items():
        assert torch.equal(value, ranks[1]["weights"][name]), name
        assert torch.allclose(value, single["weights"][name], atol=1e-5), name
    untimed = [[{k: v for k, v in s.items() if "seconds" not in k} for s in r["stats"]] for r in ranks]
    assert untimed[0] == untimed[1]
    assert ranks[0]["records"] == ranks[1]["records"] == single["records"]
    for dist_stats, one in zip(ranks[0]["stats"], single["stats"]):
        assert one["accepted"] > 0
        for key in (
            "prompts",
            "candidates",
            "accepted",
            "duplicates",
            "pass_histogram",
            "groups_kept",
            "sft_steps",
            "sft_tokens",
        ):
            assert dist_stats[key] == one[key], key
        for key in ("mean_reward", "pass_rate", "acceptance", "accepted_reward", "loss"):
            assert dist_stats[key] == pytest.approx(one[key], rel=1e-5), key
        assert dist_stats["pass_at_k"] == pytest.approx(one["pass_at_k"])


def test_sample_completions_takes_n_and_the_deprecated_num_samples():
    want = sample_completions(tiny_model(), [[1, 2]], 3, max_new_tokens=2, seeds=[4])
    with pytest.warns(DeprecationWarning, match="n="):
        assert sample_completions(tiny_model(), [[1, 2]], num_samples=3, max_new_tokens=2, seeds=[4]) == want
    with pytest.raises(TypeError, match="n"):
        sample_completions(tiny_model(), [[1, 2]], max_new_tokens=2)
