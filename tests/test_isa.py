"""The CPU kernels are built once per instruction set (baseline, and AVX2 on x86-64) and picked at run
time; both builds must give the same bits (no FMA contraction, the same arithmetic)."""

from __future__ import annotations

import pytest

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
