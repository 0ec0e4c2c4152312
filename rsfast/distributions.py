"""Drop-in exact distributions whose samplers are fused ("slot") rejection kernels.

``Gamma``, ``Beta``, ``VonMises``, ``Poisson`` and ``Binomial`` *are* torch's classes
(``isinstance(rsfast.distributions.Gamma(1., 1.), torch.distributions.Gamma)`` holds): construction,
``validate_args``, ``log_prob``, ``cdf``, ``entropy``, ``mode``, ``enumerate_support``, ``expand``,
``kl_divergence`` (torch's table and any pairs users register) and pickling are torch's. rsfast replaces
``sample`` (and ``rsample`` for Gamma and Beta) with ``sample(sample_shape=(), generator=None)``: every
output element runs the law's rejection loop on its own Philox stream, in one kernel (CPU or CUDA), so
the result is exact and a pure function of (parameters, seed); the seed is drawn from ``generator`` (the
default CPU generator when None). ``TruncatedNormal`` has no torch counterpart and is rsfast's own.

Parameters are checked like torch's: at construction when ``validate_args`` is on (torch's default
outside ``python -O``), not at all when it is off. Sampling always checks them (inside the op; a
ValueError names the parameter), so invalid parameters, also ones mutated in place, never give
garbage samples.

``sample`` and ``rsample`` are traceable: ``torch.jit.trace`` and ``torch.compile(fullgraph=True)``
record the seed draw and the kernel as two ops, so every call of the traced function draws afresh.
Parameters in float16/bfloat16 are sampled in float32 and rounded once to their dtype.

Adding a law: derive from :class:`SlotDistribution` (before a torch class, if there is one), set
``law`` (a name registered with :func:`rsfast.ops.register_slot_law`) and ``param_names`` (kernel
order); see "How to add a law" in ``csrc/ops/slot_sample/core.h``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import check_sample_shape
from ._slot_dist import NO_SAMPLE_DIMS, SlotDistribution, compute_dtype, result_dtype, seed_tensor, slot_draw
from ._truncated_normal import TruncatedNormal

__all__ = ["SlotDistribution", "TruncatedNormal", "VonMises", "Gamma", "Beta", "Poisson", "Binomial"]


def _as_value(value: Tensor | float, like: Tensor) -> Tensor:
    """``value`` as a tensor of ``like``'s dtype and device when it is a Python number (as torch's
    ``log_prob`` methods accept)."""
    if isinstance(value, Tensor):
        return value
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def _sum_to(g: Tensor, shape: torch.Size) -> Tensor:
    """Sum the leading sample dimensions of ``g`` away, back to the batch ``shape``."""
    return g.reshape(-1, *shape).sum(0)


class VonMises(SlotDistribution, torch.distributions.VonMises):
    """The von Mises law on the circle: density exp(k cos(x - loc)) / (2 pi I0(k)), samples in
    [-pi, pi). A :class:`torch.distributions.VonMises`.

    Sampling: Best & Fisher (1979), rewritten without cancellation so that it is stable for any
    concentration (1e-3 to 1e4 and far beyond; see ``slot_sample/laws/von_mises.h``). ``mean`` is ``loc``,
    ``variance`` the circular variance 1 - I1(k)/I0(k); ``log_prob`` is written without
    cancellation for large k; ``entropy`` (which torch lacks) is
    log(2 pi I0(k)) - k I1(k)/I0(k).

    Args:
        loc: mean direction (radians, finite; any real, reduced modulo 2 pi).
        concentration: k > 0, finite.
    """

    law = "von_mises"
    param_names = ("loc", "concentration")

    def log_prob(self, value: Tensor | float) -> Tensor:
        value = _as_value(value, self.loc)
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        # k (cos d - 1) = -2 k sin^2(d/2): no cancellation for large k; log I0(k) = log i0e(k) + k.
        s = torch.sin(0.5 * (value - self.loc))
        return -2 * k * s * s - math.log(2 * math.pi) - torch.log(torch.special.i0e(k))

    @property
    def variance(self) -> Tensor:  # type: ignore[override]
        k = self.concentration
        return 1 - torch.special.i1e(k) / torch.special.i0e(k)

    def entropy(self) -> Tensor:
        k = self.concentration
        i0e = torch.special.i0e(k)
        return math.log(2 * math.pi) + torch.log(i0e) + k * (1 - torch.special.i1e(k) / i0e)


class _GammaRsample(torch.autograd.Function):
    """Gamma(alpha, rate) samples from the slot kernel with implicit reparameterisation gradients:
    x = z / rate with z ~ Gamma(alpha, 1), dz/dalpha = ``torch._standard_gamma_grad(alpha, z)``."""

    @staticmethod
    def forward(ctx, alpha: Tensor, rate: Tensor, sample_shape: tuple[int, ...], seed: Tensor) -> Tensor:  # type: ignore[override]
        x = slot_draw("gamma", [alpha, rate], sample_shape, seed, "Gamma.rsample")
        ctx.save_for_backward(alpha, rate, x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        alpha, rate, x = ctx.saved_tensors
        z = (x * rate).contiguous()
        dz = torch._standard_gamma_grad(alpha.expand(x.shape).contiguous(), z)
        g_alpha = _sum_to(grad * dz / rate, alpha.shape)
        g_rate = _sum_to(-grad * x / rate, rate.shape)
        return g_alpha, g_rate, None, None


class Gamma(SlotDistribution, torch.distributions.Gamma):
    """The gamma law with shape ``concentration`` and inverse scale ``rate``: density
    rate^a x^(a-1) e^(-rate x) / Gamma(a) on x > 0. A :class:`torch.distributions.Gamma`.

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

    def rsample(  # type: ignore[override]
        self,
        sample_shape: torch.Size | tuple[int, ...] = NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples of shape ``sample_shape + batch_shape`` differentiable in the parameters (implicit
        reparameterisation). The seed comes from ``generator`` (the default CPU generator when None)."""
        dtype = result_dtype([self.concentration, self.rate])
        cdt = compute_dtype(dtype, "Gamma")
        seed = seed_tensor(generator, self.concentration.device)
        alpha = self.concentration.expand(self.batch_shape).to(cdt)
        rate = self.rate.expand(self.batch_shape).to(cdt)
        return _GammaRsample.apply(alpha, rate, tuple(check_sample_shape(sample_shape)), seed).to(dtype)

    def cdf(self, value: Tensor | float) -> Tensor:
        value = _as_value(value, self.rate)
        if self._validate_args:
            self._validate_sample(value)
        return torch.special.gammainc(self.concentration, self.rate * value)


class _BetaRsample(torch.autograd.Function):
    """Beta samples from the slot kernel with implicit reparameterisation gradients: the Beta is the
    first coordinate of a Dirichlet(c1, c0), whose gradient torch gives by ``_dirichlet_grad``."""

    @staticmethod
    def forward(ctx, c1: Tensor, c0: Tensor, sample_shape: tuple[int, ...], seed: Tensor) -> Tensor:  # type: ignore[override]
        x = slot_draw("beta", [c1, c0], sample_shape, seed, "Beta.rsample")
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
        return _sum_to(gc[..., 0], c1.shape), _sum_to(gc[..., 1], c0.shape), None, None


class Beta(SlotDistribution, torch.distributions.Beta):
    """The beta law on (0, 1): density x^(c1-1) (1-x)^(c0-1) / B(c1, c0). A
    :class:`torch.distributions.Beta`.

    Sampling: X / (X + Y) of two Marsaglia-Tsang gammas in one rejection loop (log space when a
    concentration is below 1); samples clamped into [smallest normal, 1 - eps/2] like torch's.
    ``rsample`` gives implicit reparameterisation gradients.

    Args:
        concentration1: c1 > 0 (the exponent of x), finite.
        concentration0: c0 > 0 (the exponent of 1 - x), finite.
    """

    law = "beta"
    param_names = ("concentration1", "concentration0")

    def log_prob(self, value: Tensor | float) -> Tensor:
        return super().log_prob(_as_value(value, self.concentration1))

    def rsample(  # type: ignore[override]
        self,
        sample_shape: torch.Size | tuple[int, ...] = NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples of shape ``sample_shape + batch_shape`` differentiable in the concentrations. The
        seed comes from ``generator`` (the default CPU generator when None)."""
        dtype = result_dtype([self.concentration1, self.concentration0])
        cdt = compute_dtype(dtype, "Beta")
        seed = seed_tensor(generator, self.concentration1.device)
        c1 = self.concentration1.expand(self.batch_shape).to(cdt)
        c0 = self.concentration0.expand(self.batch_shape).to(cdt)
        return _BetaRsample.apply(c1, c0, tuple(check_sample_shape(sample_shape)), seed).to(dtype)


class Poisson(SlotDistribution, torch.distributions.Poisson):
    """Poisson(rate): counts k = 0, 1, 2, ... with P(k) = rate^k e^-rate / k!. A
    :class:`torch.distributions.Poisson` (an exponential family).

    Sampling is exact: Hörmann's transformed rejection with squeeze (PTRS) for rate >= 10,
    inversion by sequential search below, all in float64 arithmetic (see ``slot_sample/laws/discrete.h``).
    Samples are counts stored in the rate's floating dtype, like torch (float32 rounds counts
    above 2**24). Exact while the counts fit the float64 integer grid (rate below ~2**52).

    Args:
        rate: the mean, >= 0 and finite (rate 0 gives 0). A tensor gives a batch of laws.

    Example::

        >>> d = Poisson(torch.tensor([0.5, 3.0, 100.0]))
        >>> d.sample((4,), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3])
    """

    law = "poisson"
    param_names = ("rate",)

    def log_prob(self, value: Tensor | float) -> Tensor:
        return super().log_prob(_as_value(value, self.rate))

    def entropy(self) -> Tensor:
        """-sum_k P(k) log P(k), which torch lacks: the exact sum over k < 200 for rate <= 50, the
        asymptotic series 0.5 log(2 pi e rate) - 1/(12 rate) - 1/(24 rate^2) - 19/(360 rate^3) above
        (its next term is below 1e-7 there)."""
        rate = self.rate
        r64 = rate.double()
        k = torch.arange(200, dtype=torch.float64, device=rate.device).reshape(-1, *([1] * rate.dim()))
        small = r64.clamp(max=50.0)
        log_p = torch.xlogy(k, small) - small - torch.lgamma(k + 1)
        p_log_p = torch.where(torch.isinf(log_p), torch.zeros_like(log_p), log_p.exp() * log_p)
        exact = -p_log_p.sum(0)
        big = r64.clamp(min=50.0)
        series = (
            0.5 * torch.log(2 * math.pi * math.e * big)
            - 1 / (12 * big)
            - 1 / (24 * big**2)
            - 19 / (360 * big**3)
        )
        return torch.where(r64 <= 50.0, exact, series).to(rate.dtype)


class Binomial(SlotDistribution, torch.distributions.Binomial):
    """Binomial(total_count, probs): successes in ``total_count`` independent trials of probability
    ``probs`` (or ``logits``, log-odds). A :class:`torch.distributions.Binomial`: given logits, it
    keeps them, so ``log_prob`` and its gradients stay finite at extreme logits.

    Sampling is exact: Hörmann's BTRS for n min(p, 1 - p) >= 10, inversion by sequential search
    below, with n - Binomial(n, 1 - p) for p > 1/2; float64 arithmetic (see ``slot_sample/laws/discrete.h``).
    Samples are counts in the parameters' floating dtype.

    Args:
        total_count: number of trials, a non-negative integer; stored in the dtype of ``probs`` /
            ``logits`` like torch (float32 holds integers up to 2**24 exactly).
        probs: success probability in [0, 1] (0 and 1 give 0 and total_count exactly).
        logits: log-odds instead of ``probs`` (exactly one of the two).

    Example::

        >>> d = Binomial(100, torch.tensor([0.1, 0.5, 0.97]))
        >>> d.sample((2,), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """

    law = "binomial"
    param_names = ("total_count", "probs")

    def _slot_params(self) -> list[Tensor]:
        # Read probs without caching it: the lazy property would store it on the instance.
        probs = self.__dict__.get("probs")
        if probs is None:
            probs = torch.sigmoid(self.logits)
        return [self.total_count, probs]

    def log_prob(self, value: Tensor | float) -> Tensor:
        """torch's log_prob (finite and smooth in the logits), except that given ``probs`` of exactly 0
        or 1, impossible counts get -inf (torch clamps p to [eps, 1 - eps] and returns a finite value)."""
        value = _as_value(value, self.total_count)
        lp = super().log_prob(value)
        probs = self.__dict__.get("probs")
        if probs is None:
            return lp
        impossible = ((probs == 0) & (value > 0)) | ((probs == 1) & (value < self.total_count))
        return torch.where(impossible, torch.full_like(lp, -math.inf), lp)

    def entropy(self) -> Tensor:
        """The sum over the support k = 0 .. total_count, with 0 log 0 = 0 for impossible counts. Unlike
        torch, rows may have different total_counts: counts above a row's total_count are left out.
        Costs (max total_count + 1) x batch log-probabilities."""
        n_max = int(self.total_count.max())
        k = torch.arange(n_max + 1, dtype=self.total_count.dtype, device=self.total_count.device)
        k = k.view((-1,) + (1,) * len(self.batch_shape))
        inside = k <= self.total_count
        log_prob = self.log_prob(torch.minimum(k, self.total_count).expand((-1,) + tuple(self.batch_shape)))
        keep = inside & ~torch.isneginf(log_prob)
        p_log_p = torch.where(keep, log_prob.exp() * log_prob, torch.zeros_like(log_prob))
        return -p_log_p.sum(0)
