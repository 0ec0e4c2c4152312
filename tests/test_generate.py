"""rsfast.generate: the law of plain and speculative decoding (chi-square against the exact law computed
from the model, with negative controls), cached == uncached, per-prompt determinism, Hugging Face models,
EOS / padding / logprobs, and argument errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from scipy import stats
from torch import nn

import rsfast
from rsfast.decoding import model_io
from rsfast.demos._tiny_lm import TinyCausalLM
from rsfast.reference.tokens import tokens_filtered_probs

V = 8
FILTERS = dict(temperature=0.8, top_p=0.95)


def _model(seed: int, d: int = 16, layers: int = 1, sharpen: float = 3.0, vocab: int = V) -> TinyCausalLM:
    torch.manual_seed(seed)
    m = TinyCausalLM(vocab, 48, d, layers, 2).eval()
    with torch.no_grad():  # random weights give near-uniform rows: sharpen them so the law test has power
        m.head.weight.mul_(sharpen)
        m.head.bias.mul_(sharpen)
    return m


class NoCache(nn.Module):
    """The same model behind ``forward(input_ids) -> logits`` only (no cache, no masks)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.inner(input_ids)
        return out.logits if hasattr(out, "logits") else out


def _exact_pairs(model: nn.Module, prompt: list[int], **kw) -> torch.Tensor:
    """[V * V] float64: the exact law of the first two generated tokens under the filters."""
    with torch.no_grad():
        p0 = tokens_filtered_probs(model(torch.tensor([prompt]))[:, -1], **kw)[0][0]
        p1 = tokens_filtered_probs(model(torch.tensor([prompt + [t] for t in range(V)]))[:, -1], **kw)[0]
    return (p0[:, None] * p1).reshape(-1)


def _chi2_p(pairs: torch.Tensor, law: torch.Tensor) -> float:
    n = pairs.shape[0]
    counts = torch.bincount(pairs[:, 0] * V + pairs[:, 1], minlength=V * V).double()
    if counts[law == 0].sum() > 0:  # a pair of probability 0 was generated: not this law
        return 0.0
    keep = law * n >= 5
    expected = law[keep] * n
    observed = counts[keep]
    rest_e, rest_o = n - expected.sum(), n - observed.sum()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    if rest_e > 1e-9:
        chi2 += float((rest_o - rest_e) ** 2 / rest_e)
    return float(stats.chi2.sf(chi2, int(keep.sum()) - (0 if rest_e > 1e-9 else 1)))


N_LAW = 12_000


def test_plain_law_matches_the_model_and_a_wrong_law_is_rejected():
    m = _model(0)
    prompt = [1, 2, 3]
    g = rsfast.generate(m, [prompt], N_LAW, max_new_tokens=2, seeds=[11], batch_size=4096, **FILTERS)
    pairs = g.sequences[0]
    assert _chi2_p(pairs, _exact_pairs(m, prompt, **FILTERS)) > 1e-3
    # Negative control: the law without the temperature is a different law, and the test sees it.
    assert _chi2_p(pairs, _exact_pairs(m, prompt, temperature=1.0, top_p=0.95)) < 1e-6


@pytest.mark.parametrize("s,draft_sampling", [(1, "sample"), (3, "sample"), (2, "greedy")])
def test_speculative_law_matches_the_target(s, draft_sampling):
    target, draft = _model(0), _model(5, sharpen=1.5)
    prompt = [1, 2, 3]
    g = rsfast.generate(
        target, [prompt], N_LAW, max_new_tokens=2, seeds=[7], batch_size=4096, draft_model=draft,
        num_draft_tokens=s, draft_sampling=draft_sampling, **FILTERS,
    )  # fmt: skip
    assert 0 < g.acceptance_rate < 1
    assert _chi2_p(g.sequences[0], _exact_pairs(target, prompt, **FILTERS)) > 1e-3
    # Negative control: the draft's law is not the target's.
    assert _chi2_p(g.sequences[0], _exact_pairs(draft, prompt, **FILTERS)) < 1e-6


def test_speculative_law_with_top_k_and_min_p_over_longer_completions():
    # The 4th and 5th tokens come from later rounds (bonus tokens, replacements after partial acceptance).
    target, draft = _model(1), _model(2, sharpen=2.0)
    prompt = [4, 5]
    kw = dict(temperature=1.0, top_k=5, min_p=0.05)
    n = 8000
    plain = rsfast.generate(target, [prompt], n, max_new_tokens=5, seeds=[1], batch_size=4096, **kw)
    spec = rsfast.generate(
        target, [prompt], n, max_new_tokens=5, seeds=[2], batch_size=4096, draft_model=draft,
        num_draft_tokens=2, **kw,
    )  # fmt: skip
    for pos in (3, 4):
        a = torch.bincount(plain.sequences[0, :, pos], minlength=V)
        b = torch.bincount(spec.sequences[0, :, pos], minlength=V)
        keep = (a + b) >= 10
        table = torch.stack([a[keep], b[keep]]).numpy()
        assert stats.chi2_contingency(table)[1] > 1e-3, pos


def test_cached_and_uncached_generation_give_identical_tokens():
    m = _model(3, d=32, layers=2)
    prompts = [[1, 2, 3], [4, 5, 6], [7, 1, 2]]
    kw = dict(max_new_tokens=12, seeds=[1, 2, 3], top_k=6, top_p=0.9, eos_token_id=7)
    a = rsfast.generate(m, prompts, 4, **kw)
    model_io._warned_no_cache.clear()  # the warning is once per model class and process
    with pytest.warns(RuntimeWarning, match="recomputes the whole prefix"):
        b = rsfast.generate(NoCache(m), prompts, 4, **kw)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.lengths, b.lengths)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("padding", ["left", "none"])
def test_a_prompt_gets_the_same_completions_in_any_batch(padding):
    m = _model(4, d=32, layers=2)
    prompts = [[1, 2, 3], [4, 5], [6, 7, 1, 2], [3, 3, 3]]
    seeds = [10, 20, 30, 40]
    kw = dict(max_new_tokens=10, eos_token_id=0, padding=padding)
    full = rsfast.generate(m, prompts, 3, seeds=seeds, **kw)
    for i, p in enumerate(prompts):
        alone = rsfast.generate(m, [p], 3, seeds=[seeds[i]], **kw)
        w = alone.sequences.shape[-1]
        assert torch.equal(alone.sequences[0], full.sequences[i, :, :w]), i
        assert torch.equal(alone.lengths[0], full.lengths[i])
    shuffled = rsfast.generate(m, prompts[::-1], 3, seeds=seeds[::-1], batch_size=4, **kw)
    assert torch.equal(shuffled.sequences.flip(0), full.sequences)


def test_speculative_completions_do_not_depend_on_the_batch():
    target, draft = _model(0), _model(5)
    prompts = [[1, 2, 3], [4, 5, 6], [6, 7, 1]]
    kw = dict(max_new_tokens=9, draft_model=draft, num_draft_tokens=3, eos_token_id=0)
    full = rsfast.generate(target, prompts, 2, seeds=[1, 2, 3], **kw)
    alone = rsfast.generate(target, prompts[1:2], 2, seeds=[2], **kw)
    w = alone.sequences.shape[-1]
    assert torch.equal(alone.sequences[0], full.sequences[1, :, :w])


def test_greedy_speculative_equals_greedy_plain():
    target, draft = _model(0, d=32, layers=2), _model(5)
    prompts = [[1, 2], [3, 4, 5, 6], [7]]
    plain = rsfast.generate(target, prompts, 1, max_new_tokens=12, temperature=0.0)
    spec = rsfast.generate(target, prompts, 1, max_new_tokens=12, temperature=0.0, draft_model=draft)
    assert torch.equal(plain.sequences, spec.sequences)
    # Greedy is the argmax chain of the model.
    seq = list(prompts[1])
    for _ in range(12):
        seq.append(int(target(torch.tensor([seq]))[0, -1].argmax()))
    assert plain.sequences[1, 0].tolist() == seq[4:]


def test_eos_lengths_padding_and_logprobs():
    m = _model(6, sharpen=1.0)
    eos, pad = 2, 7
    g = rsfast.generate(
        m, [[1, 3], [4]], 64, max_new_tokens=10, eos_token_id=eos, pad_token_id=pad, seeds=[0, 1]
    )
    seq, lens, lps = g.sequences, g.lengths, g.logprobs
    assert seq.shape[:2] == (2, 64) and seq.shape[2] == int(lens.max()) <= 10
    assert bool((lens < 10).any()) and bool((lens == 10).any())
    for i in range(2):
        for j in range(64):
            k = int(lens[i, j])
            row = seq[i, j].tolist()
            assert eos not in row[: k - 1]
            assert k == 10 or row[k - 1] == eos
            assert all(t == pad for t in row[k:])
            assert bool((lps[i, j, :k] < 0).all()) and bool((lps[i, j, k:] == 0).all())
    # The logprob of the first token is the log of the (filtered) model probability.
    with torch.no_grad():
        p0 = torch.softmax(m(torch.tensor([[1, 3]]))[0, -1].double(), -1)
    torch.testing.assert_close(lps[0, :, 0].double(), p0[seq[0, :, 0]].log(), atol=1e-5, rtol=0)
    assert g.completions()[0][0] == seq[0, 0, : int(lens[0, 0])].tolist()


def test_several_eos_ids_and_early_exit():
    m = _model(6, sharpen=1.0)
    g = rsfast.generate(m, [[1]], 200, max_new_tokens=30, eos_token_id=[2, 3], seeds=[5])
    ends = [c[-1] for c in g.completions()[0] if len(c) < 30]
    assert ends and set(ends) <= {2, 3}


def test_the_fine_tuner_uses_the_cached_generator_by_default():
    from rsfast.finetune.rft import RejectionSamplingFineTuner

    m = _model(7)
    tuner = RejectionSamplingFineTuner(
        m, lambda p, c, r: [1.0] * len(c), samples_per_prompt=3, max_new_tokens=4, eos_token_id=0,
        generate_kwargs={"top_p": 0.9},
    )  # fmt: skip
    out = tuner.generate([[1, 2], [3]], seeds=[5, 6])
    ref = rsfast.generate(m, [[1, 2], [3]], 3, max_new_tokens=4, eos_token_id=0, seeds=[5, 6], top_p=0.9)
    assert out == ref.completions()
    with pytest.raises(ValueError, match="generate_kwargs must not set"):
        RejectionSamplingFineTuner(m, lambda p, c, r: [1.0], generate_kwargs={"temperature": 2.0})


# --- Hugging Face models (random weights, built from a config) ---------------------------------------


def _gpt2(layers: int, d: int, seed: int) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(
        vocab_size=V, n_positions=64, n_embd=d, n_layer=layers, n_head=2, bos_token_id=0, eos_token_id=0
    )
    m = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        m.lm_head.weight.mul_(8.0)  # tied with the embeddings: sharpen the logits for the law test
    return m


def test_hugging_face_gpt2_through_its_cache():
    m = _gpt2(2, 16, 0)
    prompts = [[1, 2, 3, 4], [5, 6], [1, 1, 2, 3, 5, 7]]
    kw = dict(max_new_tokens=10, seeds=[1, 2, 3], top_k=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the cache path: no recompute warning
        a = rsfast.generate(m, prompts, 4, **kw)
    model_io._warned_no_cache.clear()
    with pytest.warns(RuntimeWarning, match="recomputes the whole prefix"):
        b = rsfast.generate(NoCache(m), prompts, 4, **kw)
    assert torch.equal(a.sequences, b.sequences)
    # A DynamicCache passed around explicitly and left padding give the same tokens per prompt.
    for i, p in enumerate(prompts):
        alone = rsfast.generate(m, [p], 4, seeds=[i + 1], max_new_tokens=10, top_k=6)
        assert torch.equal(alone.sequences[0], a.sequences[i])


def test_hugging_face_gpt2_law_plain_and_speculative():
    target, draft = _gpt2(2, 16, 0), _gpt2(1, 8, 1)
    prompt = [1, 2, 3]
    law = _exact_pairs(NoCache(target), prompt, **FILTERS)
    plain = rsfast.generate(target, [prompt], N_LAW, max_new_tokens=2, seeds=[3], batch_size=4096, **FILTERS)
    spec = rsfast.generate(
        target, [prompt], N_LAW, max_new_tokens=2, seeds=[4], batch_size=4096, draft_model=draft, **FILTERS
    )
    assert _chi2_p(plain.sequences[0], law) > 1e-3
    assert _chi2_p(spec.sequences[0], law) > 1e-3
    assert spec.tokens_per_target_call > 1


# --- errors ----------------------------------------------------------------------------------------------


def test_errors_name_the_argument():
    m = _model(0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=0)
    with pytest.raises(ValueError, match="context"):
        rsfast.generate(m, [[1] * 40], 1, max_new_tokens=20)
    with pytest.raises(ValueError, match="prompts is empty"):
        rsfast.generate(m, [], 1, max_new_tokens=2)
    with pytest.raises(ValueError, match=r"prompts\[1\] is empty"):
        rsfast.generate(m, [[1], []], 1, max_new_tokens=2)
    with pytest.raises(ValueError, match="top_p"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, temperature=-1.0)
    with pytest.raises(ValueError, match="eos_token_id"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, eos_token_id=-3)
    with pytest.raises(ValueError, match="seeds"):
        rsfast.generate(m, [[1], [2]], 1, max_new_tokens=2, seeds=[1])
    with pytest.raises(ValueError, match="padding"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, padding="right")
    with pytest.raises(ValueError, match="num_draft_tokens"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, draft_model=m, num_draft_tokens=65)
    with pytest.raises(ValueError, match="draft_sampling"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, draft_model=m, draft_sampling="top")
    with pytest.raises(ValueError, match="speculative decoding needs draft_model"):
        rsfast.generate(m, [[1]], 1, max_new_tokens=2, draft_model=NoCache(m))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        rsfast.generate(lambda x: x, [[1]], 1, max_new_tokens=2)

    class NoLogits(nn.Module):
        def forward(self, input_ids):
            return {"hidden": input_ids}

    with pytest.raises(TypeError, match="logits"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rsfast.generate(NoLogits(), [[1]], 1, max_new_tokens=2)

    class NaNModel(nn.Module):
        def forward(self, input_ids):
            return torch.full((*input_ids.shape, V), float("nan"))

    with pytest.raises(rsfast.SamplingError, match="not a distribution"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rsfast.generate(NaNModel(), [[1]], 1, max_new_tokens=2)


def test_tuner_generate_takes_n_and_the_deprecated_num_samples():
    from rsfast.finetune.rft import RejectionSamplingFineTuner

    m = _model(7)
    tuner = RejectionSamplingFineTuner(
        m, lambda p, c, r: [1.0] * len(c), samples_per_prompt=2, max_new_tokens=3
    )
    want = tuner.generate([[1, 2]], 3, seeds=[7])
    assert len(want[0]) == 3
    with pytest.warns(DeprecationWarning, match="n="):
        assert tuner.generate([[1, 2]], num_samples=3, seeds=[7]) == want
