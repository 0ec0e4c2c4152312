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

__all__ = ["SlotDistribution", "TruncatedNormal", "VonMises", "Gamma", "Beta"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_NO_SAMPLE_DIMS = torch.Size()


def _slot_draw(
    law: str, params: list[Tensor], sample_shape: torch.Size | tuple[int, ...], seed: int, who: str
) -> Tensor:
    """One slot-kernel launch; SamplingError naming ``who`` if an element exhausted its tries. On CUDA
    reading the count would synchronise: exhausted elements are NaN there (their probability is below
    1e-2000 for valid parameters, see slot.h)."""
    out, exhausted = ops.slot_sample(law, params, ops._check_sample_shape(sample_shape), seed, 0)
    if out.device.type == "cpu" and int(exhausted[0]) > 0:
        raise SamplingError(f"{who}: {int(exhausted[0])} elements exhausted their tries")
    return out


def _check_real_param(value: object, name: str) -> None:
    """TypeError naming ``name`` unless ``value`` is a real number or a real tensor (complex values would
    otherwise be cast to real silently, and junk would fail deep in torch without the name)."""
    if isinstance(value, Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real, got {value.dtype}")
    elif not isinstance(value, Number) or isinstance(value, complex):
        raise TypeError(f"{name} must be a Tensor or a real number, got {type(value).__name__}")


class SlotDistribution(Distribution):
    """Base class of the distributions sampled by the slot kernel.

    Subclasses set ``law`` (the :data:`rsfast.ops.SLOT_LAWS` name) and ``param_names`` (attribute names
    of the parameters in the kernel's order) and call ``_init_params`` from ``__init__``.
    """

    law: str = ""
    param_names: tuple[str, ...] = ()

    def _init_params(self, values: tuple, validate_args: bool | None) -> None:
        for name, v in zip(self.param_names, values):
            _check_real_param(v, name)
        try:
            tensors = broadcast_all(*values)
        except RuntimeError as e:
            raise ValueError(f"{', '.join(self.param_names)} do not broadcast together: {e}") from None
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
        if dtype not in (torch.float32, torch.float64):
            dtype = torch.get_default_dtype()
        tensors = tuple(t.to(dtype) for t in tensors)
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
            return _slot_draw(self.law, params, sample_shape, seed, f"{type(self).__name__}.sample")

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
        # An interval narrow against scale: Phi(b) - Phi(a) rounds to 0 (log_prob would be +inf); there
        # (b - a) * phi(midpoint) is exact to O((b - a)^2).
        mid = 0.5 * (a + b)
        narrow = torch.log(b - a) - 0.5 * mid * mid - _LOG_SQRT_2PI
        central = torch.where((b - a) < 1e-6, narrow, central)
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


class VonMises(SlotDistribution):
    """The von Mises law on the circle: density exp(k cos(x - loc)) / (2 pi I0(k)), samples in
    [-pi, pi).

    Sampling: Best & Fisher (1979), rewritten without cancellation so that it is stable for any
    concentration (1e-3 to 1e4 and far beyond; see ``laws_vonmises.h``). Same surface as
    :class:`torch.distributions.VonMises` (``mean`` is ``loc``, ``variance`` the circular variance
    1 - I1(k)/I0(k)).

    Args:
        loc: mean direction (radians, finite; any real, reduced modulo 2 pi).
        concentration: k > 0, finite.
    """

    law = "von_mises"
    param_names = ("loc", "concentration")
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(
        self, loc: Tensor | Number, concentration: Tensor | Number, validate_args: bool | None = None
    ) -> None:
        self._init_params((loc, concentration), validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        # k (cos d - 1) = -2 k sin^2(d/2): no cancellation for large k; log I0(k) = log i0e(k) + k.
        s = torch.sin(0.5 * (value - self.loc))
        return -2 * k * s * s - math.log(2 * math.pi) - torch.log(torch.special.i0e(k))

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return 1 - torch.special.i1e(k) / torch.special.i0e(k)


class _StandardGammaRsample(torch.autograd.Function):
    """Standard gamma samples (rate 1) from the slot kernel, with implicit reparameterisation
    gradients d z / d alpha = torch._standard_gamma_grad(alpha, z)."""

    @staticmethod
    def forward(ctx, alpha: Tensor, sample_shape: tuple[int, ...], seed: int) -> Tensor:  # type: ignore[override]
        z = _slot_draw("gamma", [alpha, torch.ones_like(alpha)], sample_shape, seed, "Gamma.rsample")
        ctx.save_for_backward(alpha, z)
        return z

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        alpha, z = ctx.saved_tensors
        a = alpha.expand(z.shape)
        g = grad * torch._standard_gamma_grad(a.contiguous(), z)
        # Sum over the sample dimensions back to alpha's (batch) shape.
        return g.reshape(-1, *alpha.shape).sum(0), None, None


class Gamma(SlotDistribution):
    """The gamma law with shape ``concentration`` and inverse scale ``rate``: density
    rate^a x^(a-1) e^(-rate x) / Gamma(a) on x > 0.

    Sampling: Marsaglia & Tsang (2000), with Gamma(a) = Gamma(a + 1) U^(1/a) for a < 1 taken in log
    space. Samples are clamped below at the dtype's smallest normal number, as torch does.
    ``rsample`` gives implicit reparameterisation gradients (``torch._standard_gamma_grad``) with
    respect to ``concentration`` and ``rate``.

    Args:
        concentration: a > 0, finite.
        rate: > 0, finite.
    """

    law = "gamma"
    param_names = ("concentration", "rate")
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(
        self, concentration: Tensor | Number, rate: Tensor | Number, validate_args: bool | None = None
    ) -> None:
        self._init_params((concentration, rate), validate_args)

    def rsample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = _NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples of shape ``sample_shape + batch_shape`` differentiable in the parameters (implicit
        reparameterisation). The seed comes from ``generator``
        (the default CPU generator when None)."""
        ops.SLOT_LAWS[self.law].check([self.concentration.detach(), self.rate.detach()])
        check_generator(generator, self.concentration.device)
        seed = draw_seed(generator)
        alpha = self.concentration.expand(self.batch_shape)
        z = _StandardGammaRsample.apply(alpha, tuple(ops._check_sample_shape(sample_shape)), seed)
        x = z / self.rate
        return x.clamp(min=torch.finfo(x.dtype).tiny)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, r = self.concentration, self.rate
        return torch.xlogy(a, r) + torch.xlogy(a - 1, value) - r * value - torch.lgamma(a)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)


class _BetaRsample(torch.autograd.Function):
    """Beta samples from the slot kernel with implicit reparameterisation gradients: the Beta is the
    first coordinate of a Dirichlet(c1, c0), whose gradient torch gives by ``_dirichlet_grad``."""

    @staticmethod
    def forward(ctx, c1: Tensor, c0: Tensor, sample_shape: tuple[int, ...], seed: int) -> Tensor:  # type: ignore[override]
        x = _slot_draw("beta", [c1, c0], sample_shape, seed, "Beta.rsample")
        ctx.save_for_backward(c1, c0, x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        c1, c0, x = ctx.saved_tensors
        conc = torch.stack([c1.expand(x.shape), c0.expand(x.shape)], -1)
        x2 = torch.stack([x, 1 - x], -1)
        total = conc.sum(-1, keepdim=True).expand_as(conc)
        dx = torch._dirichlet_grad(x2.contiguous(), conc.contiguous(), total.contiguous())
        g2 = torch.stack([grad, torch.zeros_like(grad)], -1)
        gc = dx * (g2 - (x2 * g2).sum(-1, keepdim=True))
        g1 = gc[..., 0].reshape(-1, *c1.shape).sum(0)
        g0 = gc[..., 1].reshape(-1, *c0.shape).sum(0)
        return g1, g0, None, None


class Beta(SlotDistribution):
    """The beta law on (0, 1): density x^(c1-1) (1-x)^(c0-1) / B(c1, c0).

    Sampling: X / (X + Y) of two Marsaglia-Tsang gammas in one rejection loop (log space when a
    concentration is below 1); samples clamped into [smallest normal, 1 - eps/2] like torch's.
    ``rsample`` gives implicit reparameterisation gradients.

    Args:
        concentration1: c1 > 0 (the exponent of x), finite.
        concentration0: c0 > 0 (the exponent of 1 - x), finite.
    """

    law = "beta"
    param_names = ("concentration1", "concentration0")
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(
        self,
        concentration1: Tensor | Number,
        concentration0: Tensor | Number,
        validate_args: bool | None = None,
    ) -> None:
        self._init_params((concentration1, concentration0), validate_args)

    def rsample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = _NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples of shape ``sample_shape + batch_shape`` differentiable in the concentrations. The
        seed comes from ``generator`` (the default CPU generator when None)."""
        ops.SLOT_LAWS[self.law].check([self.concentration1.detach(), self.concentration0.detach()])
        check_generator(generator, self.concentration1.device)
        seed = draw_seed(generator)
        c1 = self.concentration1.expand(self.batch_shape)
        c0 = self.concentration0.expand(self.batch_shape)
        return _BetaRsample.apply(c1, c0, tuple(ops._check_sample_shape(sample_shape)), seed)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        lbeta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
        return torch.xlogy(a - 1, value) + torch.xlogy(b - 1, -value + 1) - lbeta

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self) -> Tensor:
        t = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (t.pow(2) * (t + 1))


# ---------------------------------------------------------------- Poisson, Binomial (issue 3)


class Poisson(SlotDistribution):
    """Poisson(rate): counts k = 0, 1, 2, ... with P(k) = rate^k e^-rate / k!.

    Sampling is exact: Hörmann's transformed rejection with squeeze (PTRS) for rate >= 10,
    inversion by sequential search below, all in float64 arithmetic for both dtypes (see
    ``laws_discrete.h``). Samples are counts stored in the rate's floating dtype, like
    ``torch.distributions.Poisson`` (float32 rounds counts above 2**24). Exact while the counts fit
    the float64 integer grid (rate below ~2**52).

    Args:
        rate: the mean, >= 0 and finite (rate 0 gives 0). A tensor gives a batch of laws.

    Example::

        >>> d = Poisson(torch.tensor([0.5, 3.0, 100.0]))
        >>> d.sample((4,), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3])
    """

    law = "poisson"
    param_names = ("rate",)
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer
    has_rsample = False

    def __init__(self, rate: Tensor | Number, validate_args: bool | None = None) -> None:
        self._init_params((rate,), validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return value.xlogy(rate) - rate - torch.lgamma(value + 1)


class Binomial(SlotDistribution):
    """Binomial(total_count, probs): successes in ``total_count`` independent trials of probability
    ``probs`` (or ``logits``, log-odds, like ``torch.distributions.Binomial``).

    Sampling is exact: Hörmann's BTRS for n min(p, 1 - p) >= 10, inversion by sequential search
    below, with n - Binomial(n, 1 - p) for p > 1/2; float64 arithmetic for both dtypes (see
    ``laws_discrete.h``). Samples are counts in the parameters' floating dtype.

    Args:
        total_count: number of trials, a non-negative integer (int or float tensor); exact in the
            dtype of ``probs`` (float32 holds integers up to 2**24).
        probs: success probability in [0, 1] (0 and 1 give 0 and total_count exactly).
        logits: log-odds instead of ``probs`` (exactly one of the two); ``probs = sigmoid(logits)``.

    Example::

        >>> d = Binomial(100, torch.tensor([0.1, 0.5, 0.97]))
        >>> d.sample((2,), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """

    law = "binomial"
    param_names = ("total_count", "probs")
    arg_constraints = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
    }
    has_rsample = False

    def __init__(
        self,
        total_count: Tensor | Number = 1,
        probs: Tensor | Number | None = None,
        logits: Tensor | Number | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Binomial: give exactly one of probs or logits")
        _check_real_param(total_count, "total_count")
        for name, v in (("probs", probs), ("logits", logits)):
            if v is not None:
                _check_real_param(v, name)
        if logits is not None:
            logits_t = torch.as_tensor(logits)
            if not logits_t.is_floating_point():
                logits_t = logits_t.to(torch.get_default_dtype())
            if logits_t.numel() and bool(torch.isnan(logits_t).any()):
                raise ValueError("logits must not be NaN")
            probs = torch.sigmoid(logits_t)
        probs_t = torch.as_tensor(probs)
        if not probs_t.is_floating_point():
            probs_t = probs_t.to(torch.get_default_dtype())
        count = torch.as_tensor(total_count, device=probs_t.device)
        count_f = count.to(probs_t.dtype)
        if not count.is_floating_point() and count.numel() and bool((count_f.to(count.dtype) != count).any()):
            raise ValueError(
                f"total_count is not exactly representable in {probs_t.dtype}; use float64 probs"
            )
        self._init_params((count_f, probs_t), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self.total_count)

    @property
    def logits(self) -> Tensor:
        return torch.log(self.probs) - torch.log1p(-self.probs)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        n, p, value = broadcast_all(self.total_count, self.probs, value)
        log_choose = torch.lgamma(n + 1) - torch.lgamma(value + 1) - torch.lgamma(n - value + 1)
        return log_choose + torch.xlogy(value, p) + torch.special.xlog1py(n - value, -p)


__all__ += ["Poisson", "Binomial"]
