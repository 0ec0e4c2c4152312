"""``rsfast demo speculative``: the quick run's JSON, the phrase language, the law test's own power, and
the README's generation example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _helpers import TESTS_DIR, rsfast_root

from rsfast.demos.speculative import PhraseLanguage, SpecConfig, _law_p, run_demo

ROOT = Path(__file__).resolve().parents[1]


def test_quick_json_has_the_keys():
    env = dict(os.environ, PYTHONPATH=rsfast_root(), RSFAST_DEMO_QUICK="1")
    out = subprocess.run(
        [sys.executable, "-m", "rsfast", "demo", "speculative", "--json"],
        env=env, capture_output=True, text=True, timeout=240, cwd=TESTS_DIR,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    for key in ("acceptance_rate", "tokens_per_target_call", "speedup_vs_plain", "law_p", "seconds"):
        assert isinstance(res[key], float), key
    assert 0 <= res["acceptance_rate"] <= 1 and res["tokens_per_target_call"] >= 1
    assert 0 <= res["law_p"] <= 1


def test_phrase_language_follows_its_chain():
    lang = PhraseLanguage(seed=3)
    x = lang.sample(50, 40, torch.Generator().manual_seed(0))
    assert x.shape == (50, 40) and bool((x[:, 0] == lang.BOS).all())
    assert bool(((x[:, 1:] >= 1) & (x[:, 1:] < lang.vocab)).all())


def test_law_test_has_power():
    g = torch.Generator().manual_seed(0)
    a = torch.multinomial(torch.tensor([0.5, 0.3, 0.2]), 4000, replacement=True, generator=g).unsqueeze(1)
    b = torch.multinomial(torch.tensor([0.5, 0.3, 0.2]), 4000, replacement=True, generator=g).unsqueeze(1)
    c = torch.multinomial(torch.tensor([0.45, 0.3, 0.25]), 4000, replacement=True, generator=g).unsqueeze(1)
    assert _law_p(a, b)[0] > 1e-3
    assert _law_p(a, c)[0] < 1e-4


@pytest.mark.slow
@pytest.mark.timeout(900)  # trains two models: about a minute on an idle 2-core machine
def test_default_demo_meets_its_law_and_acceptance_bars():
    # Speed is a benchmark claim (recorded in benchmarks/RESULTS.md), not asserted here.
    res = run_demo(SpecConfig())
    assert res["law_p"] >= 1e-3, res
    assert res["tokens_per_target_call"] >= 1.5, res
    assert res["law_categories"] >= 20, res


def test_readme_generation_example_runs():
    pytest.importorskip("transformers")
    text = (ROOT / "README.md").read_text()
    block = re.search(r"### Generation\n\n```python\n(.*?)```", text, re.S)
    assert block, "README has no Generation example"
    scope: dict = {}
    exec(compile(block.group(1), "README-generation", "exec"), scope)
    assert scope["out"].sequences.shape[:2] == (2, 4)
    assert scope["spec"].tokens_per_target_call >= 1
