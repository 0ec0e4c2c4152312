"""Seeds for the Philox kernels, drawn from torch generators."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: Seeds are drawn uniformly from [0, SEED_HIGH).
SEED_HIGH = 2**63 - 1


def check_generator(generator: torch.Generator | None, device: torch.device, name: str = "generator") -> None:
    """TypeError/ValueError naming ``name`` unless generator is None or a torch.Generator usable on device."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise ValueError(f"{name} is a {generator.device.type} generator but the proposal is on {device}")


def draw_seed_tensor(generator: torch.Generator | None) -> torch.Tensor:
    """A 0-d int64 Philox seed in [0, 2**63 - 1) from ``generator`` (the default CPU generator when
    None), on the generator's device, without reading it back: ``torch.jit.trace`` and
    ``torch.compile`` record the draw, so traced or compiled code draws a fresh seed per call."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, SEED_HIGH, (), generator=generator, device=device)


def draw_seed(generator: torch.Generator | None) -> int:
    """A Philox seed in [0, 2**63 - 1) from ``generator`` (the default CPU generator when None).

    Advances the generator like any torch sampling call, so that a seeded generator gives the
    same seed every time. A CUDA generator costs one host synchronisation here, at setup.
    """
    return int(draw_seed_tensor(generator).item())


@contextlib.contextmanager
def seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global generator of ``device`` for the block and restore it after, so that
    torch.distributions objects (whose sample() takes no generator) draw deterministically."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            torch.cuda.default_generators[index].manual_seed(seed)
        else:
            torch.default_generator.manual_seed(seed)
        yield
