"""TruncatedNormal: the normal law restricted to an interval, sampled by the slot kernel.

Its functions of the standardised bounds a = (low - loc) / scale, b = (high - loc) / scale are
computed in float64 from log Phi differences, so that they stay accurate far in either tail.
"""

from __future__ import annotations

import math
from numbers import Number

import torch
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all

from ._checks import check_sample_shape
from ._slot_dist import (
    NO_SAMPLE_DIMS,
    SlotDistribution,
    check_real_param,
    compute_dtype,
    float_values,
    result_dtype,
    seed_tensor,
    slot_draw,
)

__all__ = ["TruncatedNormal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x <= 0, accurate on both sides of -log 2."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_phi(x: Tensor) -> Tensor:
    """log of the standard normal density (-inf at infinite x)."""
    return -0.5 * x * x - _LOG_SQRT_2PI


def _tail_c(x: Tensor) -> Tensor:
    """log Phi(-x) + x^2 / 2 for finite x >= 0, without forming x^2 far out: the Mills-ratio series
    -log x - log sqrt(2 pi) + log(1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8) beyond 30 (error < 1e-12)."""
    near = torch.clamp(x, max=30.0)
    direct = torch.special.log_ndtr(-near) + 0.5 * near * near
    far = torch.clamp(x, min=30.0)
    u = 1.0 / (far * far)
    series = -torch.log(far) - _LOG_SQRT_2PI + torch.log1p(u * (-1 + u * (3 + u * (-15 + 105 * u))))
    return torch.where(x > 30.0, series, direct)


def _log_ndtr_diff_shifted(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(r, s) with log(Phi(b) - Phi(a)) = s - r^2 / 2 for a <= b (s = -inf where a == b), r a point of
    [a, b] up to sign (0 for an interval around 0, the end nearer 0 in a tail, the midpoint of a narrow
    interval): the density's log phi(z) - log Z is then -(z - r)(z + r) / 2 - log sqrt(2 pi) - s, with
    no cancellation of huge squares. Branches not taken and infinite ends get finite stand-ins, so that
    gradients are finite (no 0 * inf)."""
    flip = b <= 0  # mirror the left tail onto the right: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)  # now b > 0
    tail = a >= 0
    b_inf = torch.isinf(b)
    # Tail: Phi(-a) - Phi(-b) = exp(-a^2/2 + c(a)) (1 - exp(-(b - a)(b + a)/2 + c(b) - c(a))).
    a_t = torch.where(tail, a, torch.ones_like(a))
    b_t = torch.where(tail & ~b_inf, b, a_t + 1)
    c_a = _tail_c(a_t)
    step = -0.5 * (b_t - a_t) * (b_t + a_t) + _tail_c(b_t) - c_a
    step = torch.where(b_inf, torch.full_like(step, -math.inf), torch.clamp(step, max=0.0))
    tail_s = c_a + _log1mexp(step)
    # Around 0: log(Phi(b) - Phi(a)) as it is.
    a_c = torch.where(tail | torch.isinf(a), torch.zeros_like(a), a)
    b_c = torch.where(tail | b_inf, torch.ones_like(b), b)
    phi_a = torch.where(torch.isinf(a), torch.zeros_like(a), torch.special.ndtr(a_c))
    phi_b = torch.where(b_inf, torch.ones_like(b), torch.special.ndtr(b_c))
    central_s = torch.log(torch.where(tail, torch.ones_like(a), phi_b - phi_a))
    # An interval narrow against the scale (and against its distance from 0): the forms above round
    # to log 0 = -inf (log_prob would be +inf); there Z = (b - a) phi(midpoint), relative error below
    # ((b - a) midpoint)^2 / 24 < 1e-13.
    width = b - a
    narrow = torch.isfinite(width) & (width * torch.clamp(torch.abs(b), min=1.0) < 1e-6)
    a_n, b_n = torch.where(narrow, a, torch.zeros_like(a)), torch.where(narrow, b, torch.ones_like(b))
    narrow_s = torch.log(b_n - a_n) - _LOG_SQRT_2PI
    r = torch.where(narrow, 0.5 * (a_n + b_n), torch.where(tail, a_t, torch.zeros_like(a)))
    s = torch.where(narrow, narrow_s, torch.where(tail, tail_s, central_s))
    return r, s


def _log_ndtr_diff(a: Tensor, b: Tensor) -> Tensor:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails (-inf where a == b), finite gradients."""
    r, s = _log_ndtr_diff_shifted(a, b)
    return s - 0.5 * r * r


def _xphi_ratio(x: Tensor, log_z: Tensor) -> tuple[Tensor, Tensor]:
    """(phi(x) / Z, x phi(x) / Z), both 0 at infinite x (with finite gradients there)."""
    inf = torch.isinf(x)
    xs = torch.where(inf, torch.zeros_like(x), x)
    r = torch.where(inf, torch.zeros_like(x), torch.exp(_log_phi(xs) - log_z))
    return r, xs * r


class _TruncatedNormalRsample(torch.autograd.Function):
    """Samples with implicit reparameterisation: for z = (x - loc) / scale on [a, b] with CDF F,
    dz/da = phi(a) (1 - F(z)) / phi(z) and dz/db = phi(b) F(z) / phi(z); the chain rule through
    a = (low - loc) / scale, b = (high - loc) / scale, x = loc + scale z gives the four gradients."""

    @staticmethod
    def forward(ctx, loc, scale, low, high, sample_shape, seed):  # type: ignore[override]
        x = slot_draw(
            "truncated_normal", [loc, scale, low, high], sample_shape, seed, "TruncatedNormal.rsample"
        )
        ctx.save_for_backward(loc, scale, low, high, x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        loc, scale, low, high, x = ctx.saved_tensors
        loc64, scale64 = loc.double(), scale.double()
        a, b = (low.double() - loc64) / scale64, (high.double() - loc64) / scale64
        z = ((x.double() - loc64) / scale64).clamp(min=a, max=b)
        log_z = _log_ndtr_diff(a, b)
        log_f = _log_ndtr_diff(a.expand(z.shape), z) - log_z  # log F(z)
        log_s = _log_ndtr_diff(z, b.expand(z.shape)) - log_z  # log (1 - F(z))
        dz_da = torch.exp(_log_phi(a) - _log_phi(z) + log_s)
        dz_db = torch.exp(_log_phi(b) - _log_phi(z) + log_f)
        dz_da = torch.where(torch.isinf(a).expand(z.shape), torch.zeros_like(dz_da), dz_da)
        dz_db = torch.where(torch.isinf(b).expand(z.shape), torch.zeros_like(dz_db), dz_db)
        az = torch.where(torch.isinf(a), torch.zeros_like(a), a)
        bz = torch.where(torch.isinf(b), torch.zeros_like(b), b)
        g = grad.double()
        shape = loc.shape

        def red(t: Tensor) -> Tensor:
            return t.reshape(-1, *shape).sum(0).to(loc.dtype)

        d_loc = red(g * (1 - dz_da - dz_db))
        d_scale = red(g * (z - az * dz_da - bz * dz_db))
        return d_loc, d_scale, red(g * dz_da), red(g * dz_db), None, None


class TruncatedNormal(SlotDistribution):
    """The normal law N(loc, scale²) restricted to [low, high] (either end may be infinite).

    Sampling is exact for any interval, far tails included: a proposal per interval (normal,
    uniform, or Robert's translated exponential in tails; see
    ``csrc/ops/slot_sample/laws/truncated_normal.h``). ``rsample``
    gives implicit reparameterisation gradients with respect to all four parameters; ``cdf``,
    ``icdf``, ``entropy``, ``mean``, ``variance`` and ``mode`` are computed in float64, stable in the
    tails (``icdf`` works in the tail's survival function; far beyond 37 standard deviations the
    normal's float64 CDF underflows and the result is clamped into the interval).

    Args:
        loc, scale: mean and standard deviation of the parent normal (scale > 0, finite).
        low, high: the interval, low < high; ``-inf`` / ``inf`` allowed.
        validate_args: as torch's; when on (the default), invalid parameters raise ValueError at
            construction. Sampling checks them always.

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
    has_rsample = True

    def __init__(
        self,
        loc: Tensor | Number,
        scale: Tensor | Number,
        low: Tensor | Number,
        high: Tensor | Number,
        validate_args: bool | None = None,
    ) -> None:
        for name, value in zip(self.param_names, (loc, scale, low, high)):
            check_real_param(value, name)
        loc, scale, low, high = float_values([loc, scale, low, high])
        try:
            self.loc, self.scale, self.low, self.high = broadcast_all(loc, scale, low, high)
        except RuntimeError as e:
            raise ValueError(
                f"TruncatedNormal: loc, scale, low, high do not broadcast together: {e}"
            ) from None
        super().__init__(batch_shape=self.loc.shape, validate_args=validate_args)
        if self._validate_args:
            for name in ("loc", "scale"):
                v = getattr(self, name)
                if not torch._is_all_true(torch.isfinite(v)):
                    raise ValueError(f"TruncatedNormal: {name} must be finite, got {v}")
            for name in ("low", "high"):
                if torch._is_any_true(torch.isnan(getattr(self, name))):
                    raise ValueError(f"TruncatedNormal: {name} must not be NaN")
            if not torch._is_all_true(self.low < self.high):
                raise ValueError("TruncatedNormal: low must be < high")

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance: TruncatedNormal | None = None):
        new = self._get_checked_instance(TruncatedNormal, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in self.param_names:
            setattr(new, name, getattr(self, name).expand(batch_shape))
        super(TruncatedNormal, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    def rsample(
        self,
        sample_shape: torch.Size | tuple[int, ...] = NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples of shape ``sample_shape + batch_shape`` differentiable in all four parameters
        (implicit reparameterisation). The seed comes from ``generator`` (the default CPU generator
        when None)."""
        dtype = result_dtype(self._slot_params())
        cdt = compute_dtype(dtype, "TruncatedNormal")
        seed = seed_tensor(generator, self.loc.device)
        params = [p.expand(self.batch_shape).to(cdt) for p in (self.loc, self.scale, self.low, self.high)]
        return _TruncatedNormalRsample.apply(*params, tuple(check_sample_shape(sample_shape)), seed).to(dtype)

    # ------------------------------------------------------------ float64 helpers

    def _std_bounds(self) -> tuple[Tensor, Tensor]:
        loc, scale = self.loc.double(), self.scale.double()

        def std(end: Tensor) -> Tensor:  # infinite ends stay infinite, with zero gradients
            end = end.double()
            inf = torch.isinf(end)
            return torch.where(inf, end, (torch.where(inf, torch.zeros_like(end), end) - loc) / scale)

        return std(self.low), std(self.high)

    def _log_normaliser(self) -> Tensor:
        """log(Phi(b) - Phi(a)) in float64."""
        return _log_ndtr_diff(*self._std_bounds())

    def _value(self, value: Tensor | float) -> Tensor:
        if not isinstance(value, Tensor):
            value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        if self._validate_args:
            self._validate_sample(value)
        return value

    # ------------------------------------------------------------ the torch.distributions surface

    def log_prob(self, value: Tensor | float) -> Tensor:
        """In float64, written around a point r of the interval (:func:`_log_ndtr_diff_shifted`), so
        that it stays finite inside the support however far the interval is from loc in scales, and
        however narrow; -inf outside."""
        value = self._value(value)
        r, s = _log_ndtr_diff_shifted(*self._std_bounds())
        z = (value.double() - self.loc.double()) / self.scale.double()
        lp = -0.5 * (z - r) * (z + r) - _LOG_SQRT_2PI - torch.log(self.scale.double()) - s
        inside = (value >= self.low) & (value <= self.high)
        lp = torch.where(inside, lp, torch.full_like(lp, -math.inf))
        return lp.to(torch.result_type(value, self.loc))

    def cdf(self, value: Tensor | float) -> Tensor:
        value = self._value(value)
        a, b = self._std_bounds()
        z = (value.double() - self.loc.double()) / self.scale.double()
        a, b, z = torch.broadcast_tensors(a, b, z)
        zc = torch.minimum(torch.maximum(z, a), b)
        f = torch.exp(_log_ndtr_diff(a, zc) - _log_ndtr_diff(a, b))
        return f.clamp(0.0, 1.0).to(torch.result_type(value, self.loc))

    def icdf(self, value: Tensor | float) -> Tensor:
        q = (
            value
            if isinstance(value, Tensor)
            else torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        )
        a, b = self._std_bounds()
        q64 = q.double()
        a, b, q64 = torch.broadcast_tensors(a, b, q64)
        # Right-tail intervals are mirrored to the left tail, where Phi is accurate near 0:
        # z ~ TN(a, b) <=> -z ~ TN(-b, -a), and F(z) = q <=> F_mirror(-z) = 1 - q.
        flip = a > 0
        lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
        qq = torch.where(flip, 1 - q64, q64)
        # Phi(lo) + q (Phi(hi) - Phi(lo)) = (1 - q) Phi(lo) + q Phi(hi), from log Phi (torch's ndtr
        # underflows to 0 below -10; log_ndtr does not).
        log_p = torch.logaddexp(
            torch.log1p(-qq) + torch.special.log_ndtr(lo), torch.log(qq) + torch.special.log_ndtr(hi)
        )
        z = torch.special.ndtri(torch.exp(log_p))
        z = torch.where(flip, -z, z)
        z = torch.minimum(torch.maximum(z, a), b)
        x = self.loc.double() + self.scale.double() * z
        return x.to(torch.result_type(q, self.loc))

    def entropy(self) -> Tensor:
        a, b = self._std_bounds()
        log_z = _log_ndtr_diff(a, b)
        _, xa = _xphi_ratio(a, log_z)
        _, xb = _xphi_ratio(b, log_z)
        h = 0.5 * math.log(2 * math.pi * math.e) + torch.log(self.scale.double()) + log_z + 0.5 * (xa - xb)
        return h.to(self.loc.dtype)

    def _moments(self) -> tuple[Tensor, Tensor]:
        a, b = self._std_bounds()
        log_z = _log_ndtr_diff(a, b)
        ra, xa = _xphi_ratio(a, log_z)
        rb, xb = _xphi_ratio(b, log_z)
        m = ra - rb
        return m, 1 + xa - xb - m * m

    @property
    def mean(self) -> Tensor:
        m, _ = self._moments()
        return self.loc + self.scale * m.to(self.loc.dtype)

    @property
    def variance(self) -> Tensor:
        _, v = self._moments()
        return self.scale**2 * v.to(self.loc.dtype)

    @property
    def mode(self) -> Tensor:
        return torch.minimum(torch.maximum(self.loc, self.low), self.high)
