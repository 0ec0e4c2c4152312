"""``rsfast.finetune.freeze``: train only part of a model (a head, an adapter) on a frozen backbone."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["freeze"]


def freeze(model: nn.Module, except_: str | nn.Module | Iterable[str | nn.Module] = ()) -> list[nn.Parameter]:
    """Set ``requires_grad=False`` on every parameter of ``model`` except those named in ``except_``.

    Args:
        model: the model.
        except_: what stays trainable: parameter or submodule names as ``model.named_parameters()`` /
            ``named_modules()`` spell them (``"head"`` keeps ``head.weight`` and ``head.bias``; a name
            matches itself and everything under it, ``"head"`` does not match ``"header.w"``), or
            submodules of ``model`` given as objects; one item or an iterable of them.

    Returns:
        The trainable parameters, in ``model.parameters()`` order: hand them to the optimiser.

    Only ``requires_grad`` changes: modules keep their train/eval mode (a frozen BatchNorm in train mode
    still updates its running statistics; call ``.eval()`` on it if that is not wanted).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or an item of ``except_`` is neither a str nor a module.
        ValueError: a name matches no parameter of ``model``, or a module is not part of ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    items = [except_] if isinstance(except_, (str, nn.Module)) else except_
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            f"except_ must be a name, a module or an iterable of them, got {type(except_).__name__}"
        ) from None
    params = dict(model.named_parameters())
    owned = {id(p) for p in params.values()}
    keep: set[int] = set()
    for i, item in enumerate(items):
        if isinstance(item, str):
            hits = [p for n, p in params.items() if n == item or n.startswith(item + ".")]
            if not hits:
                raise ValueError(
                    f"except_[{i}]: {item!r} names no parameter or submodule with parameters of the model"
                )
        elif isinstance(item, nn.Module):
            hits = list(item.parameters())
            if any(id(p) not in owned for p in hits):
                raise ValueError(f"except_[{i}]: the {type(item).__name__} module is not part of the model")
        else:
            raise TypeError(f"except_[{i}] must be a str or an nn.Module, got {type(item).__name__}")
        keep.update(id(p) for p in hits)
    for p in params.values():
        p.requires_grad_(id(p) in keep)
    return [p for p in params.values() if p.requires_grad]
