"""Twin of ``rsfast::perturb_``: the same noise layout and float32 Box-Muller, in torch."""

from __future__ import annotations

import torch
from torch import Tensor

from .fastmath import box_muller_f32
from .philox import (
    philox_block,
)

__all__ = ["PERTURB_TAG", "perturb_noise", "perturb_"]

#: Counter word 3 of every perturb draw (kPerturbTag in csrc/ops/perturb/core.h): "pert".
PERTURB_TAG = 0x70657274


def perturb_noise(seed: int, index: int, numel: int, device: torch.device | str = "cpu") -> Tensor:
    """The float32 noise z [numel] that :func:`rsfast.ops.perturb_` adds (times scale) to the flat
    elements of the tensor at position ``index`` of its list (see the layout in perturb/core.h):
    element j takes normal (j // 16) % 4 of stream 16 (j // 64) + j % 16, Philox counter
    (index, stream, PERTURB_TAG). Bit-identical to the kernels."""
    tiles = (numel + 63) // 64
    streams = torch.arange(16 * tiles, dtype=torch.int64, device=device)
    w = philox_block(seed, streams, PERTURB_TAG, index)
    z0, z1 = box_muller_f32(w[:, 0], w[:, 1])
    z2, z3 = box_muller_f32(w[:, 2], w[:, 3])
    z = torch.stack([z0, z1, z2, z3], -1)  # [16 tiles, 4]: stream s = 16 t + l, normal k
    return z.view(tiles, 16, 4).permute(0, 2, 1).reshape(-1)[:numel]


def perturb_(tensors: list[Tensor] | Tensor, seed: int, scale: float) -> None:
    """Twin of :func:`rsfast.ops.perturb_`: the same noise and arithmetic in torch ops (float32 and the
    16-bit types bit-identical; float64 to a rounding of the product), with full-size temporaries.
    Contiguity is not required here (the noise follows the row-major element index)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    with torch.no_grad():
        for i, t in enumerate(tensors):
            if t.numel() == 0:
                continue
            z = perturb_noise(seed, i, t.numel(), t.device).view(t.shape)
            if t.dtype == torch.float64:
                t.copy_(t + z.double() * float(scale))
            elif t.dtype == torch.float32:
                t.copy_(t + z * float(scale))  # two rounded ops (torch's add with alpha may fuse)
            else:
                t.copy_((t.float() + z * float(scale)).to(t.dtype))
