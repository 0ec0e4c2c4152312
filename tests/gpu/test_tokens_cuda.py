"""CUDA rsfast.tokens against the CPU driver (csrc/ops/tokens: cuda.cu vs cpu.cpp), bit for bit.

Skipped unless torch sees a CUDA device and rsfast was built with usable CUDA kernels. Ids, valid flags,
kept sets and verification outputs are bit-identical: the same float32 weights (no FMA contraction), exact
integer masses, the same radix descent and the same index-order inverse CDF. Logprobs and min-p use the
device's double log (within an ulp of glibc's): logprobs are compared to 1e-6, and a min-p boundary could
in principle move (probability ~1e-16 per row).
"""

import math

import pytest
import torch

import rsfast
import rsfast.tokens as tokens

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip(
        f"rsfast CUDA kernels not usable: {rsfast.build_info().get('cuda_unusable_reason', '')}",
        allow_module_level=True,
    )

DEV = torch.device("cuda")


def _batch(b: int, v: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(b, v, generator=g)
    x[1, :] = torch.randint(0, 5, (v,), generator=g).float()  # ties everywhere
    x[2, 3] = math.nan
    x[3, :] = -math.inf
    return x


def _params(b: int, v: int) -> dict:
    g = torch.Generator().manual_seed(b + v)
    return dict(
        temperature=torch.rand(b, generator=g) * 1.5 + 0.2,
        top_k=torch.randint(0, v + 1, (b,), generator=g),
        top_p=(torch.rand(b, generator=g) * 0.9 + 0.1).double(),
        min_p=(torch.rand(b, generator=g) * 0.3).double(),
    )


def _to(d: dict, dev: torch.device) -> dict:
    return {k: v.to(dev) for k, v in d.items()}


@pytest.mark.parametrize("v", [2, 33, 1000, 128_256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("order", ["hf", "joint"])
def test_sample_bit_equal(v, dtype, order):
    b = 48
    x = _batch(b, v, v).to(dtype)
    p = _params(b, v)
    seeds = torch.arange(b) * 7919
    cpu = tokens.sample(x, seeds=seeds, offsets=3, order=order, n=4, return_logprobs=True, **p)
    gpu = tokens.sample(
        x.to(DEV),
        seeds=seeds.to(DEV),
        offsets=3,
        order=order,
        n=4,
        return_logprobs=True,
        **_to(p, DEV),
    )
    assert torch.equal(gpu.ids.cpu(), cpu.ids)
    assert torch.equal(gpu.valid.cpu(), cpu.valid)
    assert torch.allclose(gpu.logprobs.cpu(), cpu.logprobs, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("mode", ["renorm", "mask"])
def test_filter_bit_equal(mode):
    b, v = 32, 5000
    x = _batch(b, v, 1)
    p = _params(b, v)
    fn = tokens.renorm_probs if mode == "renorm" else tokens.mask_logits
    kw = dict(input="logits") if mode == "renorm" else {}
    cpu = fn(x, **kw, **p)
    gpu = fn(x.to(DEV), **kw, **_to(p, DEV))
    assert torch.equal(gpu.cpu(), cpu)


def test_probs_input_bit_equal():
    b, v = 16, 3000
    g = torch.Generator().manual_seed(2)
    probs = torch.rand(b, v, generator=g)
    probs[probs < 0.5] = 0
    probs[4] = 0
    kw = dict(top_p=0.8, min_p=0.05, top_k=200)
    cpu = tokens.sample(probs, input="probs", seeds=torch.arange(b), **kw)
    gpu = tokens.sample(probs.to(DEV), input="probs", seeds=torch.arange(b, device=DEV), **kw)
    assert torch.equal(gpu.ids.cpu(), cpu.ids) and torch.equal(gpu.valid.cpu(), cpu.valid)


@pytest.mark.parametrize("with_q", [False, True])
def test_verify_bit_equal(with_q):
    b, s, v = 40, 4, 4000
    g = torch.Generator().manual_seed(3)
    target = 2 * torch.randn(b, s + 1, v, generator=g)
    target[5, 2, 7] = math.nan
    q = torch.softmax(target[:, :s] + torch.randn(b, s, v, generator=g), -1)
    draft = torch.multinomial(q.reshape(-1, v), 1, generator=g).view(b, s)
    kw = dict(temperature=0.9, top_k=100, top_p=0.95)
    cpu = tokens.verify(draft, target, q if with_q else None, seeds=torch.arange(b), **kw)
    gpu = tokens.verify(
        draft.to(DEV), target.to(DEV), q.to(DEV) if with_q else None, seeds=torch.arange(b, device=DEV), **kw
    )
    for a, c in zip(gpu, cpu):
        assert torch.equal(a.cpu(), c)


def test_verify_ragged_and_greedy_bit_equal():
    v = 500
    cu = torch.tensor([0, 3, 3, 5, 6])
    n, b = 6, 4
    g = torch.Generator().manual_seed(4)
    target = torch.randn(n + b, v, generator=g)
    draft = torch.randint(0, v, (n,), generator=g)
    for mode in ("probabilistic", "greedy"):
        cpu = tokens.verify(draft, target, cu_num_draft_tokens=cu, mode=mode, seeds=torch.arange(b))
        gpu = tokens.verify(
            draft.to(DEV),
            target.to(DEV),
            cu_num_draft_tokens=cu.to(DEV),
            mode=mode,
            seeds=torch.arange(b, device=DEV),
        )
        for a, c in zip(gpu, cpu):
            assert torch.equal(a.cpu(), c)
