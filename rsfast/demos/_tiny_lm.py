"""The demos' small decoder-only transformer, with a key/value cache for :func:`rsfast.generate`.

``model(input_ids [B, T]) -> logits [B, T, V]`` (plain causal attention, for training). With
``use_cache=True`` it takes the keyword arguments of a Hugging Face causal LM (``attention_mask``,
``position_ids``, ``past_key_values``) and returns :class:`CausalLMOutput` (logits and the cache), so the
decoding loop drives it exactly as it drives a Hugging Face model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The cache: one (keys, values) pair per layer, each [B, heads, C, head_dim].
KVCache = tuple[tuple[Tensor, Tensor], ...]


class CausalLMOutput(NamedTuple):
    """``logits`` [B, T, V]; ``past_key_values``: the cache after these T positions."""

    logits: Tensor
    past_key_values: KVCache


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None = None, mask: Tensor | str | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if mask is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif isinstance(mask, str):
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.ln2(x)), (k, v)


class TinyCausalLM(nn.Module):
    """A small pre-norm decoder-only transformer with learned positions (at most ``max_len``)."""

    def __init__(
        self, vocab_size: int, max_len: int, d_model: int = 64, n_layers: int = 2, n_heads: int = 4
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.max_len = max_len
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, 4 * d_model) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ) -> Tensor | CausalLMOutput:
        """Logits of ``input_ids`` [B, T].

        Args:
            attention_mask: [B, C + T] (1 = attend, 0 = padding or a discarded position) over the cached
                C positions and the new T; None: every position counts.
            position_ids: [B, T] positions of the new tokens; None: C, ..., C + T - 1.
            past_key_values: the cache of earlier calls (None: empty).
            use_cache: return :class:`CausalLMOutput` with the extended cache instead of the logits.
            logits_to_keep: > 0: logits of the last ``logits_to_keep`` positions only.
        """
        b, t = input_ids.shape
        c = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if position_ids is None:
            if c + t > self.max_len:
                raise ValueError(f"input_ids reach position {c + t}, the model has {self.max_len}")
            x = self.tok(input_ids) + self.pos(torch.arange(c, c + t, device=input_ids.device))
        else:
            if position_ids.numel() and int(position_ids.max()) >= self.max_len:
                top = int(position_ids.max())
                raise ValueError(f"position_ids reach {top}, the model has {self.max_len} positions")
            x = self.tok(input_ids) + self.pos(position_ids)
        # None: causal attention without a cache; "all": one new token sees every cached one; else a bias.
        mask: Tensor | str | None = None
        if attention_mask is not None or (c > 0 and t > 1):
            mask = _attention_bias(attention_mask, b, c, t, x.dtype, x.device)
        elif c > 0:
            mask = "all"
        cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if past_key_values is None else past_key_values[i], mask)
            cache.append(kv)
        if logits_to_keep > 0:
            x = x[:, -logits_to_keep:]
        logits = self.head(self.ln(x))
        if use_cache:
            return CausalLMOutput(logits, tuple(cache))
        return logits


def _attention_bias(
    attention_mask: Tensor | None, b: int, c: int, t: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Additive bias [B, 1, T, C + T]: query i (at cache index c + i) sees key j <= c + i that the mask
    keeps, and always itself, so that a padding query never has an empty softmax (its output is unused)."""
    if t == 1 and attention_mask is not None:  # one new token: it sees every kept key and itself
        allowed = attention_mask.bool().clone()
        allowed[:, -1] = True
        zero = torch.zeros((), dtype=dtype, device=device)
        return torch.where(allowed, zero, float("-inf")).view(b, 1, 1, c + 1)
    keys = torch.arange(c + t, device=device)
    queries = torch.arange(c, c + t, device=device)
    allowed = keys.unsqueeze(0) <= queries.unsqueeze(1)  # [T, C + T]
    allowed = allowed.unsqueeze(0).expand(b, t, c + t)
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (b, c + t):
            got = tuple(attention_mask.shape)
            raise ValueError(f"attention_mask must be [B, C + T] = [{b}, {c + t}], got {got}")
        allowed = allowed & attention_mask.bool().unsqueeze(1)
    allowed = allowed | (keys.unsqueeze(0) == queries.unsqueeze(1)).unsqueeze(0)
    bias = torch.zeros((b, t, c + t), dtype=dtype, device=device)
    return bias.masked_fill_(~allowed, float("-inf")).unsqueeze(1)
