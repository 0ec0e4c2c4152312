"""Token sampling for LM decoding: top-k / top-p / min-p sampling and speculative-decoding verification.

Sorting-free, exact and deterministic per row, on the CPU and CUDA.

The filtered distribution of a row ``x`` ([V] logits or probabilities, float32 / float16 / bfloat16):

* temperature ``T``: weights ``exp((x - max x) / T)`` (logits; ``T = 0`` is greedy: the first argmax).
  Probabilities take ``T`` in {0, 1} only.
* ``top_k``: keep the values ``>=`` the k-th largest value (counted with multiplicity).
* ``top_p``: keep the values whose *strictly larger* values carry less than ``p`` of the mass.
* ``min_p``: keep the tokens with probability ``>= min_p * max probability``.
* Default ``order="hf"`` is Hugging Face's: top-p on the renormalised top-k survivors, then min-p (which
  commutes: the max always survives). ``order="joint"`` computes top-k and top-p on the full row
  (FlashInfer's joint rule) and keeps their intersection.

Tie rule (the one rule of the CPU, CUDA and twin): every filter keeps an upper set of *values*, so tokens
with equal values are kept or dropped together. A row keeps ``{i : x_i >= t}`` for one threshold ``t``.

Exactness: weights are integers (``round(w * 2**45)`` for V <= 2**18), so masses, the top-p threshold
``ceil(p * Z)`` and the inverse CDF are exact integer arithmetic: the same bits on any device, thread count
or batch layout. The law is the filtered distribution of those weights; weights below ``2**-46`` of the
row's max (more than 31.9 nats below it) round to 0 and are never drawn.

Passes over a row of V values (CPU; the CUDA kernel reads the row the same number of times): one scan
(max, bad values), one weight pass (with a 2048-bucket histogram of the top 11 key bits when top-k or
top-p filters), one gathering pass per active top-k / top-p filter (the boundary bucket, refined on its
own elements by two more histogram levels), one masked sum when min-p binds, and the draw (tile sums, then
the tile holding the token; half a row on average). Worst case 6 passes, typically 3 to 4; no sort.

Randomness: row ``b`` draws Philox4x32-10 words keyed by ``seeds[b]`` at counter ``(block, stream,
offsets[b])``. With ``seeds`` given, ``stream`` is a constant of the op, so row b's token is a pure function
of (its row, its parameters, its seed, its offset): batch size, position, thread count and device do not
matter. Without ``seeds`` one seed is drawn from ``generator`` (a device tensor, no synchronisation) and
row b uses stream ``b``: distinct streams, but then a row's draw depends on its index.

Bad rows (any NaN, +inf logit, all -inf logits, negative / infinite / all-zero probabilities, or a
parameter out of range in a parameter tensor) give ``valid = False`` and id 0; other rows are unaffected.
"""

import math
from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor

from ._checks import renamed_n
from ._random import SEED_HIGH
from .ops import tokens as _ops

__all__ = ["TokenSample", "Verification", "sample", "verify", "renorm_probs", "mask_logits"]

Param = Union[float, int, Tensor, None]


class TokenSample(NamedTuple):
    """``ids`` [B] int64, ``valid`` [B] bool, ``logprobs`` [B] float32 (the token's log-probability under the
    filtered distribution; 0 for greedy rows, NaN for invalid rows) or None."""

    ids: Tensor
    valid: Tensor
    logprobs: Optional[Tensor]


class Verification(NamedTuple):
    """``ids`` [B, S + 1] int64 (accepted drafts, then the replacement or bonus token, then -1),
    ``num_accepted`` [B], ``num_emitted`` [B] (= num_accepted + 1; 0 for invalid requests), ``valid`` [B]."""

    ids: Tensor
    num_accepted: Tensor
    num_emitted: Tensor
    valid: Tensor


def _choice(value: str, options: dict, name: str) -> int:
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return options[value]


def _row_param(
    value: Param, b: int, device: torch.device, dtype: torch.dtype, name: str, default: float
) -> Tensor:
    """A [B] tensor of ``dtype`` on ``device`` from a scalar, a 0-d tensor or a [B] tensor."""
    if value is None:
        value = default
    if isinstance(value, Tensor):
        if value.dim() == 0:
            value = value.reshape(1).expand(b)
        if value.dim() != 1 or value.shape[0] != b:
            raise ValueError(
                f"{name} must be a scalar or a [B] tensor with B = {b}, got {tuple(value.shape)}"
            )
        if value.device != device:
            raise ValueError(f"{name} is on {value.device} but the rows are on {device}")
        if dtype == torch.int64 and value.is_floating_point():
            raise TypeError(f"{name} must be an integer tensor, got {value.dtype}")
        return value.to(dtype).contiguous()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, a tensor or None, got {type(value).__name__}")
    return torch.full((b,), value, dtype=dtype, device=device)


def _check_scalars(temperature: Param, top_k: Param, top_p: Param, min_p: Param, input: str) -> None:
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
        if input == "probs" and temperature not in (0, 1):
            raise ValueError(
                f"temperature must be 0 or 1 with input='probs' (it scales logits), got {temperature}"
            )
    if isinstance(top_k, float) or isinstance(top_k, bool):
        raise TypeError(f"top_k must be an int, a tensor or None, got {type(top_k).__name__}")
    if isinstance(top_k, int) and top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 keeps all), got {top_k}")
    if isinstance(top_p, (int, float)) and not isinstance(top_p, bool) and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if isinstance(min_p, (int, float)) and not isinstance(min_p, bool) and not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1], got {min_p}")


def _check_rows(x: Tensor, name: str, dims: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(x).__name__}")
    if x.dtype not in _ops.X_DTYPES:
        raise TypeError(f"{name} must be float32, float16, bfloat16 or float64, got {x.dtype}")
    if x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(x.shape)}")
    if x.shape[-1] < 1:
        raise ValueError(f"{name}: the vocabulary is empty")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be on cpu or cuda, got {x.device}")


def _seeds(
    seeds: Param, offsets: Param, generator: Optional[torch.Generator], b: int, device: torch.device
) -> tuple[Tensor, Tensor, bool]:
    if seeds is None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        gen_device = generator.device if generator is not None else device
        if generator is None and device.type == "cuda":
            gen_device = device
        seed = torch.randint(0, SEED_HIGH, (1,), generator=generator, device=gen_device)
        seeds_t = seed.to(device).expand(b).contiguous()
        per_row = True
    else:
        if isinstance(seeds, int) and not isinstance(seeds, bool) and not 0 <= seeds < 2**63:
            raise ValueError(f"seeds must be in [0, 2**63), got {seeds}")
        seeds_t = _row_param(seeds, b, device, torch.int64, "seeds", 0)
        per_row = False
    if isinstance(offsets, int) and not isinstance(offsets, bool) and not 0 <= offsets < 2**32:
        raise ValueError(f"offsets must be in [0, 2**32), got {offsets}")
    offsets_t = _row_param(offsets, b, device, torch.int64, "offsets", 0)
    return seeds_t, offsets_t, per_row


def _filters(
    b: int, dev: torch.device, temperature: Param, top_k: Param, top_p: Param, min_p: Param, input: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    _check_scalars(temperature, top_k, top_p, min_p, input)
    return (
        _row_param(temperature, b, dev, torch.float32, "temperature", 1.0),
        _row_param(top_k, b, dev, torch.int64, "top_k", 0),
        _row_param(top_p, b, dev, torch.float64, "top_p", 1.0),
        _row_param(min_p, b, dev, torch.float64, "min_p", 0.0),
    )


def sample(
    x: Tensor,
    *,
    temperature: Param = 1.0,
    top_k: Param = None,
    top_p: Param = None,
    min_p: Param = None,
    generator: Optional[torch.Generator] = None,
    seeds: Param = None,
    offsets: Param = None,
    input: str = "logits",
    order: str = "hf",
    return_logprobs: bool = False,
    n: Optional[int] = None,
    num_samples: Optional[int] = None,
) -> TokenSample:
    """One token per row of ``x`` [B, V] under temperature / top-k / top-p / min-p (see the module doc).

    Every parameter is a scalar or a [B] tensor on x's device. ``top_k`` <= 0 or >= V keeps all;
    ``top_p`` in (0, 1]; ``min_p`` in [0, 1]; ``seeds`` in [0, 2**63), ``offsets`` in [0, 2**32) (name the
    decoding step: the same (seed, offset) gives the same token). ``input``: "logits" or "probs" (rows need
    not sum to 1). ``order``: "hf" or "joint". ``n``: n independent draws per row (ids and logprobs
    [B, n]; draw j reads Philox block j, so draw 0 is the token of ``n=None``); each extra draw costs a
    binary search and at most 64 values. ``num_samples`` is the deprecated spelling of ``n``. Returns
    :class:`TokenSample`.
    """
    _check_rows(x, "x", 2)
    in_code = _choice(input, _ops.INPUTS, "input")
    order_code = _choice(order, _ops.ORDERS, "order")
    t, k, p, mp = _filters(x.shape[0], x.device, temperature, top_k, top_p, min_p, input)
    s, o, per_row = _seeds(seeds, offsets, generator, x.shape[0], x.device)
    n = renamed_n(n, num_samples, "tokens.sample")
    draws = 1
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int or None, got {type(n).__name__}")
        if not 1 <= n <= 2**32:
            raise ValueError(f"n must be in [1, 2**32], got {n}")
        draws = n
    ids, valid, lp = _ops.tokens_sample(
        x.contiguous(), t, k, p, mp, s, o, per_row, in_code, order_code, bool(return_logprobs), draws
    )
    if n is None:
        ids, lp = ids[:, 0], lp[:, 0]
    return TokenSample(ids, valid, lp if return_logprobs else None)


def _filtered(
    x: Tensor, mode: str, temperature: Param, top_k: Param, top_p: Param, min_p: Param, input: str, order: str
) -> tuple[Tensor, Tensor]:
    _check_rows(x, "x", 2)
    in_code = _choice(input, _ops.INPUTS, "input")
    order_code = _choice(order, _ops.ORDERS, "order")
    t, k, p, mp = _filters(x.shape[0], x.device, temperature, top_k, top_p, min_p, input)
    return _ops.tokens_filter(x.contiguous(), t, k, p, mp, in_code, order_code, _ops.FILTER_MODES[mode])


def renorm_probs(
    x: Tensor,
    *,
    temperature: Param = 1.0,
    top_k: Param = None,
    top_p: Param = None,
    min_p: Param = None,
    input: str = "probs",
    order: str = "hf",
) -> Tensor:
    """The filtered distribution of each row of ``x`` [B, V] as float32 probabilities [B, V]: the law
    :func:`sample` draws from (invalid rows: zeros; greedy rows: one-hot on the first argmax)."""
    return _filtered(x, "renorm", temperature, top_k, top_p, min_p, input, order)[0]


def mask_logits(
    logits: Tensor,
    *,
    top_k: Param = None,
    top_p: Param = None,
    min_p: Param = None,
    temperature: Param = 1.0,
    order: str = "hf",
) -> Tensor:
    """``logits`` [B, V] with every token outside the kept set set to -inf (same dtype; invalid rows all
    -inf). Temperature only enters top-p / min-p (the values returned are not scaled)."""
    out, _ = _filtered(logits, "mask", temperature, top_k, top_p, min_p, "logits", order)
    return out.to(logits.dtype)


def verify(
    draft_token_ids: Tensor,
    target: Tensor,
    draft_probs: Optional[Tensor] = None,
    *,
    cu_num_draft_tokens: Optional[Tensor] = None,
    max_num_draft_tokens: Optional[int] = None,
    mode: str = "probabilistic",
    input: str = "logits",
    temperature: Param = 1.0,
    top_k: Param = None,
    top_p: Param = None,
    min_p: Param = None,
    order: str = "hf",
    generator: Optional[torch.Generator] = None,
    seeds: Param = None,
    offsets: Param = None,
) -> Verification:
    """Speculative-decoding verification of chain drafts.

    Dense: ``draft_token_ids`` [B, S], ``target`` [B, S + 1, V], ``draft_probs`` [B, S, V] or None.
    Ragged: ``cu_num_draft_tokens`` [B + 1] (cumulative, starting at 0), ``draft_token_ids`` [N],
    ``target`` [N + B, V] (request b's S_b + 1 rows in order), ``draft_probs`` [N, V] or None; S is
    ``max_num_draft_tokens`` or the largest S_b (one host read).

    ``mode="probabilistic"``: accept draft t with probability min(1, p(t) / q(t)) under the filtered,
    temperature-scaled target p (q one-hot on the draft when ``draft_probs`` is None); at the first
    rejection draw from max(0, p - q) renormalised; when all are accepted draw a bonus token from the last
    target row. Each emitted token then follows p exactly. ``mode="greedy"``: accept while the draft equals
    the target argmax, then emit the argmax. Parameters are per request (scalar or [B]). A request with a
    bad target or draft-probability row, or a draft id outside [0, V), is invalid (num_emitted 0, ids -1).
    """
    mode_code = _choice(mode, _ops.MODES, "mode")
    in_code = _choice(input, _ops.INPUTS, "input")
    order_code = _choice(order, _ops.ORDERS, "order")
    if not isinstance(draft_token_ids, Tensor) or draft_token_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError("draft_token_ids must be an int64 or int32 Tensor")
    if cu_num_draft_tokens is None:
        _check_rows(target, "target", 3)
        if draft_token_ids.dim() != 2:
            raise ValueError(f"draft_token_ids must be [B, S], got {tuple(draft_token_ids.shape)}")
        b, s = draft_token_ids.shape
        if target.shape[:2] != (b, s + 1):
            raise ValueError(f"target must be [B, S + 1, V] = [{b}, {s + 1}, V], got {tuple(target.shape)}")
        rows_q = (b, s)
        cu = None
    else:
        _check_rows(target, "target", 2)
        if not isinstance(cu_num_draft_tokens, Tensor) or cu_num_draft_tokens.dim() != 1:
            raise ValueError("cu_num_draft_tokens must be a [B + 1] tensor")
        if cu_num_draft_tokens.shape[0] < 1:
            raise ValueError("cu_num_draft_tokens must have B + 1 >= 1 entries")
        b = cu_num_draft_tokens.shape[0] - 1
        n = draft_token_ids.shape[0]
        if draft_token_ids.dim() != 1:
            raise ValueError(f"ragged draft_token_ids must be [N], got {tuple(draft_token_ids.shape)}")
        if target.shape[0] != n + b:
            raise ValueError(f"ragged target must have N + B = {n + b} rows, got {target.shape[0]}")
        cu = cu_num_draft_tokens.to(device=target.device, dtype=torch.int64).contiguous()
        if max_num_draft_tokens is None:
            if not torch.compiler.is_compiling():
                diffs = cu[1:] - cu[:-1]
                if b > 0 and (int(cu[0]) != 0 or int(cu[-1]) != n or bool((diffs < 0).any())):
                    raise ValueError("cu_num_draft_tokens must start at 0, be nondecreasing and end at N")
            s = int((cu[1:] - cu[:-1]).max()) if b > 0 else 0
        else:
            s = int(max_num_draft_tokens)
        rows_q = (n,)
    v = target.shape[-1]
    if draft_probs is not None:
        _check_rows(draft_probs, "draft_probs", len(rows_q) + 1)
        if tuple(draft_probs.shape) != (*rows_q, v):
            raise ValueError(f"draft_probs must be {[*rows_q, v]}, got {list(draft_probs.shape)}")
        if draft_probs.device != target.device:
            raise ValueError("draft_probs must be on the target's device")
        draft_probs = draft_probs.contiguous()
    if draft_token_ids.device != target.device:
        raise ValueError("draft_token_ids must be on the target's device")
    tt, k, p, mp = _filters(b, target.device, temperature, top_k, top_p, min_p, input)
    sd, o, per_row = _seeds(seeds, offsets, generator, b, target.device)
    ids, acc, emitted, valid = _ops.tokens_verify(
        draft_token_ids.to(torch.int64).contiguous(),
        target.contiguous(),
        draft_probs,
        cu,
        s,
        tt,
        k,
        p,
        mp,
        sd,
        o,
        per_row,
        in_code,
        order_code,
        mode_code,
    )
    return Verification(ids, acc, emitted, valid)
