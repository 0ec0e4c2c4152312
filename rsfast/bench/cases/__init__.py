"""The benchmark cases, one module per op. Each module has ``ORDER`` (its place in the report) and
``CASES`` (a list of :class:`rsfast.bench.common.BenchCase`); the modules are found at import time, so a new
case is a new module here (or an entry in its op's module)."""

from __future__ import annotations

import importlib
import pkgutil

from ..common import BenchCase

__all__ = ["CASES", "ALIASES", "resolve"]


def _load() -> dict[str, BenchCase]:
    modules = [
        importlib.import_module(f"{__name__}.{m.name}")
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_")
    ]
    out: dict[str, BenchCase] = {}
    for module in sorted(modules, key=lambda mod: mod.ORDER):
        for case in module.CASES:
            out[case.name] = case
    return out


#: All cases, in report order.
CASES: dict[str, BenchCase] = _load()

#: Former case names, kept for one release: old name -> name.
ALIASES = {"vonmises": "von_mises"}


def resolve(name: str) -> str:
    """The case name for ``name`` (a former name is mapped to the current one, with a DeprecationWarning)."""
    if name in ALIASES:
        import warnings

        warnings.warn(f"bench case {name!r} is now {ALIASES[name]!r}", DeprecationWarning, stacklevel=2)
        return ALIASES[name]
    return name
