"""The demos of ``rsfast demo NAME``, one module per demo with its fixtures.

A demo module has ``DESCRIPTION`` (one line), ``ORDER`` (its place in the list) and
``run(json_output: bool) -> int`` (exit status); ``RSFAST_DEMO_QUICK=1`` makes every demo short. The
modules of this package are found at run time: a new demo is a new module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["names", "load"]


def load(name: str) -> ModuleType:
    """The module of demo ``name`` (ValueError if there is none)."""
    if name not in names():
        raise ValueError(f"no demo named {name!r}; demos: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")


def names() -> list[str]:
    """The demo names, in their ``ORDER``."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return sorted(found, key=lambda n: (importlib.import_module(f"{__name__}.{n}").ORDER, n))
