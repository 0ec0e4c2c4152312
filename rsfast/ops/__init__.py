"""Torch custom ops of rsfast (namespace ``rsfast``), torch.compile-safe: one module per op family.

Each op has a schema, a CPU and a CUDA implementation (the native kernels), a fake kernel (so that
``torch.compile(fullgraph=True)`` traces through it) and a Python entry point that checks its
arguments' types and routes the call (:mod:`rsfast.ops._define`: the kernel directly on plain eager
tensors, the registered op otherwise). Outputs have fixed capacity plus a device-side count where a size
would depend on data. The pure-torch twins are in :mod:`rsfast.reference`.

Random numbers are pure functions of ``(seed, offset)``: ``seed`` in ``[0, 2**63)`` keys Philox4x32-10,
``offset`` in ``[0, 2**32)`` names the call; the engine gives every call of a sampling run its own offset.

The modules of this package are found at import time: a new op is a new module here whose ``__all__``
lists its public names (they become attributes of :mod:`rsfast.ops`).
"""

import importlib
import pkgutil

__all__: list = []


def _load() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in module.__all__:
            globals()[name] = getattr(module, name)
            __all__.append(name)


# propose first: fused_sample builds on its parameter checks (any order works; this one is explicit).
_load()
