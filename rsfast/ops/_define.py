"""The one place that registers rsfast's custom ops (:func:`define`, with a schema written for every
supported torch) and the one rule that routes a call of an op: run the kernel directly on plain eager
tensors, else call the registered torch custom op (under ``torch.compile``, fake tensors,
functionalisation or any tensor subclass), so that eager calls skip the dispatcher's overhead and traced
calls see the op."""

from collections.abc import Iterable
from typing import Any, Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from .._compat import custom_op

try:
    from torch.utils._python_dispatch import _get_current_dispatch_mode
except ImportError:  # pragma: no cover - older torch: always go through the dispatcher

    def _get_current_dispatch_mode() -> object:
        return True


__all__ = ["define", "direct", "call"]


def define(
    name: str,
    fn: Callable[..., Any],
    *,
    mutates_args: Union[Sequence[str], str] = (),
    device_types: Union[Sequence[str], str, None] = ("cpu", "cuda"),
) -> Any:
    """``torch.library.custom_op(name, fn, ...)`` with an explicit schema written from ``fn``'s
    annotations (:func:`rsfast._compat.custom_op`): torch 2.4 - 2.6 cannot infer every schema ours need
    (string annotations, ``list[Tensor]``); on newer torch it is the schema torch would infer."""
    return custom_op(name, fn, mutates_args=mutates_args, device_types=device_types)


def direct(tensors: Iterable[Optional[Tensor]], *, parameters: bool = False) -> bool:
    """True when the kernel may run directly: eager mode, no dispatch mode active, and plain tensors
    only (``None`` entries ignored; ``parameters=True`` also admits ``nn.Parameter``, whose data is a
    plain tensor)."""
    if torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    plain = (Tensor, torch.nn.Parameter) if parameters else (Tensor,)
    return all(type(t) in plain for t in tensors if t is not None)


def call(
    impl: Callable[..., Any], op: Callable[..., Any], tensors: Iterable[Optional[Tensor]], *args: Any
) -> Any:
    """``impl(*args)`` when :func:`direct` allows it for ``tensors``, else ``op(*args)``."""
    return impl(*args) if direct(tensors) else op(*args)
