"""How the decoding loop drives a causal LM: with its key/value cache when it has one, by recomputing the
whole prefix when it has none.

A :class:`Stream` is a batch of rows being decoded by one model. It owns the model's cache, a key mask
over every cached position (1 = part of the row's text, 0 = left padding or a draft that verification
threw away) and each row's next position id. Positions that stop counting stay in the cache, masked:
nothing is ever copied back or realigned, so rows of one batch may advance by different numbers of
tokens (speculative decoding) at no cost but the masked slots.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from .args import logits_of

__all__ = ["ModelCall", "Stream", "context_length", "left_pad"]

_warned_no_cache: set[str] = set()


def context_length(model: nn.Module) -> int | None:
    """The most positions ``model`` takes (``max_len``, or the config's ``n_positions`` /
    ``max_position_embeddings``), None when it does not say."""
    for obj, names in (
        (model, ("max_len",)),
        (getattr(model, "config", None), ("n_positions", "max_position_embeddings")),
    ):
        for name in names:
            value = getattr(obj, name, None) if obj is not None else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


class ModelCall:
    """What ``model.forward`` accepts: a cache (``past_key_values`` + ``use_cache``), masks and positions
    (``attention_mask`` + ``position_ids``), and a way to skip the unused logits (``logits_to_keep``)."""

    def __init__(self, model: nn.Module, name: str = "model") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.name = name
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):  # a forward without a readable signature: call it plainly
            params = {}
        # transformers >= 5.2x names the cache argument ``cache``; earlier versions ``past_key_values``.
        self.cache_kw = next((k for k in ("past_key_values", "cache") if k in params), None)
        self.cached = self.cache_kw is not None and "use_cache" in params
        self.masked = "attention_mask" in params and "position_ids" in params
        self.keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self.context = context_length(model)
        try:
            self.device = next(model.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")

    def warn_no_cache(self) -> None:
        """Warn once per model class that every step recomputes the whole prefix."""
        key = type(self.model).__qualname__
        if key not in _warned_no_cache:
            _warned_no_cache.add(key)
            warnings.warn(
                f"{self.name} ({key}) takes no past_key_values (or cache) and use_cache: every decoding step "
                "recomputes the whole prefix (O(T^2)). Give its forward a key/value cache for speed.",
                RuntimeWarning,
                stacklevel=4,
            )

    def __call__(self, ids: Tensor, mask: Tensor | None, pos: Tensor | None, cache: Any, keep: int) -> tuple:
        """Logits of the last ``keep`` positions [B, keep, V] and the new cache (None without one)."""
        kw: dict[str, Any] = {}
        if self.cached:
            kw.update({self.cache_kw: cache, "use_cache": True})
        if mask is not None:
            kw.update(attention_mask=mask.long(), position_ids=pos)
        if self.keep_kw is not None:
            kw[self.keep_kw] = keep
        out = self.model(ids, **kw)
        logits = logits_of(out)
        if logits.dim() != 3 or logits.shape[0] != ids.shape[0] or logits.shape[1] < keep:
            raise ValueError(
                f"{self.name} must return logits [B, T, V] for input_ids [B, T] = {list(ids.shape)}, got "
                f"{list(logits.shape)}"
            )
        new_cache = None
        if self.cached:
            new_cache = _cache_of(out, self.cache_kw)
            if new_cache is None and isinstance(out, (tuple, list)) and len(out) > 1:
                new_cache = out[1]
            if new_cache is None:
                raise ValueError(
                    f"{self.name} was called with use_cache=True but returned no past_key_values"
                )
        return logits[:, -keep:], new_cache


def _cache_of(out: Any, kw: str | None) -> Any:
    """The cache a model output carries (``.cache`` or ``.past_key_values``, the name the forward takes
    first), None when it has none."""
    if isinstance(out, dict):
        for name in (kw, "cache", "past_key_values"):
            if name and out.get(name) is not None:
                return out[name]
        return None
    for name in (kw, "cache", "past_key_values"):
        value = getattr(out, name, None) if name and not isinstance(out, (tuple, list, Tensor)) else None
        if value is not None:
            return value
    return None


def _map_rows(cache: Any, rows: Tensor | None, repeats: int) -> Any:
    """The cache with its batch dimension indexed by ``rows`` (or each row repeated ``repeats`` times):
    a Hugging Face ``Cache`` (in place, with its own methods) or nested tuples / lists of tensors."""
    if cache is None:
        return None
    if hasattr(cache, "batch_select_indices") and hasattr(cache, "batch_repeat_interleave"):
        if rows is not None:
            cache.batch_select_indices(rows)
        else:
            cache.batch_repeat_interleave(repeats)
        return cache
    if isinstance(cache, Tensor):
        return cache.index_select(0, rows) if rows is not None else cache.repeat_interleave(repeats, dim=0)
    if isinstance(cache, (tuple, list)):
        return type(cache)(_map_rows(c, rows, repeats) for c in cache)
    raise TypeError(
        f"cannot select rows of a past_key_values of type {type(cache).__name__}: expected a transformers "
        "Cache or nested tuples of tensors [B, ...]"
    )


class Stream:
    """Rows decoded by one model (see the module doc). ``feed`` appends tokens, ``select`` / ``repeat``
    reshape the batch; without a cache the stream keeps the token matrix and recomputes it."""

    def __init__(self, call: ModelCall) -> None:
        self.call = call
        self.cache: Any = None
        self.ids: Tensor | None = None  # every fed token [B, C] (kept only without a cache)
        self.mask: Tensor | None = None  # [B, C] bool: which cached positions count
        self.next_pos: Tensor | None = None  # [B] int64: position id of each row's next counted token
        self.dense = True  # every cached position counts: the model needs no mask and no positions

    def start(self, b: int, device: torch.device) -> None:
        """Begin ``b`` empty rows."""
        self.mask = torch.zeros((b, 0), dtype=torch.bool, device=device)
        self.next_pos = torch.zeros(b, dtype=torch.int64, device=device)

    def discard(self, k: int, keep: Tensor) -> None:
        """Of the last ``k`` fed positions, only the first ``keep[b]`` count for row b (the rest stay in
        the cache, masked)."""
        assert self.mask is not None and self.next_pos is not None
        if k == 0:
            return
        counted = torch.arange(k, device=keep.device).unsqueeze(0) < keep.unsqueeze(1)
        self.mask[:, -k:] &= counted
        self.next_pos = self.next_pos - (k - keep.clamp(max=k))
        self.dense = self.dense and bool(counted.all())

    def feed(self, ids: Tensor, valid: Tensor | None = None, keep: int = 1) -> Tensor:
        """Append ``ids`` [B, t] (``valid`` [B, t] bool: which of them count; None: all, with no host read);
        return the logits of the last ``keep`` positions [B, keep, V]."""
        if self.mask is None:
            self.start(ids.shape[0], ids.device)
        assert self.mask is not None and self.next_pos is not None
        if valid is None:
            steps = torch.arange(ids.shape[1], device=ids.device)
            pos = self.next_pos.unsqueeze(1) + steps
            self.next_pos = self.next_pos + ids.shape[1]
            valid = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
        else:
            pos = self.next_pos.unsqueeze(1) + valid.long().cumsum(1) - valid.long()
            self.next_pos = self.next_pos + valid.long().sum(1)
            # While every position counts the model's own positions are right and a mask would only cost.
            self.dense = self.dense and bool(valid.all())
        self.mask = torch.cat([self.mask, valid], dim=1)
        if self.call.cached:
            if self.dense:
                logits, self.cache = self.call(ids, None, None, self.cache, keep)
            else:
                logits, self.cache = self.call(ids, self.mask, pos, self.cache, keep)
            return logits
        self.ids = ids if self.ids is None else torch.cat([self.ids, ids], dim=1)
        if self.call.masked and not self.dense:
            full_pos = self.mask.long().cumsum(1) - 1
            return self.call(self.ids, self.mask, full_pos.clamp(min=0), None, keep)[0]
        return self.call(self.ids, None, None, None, keep)[0]

    def select(self, rows: Tensor) -> None:
        """Keep the rows ``rows`` (int64 indices, in that order)."""
        assert self.mask is not None and self.next_pos is not None
        self.mask, self.next_pos = self.mask[rows], self.next_pos[rows]
        self.ids = None if self.ids is None else self.ids[rows]
        self.cache = _map_rows(self.cache, rows, 1)

    def repeat(self, n: int) -> None:
        """Repeat every row ``n`` times in place (row r becomes rows r*n ... r*n + n - 1)."""
        assert self.mask is not None and self.next_pos is not None
        self.mask = self.mask.repeat_interleave(n, dim=0)
        self.next_pos = self.next_pos.repeat_interleave(n, dim=0)
        self.ids = None if self.ids is None else self.ids.repeat_interleave(n, dim=0)
        self.cache = _map_rows(self.cache, None, n)


def left_pad(prompts: list[list[int]], pad: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``ids`` [B, L] left-padded with ``pad`` and ``valid`` [B, L] bool (L: the longest prompt)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.int64)
    valid = torch.zeros((len(prompts), width), dtype=torch.bool)
    for r, p in enumerate(prompts):
        if p:
            ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.int64)
            valid[r, width - len(p) :] = True
    return ids.to(device), valid.to(device)
