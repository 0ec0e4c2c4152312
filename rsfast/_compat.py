"""What keeps rsfast working across its supported torch range (see :data:`TORCH_TESTED`).

``torch.library.custom_op`` infers an op's schema from the Python annotations, and older torch
cannot read ours: torch 2.4 does not evaluate string annotations (``from __future__ import
annotations``) and torch < 2.7 does not know ``list[Tensor]`` (only ``typing.List``). :func:`custom_op`
writes the schema itself from the evaluated annotations and hands it to torch, so the same ops
register on every supported version. On a torch that infers schemas, the test suite checks that ours
is the one torch would infer.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["TORCH_TESTED", "torch_version", "torch_support", "custom_op", "schema_of", "increment_version"]

#: Oldest and newest torch that CI installs the same wheel into and runs the test suite against.
TORCH_TESTED = ("2.4.1", "2.14.1")


def _parse(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``: the numeric release; local and pre-release tags dropped."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if m is None:
        raise ValueError(f"cannot read torch version {version!r}")
    return tuple(int(g or 0) for g in m.groups())


def torch_version() -> tuple[int, ...]:
    """The running torch's release as a tuple, e.g. ``(2, 13, 0)``."""
    return _parse(torch.__version__)


def torch_support() -> dict[str, Any]:
    """``torch_tested_range`` and ``torch_in_tested_range`` for ``rsfast info``."""
    low, high = (_parse(v) for v in TORCH_TESTED)
    v = torch_version()
    # A patch release newer than the newest tested one of the same minor is counted in range.
    inside = low <= v and v[:2] <= high[:2]
    return {
        "torch_tested_range": f"{TORCH_TESTED[0]} .. {TORCH_TESTED[1]}",
        "torch_in_tested_range": inside,
    }


def _is_optional(tp: Any) -> tuple[bool, Any]:
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if (origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType)) and type(
        None
    ) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return True, rest[0]
    return False, tp


def _arg_type(tp: Any, where: str) -> str:
    optional, base = _is_optional(tp)
    suffix = "?" if optional else ""
    if base is Tensor:
        return "Tensor" + suffix
    if base is int:
        return "SymInt" + suffix
    if base is float:
        return "float" + suffix
    if base is bool:
        return "bool" + suffix
    if base is str:
        return "str" + suffix
    origin = typing.get_origin(base)
    if origin in (list, Sequence, typing.List):  # noqa: UP006
        (elem,) = typing.get_args(base)
        return _arg_type(elem, where) + "[]" + suffix
    raise TypeError(f"{where}: no schema type for annotation {tp!r}")


def _return_type(tp: Any, where: str) -> str:
    if tp is None or tp is type(None):
        return "()"
    if typing.get_origin(tp) is tuple:
        return "(" + ", ".join(_arg_type(a, where) for a in typing.get_args(tp)) + ")"
    return _arg_type(tp, where)


def _default(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    raise TypeError(f"no schema default for {value!r}")


def schema_of(fn: Callable[..., Any], mutates_args: Iterable[str]) -> str:
    """The schema string ``(args) -> returns`` of ``fn`` as ``torch.library.infer_schema`` writes it."""
    hints = typing.get_type_hints(fn)
    mutated = list(mutates_args)
    where = getattr(fn, "__qualname__", repr(fn))
    parts = []
    for idx, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
        text = _arg_type(hints[name], f"{where}({name})")
        if name in mutated:
            tag = f"(a{idx}!)"  # torch numbers an alias set by the parameter's position
            # The alias annotation sits on the element type: "Tensor(a0!)", "Tensor(a1!)[]", "Tensor(a2!)?".
            text = "Tensor" + tag + text[len("Tensor") :]
        part = f"{text} {name}"
        if param.default is not inspect.Parameter.empty:
            part += "=" + _default(param.default)
        parts.append(part)
    return f"({', '.join(parts)}) -> {_return_type(hints.get('return'), where)}"


def custom_op(
    name: str,
    fn: Callable[..., Any],
    *,
    mutates_args: Sequence[str] | str = (),
    device_types: Sequence[str] | str | None = None,
) -> Any:
    """``torch.library.custom_op(name, fn, ...)`` with the schema written by :func:`schema_of`."""
    mutated = () if mutates_args == "unknown" else tuple(mutates_args)
    op = torch.library.custom_op(
        name, fn, mutates_args=mutates_args, device_types=device_types, schema=schema_of(fn, mutated)
    )
    op._rsfast_impl, op._rsfast_mutates = fn, mutated  # for the schema test
    return op


def increment_version(tensors: list[Tensor]) -> None:
    """Bump the autograd version counter of every tensor (they were written in place behind autograd's
    back). ``torch.autograd.graph.increment_version`` takes a list only since torch 2.5."""
    if torch_version() >= (2, 5):
        try:
            torch.autograd.graph.increment_version(tensors)
            return
        except (RuntimeError, TypeError):  # a build without the list form: one tensor at a time
            pass
    for t in tensors:
        torch.autograd.graph.increment_version(t)
