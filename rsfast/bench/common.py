"""What every benchmark case shares: the seed, sizes, the bimodal problem, :class:`Prepared` and
:class:`BenchCase`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..proposals import Normal

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
        skipped: baseline name -> why it is not run (its optional package is missing).
        warmups: method name -> a cheap call that replaces the full-size warm-up call (cases whose one
            call takes many seconds).
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
    warmups: dict[str, Callable[[], Any]] = field(default_factory=dict)


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
        from .._native import cuda_status

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
