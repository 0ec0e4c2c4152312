"""The sampling half shared by rsfast's distributions: the :class:`SlotDistribution` mixin whose ``sample``
draws from the slot kernel through one registered op.

The draw is the torch custom op ``rsfast::dist_draw(law, params, sample_shape, seed, who)``
(:func:`rsfast.ops.dist_draw`), whose seed
is a 0-d int64 *tensor* drawn by ``torch.randint`` from the caller's generator. Both steps are ops that
``torch.jit.trace`` records and ``torch.compile(fullgraph=True)`` captures, so a traced or compiled
``sample()`` draws fresh values on every call; the data-dependent checks (parameter values, exhausted
elements) run inside the op, where no tracer looks. In eager mode the op's body runs directly (no
dispatcher round trip).
"""

from __future__ import annotations

import inspect
from numbers import Number
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from . import ops
from ._checks import check_sample_shape
from ._random import check_generator, draw_seed_tensor

__all__ = ["SlotDistribution", "check_real_param", "float_values"]

NO_SAMPLE_DIMS = torch.Size()
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_real_param(value: object, name: str) -> None:
    """TypeError naming ``name`` unless ``value`` is a real number or a real tensor (complex values would
    otherwise be cast to real silently, and None or strings would fail deep in torch without the name)."""
    if isinstance(value, Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real (not complex or bool) tensor, got {value.dtype}")
    elif not isinstance(value, Number) or isinstance(value, complex):
        raise TypeError(f"{name} must be a Tensor or a real number, got {type(value).__name__}")


#: class -> (parameter names of the torch constructor it wraps, names whose default is None); empty for
#: a class with its own constructor.
_CTOR_PARAMS: dict[type, tuple[tuple[str, ...], frozenset[str]]] = {}


def _ctor_params(cls: type) -> tuple[tuple[str, ...], frozenset[str]]:
    if cls not in _CTOR_PARAMS:
        mro = cls.__mro__
        nxt = next(c for c in mro[mro.index(SlotDistribution) + 1 :] if "__init__" in c.__dict__)
        if nxt is Distribution:
            _CTOR_PARAMS[cls] = ((), frozenset())
        else:
            sig = inspect.signature(nxt.__init__)
            params = [p for p in sig.parameters.values() if p.name != "self"]
            optional = frozenset(p.name for p in params if p.default is None)
            _CTOR_PARAMS[cls] = (tuple(p.name for p in params), optional)
    return _CTOR_PARAMS[cls]


def float_values(values: list[Any]) -> list[Any]:
    """``values`` with integer tensors cast to the promoted dtype of the floating tensors among them (the
    default dtype when there is none): torch's log_prob, cdf and entropy need floating parameters."""
    dtype = None
    for v in values:
        if isinstance(v, Tensor) and v.is_floating_point():
            dtype = v.dtype if dtype is None else torch.promote_types(dtype, v.dtype)
    dtype = dtype or torch.get_default_dtype()
    return [v.to(dtype) if isinstance(v, Tensor) and not v.is_floating_point() else v for v in values]


def seed_tensor(generator: torch.Generator | None, device: torch.device) -> Tensor:
    """A 0-d int64 Philox seed in [0, 2**63 - 1) from ``generator`` (the default CPU generator when None),
    on the generator's device; the same value :func:`rsfast._random.draw_seed` would give."""
    check_generator(generator, device)
    return draw_seed_tensor(generator)


def result_dtype(params: list[Tensor]) -> torch.dtype:
    """The samples' dtype: the promoted dtype of the parameters (torch keeps each parameter's own
    dtype and promotes in arithmetic), the default dtype when none is floating."""
    dtype = params[0].dtype
    for p in params[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def compute_dtype(dtype: torch.dtype, who: str) -> torch.dtype:
    """The kernel's dtype for parameters of ``dtype``: float32/float64 as they are; 16-bit floats are
    computed in float32 (and the result rounded once)."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype in _HALF_DTYPES:
        return torch.float32
    raise TypeError(f"{who}: parameters must be floating point, got {dtype}")


def slot_draw(
    law: str, params: list[Tensor], sample_shape: torch.Size | tuple[int, ...], seed: Tensor, who: str
) -> Tensor:
    """Samples ``sample_shape + batch_shape`` of ``law`` from the slot kernel (float32/float64 params of
    one dtype and device); ValueError on invalid parameters, SamplingError if an element exhausted its
    tries (CPU)."""
    shape = check_sample_shape(sample_shape)
    return ops.dist_draw(law, [p.detach() for p in params], shape, seed, who)


class SlotDistribution(Distribution):
    """Mixin for distributions sampled by the slot kernel: ``sample(sample_shape, generator=None)``.

    Subclasses set ``law`` (a :data:`rsfast.ops.SLOT_LAWS` name) and ``param_names`` (attribute names of
    the parameters in the kernel's order). Placed before a torch distribution class in the bases, that
    class's constructor, validation and ``expand`` apply; its constructor is only preceded by a check
    that every parameter is a real number or tensor (TypeError naming it; ``None`` where the torch
    constructor's default is None) and a cast of integer tensors to the parameters' floating dtype, and
    torch's broadcasting error (or a validation error naming an
    inner distribution's parameter, as Beta's Dirichlet does) becomes a ValueError naming the
    parameters.
    """

    law: str = ""
    param_names: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names, optional = _ctor_params(type(self))
        if names:
            bound = [*zip(names, args), *kwargs.items()]
            for name, value in bound:
                if name != "validate_args" and not (value is None and name in optional):
                    check_real_param(value, name)
            values = float_values([v for _, v in bound])
            n = len(args)
            args, kwargs = tuple(values[:n]), {k: v for (k, _), v in zip(bound[n:], values[n:])}
            try:
                super().__init__(*args, **kwargs)
            except RuntimeError as e:  # torch.broadcast_tensors: shapes that do not broadcast together
                raise ValueError(
                    f"{type(self).__name__}: {', '.join(self.param_names)} do not broadcast together: {e}"
                ) from None
            except ValueError as e:  # torch's validation may name an inner distribution's parameter
                if any(n in str(e) for n in names):
                    raise
                who = f"{type(self).__name__}: invalid {', '.join(self.param_names)}"
                raise ValueError(f"{who}: {e}") from None
        else:
            super().__init__(*args, **kwargs)

    def expand(self, batch_shape: torch.Size | tuple[int, ...], _instance: Distribution | None = None):
        """The torch class's ``expand`` (torch asks a subclass with its own ``__init__`` to hand it the new
        instance)."""
        parent = super().expand
        if "_instance" not in inspect.signature(parent).parameters:  # torch 2.4's VonMises.expand
            return parent(batch_shape)
        if _instance is None:
            _instance = self.__new__(type(self))
        return parent(batch_shape, _instance)

    def _slot_params(self) -> list[Tensor]:
        return [getattr(self, n) for n in self.param_names]

    def _slot_sample(
        self, sample_shape: torch.Size | tuple[int, ...], generator: torch.Generator | None
    ) -> Tensor:
        params = self._slot_params()
        dtype = result_dtype(params)
        cdt = compute_dtype(dtype, type(self).__name__)
        seed = seed_tensor(generator, params[0].device)
        out = slot_draw(
            self.law, [p.to(cdt) for p in params], sample_shape, seed, f"{type(self).__name__}.sample"
        )
        return out.to(dtype)

    def sample(  # type: ignore[override]
        self,
        sample_shape: torch.Size | tuple[int, ...] = NO_SAMPLE_DIMS,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Exact samples of shape ``sample_shape + batch_shape`` in the parameters' dtype and device
        (16-bit parameters: computed in float32, rounded once). The seed comes from ``generator`` (the
        default CPU generator when None)."""
        with torch.no_grad():
            return self._slot_sample(sample_shape, generator)
