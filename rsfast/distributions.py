"""Drop-in exact distributions whose samplers are fused ("slot") rejection kernels.

Each class is a :class:`torch.distributions.Distribution` (``batch_shape``, ``support``,
``arg_constraints``, ``log_prob``, ``mean``, ``variance``, ``expand``) whose
``sample(sample_shape=(), generator=None)`` runs :func:`rsfast.ops.slot_sample`: every output
element runs the law's rejection loop on its own Philox stream, in one kernel (CPU or CUDA), so the
result is exact and a pure function of (parameters, seed); the seed is drawn from ``generator``
(the default CPU generator when None) with :func:`rsfast._random.draw_seed`.

Parameters are checked at construction and again at every ``sample`` (they can be mutated in
place): non-positive or non-finite values where the law forbids them, NaN, an empty interval raise
``ValueError`` naming the parameter, whatever ``validate_args`` says.

Adding a law: derive from :class:`SlotDistribution`, set ``law`` (a name registered with
:func:`rsfast.ops.register_slot_law`) and ``param_names`` (kernel order), implement the
torch.distributions surface (see "How to add a law" in ``csrc/include/rsfast/slot.h``).
"""

from __future__ import annotations

import math
from numbers import Number

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from . import ops
from ._random import check_generator, draw_seed
from .sampler import SamplingError

__all__ = ["SlotDistribution", "TruncatedNormal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_NO_SAMPLE_DIMS = torch.Size()


class SlotDistribution(Distribution):
    """Base class of the distributions sampled by the slot kernel.

    Subclasses set ``law`` (the :data:`rsfast.ops.SLOT_LAWS` name) and ``param_names`` (attribute names
    of the parameters in the kernel's order) and call ``_init_params`` from ``__init__``.
    """

    law: str = ""
    param_names: tuple[str, ...] = ()

    def _init_params(self, values: tuple, validate_args: bool | None) -> None:
        tensors = broadcast_all(*values)
        if tensors[0].dtype not in (torch.float32, torch.float64):
            tensors = tuple(t.to(torch.get_default_dtype()) for t in tensors)
        for name, t in zip(self.param_names, tensors):
            setattr(self, name, t)
        ops.SLOT_LAWS[self.law].check(list(tensors))
        super().__init__(batch_shape=tensors[0].shape, validate_args=validate_args)

    def _params(self) -> list[Tensor]:
        return [getattr(self, n) for n in self.param_names]

    def _draw(self, sample_shape: torch.Size | tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        params = self._params()
        check_generator(generator, params[0].device)
        seed = draw_seed(generator)
        with torch.no_grad():
            out, exhausted = ops.slot_sample(self.law, params, list(torch.Size(sample_shape)), seed, 0)
        # On CUDA reading the count would synchronise: exhausted elements are NaN there (their
        # probability is below 1e-2000 for valid parameters, see slot.h).
        if out.device.type == "cpu" and int(exhausted[0]) > 0:
            raise SamplingError(
                f"{type(self).__name__}.sample: {int(exhausted[0])} elements exhausted their tries"
            )
        return out

    def sample(  # type: ignore[override]
        self,
        sample_shape: torch.Size | tuple[int, ...] = _NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Exact samples of shape ``sample_shape + batch_shape`` in the parameters' dtype and device."""
        return self._draw(sample_shape, generator)

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance: SlotDistribution | None = None):
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        for name in self.param_names:
            setattr(new, name, getattr(self, name).expand(batch_shape))
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x <= 0, accurate on both sides of -log 2."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


class TruncatedNormal(SlotDistribution):
    """The normal law N(loc, scale²) restricted to [low, high] (either end may be infinite).

    Sampling is exact for any interval, far tails included: a proposal per interval (normal,
    uniform, or Robert's translated exponential in tails; see ``laws_truncnorm.h``).

    Args:
        loc, scale: mean and standard deviation of the parent normal (scale > 0, finite).
        low, high: the interval, low < high; ``-inf`` / ``inf`` allowed.

    Example::

        >>> d = TruncatedNormal(0.0, 1.0, 3.0, float("inf"))
        >>> x = d.sample((1000,), generator=torch.Generator().manual_seed(0))
        >>> bool((x >= 3).all())
        True
    """

    law = "truncated_normal"
    param_names = ("loc", "scale", "low", "high")
    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "low": constraints.dependent(is_discrete=False, event_dim=0),
        "high": constraints.dependent(is_discrete=False, event_dim=0),
    }
    has_rsample = False

    def __init__(
        self,
        loc: Tensor | Number,
        scale: Tensor | Number,
        low: Tensor | Number,
        high: Tensor | Number,
        validate_args: bool | None = None,
    ) -> None:
        self._init_params((loc, scale, low, high), validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    def _std_bounds(self) -> tuple[Tensor, Tensor]:
        return (self.low - self.loc) / self.scale, (self.high - self.loc) / self.scale

    def _log_normaliser(self) -> Tensor:
        """log(Phi(b) - Phi(a)) in float64, stable in both tails."""
        a, b = (t.double() for t in self._std_bounds())
        flip = b <= 0
        a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)  # now b > 0
        lpa, lpb = torch.special.log_ndtr(-a), torch.special.log_ndtr(-b)
        tail = lpa + _log1mexp(lpb - lpa)
        central = torch.log(torch.special.ndtr(b) - torch.special.ndtr(a))
        return torch.where(a >= 0, tail, central)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        lp = -0.5 * z * z - _LOG_SQRT_2PI - torch.log(self.scale) - self._log_normaliser().to(z.dtype)
        inside = (value >= self.low) & (value <= self.high)
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def _moments(self) -> tuple[Tensor, Tensor]:
        a, b = (t.double() for t in self._std_bounds())
        log_z = self._log_normaliser()

        def ratio(x: Tensor) -> Tensor:  # phi(x) / Z, 0 at infinite ends
            r = torch.exp(-0.5 * x * x - _LOG_SQRT_2PI - log_z)
            return torch.where(torch.isinf(x), torch.zeros_like(r), r)

        def xratio(x: Tensor) -> Tensor:  # x phi(x) / Z
            return torch.where(torch.isinf(x), torch.zeros_like(x), x * ratio(x))

        ra, rb = ratio(a), ratio(b)
        m = ra - rb
        var = 1 + xratio(a) - xratio(b) - m * m
        return m, var

    @property
    def mean(self) -> Tensor:
        m, _ = self._moments()
        return self.loc + self.scale * m.to(self.loc.dtype)

    @property
    def variance(self) -> Tensor:
        _, v = self._moments()
        return self.scale**2 * v.to(self.loc.dtype)
