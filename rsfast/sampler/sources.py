"""Candidate sources of :func:`rsfast.sample`: each draws (x [m, *event], log q [m]) for a Philox
(seed, offset) and scores log q differentiably; and the checked call of the user's log target."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, Union

import torch
from torch import Tensor
from torch.distributions import Distribution

from .. import ops
from .._random import seeded_global_rng
from ..ops.propose import propose_into
from ..proposals import Proposal

LogTarget = Callable[[Tensor], Tensor]
ProposalLike = Union[Proposal, Distribution]


class _Source(abc.ABC):
    """Draws (x [m, *event], log q [m]) for Philox (seed, offset) and scores log q differentiably."""

    device: torch.device

    @abc.abstractmethod
    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        """m candidates and their log q."""

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """log q at x [m, *event] -> [m], differentiable."""


class _KernelSource(_Source):
    """A built-in proposal: the native propose kernel, derived parameters computed once per call."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.device = proposal.device
        self.derived = ops.derived_params(proposal.kind, proposal.params())

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        p = self.proposal
        x = torch.empty((m, p.event_shape[0]), dtype=p.dtype, device=self.device)
        lq = torch.empty((m,), dtype=p.dtype, device=self.device)
        if m:
            propose_into(p.kind, self.derived, m, seed, offset, x, lq)
        return x, lq

    def log_prob(self, x: Tensor) -> Tensor:
        return self.proposal.log_prob(x)


class _TorchSource(_Source):
    """Any torch.distributions object; its batch dims count as event dims of a product proposal."""

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self.device = _distribution_device(dist)

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        with seeded_global_rng(self.device, (seed ^ (offset * 0x9E3779B97F4A7C15)) & (2**63 - 1)):
            x = self.dist.sample((m,))
        return x, self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        lq = self.dist.log_prob(x)
        return lq.reshape(lq.shape[0], -1).sum(1) if lq.dim() > 1 else lq


class _ModuleSource(_TorchSource):
    """Any other object with ``log_prob`` and ``sample`` or ``rsample`` (a normalizing-flow module, say):
    drawn under no_grad with the global RNG seeded from (seed, offset), see :func:`draw_module`."""

    def __init__(self, module: Any) -> None:
        self.dist = module
        self.device = module_device(module)

    def draw(self, m: int, seed: int, offset: int) -> tuple[Tensor, Tensor]:
        with (
            torch.no_grad(),
            seeded_global_rng(self.device, (seed ^ (offset * 0x9E3779B97F4A7C15)) & (2**63 - 1)),
        ):
            x = draw_module(self.dist, m)
            return x, self.log_prob(x)


def draw_module(module: Any, m: int) -> Tensor:
    """m draws [m, *event] from a generic proposal with the global RNG: ``sample((m,))`` (or ``rsample``
    when it has no ``sample``), torch.distributions style; falls back to ``sample(m)`` and takes the
    first element of a returned tuple (normflows' ``sample(num_samples) -> (x, log_q)``)."""
    fn = getattr(module, "sample", None) or module.rsample
    try:
        x = fn(torch.Size((m,)))
    except TypeError:
        x = fn(m)
    if isinstance(x, (tuple, list)):
        x = x[0]
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] != m:
        raise ValueError(f"proposal.sample must return [m, *event] draws; for m = {m} it returned {x!r:.80}")
    return x


def module_device(module: Any) -> torch.device:
    """The device of a module's first parameter or buffer (or of the tensors in its attributes)."""
    for attr in ("parameters", "buffers"):
        for t in getattr(module, attr, lambda: ())():
            return t.device
    return _distribution_device(module)


_module_device = module_device  # the former private name


def _make_source(proposal: Any) -> _Source:
    if isinstance(proposal, Proposal):
        return _KernelSource(proposal)
    if isinstance(proposal, Distribution):
        return _TorchSource(proposal)
    if callable(getattr(proposal, "log_prob", None)) and (
        callable(getattr(proposal, "sample", None)) or callable(getattr(proposal, "rsample", None))
    ):
        return _ModuleSource(proposal)
    raise TypeError(
        "proposal must be an rsfast.proposals object (Normal, Uniform, MixtureNormal), a "
        "torch.distributions.Distribution, or a module with log_prob and sample/rsample, got "
        f"{type(proposal).__name__}"
    )


def _distribution_device(dist: Distribution) -> torch.device:
    """The device of the first tensor parameter (the CPU when it has none)."""
    for value in vars(dist).values():
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


def _log_p(log_target: LogTarget, x: Tensor, dtype: torch.dtype) -> Tensor:
    """log_target(x) checked to be a [m] floating tensor on x's device, cast to ``dtype``."""
    lp = log_target(x)
    m = x.shape[0]
    if not isinstance(lp, Tensor):
        raise TypeError(f"log_target must return a Tensor, got {type(lp).__name__}")
    if lp.shape != (m,):
        raise ValueError(
            f"log_target must map x [m, *event] to [m]; for x of shape {tuple(x.shape)} it returned "
            f"shape {tuple(lp.shape)}"
        )
    if lp.device != x.device:
        raise ValueError(f"log_target returned a tensor on {lp.device} for x on {x.device}")
    if not lp.is_floating_point():
        raise TypeError(f"log_target must return a floating tensor, got {lp.dtype}")
    return (lp if lp.dtype == dtype else lp.to(dtype)).contiguous()
