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
def _torch_validation_on():
    """Every test starts with torch's default validate_args (on): importing torch._dynamo (any
    torch.compile earlier in the process) turns it off globally, so test order would change what a
    constructor checks. Restored after each test."""
    old = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(True)
    yield
    torch.distributions.Distribution.set_default_validate_args(old)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests may change torch's thread count (which rsfast's CPU kernels follow); put it back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# Hypothesis profiles of the fuzz tests (tests/_fuzz.py): "rsfast-ci" is the fixed, derandomised default;
# "rsfast-long" is one flag away (--hypothesis-profile=rsfast-long, or RSFAST_FUZZ_PROFILE=rsfast-long).
try:
    import os
    from datetime import timedelta

    from hypothesis import HealthCheck, settings

    _slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "rsfast-ci",
        max_examples=200,
        derandomize=True,
        database=None,
        deadline=timedelta(seconds=20),  # a hang fails the example (pytest-timeout bounds the test)
        suppress_health_check=_slow_ok,
        print_blob=True,
    )
    settings.register_profile(
        "rsfast-long", parent=settings.get_profile("rsfast-ci"), max_examples=5000, derandomize=False
    )
    # Under the sanitizers (every call several times slower) the same derandomised examples, fewer of them:
    # the full profile runs unsanitised in the same CI run.
    settings.register_profile("rsfast-sanitize", parent=settings.get_profile("rsfast-ci"), max_examples=40)
    settings.load_profile(os.environ.get("RSFAST_FUZZ_PROFILE", "rsfast-ci"))
except ImportError:  # hypothesis is in the test extra; only the fuzz tests need it
    pass
