"""Fixtures shared by the rsfast tests (helpers live in tests/_helpers.py)."""

from __future__ import annotations

import pytest
import torch
from _helpers import thread_digests


@pytest.fixture(scope="session")
def digests_by_threads() -> dict:
    """{threads: digests of kernel outputs} from child interpreters with OMP_NUM_THREADS = 1, 2, 3.

    Session-scoped: test_propose, test_accept_compact and test_sampler share one set of children."""
    return thread_digests((1, 2, 3))


@pytest.fixture(scope="session")
def digests_baseline_isa() -> dict:
    """Digests of the same outputs from the baseline (non-AVX2) build of the CPU kernels, 2 threads."""
    return thread_digests((2,), isa="baseline")[2]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests may change torch's thread count (which rsfast's CPU kernels follow); put it back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
