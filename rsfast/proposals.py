"""Built-in proposals q, sampled by the fused ``propose`` kernel.

Each is a :class:`torch.distributions.Distribution` with event shape ``(D,)``:
``sample(sample_shape, generator=None)`` runs the native kernel, ``log_prob`` is
plain torch (differentiable). ``rsfast.sample`` recognises them and draws
candidates and their log q in one pass. Parameters may be tensors, numpy
arrays, cupy arrays or sequences; integers become the default float dtype.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from . import ops
from ._random import check_generator, draw_seed

__all__ = ["Proposal", "Normal", "Uniform", "MixtureNormal"]

_LOG_2PI = math.log(2 * math.pi)


def _as_param(value: Any, name: str, like: Tensor | None = None) -> Tensor:
    """A floating tensor from tensor/array-like input; TypeError naming ``name`` otherwise."""
    try:
        t = torch.as_tensor(value, device=like.device if like is not None else None)
    except Exception as e:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"{name} must be a tensor or array-like of numbers: {e}") from None
    if not t.is_floating_point():
        if t.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise TypeError(f"{name} must be real-valued, got {t.dtype}")
        t = t.to(like.dtype if like is not None else torch.get_default_dtype())
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if like is not None:
        t = t.to(dtype=like.dtype)
    return t


def _pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Two [D] parameters from scalars or vectors, broadcast together, one dtype and device."""
    ta = _as_param(a, names[0])
    tb = _as_param(b, names[1], like=ta)
    try:
        ta, tb = torch.broadcast_tensors(ta, tb)
    except RuntimeError:
        raise ValueError(
            f"{names[0]} {tuple(ta.shape)} and {names[1]} {tuple(tb.shape)} do not broadcast"
        ) from None
    if ta.dim() == 0:
        ta, tb = ta.reshape(1), tb.reshape(1)
    if ta.dim() != 1:
        raise ValueError(f"{names[0]} and {names[1]} must be [D], got {tuple(ta.shape)}")
    for name, t in zip(names, (ta, tb)):
        _check_finite(t, name)
    return ta.contiguous(), tb.contiguous()


def _check_finite(t: Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")


class Proposal(Distribution):
    """Base of the built-in proposals: a kernel ``kind`` and its parameter tensors."""

    kind: str = ""
    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(self, event_dim: int) -> None:
        super().__init__(batch_shape=torch.Size(), event_shape=torch.Size((event_dim,)), validate_args=False)

    def params(self) -> list[Tensor]:
        """The parameter tensors in the order :func:`rsfast.ops.propose` takes them."""
        return [getattr(self, name) for name in ops.PROPOSAL_PARAMS[self.kind]]

    @property
    def device(self) -> torch.device:
        return self.params()[-1].device

    @property
    def dtype(self) -> torch.dtype:
        return self.params()[-1].dtype

    def sample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = (),
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``sample_shape + (D,)`` values with the native propose kernel."""
        check_generator(generator, self.device)
        shape = torch.Size(sample_shape)
        x, _ = ops.propose(self.kind, self.params(), shape.numel(), draw_seed(generator), 0)
        return x.reshape(shape + self.event_shape)

    def _check_x(self, x: Tensor) -> Tensor:
        x = torch.as_tensor(x, device=self.device)
        if x.shape[-1:] != self.event_shape:
            raise ValueError(f"x must end in the event shape {tuple(self.event_shape)}, got {tuple(x.shape)}")
        return x

    def __repr__(self) -> str:
        names = ops.PROPOSAL_PARAMS[self.kind]
        shapes = ", ".join(f"{n}: {tuple(p.shape)}" for n, p in zip(names, self.params()))
        return f"rsfast.proposals.{type(self).__name__}({shapes}, dtype={self.dtype}, device={self.device})"


class Normal(Proposal):
    """Diagonal normal N(loc, diag(scale^2)) on R^D. loc, scale: [D], scale > 0."""

    kind = "normal"
    support = constraints.independent(constraints.real, 1)

    def __init__(self, loc: Any, scale: Any) -> None:
        self.loc, self.scale = _pair(loc, scale, ("loc", "scale"))
        if not bool((self.scale > 0).all()):
            raise ValueError("scale must be > 0")
        super().__init__(self.loc.shape[0])

    def log_prob(self, x: Tensor) -> Tensor:
        z = (self._check_x(x) - self.loc) / self.scale
        return -0.5 * (z * z).sum(-1) - torch.log(self.scale).sum() - 0.5 * self.loc.shape[0] * _LOG_2PI

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.scale**2


class Uniform(Proposal):
    """Uniform on the box [low, high) in R^D. low, high: [D], high > low."""

    kind = "uniform"

    def __init__(self, low: Any, high: Any) -> None:
        self.low, self.high = _pair(low, high, ("low", "high"))
        if not bool((self.high > self.low).all()):
            raise ValueError("high must be > low in every dimension")
        super().__init__(self.low.shape[0])

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check_x(x)
        inside = ((x >= self.low) & (x < self.high)).all(-1)
        const = -torch.log(self.high - self.low).sum()
        return torch.where(inside, const, torch.full_like(const, -math.inf))

    @property
    def mean(self) -> Tensor:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12


class MixtureNormal(Proposal):
    """Mixture of K diagonal normals on R^D: weights softmax(logits) [K], loc [K, D], scale [K, D] > 0."""

    kind = "mixture_normal"
    support = constraints.independent(constraints.real, 1)

    def __init__(self, logits: Any, loc: Any, scale: Any) -> None:
        self.loc = _as_param(loc, "loc")
        self.logits = _as_param(logits, "logits", like=self.loc)
        self.scale = _as_param(scale, "scale", like=self.loc)
        if (
            self.loc.dim() != 2
            or self.scale.shape != self.loc.shape
            or self.logits.shape != self.loc.shape[:1]
        ):
            raise ValueError(
                "MixtureNormal needs logits [K], loc [K, D], scale [K, D]; got "
                f"{tuple(self.logits.shape)}, {tuple(self.loc.shape)}, {tuple(self.scale.shape)}"
            )
        for name, t in zip(ops.PROPOSAL_PARAMS[self.kind], self.params()):
            _check_finite(t, name)
        self.logits, self.loc, self.scale = (t.contiguous() for t in self.params())
        if not bool((self.scale > 0).all()):
            raise ValueError("scale must be > 0")
        super().__init__(self.loc.shape[1])

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check_x(x)
        z = (x.unsqueeze(-2) - self.loc) / self.scale  # [..., K, D]
        comp = -0.5 * (z * z).sum(-1) - torch.log(self.scale).sum(-1) - 0.5 * self.loc.shape[1] * _LOG_2PI
        return torch.logsumexp(torch.log_softmax(self.logits, 0) + comp, -1)

    @property
    def mean(self) -> Tensor:
        return (torch.softmax(self.logits, 0).unsqueeze(-1) * self.loc).sum(0)
