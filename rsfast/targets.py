"""Built-in targets: log densities that :func:`rsfast.sample` knows in closed form.

A target is a callable ``target(x: [m, D]) -> [m]`` (its normalised log density, plain
differentiable torch), so it works as the ``log_target`` of :func:`rsfast.sample` with any
proposal. Together with a built-in proposal of :mod:`rsfast.proposals` (same dtype, device and
dimension) :func:`rsfast.sample` recognises it and runs the fused kernel
:func:`rsfast.ops.fused_sample`, which proposes, evaluates and accepts in one launch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._checks import check_sample_shape

__all__ = ["MixtureNormal"]

_LOG_2PI = math.log(2 * math.pi)


def _as_param(value: Any, name: str, like: Tensor | None = None) -> Tensor:
    """A float32/float64 tensor from tensor or array-like input, with ``like``'s dtype and device when
    given; TypeError or ValueError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a tensor or array-like of numbers, got bool")
    if isinstance(value, Tensor) and like is not None:
        if value.device != like.device:
            raise ValueError(f"{name} is on {value.device} but loc is on {like.device}: use one device")
        if value.is_floating_point() and value.dtype != like.dtype:
            raise ValueError(f"{name} has dtype {value.dtype} but loc has {like.dtype}: use one dtype")
    try:
        if like is not None and not isinstance(value, Tensor):
            t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        else:
            t = torch.as_tensor(value)
    except Exception as e:  # noqa: BLE001 - re-raised with the argument's name
        raise TypeError(f"{name} must be a tensor or array-like of numbers: {e}") from None
    if t.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise TypeError(f"{name} must be real-valued, got {t.dtype}")
    if like is not None:
        return t.to(dtype=like.dtype)
    if not t.is_floating_point():
        return t.to(torch.get_default_dtype())
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {t.dtype}")
    return t


class MixtureNormal:
    """Mixture of K diagonal normals on R^D, as a target: ``target(x)`` is its normalised log density.

    Args:
        logits: [K], mixture weights ``softmax(logits)`` (any finite values).
        loc: [K, D], component means.
        scale: [K, D], component standard deviations, > 0.

    Tensors (or array-likes) of one dtype (float32 or float64; integers become the default dtype)
    on one device, all finite. Wrong types raise TypeError, wrong shapes or values ValueError, naming
    the argument.

    Attributes: ``logits``, ``loc``, ``scale`` (contiguous), ``dim`` (D), ``num_components`` (K),
    ``dtype``, ``device``, ``weights`` [K], ``mean`` [D], ``variance`` [D].

    Example::

        target = rsfast.targets.MixtureNormal(torch.zeros(2), torch.tensor([[2.0, 2.0], [-2.0, -2.0]]),
                                              torch.full((2, 2), 0.5))
        res = rsfast.sample(target, rsfast.proposals.Normal(torch.zeros(2), torch.full((2,), 3.0)),
                            100_000, log_M="auto")   # the fused kernel: one launch
    """

    def __init__(self, logits: Any, loc: Any, scale: Any) -> None:
        self.loc = _as_param(loc, "loc")
        self.logits = _as_param(logits, "logits", like=self.loc)
        self.scale = _as_param(scale, "scale", like=self.loc)
        if self.loc.dim() != 2 or self.loc.shape[0] < 1 or self.loc.shape[1] < 1:
            raise ValueError(f"loc must be [K, D] with K, D >= 1, got shape {tuple(self.loc.shape)}")
        if self.scale.shape != self.loc.shape:
            raise ValueError(
                f"scale must have loc's shape {tuple(self.loc.shape)} (diagonal normals), got "
                f"{tuple(self.scale.shape)}"
            )
        if self.logits.shape != self.loc.shape[:1]:
            raise ValueError(
                f"logits must be [K] = [{self.loc.shape[0]}] (one per row of loc), "
                f"got {tuple(self.logits.shape)}"
            )
        for name in ("logits", "loc", "scale"):
            if not bool(torch.isfinite(getattr(self, name)).all()):
                raise ValueError(f"{name} must be finite")
        if not bool((self.scale > 0).all()):
            raise ValueError("scale must be > 0")
        self.logits, self.loc, self.scale = (t.contiguous() for t in (self.logits, self.loc, self.scale))

    # ------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """D, the dimension of x."""
        return int(self.loc.shape[1])

    @property
    def num_components(self) -> int:
        """K."""
        return int(self.loc.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.loc.dtype

    @property
    def device(self) -> torch.device:
        return self.loc.device

    @property
    def weights(self) -> Tensor:
        """softmax(logits) [K]."""
        return torch.softmax(self.logits, 0)

    @property
    def mean(self) -> Tensor:
        """sum_k w_k loc_k [D]."""
        return (self.weights.unsqueeze(-1) * self.loc).sum(0)

    @property
    def variance(self) -> Tensor:
        """Per-coordinate variance [D]: sum_k w_k (scale_k^2 + loc_k^2) - mean^2."""
        w = self.weights.unsqueeze(-1)
        return (w * (self.scale**2 + self.loc**2)).sum(0) - self.mean**2

    # ------------------------------------------------------------ density and sampling

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalised log density at x [..., D] -> [...], differentiable in x and the parameters."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a Tensor, got {type(x).__name__}")
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"x must end in D = {self.dim}, got shape {tuple(x.shape)}")
        z = (x.unsqueeze(-2) - self.loc) / self.scale  # [..., K, D]
        comp = -0.5 * (z * z).sum(-1) - torch.log(self.scale).sum(-1) - 0.5 * self.dim * _LOG_2PI
        return torch.logsumexp(torch.log_softmax(self.logits, 0) + comp, -1)

    def __call__(self, x: Tensor) -> Tensor:
        """``log_prob(x)``: x [m, D] -> [m], the log_target of :func:`rsfast.sample`."""
        return self.log_prob(x)

    def sample(
        self, sample_shape: torch.Size | tuple[int, ...] = (), generator: torch.Generator | None = None
    ) -> Tensor:
        """Exact draws ``sample_shape + (D,)`` with torch's RNG (component by ``torch.multinomial``, then a
        normal): the reference law the tests compare rsfast's samplers with."""
        shape = torch.Size(check_sample_shape(sample_shape))
        m = shape.numel()
        comp = torch.multinomial(self.weights, m, replacement=True, generator=generator) if m else None
        z = torch.randn((m, self.dim), generator=generator, dtype=self.dtype, device=self.device)
        x = self.loc[comp] + self.scale[comp] * z if m else z
        return x.reshape(shape + (self.dim,))

    def __repr__(self) -> str:
        return (
            f"rsfast.targets.MixtureNormal(K={self.num_components}, D={self.dim}, dtype={self.dtype}, "
            f"device={self.device})"
        )
