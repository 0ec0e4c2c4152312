"""Benchmark cases of rsfast, shared by ``rsfast bench`` and ``benchmarks/`` (pytest-benchmark).

A :class:`BenchCase` names a workload; ``case.setup(quick, device)`` builds its
inputs once and returns a :class:`Prepared`: one zero-argument callable per
method (``"rsfast"`` first, then its baselines), the number of items (samples or
rows) one call of each method produces, the bytes one call moves (for GB/s) and
a sanity check of a call's output. Nothing is timed in ``setup``.

Cases:

* ``sample_bimodal_2d`` (the headline): n exact samples of a two-mode target on
  R^2 (modes at +-(2, 2), sd 0.5) from ``Normal(0, 3)``, with a fixed, exact
  envelope (acceptance ~3.5 %). Methods: ``rsfast`` (:func:`rsfast.sample`,
  generic path: the target is a torch function), ``torch_loop``
  (:func:`rsfast._reference.sample_torch_loop`) and ``per_sample``
  (:func:`rsfast._reference.sample_per_sample`, run on a small n because it is
  slow; compare it by throughput, not by time per call).
* ``accept_compact``: :func:`rsfast.ops.accept_compact` on 1M rows of the same
  problem (D=2, float32, ~3.5 % accepted) vs torch (``torch.rand``, log, mask,
  boolean index, copy into a preallocated output).
* ``propose_normal``: :func:`rsfast.ops.propose` ("normal", 1M rows, D=2) vs
  torch (``loc + scale * torch.randn`` and log q from z).
* ``perturb`` / ``perturb_bf16``: :func:`rsfast.perturb_` on 16M float32 / bfloat16 elements
  (quick: 4M) vs ``p.add_(torch.randn_like(p, generator=g), alpha=s)``.
* ``accept_compact_rows``: :func:`rsfast.ops.accept_compact_rows` on a training
  batch of 1M rows (features [B, 16] float32, labels [B] int64, weights [B]
  float32; ~62 % kept) vs torch (``torch.rand``, log, mask, ``t[keep]`` per tensor).

:func:`run_all` times every (case, method) in one run: one warm-up call, then
the median of ``repeats`` calls (3 quick, 5 full) with :func:`time.perf_counter`
(``torch.cuda.synchronize`` around each call on CUDA). Throughput is items per
second; ``rsfast_speedup`` is the rsfast throughput divided by the method's
throughput, both from the same run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import _reference, ops
from .proposals import Normal
from .sampler import sample

__all__ = [
    "BenchCase",
    "Prepared",
    "CASES",
    "BIMODAL_LOG_M",
    "bimodal_log_target",
    "bimodal_log_M_exact",
    "repeats_for",
    "time_calls",
    "measure",
    "run_case",
    "run_all",
    "format_table",
]

#: Philox seed / torch generator seed of every benchmark call (inputs and methods).
SEED = 1234
#: Rows of the op-level cases (accept_compact, propose_normal), quick and full alike.
OP_ROWS = 1_000_000
#: Samples per call of the sampling case: (full, quick).
SAMPLE_N = (300_000, 30_000)
#: Samples per call of the textbook per-sample loop: (full, quick).
PER_SAMPLE_N = (300, 50)
#: Timed calls per method after one warm-up: (full, quick). Their median is reported.
REPEATS = (5, 3)
#: Budget of timed seconds per method: (full, quick). A method whose timed calls would overrun it gets
#: fewer of them (at least one; see :func:`time_calls`); the count actually used is reported as
#: ``repeats``. Keeps ``rsfast bench`` bounded on a loaded machine; never reached on an idle one.
METHOD_BUDGET_S = (40.0, 6.0)

_MODE = 2.0
_SD = 0.5
_PROPOSAL_SCALE = 3.0
_DIM = 2


def bimodal_log_target(x: Tensor) -> Tensor:
    """Unnormalised log density of the headline target, x [m, 2] -> [m]:
    logaddexp of two isotropic normals (sd 0.5) at (2, 2) and (-2, -2). Normaliser: Z = pi."""
    return torch.logaddexp(
        -0.5 * ((x - _MODE) / _SD).pow(2).sum(-1),
        -0.5 * ((x + _MODE) / _SD).pow(2).sum(-1),
    )


def bimodal_log_M_exact() -> float:
    """max_x log p(x) - log q(x) for :func:`bimodal_log_target` and ``Normal(0, 3 I)`` on R^2, closed form.

    Per coordinate, near the mode at +2, ``-2 (x - 2)^2 + x^2 / 18`` peaks at x* = 72/35 with value
    8/35; the other mode adds ``log1p(exp(-2 * 2 * (x* + 2)^2 + 2 * 2 * (x* - 2)^2))`` (~1e-29). Plus
    ``log(2 pi 3^2)`` from q's normaliser. Agrees with ``rsfast.estimate_log_M`` minus its log 1.1
    margin to ~4e-7.
    """
    a = 1.0 / (2 * _SD**2)  # 2: coefficient of (x - 2)^2 per coordinate in log p
    b = 1.0 / (2 * _PROPOSAL_SCALE**2)  # 1/18: coefficient of x^2 in -log q
    xs = 2 * a * _MODE / (2 * a - 2 * b)  # stationary point per coordinate: 72/35
    per_coord = -a * (xs - _MODE) ** 2 + b * xs**2
    other = _DIM * (-a * (xs + _MODE) ** 2 + a * (xs - _MODE) ** 2)
    return (
        _DIM * per_coord
        + math.log1p(math.exp(other))
        + _DIM * math.log(_PROPOSAL_SCALE)
        + (_DIM / 2) * math.log(2 * math.pi)
    )


#: The envelope every method of the bimodal cases uses: the exact maximum plus 1e-4 so that float32
#: rounding of log p - log q near the maximum cannot count as overweight. Acceptance: pi / M = 0.0352.
BIMODAL_LOG_M = bimodal_log_M_exact() + 1e-4


@dataclass
class Prepared:
    """A case's inputs, built for one device, and what to run on them.

    Attributes:
        case: the case's name.
        unit: throughput unit, ``"samples/s"`` or ``"rows/s"``.
        methods: method name -> zero-argument callable doing one call (``"rsfast"`` first).
        items: method name -> items (samples or rows) one call produces or processes.
        bytes_per_call: method name -> bytes one call moves, for GB/s (empty when not meaningful).
        bytes_note: what ``bytes_per_call`` counts (e.g. ``"read: x + log_p + log_q"``).
        check: ``check(method, output)`` raises AssertionError unless the output is sane (shapes,
            counts); no timing.
        device: the torch device the inputs live on.
        meta: facts about the inputs (log M, expected acceptance, sizes) for reports.
    """

    case: str
    unit: str
    methods: dict[str, Callable[[], Any]]
    items: dict[str, int]
    check: Callable[[str, Any], None]
    device: torch.device
    bytes_per_call: dict[str, int] = field(default_factory=dict)
    bytes_note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchCase:
    """A named benchmark workload.

    Attributes:
        name: case name (also the pytest-benchmark group).
        description: one line: what is measured.
        setup: ``setup(quick, device) -> Prepared``; builds inputs, times nothing.
    """

    name: str
    description: str
    setup: Callable[[bool, str], Prepared]


def _device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda":
        from ._native import cuda_status

        usable, why = cuda_status()
        if not usable:
            raise RuntimeError(f"cannot benchmark on {dev}: {why}")
    elif dev.type != "cpu":
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    return dev


def _generator(dev: torch.device) -> torch.Generator:
    return torch.Generator(device=dev).manual_seed(SEED)


def _bimodal_proposal(dev: torch.device) -> Normal:
    return Normal(torch.zeros(_DIM, device=dev), torch.full((_DIM,), _PROPOSAL_SCALE, device=dev))


# ---------------------------------------------------------------- sample_bimodal_2d


def _setup_sample_bimodal(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    proposal = _bimodal_proposal(dev)
    n = SAMPLE_N[quick]
    n_slow = PER_SAMPLE_N[quick]
    log_M = BIMODAL_LOG_M
    g = _generator(dev)
    # sample_per_sample draws its uniforms on the CPU: it can take a generator only on the CPU.
    g_slow = g if dev.type == "cpu" else None

    def run_rsfast() -> Tensor:
        g.manual_seed(SEED)
        return sample(bimodal_log_target, proposal, n, log_M=log_M, generator=g).samples

    def run_torch_loop() -> Tensor:
        g.manual_seed(SEED)
        return _reference.sample_torch_loop(bimodal_log_target, proposal, n, log_M, generator=g)

    def run_per_sample() -> Tensor:
        if g_slow is not None:
            g_slow.manual_seed(SEED)
        return _reference.sample_per_sample(bimodal_log_target, proposal, n_slow, log_M, generator=g_slow)

    items = {"rsfast": n, "torch_loop": n, "per_sample": n_slow}

    def check(method: str, out: Any) -> None:
        assert isinstance(out, Tensor), f"{method}: expected a Tensor, got {type(out).__name__}"
        assert tuple(out.shape) == (items[method], _DIM), f"{method}: shape {tuple(out.shape)}"
        assert bool(torch.isfinite(out).all()), f"{method}: non-finite samples"

    return Prepared(
        case="sample_bimodal_2d",
        unit="samples/s",
        methods={"rsfast": run_rsfast, "torch_loop": run_torch_loop, "per_sample": run_per_sample},
        items=items,
        check=check,
        device=dev,
        meta={
            "n": n,
            "n_per_sample": n_slow,
            "dim": _DIM,
            "log_M": log_M,
            "acceptance": math.pi / math.exp(log_M),
        },
    )


# ---------------------------------------------------------------- accept_compact


def _bimodal_rows(m: int, dev: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """m candidates of the bimodal problem: x [m, 2], log_p [m], log_q [m], float32 on dev."""
    proposal = _bimodal_proposal(dev)
    x, log_q = ops.propose("normal", proposal.params(), m, SEED, 0)
    with torch.no_grad():
        log_p = bimodal_log_target(x)
    return x.contiguous(), log_p.contiguous(), log_q.contiguous()


def _setup_accept_compact(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    m = OP_ROWS
    x, log_p, log_q = _bimodal_rows(m, dev)
    log_M = BIMODAL_LOG_M
    out = torch.empty_like(x)  # capacity m: room for any outcome, for both methods
    counts = torch.zeros(4, dtype=torch.int64, device=dev)
    max_ratio = torch.full((1,), -math.inf, dtype=torch.float64, device=dev)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        counts.zero_()
        max_ratio.fill_(-math.inf)
        ops.accept_compact(x, log_p, log_q, log_M, SEED, 1, out, counts, max_ratio)
        return counts  # counts[0] rows of out are written; read lazily (no sync in the call)

    def run_torch() -> int:
        u = torch.rand(m, generator=g, dtype=log_p.dtype, device=dev)
        keep = torch.log(u) < (log_p - log_q) - log_M
        kept = x[keep]
        k = kept.shape[0]
        out[:k] = kept
        return k

    expected = m * math.pi / math.exp(log_M)

    def check(method: str, res: Any) -> None:
        k = int(res[0]) if isinstance(res, Tensor) else int(res)
        # ~35k expected; 10 standard deviations either way
        assert abs(k - expected) < 10 * math.sqrt(expected) + 10, (
            f"{method}: accepted {k}, expected ~{expected:.0f}"
        )
        if isinstance(res, Tensor):
            assert int(res[1]) == 0 and int(res[2]) == 0 and int(res[3]) == 0, (
                f"{method}: counts {res.tolist()}"
            )

    nbytes = x.numel() * x.element_size() + (log_p.numel() + log_q.numel()) * log_p.element_size()
    return Prepared(
        case="accept_compact",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": m, "torch": m},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: x + log_p + log_q",
        meta={"m": m, "dim": _DIM, "dtype": "float32", "log_M": log_M, "acceptance": expected / m},
    )


# ---------------------------------------------------------------- propose_normal


def _setup_propose_normal(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    m = OP_ROWS
    loc = torch.zeros(_DIM, device=dev)
    scale = torch.full((_DIM,), _PROPOSAL_SCALE, device=dev)
    g = _generator(dev)
    log_2pi = math.log(2 * math.pi)

    def run_rsfast() -> tuple[Tensor, Tensor]:
        return ops.propose("normal", [loc, scale], m, SEED, 0)

    def run_torch() -> tuple[Tensor, Tensor]:
        z = torch.randn((m, _DIM), generator=g, dtype=loc.dtype, device=dev)
        const = -torch.log(scale).sum() - 0.5 * _DIM * log_2pi
        return loc + scale * z, const - 0.5 * (z * z).sum(-1)

    def check(method: str, res: Any) -> None:
        x, log_q = res
        assert tuple(x.shape) == (m, _DIM) and tuple(log_q.shape) == (m,), f"{method}: shapes"
        assert bool(torch.isfinite(log_q).all()), f"{method}: non-finite log q"

    nbytes = m * (_DIM + 1) * 4
    return Prepared(
        case="propose_normal",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": m, "torch": m},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="written: x + log_q",
        meta={"m": m, "dim": _DIM, "dtype": "float32"},
    )


# ---------------------------------------------------------------- perturb

#: Elements of the perturb cases: (full, quick).
PERTURB_NUMEL = (16 * 2**20, 4 * 2**20)
PERTURB_SCALE = 1e-3


def _setup_perturb(dtype: torch.dtype) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        dev = _device(device)
        n = PERTURB_NUMEL[quick]
        g = _generator(dev)
        params = {m: torch.randn(n, generator=g, device=dev).to(dtype) for m in ("rsfast", "torch")}
        start = params["rsfast"].clone()

        def run_rsfast() -> Tensor:
            ops.perturb_(params["rsfast"], SEED, PERTURB_SCALE)
            return params["rsfast"]

        def run_torch() -> Tensor:
            p = params["torch"]
            return p.add_(torch.randn_like(p, generator=g), alpha=PERTURB_SCALE)

        def check(method: str, out: Any) -> None:
            assert out.shape == (n,) and out.dtype == dtype, f"{method}: {out.shape} {out.dtype}"
            assert bool(torch.isfinite(out).all()), f"{method}: non-finite parameters"
            assert bool((out != start).any()), f"{method}: nothing was perturbed"

        nbytes = 2 * n * params["rsfast"].element_size()
        return Prepared(
            case="perturb" if dtype == torch.float32 else "perturb_bf16",
            unit="elements/s",
            methods={"rsfast": run_rsfast, "torch": run_torch},
            items={"rsfast": n, "torch": n},
            check=check,
            device=dev,
            bytes_per_call={"rsfast": nbytes, "torch": nbytes},
            bytes_note="parameters read + written",
            meta={"numel": n, "dtype": str(dtype), "scale": PERTURB_SCALE},
        )

    return setup


# ---------------------------------------------------------------- accept_compact_rows

#: Rows of the accept_compact_rows case and the training batch's trailing shape: features [B, 16] float32,
#: labels [B] int64, weights [B] float32.
ROWS_FEATURES = 16


def _setup_accept_compact_rows(quick: bool, device: str) -> Prepared:
    dev = _device(device)
    b = OP_ROWS
    g = _generator(dev)
    feats = torch.randn((b, ROWS_FEATURES), generator=g, device=dev)
    labels = torch.randint(0, 10, (b,), generator=g, device=dev)
    weights = torch.rand((b,), generator=g, device=dev)
    # log ratios of a typical in-batch rejection: half the rows above log M (always kept), the rest
    # kept with probability e^(log_ratio - log_M); ~62 % accepted overall.
    log_ratio = torch.randn((b,), generator=g, device=dev) * 0.5
    log_M = 0.0
    tensors = [feats, labels, weights]

    def run_rsfast() -> tuple[list[Tensor], Tensor]:
        return ops.accept_compact_rows(log_ratio, log_M, tensors, SEED, 0)

    def run_torch() -> tuple[list[Tensor], Tensor]:
        log_u = torch.log(torch.rand((b,), generator=g, device=dev))
        keep = log_u < log_ratio - log_M
        return [t[keep] for t in tensors], keep.sum()

    expected = float(torch.minimum(torch.ones(()), torch.exp(log_ratio.double() - log_M).cpu()).sum())

    def check(method: str, res: Any) -> None:
        outs, count = res
        k = int(count)
        assert abs(k - expected) < 10 * math.sqrt(expected) + 10, (
            f"{method}: kept {k}, expected ~{expected:.0f}"
        )
        assert [tuple(o.shape) for o in outs] == [(k, ROWS_FEATURES), (k,), (k,)], f"{method}: shapes"
        assert outs[1].dtype == torch.int64, f"{method}: labels dtype {outs[1].dtype}"

    row_bytes = ROWS_FEATURES * 4 + 8 + 4
    nbytes = b * (row_bytes + 4) + int(expected) * row_bytes  # read every row and log_ratio, write the kept
    return Prepared(
        case="accept_compact_rows",
        unit="rows/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items={"rsfast": b, "torch": b},
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: features + labels + weights + log_ratio; written: the kept rows",
        meta={"B": b, "features": ROWS_FEATURES, "log_M": log_M, "acceptance": expected / b},
    )


# ---------------------------------------------------------------- fused_mixture


def bimodal_target(dev: torch.device | str = "cpu") -> Any:
    """The headline target as an :class:`rsfast.targets.MixtureNormal` (normalised: it is
    ``bimodal_log_target - log(pi)``), float32 on ``dev``."""
    from .targets import MixtureNormal

    dev = torch.device(dev)
    loc = torch.tensor([[_MODE] * _DIM, [-_MODE] * _DIM], device=dev)
    return MixtureNormal(torch.zeros(2, device=dev), loc, torch.full((2, _DIM), _SD, device=dev))


#: The envelope of the fused_mixture case: BIMODAL_LOG_M for the normalised density.
FUSED_LOG_M = BIMODAL_LOG_M - math.log(math.pi)


def _setup_fused_mixture(quick: bool, device: str) -> Prepared:
    """The headline problem (n samples, 2-D bimodal target, Normal(0, 3) proposal, the exact envelope)
    with the target given as ``rsfast.targets.MixtureNormal``. Methods: ``rsfast`` (rsfast.sample on the
    fused kernel: one launch), ``generic`` (rsfast.sample with ``fused=False``: the engine's rounds with
    the target's torch log density) and ``torch_loop`` (:func:`rsfast._reference.sample_torch_loop` on
    :func:`bimodal_log_target`, the sample_bimodal_2d baseline)."""
    dev = _device(device)
    proposal = _bimodal_proposal(dev)
    target = bimodal_target(dev)
    n = SAMPLE_N[quick]
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        g.manual_seed(SEED)
        return sample(target, proposal, n, log_M=FUSED_LOG_M, generator=g).samples

    def run_generic() -> Tensor:
        g.manual_seed(SEED)
        return sample(target, proposal, n, log_M=FUSED_LOG_M, generator=g, fused=False).samples

    def run_torch_loop() -> Tensor:
        g.manual_seed(SEED)
        return _reference.sample_torch_loop(bimodal_log_target, proposal, n, BIMODAL_LOG_M, generator=g)

    items = {"rsfast": n, "generic": n, "torch_loop": n}

    def check(method: str, out: Any) -> None:
        assert isinstance(out, Tensor), f"{method}: expected a Tensor, got {type(out).__name__}"
        assert tuple(out.shape) == (n, _DIM), f"{method}: shape {tuple(out.shape)}"
        assert bool(torch.isfinite(out).all()), f"{method}: non-finite samples"
        # both modes, about half each (10 standard deviations either way)
        share = float((out[:, 0] > 0).float().mean())
        assert abs(share - 0.5) < 10 * 0.5 / math.sqrt(n), f"{method}: {share:.3f} of samples in the + mode"

    return Prepared(
        case="fused_mixture",
        unit="samples/s",
        methods={"rsfast": run_rsfast, "generic": run_generic, "torch_loop": run_torch_loop},
        items=items,
        check=check,
        device=dev,
        meta={"n": n, "dim": _DIM, "log_M": FUSED_LOG_M, "acceptance": math.exp(-FUSED_LOG_M)},
    )


# ---------------------------------------------------------------- distributions (issue 3)

#: Samples per call of the distribution cases: (full, quick).
DIST_N = (2_000_000, 200_000)
#: Samples per call of scipy's truncnorm.rvs baseline (slow; compared by throughput): (full, quick).
SCIPY_N = (200_000, 50_000)


def _dist_check(items: dict[str, int], mean: float, sd: float) -> Callable[[str, Any], None]:
    """Sanity of a distribution case's output: shape, finite, sample mean within 8 standard errors."""

    def check(method: str, out: Any) -> None:
        import numpy as np

        a = out.detach().cpu().double().numpy() if isinstance(out, Tensor) else np.asarray(out, dtype=float)
        assert a.shape == (items[method],), f"{method}: shape {a.shape}"
        assert np.isfinite(a).all(), f"{method}: non-finite samples"
        se = sd / math.sqrt(a.size)
        assert abs(a.mean() - mean) < 8 * se + 1e-6, f"{method}: mean {a.mean()} vs {mean}"

    return check


def _dist_prepared(
    case: str, dev: torch.device, n: int, run_rsfast: Callable[[], Tensor], run_torch: Callable[[], Tensor],
    mean: float, sd: float, meta: dict[str, Any],
) -> Prepared:  # fmt: skip
    """A distribution case: n float32 samples per call from rsfast and from torch's sampler."""
    items = {"rsfast": n, "torch": n}
    return Prepared(
        case=case,
        unit="samples/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items=items,
        check=_dist_check(items, mean, sd),
        device=dev,
        meta={"n": n, "dtype": "float32", **meta},
    )


#: What brings an optional baseline's package: shown when that baseline is skipped.
_OPTIONAL_BASELINE_HINT = "pip install 'rsfast[bench]' (or 'rsfast[test]') brings it"


def _truncnorm_moments(a: float) -> tuple[float, float]:
    """Mean and sd of the standard normal truncated to [a, inf) (closed form; no scipy needed)."""
    lam = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi) / (0.5 * math.erfc(a / math.sqrt(2)))
    return lam, math.sqrt(1 + a * lam - lam * lam)


def _setup_truncated_normal(quick: bool, device: str) -> Prepared:
    from .distributions import TruncatedNormal

    dev = _device(device)
    n, n_scipy = DIST_N[quick], SCIPY_N[quick]
    d = TruncatedNormal(*(torch.tensor(v, device=dev) for v in (0.0, 1.0, 3.0, math.inf)))
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    methods: dict[str, Callable[[], Any]] = {"rsfast": run_rsfast}
    items = {"rsfast": n}
    skipped: dict[str, str] = {}
    try:  # scipy is optional: without it rsfast is still timed and the scipy baseline is skipped
        import numpy as np
        import scipy.stats as st
    except ImportError:
        skipped["scipy"] = f"scipy is not installed; {_OPTIONAL_BASELINE_HINT}"
    else:
        ref = st.truncnorm(3.0, np.inf)

        def run_scipy() -> Any:
            return ref.rvs(n_scipy, random_state=np.random.default_rng(SEED))

        methods["scipy"] = run_scipy
        items["scipy"] = n_scipy
    mean, sd = _truncnorm_moments(3.0)
    return Prepared(
        case="truncated_normal",
        unit="samples/s",
        methods=methods,
        items=items,
        check=_dist_check(items, mean, sd),
        device=dev,
        meta={"n": n, "n_scipy": n_scipy, "law": "TruncatedNormal(0, 1, 3, inf)", "dtype": "float32"},
        skipped=skipped,
    )


def _setup_vonmises(quick: bool, device: str) -> Prepared:
    from .distributions import VonMises

    dev = _device(device)
    n = DIST_N[quick]
    loc, k = torch.tensor(0.0, device=dev), torch.tensor(1.0, device=dev)
    d = VonMises(loc, k)
    ref = torch.distributions.VonMises(loc, k)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return ref.sample((n,))

    return _dist_prepared("vonmises", dev, n, run_rsfast, run_torch, 0.0, 1.3, {"law": "VonMises(0, 1)"})


def _setup_gamma(quick: bool, device: str) -> Prepared:
    from .distributions import Gamma

    dev = _device(device)
    n = DIST_N[quick]
    d = Gamma(torch.tensor(2.5, device=dev), torch.tensor(1.0, device=dev))
    alpha = torch.full((n,), 2.5, device=dev)  # torch's sampler takes one concentration per sample
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return torch._standard_gamma(alpha, generator=g)

    meta = {"law": "Gamma(2.5, 1)", "baseline": "torch._standard_gamma"}
    return _dist_prepared("gamma", dev, n, run_rsfast, run_torch, 2.5, math.sqrt(2.5), meta)


def _setup_beta(quick: bool, device: str) -> Prepared:
    from .distributions import Beta

    dev = _device(device)
    n = DIST_N[quick]
    c1, c0 = torch.tensor(2.0, device=dev), torch.tensor(3.0, device=dev)
    d = Beta(c1, c0)
    ref = torch.distributions.Beta(c1, c0)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return ref.sample((n,))

    return _dist_prepared("beta", dev, n, run_rsfast, run_torch, 0.4, 0.2, {"law": "Beta(2, 3)"})


# ---------------------------------------------------------------- group selection (rsfast.select)

#: Groups x candidates of the select cases (the RSO bar: [4096, 64], k = 8), quick and full alike.
SELECT_SHAPE = (4096, 64)
#: Groups given to the per-row Python loops of the published code: (full, quick).
SELECT_PER_ROW_GROUPS = (256, 64)
SELECT_K = 8
SELECT_BETA = 1.0


def _setup_select(
    name: str,
    quick: bool,
    device: str,
    rsfast_fn: Callable[[Tensor, torch.Generator], Any],
    torch_fn: Callable[[Tensor, torch.Generator], Any],
    per_row_fn: Callable[[list[list[float]]], Any],
    check_out: Callable[[str, Any, int], None],
    values: Callable[[torch.Generator, torch.device], Tensor] | None = None,
) -> Prepared:
    """A select case: ``rsfast`` (:mod:`rsfast.select`) and ``torch`` (the vectorised twin in
    :mod:`rsfast._reference`) on SELECT_SHAPE float32 rewards, ``per_row`` (the published per-row loop,
    Python lists) on the first SELECT_PER_ROW_GROUPS groups; items are groups."""
    dev = _device(device)
    p, n = SELECT_SHAPE
    g = _generator(dev)
    rewards = values(g, dev) if values is not None else torch.randn((p, n), generator=g, device=dev)
    p_slow = SELECT_PER_ROW_GROUPS[quick]
    rows_slow = rewards[:p_slow].cpu().tolist()

    def run_rsfast() -> Any:
        g.manual_seed(SEED)
        return rsfast_fn(rewards, g)

    def run_torch() -> Any:
        g.manual_seed(SEED)
        return torch_fn(rewards, g)

    def run_per_row() -> Any:
        return per_row_fn(rows_slow)

    items = {"rsfast": p, "torch": p, "per_row": p_slow}

    def check(method: str, out: Any) -> None:
        check_out(method, out, items[method])

    nbytes = rewards.numel() * rewards.element_size()
    return Prepared(
        case=name,
        unit="groups/s",
        methods={"rsfast": run_rsfast, "torch": run_torch, "per_row": run_per_row},
        items=items,
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: rewards",
        meta={"groups": p, "candidates": n, "dtype": "float32", "per_row_groups": p_slow},
    )


def _check_rows(k: int) -> Callable[[str, Any, int], None]:
    def check(method: str, out: Any, groups: int) -> None:
        rows = out.tolist() if isinstance(out, Tensor) else out
        assert len(rows) == groups and all(len(r) == k for r in rows), f"{method}: not [{groups}, {k}]"
        assert all(len(set(r)) == k and min(r) >= 0 for r in rows), f"{method}: invalid indices"

    return check


def _setup_select_rso(quick: bool, device: str) -> Prepared:
    from . import select

    k, beta = SELECT_K, SELECT_BETA

    def per_row(rows: list[list[float]]) -> list[list[int]]:
        import random

        return _reference.rso_per_row(rows, k, beta, random.Random(SEED).random)

    return _setup_select(
        "select_rso",
        quick,
        device,
        lambda r, g: select.rso(r, k, beta, generator=g),
        lambda r, g: _reference.rso_torch(r, k, beta, generator=g),
        per_row,
        _check_rows(k),
    )


def _setup_select_best_of_n(quick: bool, device: str) -> Prepared:
    from . import select

    k = SELECT_K
    return _setup_select(
        "select_best_of_n",
        quick,
        device,
        lambda r, g: select.best_of_n(r, k),
        lambda r, g: _reference.best_of_n(r, k),
        lambda rows: _reference.best_of_n_per_row(rows, k),
        _check_rows(k),
    )


def _check_flat(method: str, out: Any, groups: int) -> None:
    idx = out[0] if isinstance(out, tuple) else out
    idx = idx.tolist() if isinstance(idx, Tensor) else idx
    assert len(idx) > 0 and idx == sorted(idx) and len(set(idx)) == len(idx), f"{method}: bad flat indices"


def _setup_select_threshold(quick: bool, device: str) -> Prepared:
    from . import select

    return _setup_select(
        "select_threshold",
        quick,
        device,
        lambda r, g: select.threshold(r, 1.0, max_per_group=4),
        lambda r, g: _reference.threshold(r, 1.0, 4),
        lambda rows: _reference.threshold_per_row(rows, 1.0, 4),
        _check_flat,
    )


def _setup_select_top_fraction(quick: bool, device: str) -> Prepared:
    from . import select

    return _setup_select(
        "select_top_fraction",
        quick,
        device,
        lambda r, g: select.top_fraction(r, 0.1),
        lambda r, g: _reference.top_fraction(r, 0.1),
        lambda rows: _reference.top_fraction_per_row(rows, 0.1),
        _check_flat,
    )


def _setup_select_filter_groups(quick: bool, device: str) -> Prepared:
    from . import select

    def check(method: str, out: Any, groups: int) -> None:
        keep = out.tolist() if isinstance(out, Tensor) else out
        assert len(keep) == groups and 0 < sum(keep) < groups, f"{method}: {sum(keep)} of {groups} kept"

    def metric(g: torch.Generator, dev: torch.device) -> Tensor:
        # verifier accuracy: pass rate 3 % per candidate, so about 14 % of the groups are uniform (all 0)
        return (torch.rand(SELECT_SHAPE, generator=g, device=dev) < 0.03).float()

    return _setup_select(
        "select_filter_groups",
        quick,
        device,
        lambda r, g: select.filter_groups(r),
        lambda r, g: _reference.filter_groups(r),
        _reference.filter_groups_per_row,
        check,
        metric,
    )


def _setup_select_dedupe(quick: bool, device: str) -> Prepared:
    from . import select

    dev = _device(device)
    p, n = SELECT_SHAPE
    g = _generator(dev)
    # 64 completions per prompt drawn from 16 distinct answers: most are duplicates
    keys = torch.randint(0, 16, (p, n), generator=g, device=dev).reshape(-1) * 0x1E3779B97F4A7C15 % (2**61)
    groups = torch.arange(p, device=dev).repeat_interleave(n)
    p_slow = SELECT_PER_ROW_GROUPS[quick]
    keys_slow, groups_slow = keys[: p_slow * n].tolist(), groups[: p_slow * n].tolist()
    items = {"rsfast": p, "torch": p, "per_row": p_slow}

    def check(method: str, out: Any) -> None:
        keep = out.tolist() if isinstance(out, Tensor) else out
        assert len(keep) == items[method] * n and 0 < sum(keep) <= 16 * items[method], (
            f"{method}: {sum(keep)}"
        )

    nbytes = 2 * keys.numel() * 8
    return Prepared(
        case="select_dedupe",
        unit="groups/s",
        methods={
            "rsfast": lambda: select.dedupe(keys, groups),
            "torch": lambda: _reference.dedupe(keys, groups),
            "per_row": lambda: _reference.dedupe_per_row(keys_slow, groups_slow),
        },
        items=items,
        check=check,
        device=dev,
        bytes_per_call={"rsfast": nbytes, "torch": nbytes},
        bytes_note="read: keys + groups",
        meta={"groups": p, "candidates": n, "distinct_per_group": 16, "per_row_groups": p_slow},
    )


# ---------------------------------------------------------------- discrete distributions (issue 3)

#: Samples per call of the Poisson / Binomial cases (full and quick alike: a call takes ~0.1 s).
DISCRETE_N = 1_000_000


def _poisson_setup(rate: float) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        from .distributions import Poisson

        dev = _device(device)
        n = DISCRETE_N
        d = Poisson(torch.tensor(rate, device=dev))
        rates = torch.full((n,), rate, device=dev)  # torch.poisson takes one rate per sample
        g = _generator(dev)

        def run_rsfast() -> Tensor:
            return d.sample((n,), generator=g)

        def run_torch() -> Tensor:
            return torch.poisson(rates, generator=g)

        return _dist_prepared(
            f"poisson_rate{rate:g}", dev, n, run_rsfast, run_torch, rate, math.sqrt(rate), {"rate": rate}
        )

    return setup


def _binomial_setup(total_count: int, probs: float) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        from .distributions import Binomial

        dev = _device(device)
        n = DISCRETE_N
        count, p = torch.tensor(float(total_count), device=dev), torch.tensor(probs, device=dev)
        d = Binomial(count, p)
        ref = torch.distributions.Binomial(count, p)
        g = _generator(dev)

        def run_rsfast() -> Tensor:
            return d.sample((n,), generator=g)

        def run_torch() -> Tensor:
            # torch.distributions.Binomial.sample takes no generator: it draws from the global one.
            return ref.sample((n,))

        mean, sd = total_count * probs, math.sqrt(total_count * probs * (1 - probs))
        return _dist_prepared(
            f"binomial_n{total_count}_p{probs:g}", dev, n, run_rsfast, run_torch, mean, sd,
            {"total_count": total_count, "probs": probs},
        )  # fmt: skip

    return setup


#: All cases, in report order.
CASES: dict[str, BenchCase] = {
    c.name: c
    for c in (
        BenchCase(
            "sample_bimodal_2d",
            "n exact samples of a 2-mode target on R^2 from Normal(0, 3); exact fixed log M; acceptance 3.5%",
            _setup_sample_bimodal,
        ),
        BenchCase(
            "accept_compact",
            "accept + stable compaction of 1M rows (D=2, float32, 3.5 % accepted) into a preallocated output",
            _setup_accept_compact,
        ),
        BenchCase(
            "propose_normal",
            "1M rows of a diagonal normal on R^2 and their log q (float32)",
            _setup_propose_normal,
        ),
        BenchCase(
            "perturb",
            "p += s * N(0, I) in place on 16M float32 elements (quick: 4M) vs p.add_(randn_like(p), alpha=s)",
            _setup_perturb(torch.float32),
        ),
        BenchCase(
            "perturb_bf16",
            "the same on bfloat16 parameters (noise in float32, rounded once)",
            _setup_perturb(torch.bfloat16),
        ),
        BenchCase(
            "accept_compact_rows",
            "in-batch rejection of 1M rows (features [B,16] f32, labels [B] i64, weights [B] f32; 62 % kept)"
            " into exact-size outputs",
            _setup_accept_compact_rows,
        ),
        BenchCase(
            "fused_mixture",
            "sample_bimodal_2d with the target as rsfast.targets.MixtureNormal: fused kernel vs generic path",
            _setup_fused_mixture,
        ),
        BenchCase(
            "truncated_normal",
            "TruncatedNormal(0, 1) on [3, inf), float32: rsfast slot kernel vs scipy.stats.truncnorm.rvs",
            _setup_truncated_normal,
        ),
        BenchCase(
            "vonmises",
            "VonMises(0, 1), float32: rsfast slot kernel vs torch.distributions.VonMises.sample",
            _setup_vonmises,
        ),
        BenchCase(
            "gamma",
            "Gamma(2.5, 1), float32: rsfast slot kernel vs torch._standard_gamma (same thread count)",
            _setup_gamma,
        ),
        BenchCase(
            "beta",
            "Beta(2, 3), float32: rsfast slot kernel vs torch.distributions.Beta.sample",
            _setup_beta,
        ),
        BenchCase(
            "select_rso",
            "RSO (Liu et al. 2024) on [4096, 64] float32 N(0, 1) rewards, k = 8, beta = 1",
            _setup_select_rso,
        ),
        BenchCase(
            "select_best_of_n",
            "best 8 of 64 per group, [4096, 64] float32 rewards",
            _setup_select_best_of_n,
        ),
        BenchCase(
            "select_threshold",
            "rewards >= 1, at most 4 per group, [4096, 64] float32 (flat indices + counts)",
            _setup_select_threshold,
        ),
        BenchCase(
            "select_top_fraction",
            "RAFT's global top 10 % of [4096, 64] float32 rewards (flat indices, increasing)",
            _setup_select_top_fraction,
        ),
        BenchCase(
            "select_filter_groups",
            "DAPO filter: groups whose 0/1 metric is not uniform, [4096, 64]",
            _setup_select_filter_groups,
        ),
        BenchCase(
            "select_dedupe",
            "first occurrence of each (group, key), 4096 groups x 64 int64 keys (16 distinct per group)",
            _setup_select_dedupe,
        ),
        BenchCase(
            "poisson_rate3",
            "1M Poisson(3) samples, float32 (inversion) vs torch.poisson",
            _poisson_setup(3.0),
        ),
        BenchCase(
            "poisson_rate100",
            "1M Poisson(100) samples, float32 (PTRS) vs torch.poisson",
            _poisson_setup(100.0),
        ),
        BenchCase(
            "binomial_n100_p0.3",
            "1M Binomial(100, 0.3) samples, float32 (BTRS) vs torch.distributions.Binomial.sample",
            _binomial_setup(100, 0.3),
        ),
        BenchCase(
            "binomial_n10_p0.5",
            "1M Binomial(10, 0.5) samples, float32 (inversion) vs torch.distributions.Binomial.sample",
            _binomial_setup(10, 0.5),
        ),
    )
}


# ---------------------------------------------------------------- timing


def repeats_for(quick: bool) -> int:
    """Timed calls per method: 3 quick, 5 full."""
    return REPEATS[quick]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], Any], repeats: int, device: torch.device, budget_s: float = math.inf
) -> tuple[list[float], Any]:
    """Seconds of each of ``repeats`` calls of ``fn`` after one untimed warm-up call.

    On CUDA the device is synchronised before and after each call. A safety valve for loaded
    machines: once at least one call is timed, no further call starts when the timed calls so far
    plus one more call of their median length would pass ``budget_s`` (warm-up not counted, since a
    first call pays one-time costs). Returns (the per-call seconds, the last call's output).
    """
    _sync(device)
    out = fn()
    _sync(device)
    times: list[float] = []
    for _ in range(repeats):
        if times and sum(times) + statistics.median(times) > budget_s:
            break
        _sync(device)
        t = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times, out


def measure(prepared: Prepared, method: str, seconds: float, repeats: int = 1) -> dict[str, Any]:
    """The report row of one method given its median seconds per call (``rsfast_speedup`` left None)."""
    items = prepared.items[method]
    nbytes = prepared.bytes_per_call.get(method)
    return {
        "case": prepared.case,
        "method": method,
        "device": str(prepared.device),
        "items": items,
        "seconds": seconds,
        "throughput": items / seconds if seconds > 0 else math.inf,
        "unit": prepared.unit,
        "gb_per_s": nbytes / seconds / 1e9 if nbytes and seconds > 0 else None,
        "repeats": repeats,
        "rsfast_speedup": None,
    }


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    ref = next((r for r in rows if r["method"] == "rsfast"), None)
    for r in rows:
        if ref is not None and r["throughput"] > 0:
            r["rsfast_speedup"] = ref["throughput"] / r["throughput"]


def run_case(
    case: BenchCase | str,
    quick: bool,
    device: str = "cpu",
    methods: Sequence[str] | None = None,
    check: bool = True,
    skipped: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Time every method of one case (or those named in ``methods``); one row per method.

    Row keys: ``case``, ``method``, ``device``, ``items`` (samples or rows per call), ``seconds``
    (median seconds per call), ``throughput`` (items / seconds), ``unit``, ``gb_per_s`` (None when
    the case defines no byte count), ``repeats`` (timed calls), ``rsfast_speedup`` (rsfast
    throughput / this method's throughput; 1.0 for rsfast; None when rsfast was not run).
    A baseline whose optional package is missing is not run; one line per such baseline (which one,
    and which extra brings it) is appended to ``skipped`` when given.
    """
    c = CASES[case] if isinstance(case, str) else case
    prepared = c.setup(quick, device)
    if skipped is not None:
        skipped += [f"{prepared.case}: baseline {m} skipped ({why})" for m, why in prepared.skipped.items()]
    repeats = repeats_for(quick)
    budget = METHOD_BUDGET_S[quick]
    rows = []
    for name, fn in prepared.methods.items():
        if methods is not None and name not in methods:
            continue
        times, out = time_calls(fn, repeats, prepared.device, budget)
        if check:
            prepared.check(name, out)
        rows.append(measure(prepared, name, statistics.median(times), len(times)))
    _add_speedups(rows)
    return rows


def run_all(
    quick: bool, device: str = "cpu", cases: Sequence[str] | None = None, skipped: list[str] | None = None
) -> list[dict[str, Any]]:
    """Run every case (or those named in ``cases``) on ``device``; rows and ``skipped`` as in
    :func:`run_case`."""
    names = list(CASES) if cases is None else list(cases)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; known: {list(CASES)}")
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for name in names:
            rows += run_case(name, quick, device, skipped=skipped)
    return rows


# ---------------------------------------------------------------- report


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def _duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of :func:`run_all` as an aligned text table: case, method, items per call, median time per
    call, throughput, GB/s (where defined) and ``rsfast x`` (rsfast throughput / this method's)."""
    header = ("case", "method", "items/call", "time/call", "throughput", "GB/s", "rsfast x")
    body = []
    for r in rows:
        speed = r.get("rsfast_speedup")
        gbps = r.get("gb_per_s")
        body.append(
            (
                r["case"],
                r["method"],
                f"{r['items']:,}",
                _duration(r["seconds"]),
                f"{_si(r['throughput'])}{r['unit']}",
                f"{gbps:.3g}" if gbps is not None else "-",
                f"{speed:.3g}" if speed is not None else "-",
            )
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    right = {2, 3, 4, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    out = [line(header), line(["-" * w for w in widths])]
    prev = None
    for b in body:
        if prev is not None and b[0] != prev:
            out.append("")
        out.append(line(b))
        prev = b[0]
    return "\n".join(out)
