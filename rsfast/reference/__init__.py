"""Pure-torch twins of the native kernels: the test oracle.

One module per op (``propose``, ``accept_compact``, ``accept_compact_rows``, ``fused_sample``,
``slot_sample`` with ``slot_discrete``, ``select``, ``perturb``) on top of ``philox`` (Philox4x32-10 in
int64 tensor arithmetic and the kernels' word maps) and ``fastmath`` (the kernels' float32 math,
operation by operation). They implement the same streams as the kernels and agree with them to float
rounding (float32 slot laws and perturb bit for bit). Nothing here imports :mod:`rsfast.ops` or the
native module: the oracle shares no code with what it checks. The benchmark baselines are in
:mod:`rsfast.baselines`.

The modules are found at import time; each one's ``__all__`` becomes attributes of this package.
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


_load()
