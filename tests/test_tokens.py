"""rsfast.tokens.sample / renorm_probs / mask_logits: per-row determinism (batch position, batch size,
thread count), bad rows, argument errors, opcheck, torch.compile."""

import math

import pytest
import torch

import rsfast.tokens as tokens
from rsfast.ops import tokens as ops
from rsfast.reference import tokens as ref


def _logits(b: int, v: int, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(b, v, generator=torch.Generator().manual_seed(seed))


KW = dict(top_k=50, top_p=0.9, temperature=0.8)


def test_row_is_a_function_of_its_inputs_seed_and_offset():
    x = _logits(40, 5000, 1)
    seeds = torch.arange(100, 140)
    offsets = torch.arange(40) * 7
    params = dict(
        temperature=torch.linspace(0.5, 1.5, 40),
        top_k=torch.arange(40) * 10,
        top_p=torch.linspace(0.3, 1.0, 40).double(),
        min_p=torch.linspace(0.0, 0.2, 40).double(),
    )
    full = tokens.sample(x, seeds=seeds, offsets=offsets, return_logprobs=True, **params)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    permuted = tokens.sample(
        x[perm],
        seeds=seeds[perm],
        offsets=offsets[perm],
        return_logprobs=True,
        **{k: v[perm] for k, v in params.items()},
    )
    assert torch.equal(permuted.ids, full.ids[perm])
    assert torch.equal(permuted.logprobs, full.logprobs[perm])
    for b in (0, 17, 39):  # alone, in a batch of one
        one = tokens.sample(
            x[b : b + 1],
            seeds=int(seeds[b]),
            offsets=int(offsets[b]),
            **{k: v[b : b + 1] for k, v in params.items()},
        )
        assert int(one.ids[0]) == int(full.ids[b])


def test_thread_count_does_not_matter():
    x = _logits(64, 20000, 2)
    seeds = torch.arange(64)
    outs = []
    for n in (1, 2, 3):
        torch.set_num_threads(n)
        outs.append(tokens.sample(x, seeds=seeds, n=3, **KW).ids)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_offsets_and_seeds_change_the_draw_and_repeat_it():
    x = _logits(1, 1000, 3).expand(200, 1000).contiguous()
    a = tokens.sample(x, seeds=torch.arange(200), offsets=5).ids
    assert torch.equal(a, tokens.sample(x, seeds=torch.arange(200), offsets=5).ids)
    assert not torch.equal(a, tokens.sample(x, seeds=torch.arange(200), offsets=6).ids)
    # with one scalar seed every row reads the same words: same row, same token
    same = tokens.sample(x, seeds=9).ids
    assert bool((same == same[0]).all())


def test_generator_path_is_reproducible_and_rows_differ():
    x = _logits(1, 1000, 4).expand(300, 1000).contiguous()
    a = tokens.sample(x, generator=torch.Generator().manual_seed(1)).ids
    b = tokens.sample(x, generator=torch.Generator().manual_seed(1)).ids
    assert torch.equal(a, b)
    assert a.unique().numel() > 10  # distinct streams per row


def test_n_first_draw_is_the_single_draw():
    x = _logits(8, 3000, 5)
    one = tokens.sample(x, seeds=torch.arange(8), **KW).ids
    many = tokens.sample(x, seeds=torch.arange(8), n=50, **KW).ids
    assert torch.equal(many[:, 0], one)


def test_greedy_rows():
    x = _logits(6, 100, 6)
    x[2, 10] = x[2, 20] = x[2].max() + 1  # tie at the max: the first index
    r = tokens.sample(
        x, temperature=torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0]), seeds=1, return_logprobs=True
    )
    for b in (0, 2, 3, 5):
        assert int(r.ids[b]) == int(torch.argmax(x[b]))
        assert float(r.logprobs[b]) == 0.0
    assert int(r.ids[2]) == 10


def test_dtypes_agree_with_float32_of_the_same_values():
    x = _logits(16, 4000, 7).to(torch.bfloat16)
    for dt in (torch.bfloat16, torch.float16):
        xd = x.to(dt)
        a = tokens.sample(xd, seeds=torch.arange(16), **KW).ids
        b = tokens.sample(xd.float(), seeds=torch.arange(16), **KW).ids
        assert torch.equal(a, b)


@pytest.mark.parametrize("order", ["hf", "joint"])
def test_renorm_and_mask_match_twin(order):
    x = _logits(12, 700, 8, scale=3.0)
    params = dict(
        temperature=torch.linspace(0.3, 2.0, 12),
        top_k=torch.tensor([0, 1, 5, 50, 699, 700, 3, 100, 10, 0, 20, 2]),
        top_p=torch.tensor([1.0, 0.5, 0.9, 0.3, 1e-6, 0.99, 1.0, 0.7, 0.8, 0.95, 0.6, 1.0]).double(),
        min_p=torch.tensor([0.0, 0.0, 0.1, 0.0, 0.5, 0.05, 1.0, 0.02, 0.0, 0.3, 0.0, 0.0]).double(),
    )
    law, valid = ref.tokens_filtered_probs(x, order=order, **params)
    probs = tokens.renorm_probs(x, input="logits", order=order, **params)
    # weights below 2**-46 of the max round to 0 (documented); the kept set itself is exact
    assert not bool(((probs > 0) & (law == 0)).any())
    assert not bool(((probs == 0) & (law > 1e-12)).any())
    assert torch.allclose(probs.double(), law, atol=1e-6, rtol=1e-5)
    masked = tokens.mask_logits(x, order=order, **params)
    assert torch.equal(masked > -math.inf, law > 0)
    assert torch.equal(masked[law > 0], x[law > 0])


def test_probs_input_and_zero_heavy_rows():
    p = torch.rand(5, 300, generator=torch.Generator().manual_seed(9))
    p[p < 0.7] = 0
    r = tokens.sample(p, input="probs", seeds=torch.arange(5), n=2000, top_p=0.8)
    assert bool(r.valid.all())
    law, _ = ref.tokens_filtered_probs(p, input="probs", top_p=0.8)
    assert bool((law.gather(1, r.ids) > 0).all())


def test_bad_rows_are_invalid_and_isolated():
    v = 50
    x = _logits(9, v, 10)
    bad = x.clone()
    bad[0, 3] = math.nan
    bad[1] = -math.inf
    bad[2, 7] = math.inf
    good_rows = [3, 4, 5, 6, 7, 8]
    temperature = torch.ones(9)
    temperature[3] = math.nan  # a bad parameter in a tensor: that row only
    top_p = torch.ones(9, dtype=torch.float64)
    top_p[4] = 0.0
    min_p = torch.zeros(9, dtype=torch.float64)
    min_p[5] = 2.0
    top_k = torch.zeros(9, dtype=torch.int64)
    top_k[6] = -5  # <= 0 keeps all: valid
    kw = dict(temperature=temperature, top_p=top_p, min_p=min_p, top_k=top_k, seeds=torch.arange(9))
    r = tokens.sample(bad, return_logprobs=True, **kw)
    assert r.valid.tolist() == [False] * 6 + [True] * 3
    assert r.ids[:6].tolist() == [0] * 6
    assert bool(torch.isnan(r.logprobs[:6]).all())
    clean = tokens.sample(x, **kw)
    assert torch.equal(r.ids[6:], clean.ids[6:])
    assert bool(((r.ids >= 0) & (r.ids < v)).all())
    del good_rows
    probs = torch.rand(4, v)
    probs[0] = 0.0
    probs[1, 2] = -0.1
    probs[2, 5] = math.inf
    rp = tokens.sample(probs, input="probs", seeds=1)
    assert rp.valid.tolist() == [False, False, False, True]
    assert rp.ids[:3].tolist() == [0, 0, 0]
    assert bool((tokens.renorm_probs(probs)[:3] == 0).all())
    assert bool((tokens.mask_logits(bad)[:3] == -math.inf).all())


def test_nan_rows_never_leave_the_vocabulary():
    for v in (1, 2, 63, 64, 65, 4097):
        x = torch.full((3, v), math.nan)
        x[1] = -math.inf
        x[2, -1] = math.inf
        r = tokens.sample(x, seeds=1, top_k=5, top_p=0.5, n=4)
        assert bool(((r.ids >= 0) & (r.ids < v)).all()) and not bool(r.valid.any())


def test_argument_errors():
    x = _logits(2, 10)
    with pytest.raises(ValueError, match="top_p"):
        tokens.sample(x, top_p=0.0)
    with pytest.raises(ValueError, match="min_p"):
        tokens.sample(x, min_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        tokens.sample(x, temperature=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        tokens.sample(x.softmax(-1), input="probs", temperature=0.5)
    with pytest.raises(ValueError, match="top_k"):
        tokens.sample(x, top_k=-1)
    with pytest.raises(TypeError, match="top_k"):
        tokens.sample(x, top_k=2.5)
    with pytest.raises(ValueError, match="input"):
        tokens.sample(x, input="scores")
    with pytest.raises(ValueError, match="order"):
        tokens.sample(x, order="vllm")
    with pytest.raises(ValueError, match="seeds"):
        tokens.sample(x, seeds=torch.arange(3))
    with pytest.raises(ValueError, match="seeds"):
        tokens.sample(x, seeds=-1)
    with pytest.raises(ValueError, match="offsets"):
        tokens.sample(x, seeds=1, offsets=2**32)
    with pytest.raises(TypeError, match="x"):
        tokens.sample(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="x"):
        tokens.sample(torch.zeros(3))
    with pytest.raises(ValueError, match="n must"):
        tokens.sample(x, n=0)


def test_opcheck():
    x = _logits(4, 300, 11)
    b = 4
    args = (
        x,
        torch.full((b,), 0.8),
        torch.full((b,), 20, dtype=torch.int64),
        torch.full((b,), 0.9, dtype=torch.float64),
        torch.zeros(b, dtype=torch.float64),
        torch.arange(b),
        torch.zeros(b, dtype=torch.int64),
        False,
        0,
        0,
        True,
        3,
    )
    torch.library.opcheck(ops.tokens_sample_op, args)
    torch.library.opcheck(ops.tokens_filter_op, (*args[:5], 0, 1, 0))


def test_compile_fullgraph_decode_step_matches_eager():
    def step(logits: torch.Tensor, seeds: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        r = tokens.sample(logits, temperature=0.8, top_k=50, top_p=0.9, seeds=seeds, offsets=offsets)
        return torch.where(r.valid, r.ids, torch.zeros_like(r.ids))

    x = _logits(8, 2000, 12)
    seeds, offsets = torch.arange(8), torch.full((8,), 3)
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, seeds, offsets), step(x, seeds, offsets))


def test_num_samples_is_the_deprecated_spelling_of_n():
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(0))
    want = tokens.sample(x, seeds=5, n=4).ids
    with pytest.warns(DeprecationWarning, match="n="):
        got = tokens.sample(x, seeds=5, num_samples=4).ids
    assert torch.equal(want, got)
    with pytest.raises(TypeError, match="not both"):
        tokens.sample(x, n=2, num_samples=2)
