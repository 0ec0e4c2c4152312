"""The sampling half shared by rsfast's distributions: one registered op that draws from the slot kernel,
and the :class:`SlotDistribution` mixin whose ``sample`` calls it.

The draw is a torch custom op, ``rsfast::dist_draw(law, params, sample_shape, seed, who)``, whose seed
is a 0-d int64 *tensor* drawn by ``torch.randint`` from the caller's generator. Both steps are ops that
``torch.jit.trace`` records and ``torch.compile(fullgraph=True)`` captures, so a traced or compiled
``sample()`` draws fresh values on every call; the data-dependent checks (parameter values, exhausted
elements) run inside the op, where no tracer looks. In eager mode the op's body runs directly (no
dispatcher round trip).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import ops
from ._random import _SEED_HIGH, check_generator
from .sampler import SamplingError

__all__ = ["SlotDistribution"]

NO_SAMPLE_DIMS = torch.Size()
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _dist_draw_impl(
    law: str, params: list[Tensor], sample_shape: list[int], seed: Tensor, who: str
) -> Tensor:
    out, exhausted = ops.slot_sample(law, list(params), list(sample_shape), int(seed), 0)
    # On CUDA reading the count would synchronise: exhausted elements are NaN there (their
    # probability is below 1e-2000 for valid parameters).
    if out.device.type == "cpu" and int(exhausted[0]) > 0:
        raise SamplingError(f"{who}: {int(exhausted[0])} elements exhausted their tries")
    return out


dist_draw_op = torch.library.custom_op(
    "rsfast::dist_draw", _dist_draw_impl, mutates_args=(), device_types=("cpu", "cuda")
)


@dist_draw_op.register_fake
def _dist_draw_fake(
    law: str, params: list[Tensor], sample_shape: list[int], seed: Tensor, who: str
) -> Tensor:
    batch = torch.broadcast_shapes(*(p.shape for p in params))
    return params[0].new_empty((*sample_shape, *batch))


def _eager() -> bool:
    return not (
        torch.compiler.is_compiling() or torch.jit.is_tracing() or _get_current_dispatch_mode() is not None
    )


def seed_tensor(generator: torch.Generator | None, device: torch.device) -> Tensor:
    """A 0-d int64 Philox seed in [0, 2**63 - 1) from ``generator`` (the default CPU generator when None),
    on the generator's device; the same value :func:`rsfast._random.draw_seed` would give."""
    check_generator(generator, device)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, _SEED_HIGH, (), generator=generator, device=gen_device)


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
    shape = [int(s) for s in torch.Size(sample_shape)]
    params = [p.detach() for p in params]
    if _eager():
        return _dist_draw_impl(law, params, shape, seed, who)
    return dist_draw_op(law, params, shape, seed, who)


class SlotDistribution(Distribution):
    """Mixin for distributions sampled by the slot kernel: ``sample(sample_shape, generator=None)``.

    Subclasses set ``law`` (a :data:`rsfast.ops.SLOT_LAWS` name) and ``param_names`` (attribute names of
    the parameters in the kernel's order). It defines no ``__init__`` or ``expand``: placed before a
    torch distribution class in the bases, that class's constructor, validation and ``expand`` apply.
    """

    law: str = ""
    param_names: tuple[str, ...] = ()

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
