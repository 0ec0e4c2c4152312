"""The CPU kernels are built once per instruction set (baseline, and AVX2 on x86-64) and picked at run
time; both builds must give the same bits (no FMA contraction, the same arithmetic)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _helpers import TESTS_DIR, _child_env

import rsfast

pytestmark = pytest.mark.timeout(180)


def test_build_info_names_the_isa():
    assert rsfast.build_info()["cpu_isa"] in ("avx2", "baseline")


def test_baseline_build_gives_the_same_bits(digests_by_threads, digests_baseline_isa):
    assert digests_baseline_isa["cpu_isa"] == "baseline"
    here = digests_by_threads[2]
    keys = [k for k in here if k.startswith(("propose/", "accept_compact/", "sample"))]
    assert len(keys) == 9
    for k in keys:
        assert digests_baseline_isa[k] == here[k], k


def test_baseline_build_gives_the_same_slot_bits():
    """Every slot law, row-major and per-element parameters (mixed algorithm branches in one call):
    the baseline build and the AVX2 build give the same bits."""
    res = {}
    for isa in ("baseline", None):
        p = subprocess.run(
            [sys.executable, str(TESTS_DIR / "_slot_probe.py")],
            env=_child_env(2, isa),
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert p.returncode == 0, p.stderr[-3000:]
        res[isa] = json.loads(p.stdout.strip().splitlines()[-1])
    keys = [k for k in res[None] if "/" in k]
    assert len(keys) == 6 * 2 * 3
    for k in keys:
        assert res["baseline"][k] == res[None][k], k
