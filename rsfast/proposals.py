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
from ._checks import check_sample_shape
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
        shape = torch.Size(check_sample_shape(sample_shape))  # TypeError/ValueError naming it
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


class MixtureNormal(Proposal, torch.nn.Module):
    """Mixture of K diagonal normals on R^D, trainable: weights softmax(logits) [K], loc [K, D], scale [K, D].

    Also a :class:`torch.nn.Module` whose parameters are ``logits`` [K], ``loc`` [K, D] and
    ``log_scale`` [K, D] (``scale`` is ``exp(log_scale)``), so it can be fine-tuned with any torch
    optimiser (see :class:`rsfast.finetune.ProposalTuner`) and moved with ``.to(device, dtype)``.

    - ``sample`` and ``rsfast.sample`` run the fused native propose kernel on the detached
      parameters (:meth:`params`): no graph, the same bits as :func:`rsfast.ops.propose`.
    - ``log_prob`` (also ``forward``) is differentiable in all three parameters.
    - ``rsample`` is reparameterised *given the components*: the component of each draw is a discrete
      (non-differentiable) choice, x = loc[c] + scale[c] * eps, so gradients reach ``loc`` and
      ``log_scale`` but not ``logits``. Losses that need gradients in the weights should use
      ``log_prob`` of samples (forward KL, chi-square), or :meth:`rsample_components`, which draws
      from every component so that an expectation under q is sum_k softmax(logits)_k E_k[...],
      differentiable in the weights too.

    The constructor takes ``scale`` (not its log), so that it reads like the other proposals.
    """

    kind = "mixture_normal"
    support = constraints.independent(constraints.real, 1)
    has_rsample = True

    def __init__(self, logits: Any, loc: Any, scale: Any) -> None:
        loc_t = _as_param(loc, "loc")
        logits_t = _as_param(logits, "logits", like=loc_t)
        scale_t = _as_param(scale, "scale", like=loc_t)
        if loc_t.dim() != 2 or scale_t.shape != loc_t.shape or logits_t.shape != loc_t.shape[:1]:
            raise ValueError(
                "MixtureNormal needs logits [K], loc [K, D], scale [K, D]; got "
                f"{tuple(logits_t.shape)}, {tuple(loc_t.shape)}, {tuple(scale_t.shape)}"
            )
        for name, t in zip(ops.PROPOSAL_PARAMS[self.kind], (logits_t, loc_t, scale_t)):
            _check_finite(t, name)
        if not bool((scale_t > 0).all()):
            raise ValueError("scale must be > 0")
        # Distribution.__init__ ends in super().__init__(), i.e. nn.Module.__init__: parameters after it.
        super().__init__(loc_t.shape[1])
        self.logits = torch.nn.Parameter(logits_t.detach().clone().contiguous())
        self.loc = torch.nn.Parameter(loc_t.detach().clone().contiguous())
        self.log_scale = torch.nn.Parameter(torch.log(scale_t.detach()).contiguous())

    @property
    def scale(self) -> Tensor:
        """exp(log_scale), [K, D] (differentiable)."""
        return torch.exp(self.log_scale)

    @property
    def num_components(self) -> int:
        return self.loc.shape[0]

    def params(self) -> list[Tensor]:
        """Detached (logits, loc, scale), in the order :func:`rsfast.ops.propose` takes them."""
        with torch.no_grad():
            return [self.logits.detach(), self.loc.detach(), torch.exp(self.log_scale.detach())]

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check_x(x)
        scale = self.scale
        z = (x.unsqueeze(-2) - self.loc) / scale  # [..., K, D]
        comp = -0.5 * (z * z).sum(-1) - self.log_scale.sum(-1) - 0.5 * self.loc.shape[1] * _LOG_2PI
        return torch.logsumexp(torch.log_softmax(self.logits, 0) + comp, -1)

    def forward(self, x: Tensor) -> Tensor:
        """``log_prob(x)``: x [..., D] -> [...]."""
        return self.log_prob(x)

    def rsample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = (),
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``sample_shape + (D,)`` draws, differentiable in ``loc`` and ``log_scale`` given the
        components (drawn with torch's RNG from ``generator``; the component choice carries no
        gradient to ``logits``)."""
        check_generator(generator, self.device)
        shape = torch.Size(check_sample_shape(sample_shape))
        m = shape.numel()
        probs = torch.softmax(self.logits.detach(), 0)
        comp = (
            torch.multinomial(probs, m, replacement=True, generator=generator)
            if m
            else probs.new_empty((0,), dtype=torch.long)
        )
        eps = torch.randn((m, self.loc.shape[1]), generator=generator, dtype=self.dtype, device=self.device)
        x = self.loc[comp] + self.scale[comp] * eps
        return x.reshape(shape + self.event_shape)

    def rsample_components(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """[K, n, D]: n reparameterised draws from each component, x[k] = loc[k] + scale[k] * eps.

        For a function f, ``(softmax(logits)[:, None] * f(x)).sum(0).mean()`` with f(x) [K, n] is an
        unbiased estimate of E_q[f] differentiable in all parameters (the component choice is
        summed over exactly instead of sampled).
        """
        check_generator(generator, self.device)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        eps = torch.randn(
            (self.loc.shape[0], n, self.loc.shape[1]),
            generator=generator,
            dtype=self.dtype,
            device=self.device,
        )
        return self.loc.unsqueeze(1) + self.scale.unsqueeze(1) * eps

    @property
    def mean(self) -> Tensor:
        return (torch.softmax(self.logits, 0).unsqueeze(-1) * self.loc).sum(0)

    @property
    def variance(self) -> Tensor:
        w = torch.softmax(self.logits, 0).unsqueeze(-1)
        mean = (w * self.loc).sum(0)
        return (w * (self.scale**2 + self.loc**2)).sum(0) - mean**2

    @classmethod
    def combine(cls, parts: list[tuple[float, Proposal]]) -> MixtureNormal:
        """A new MixtureNormal sum_j a_j q_j from (weight a_j > 0, q_j) pairs, q_j a Normal or MixtureNormal
        (weights normalised to sum 1). The parameters are copies (detached)."""
        if not parts:
            raise ValueError("parts must not be empty")
        logits, locs, scales = [], [], []
        total = sum(float(a) for a, _ in parts)
        for a, q in parts:
            if not float(a) > 0:
                raise ValueError(f"mixture weights must be > 0, got {a}")
            if isinstance(q, MixtureNormal):
                lg, lc, sc = q.params()
                lg = torch.log_softmax(lg, 0)
            elif isinstance(q, Normal):
                lc, sc = q.loc.unsqueeze(0), q.scale.unsqueeze(0)
                lg = torch.zeros(1, dtype=lc.dtype, device=lc.device)
            else:
                raise TypeError(f"combine takes Normal or MixtureNormal parts, got {type(q).__name__}")
            logits.append(lg + math.log(float(a) / total))
            locs.append(lc)
            scales.append(sc)
        return cls(torch.cat(logits), torch.cat(locs), torch.cat(scales))
