"""Shared helpers of the rsfast test suite: statistics with fixed thresholds, proposal
parameters, kernel-call wrappers and a subprocess runner for thread-count checks.

Every statistical assertion in the suite uses ALPHA: with fixed seeds a correct sampler
passes deterministically, and each test file has a negative control showing that the same
check rejects a slightly wrong law at this level.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.stats as st
import torch

ALPHA = 1e-3
# Both key words non-zero, so that a kernel that drops the seed's high word is caught.
SEED = 0x0123_4567_89AB_CDEF
DTYPES = [torch.float32, torch.float64]
KINDS = ["normal", "uniform", "mixture_normal"]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}
TESTS_DIR = Path(__file__).resolve().parent


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- statistics


def np64(t) -> np.ndarray:
    return (
        t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)
    )


def ks_p(samples, cdf) -> float:
    """Kolmogorov-Smirnov p-value of 1-D samples against a cdf (scipy frozen dist or callable)."""
    return float(st.kstest(np64(samples).ravel(), cdf.cdf if hasattr(cdf, "cdf") else cdf).pvalue)


def chisq_p(observed, probs) -> float:
    """Chi-square goodness-of-fit p-value of counts against cell probabilities."""
    observed = np.asarray(observed, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    expected = probs / probs.sum() * observed.sum()
    return float(st.chisquare(observed, expected).pvalue)


def binom_p(k: int, n: int, p: float) -> float:
    return float(st.binomtest(int(k), int(n), p).pvalue)


def fisher_z(r: float, rho: float, n: int) -> float:
    """z statistic of a sample correlation r against the true rho (Fisher transform)."""
    return (math.atanh(r) - math.atanh(rho)) * math.sqrt(n - 3)


def corr(x: torch.Tensor) -> float:
    a = np64(x)
    return float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])


def grid_log_M(log_target, proposal, lo: float, hi: float, points: int = 2_000_001) -> float:
    """sup of log p - log q over [lo, hi] for a 1-D target (float64 grid; at spacing 1e-5 the grid
    misses the maximum of a smooth ratio by ~1e-10) plus a 1e-6 margin: an exact envelope."""
    x = torch.linspace(lo, hi, points, dtype=torch.float64).unsqueeze(1)
    w = log_target(x) - proposal.log_prob(x.to(proposal.dtype)).double()
    return float(w[torch.isfinite(w)].max()) + 1e-6


# ---------------------------------------------------------------- proposals and kernels


def proposal_params(kind: str, dim: int, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Parameters of ops.propose for ``kind`` with D = dim: distinct per dimension."""
    if kind == "normal":
        return [torch.linspace(-1, 2, dim, dtype=dtype), torch.linspace(0.5, 2, dim, dtype=dtype)]
    if kind == "uniform":
        low = torch.linspace(-3, 0, dim, dtype=dtype)
        return [low, low + torch.linspace(0.5, 4, dim, dtype=dtype)]
    g = gen(dim)
    return [
        torch.tensor([0.3, -0.2, 1.0], dtype=dtype),
        (torch.randn(3, dim, generator=g) * 3).to(dtype),
        (torch.rand(3, dim, generator=g) + 0.5).to(dtype),
    ]


def accept_buffers(capacity: int, row_shape=(), dtype=torch.float32, count0: int = 0):
    """Fresh (out, counts, max_log_ratio) for accept_compact."""
    out = torch.zeros((capacity, *row_shape), dtype=dtype)
    counts = torch.tensor([count0, 0, 0, 0], dtype=torch.int64)
    max_log_ratio = torch.full((1,), -math.inf, dtype=torch.float64)
    return out, counts, max_log_ratio


def run_accept(fn, x, log_p, log_q, log_M, seed, offset, capacity=None, count0=0):
    """Call an accept_compact implementation on fresh buffers; return (out, counts, max_log_ratio)."""
    capacity = x.shape[0] if capacity is None else capacity
    out, counts, mx = accept_buffers(capacity, tuple(x.shape[1:]), x.dtype, count0)
    fn(x, log_p, log_q, log_M, seed, offset, out, counts, mx)
    return out, counts, mx


def digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ---------------------------------------------------------------- subprocesses


def rsfast_root() -> str:
    """The directory holding the rsfast package under test (the source tree in a dev checkout with an
    in-place build, site-packages after ``pip install .``). Children get it first on PYTHONPATH and run
    with the tests directory as cwd, so that ``python -c`` / ``-m`` never pick up an unbuilt source tree."""
    import rsfast

    return str(Path(rsfast.__file__).resolve().parent.parent)


def _child_env(threads: int, isa: str | None = None) -> dict:
    """Environment of a child interpreter with OMP_NUM_THREADS=threads (and RSFAST_CPU_ISA=isa when
    given) that imports the same rsfast."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.pop("RSFAST_CPU_ISA", None)
    if isa is not None:
        env["RSFAST_CPU_ISA"] = isa
    env["PYTHONPATH"] = os.pathsep.join([rsfast_root(), str(TESTS_DIR), env.get("PYTHONPATH", "")])
    return env


def thread_digests(
    threads_list=(1, 2, 3), timeout: float = 150, isa: str | None = None, probe: str = "_thread_probe.py"
) -> dict:
    """{threads: digests} of kernel outputs printed by ``probe`` (default _thread_probe.py: propose /
    accept_compact / sample), each computed in a fresh interpreter with OMP_NUM_THREADS=threads (and
    RSFAST_CPU_ISA=isa when given); the children run concurrently."""
    procs = {
        t: subprocess.Popen(
            [sys.executable, str(TESTS_DIR / probe)],
            env=_child_env(t, isa),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for t in threads_list
    }
    results = {}
    try:
        for t, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"child with OMP_NUM_THREADS={t} failed:\n{err[-4000:]}"
            results[t] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results
