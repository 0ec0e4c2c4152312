"""The law of rsfast.tokens.sample against the sort-based twin's exact law (float64): chi-square tests, bins
merged to expected counts >= 5, 10**6 draws per checked row, p > 1e-4 after Bonferroni over the cases;
tokens of zero probability or outside the kept set never drawn; negative controls the same test rejects."""

import math

import pytest
import torch
from scipy import stats

import rsfast.tokens as tokens
from rsfast.reference import tokens as ref

DRAWS = 10**6
ALPHA = 1e-4


def chi2_p(counts: torch.Tensor, law: torch.Tensor) -> float:
    """p-value of a chi-square test of counts against law, bins merged (in order of expected count) to
    expected counts >= 5; 0 when a draw fell where the law has no mass. Pearson's statistic rather than G:
    with 10**5 bins of expected count ~5 the G statistic's mean exceeds its degrees of freedom by ~2 %,
    which is many standard deviations (Pearson's mean is exact for any expected counts)."""
    n = float(counts.sum())
    e = law.double() * n
    pos = e > 0
    if int(counts[~pos].sum()) > 0:
        return 0.0  # a draw the law cannot produce
    c, e = counts.double()[pos], e[pos]
    order = torch.argsort(e)
    c, e = c[order], e[order]
    merged_c, merged_e = [], []
    acc_c = acc_e = 0.0
    for ci, ei in zip(c.tolist(), e.tolist()):
        acc_c += ci
        acc_e += ei
        if acc_e >= 5:
            merged_c.append(acc_c)
            merged_e.append(acc_e)
            acc_c = acc_e = 0.0
    if acc_e > 0 and merged_e:
        merged_c[-1] += acc_c
        merged_e[-1] += acc_e
    if len(merged_e) < 2:
        return 1.0
    oc, oe = torch.tensor(merged_c), torch.tensor(merged_e)
    chi2 = float(((oc - oe) ** 2 / oe).sum())
    return float(stats.chi2.sf(chi2, len(merged_e) - 1))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _row(kind: str, v: int, seed: int) -> torch.Tensor:
    g = _gen(seed)
    if kind == "normal1":
        return torch.randn(v, generator=g)
    if kind == "normal5":
        return 5 * torch.randn(v, generator=g)
    if kind == "gumbel":  # near-uniform: Gumbel(0.1)
        u = torch.rand(v, generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        return (-0.1 * torch.log(-torch.log(u))).float()
    if kind == "ties":  # few distinct values: ties at every boundary
        return torch.randint(0, 4, (v,), generator=g).float()
    if kind == "zeros":  # probabilities, most of them zero
        p = torch.rand(v, generator=g)
        p[torch.rand(v, generator=g) < 0.8] = 0.0
        p[0] = 0.5
        return p
    raise ValueError(kind)


# (row kind, V, input, parameters)
CASES = [
    ("normal1", 2, "logits", dict(top_k=1)),
    ("normal1", 2, "logits", dict(temperature=0.5)),
    ("normal5", 10, "logits", dict(top_k=10)),
    ("normal1", 10, "logits", dict(top_k=9, top_p=0.9, temperature=0.8)),
    ("normal5", 1000, "logits", dict(top_k=500, top_p=0.5)),
    ("normal1", 1000, "logits", dict(top_k=10)),
    ("normal1", 1000, "logits", dict(top_p=1e-6)),
    ("normal1", 1000, "logits", dict(top_p=0.1)),
    ("normal1", 1000, "logits", dict(min_p=0.5)),
    ("normal1", 1000, "logits", dict(min_p=1.0)),
    ("normal1", 1000, "logits", dict(top_k=999, min_p=0.05, order="joint", top_p=0.9)),
    ("gumbel", 4096, "logits", dict(top_p=0.5)),
    ("gumbel", 4096, "logits", dict(top_k=500, top_p=0.9, temperature=1.3)),
    ("ties", 1000, "logits", dict(top_k=10)),
    ("ties", 1000, "logits", dict(top_p=0.5, temperature=0.7)),
    ("zeros", 1000, "probs", dict(top_p=0.9)),
    ("zeros", 1000, "probs", dict(top_k=500, min_p=0.05)),
    ("normal5", 32000, "logits", dict(top_k=50, top_p=0.9, temperature=0.8)),
    ("normal1", 32000, "logits", dict(top_p=0.9)),
    ("gumbel", 262144, "logits", dict(top_p=1.0)),
    ("normal5", 262144, "logits", dict(top_k=262143)),
    ("normal1", 262144, "logits", dict(top_k=50, top_p=0.9, temperature=0.8)),
    ("normal5", 262144, "logits", dict(min_p=0.05)),
]
THRESHOLD = ALPHA / (len(CASES) + 4)  # Bonferroni over the cases and the dtype / mixed-row checks


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-V{c[1]}-{c[2]}-{c[3]}")
def test_law_matches_twin(case):
    kind, v, inp, kw = case
    x = _row(kind, v, v + len(kw))[None]
    law, valid = ref.tokens_filtered_probs(x, input=inp, **kw)
    assert bool(valid[0])
    r = tokens.sample(x, seeds=1234 + v, n=DRAWS, input=inp, **kw)
    assert bool(r.valid[0])
    counts = torch.bincount(r.ids[0], minlength=v)
    assert int(counts[law[0] == 0].sum()) == 0, (
        "a token outside the kept set (or of zero probability) was drawn"
    )
    assert chi2_p(counts, law[0]) > THRESHOLD


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_law_low_precision_inputs(dtype):
    x = _row("normal1", 3000, 5)[None].to(dtype)
    kw = dict(top_k=100, top_p=0.8, temperature=0.9)
    law, _ = ref.tokens_filtered_probs(x, **kw)
    r = tokens.sample(x, seeds=99, n=DRAWS, **kw)
    counts = torch.bincount(r.ids[0], minlength=3000)
    assert int(counts[law[0] == 0].sum()) == 0
    assert chi2_p(counts, law[0]) > THRESHOLD


def test_law_mixed_rows():
    """Per-row parameters in one batch: each row follows its own law."""
    v = 2000
    x = torch.stack([_row(k, v, i) for i, k in enumerate(["normal1", "normal5", "gumbel", "ties"])])
    kw = dict(
        temperature=torch.tensor([0.7, 1.0, 1.5, 1.0]),
        top_k=torch.tensor([0, 40, 1500, 3]),
        top_p=torch.tensor([0.9, 1.0, 0.5, 0.95]),
        min_p=torch.tensor([0.0, 0.05, 0.0, 0.5]),
    )
    law, valid = ref.tokens_filtered_probs(x, **kw)
    r = tokens.sample(x, seeds=torch.tensor([5, 6, 7, 8]), n=DRAWS // 4, **kw)
    for b in range(4):
        counts = torch.bincount(r.ids[b], minlength=v)
        assert int(counts[law[b] == 0].sum()) == 0
        assert chi2_p(counts, law[b]) > THRESHOLD / 4


def _boundary_row() -> torch.Tensor:
    """probs where the top-k boundary at k = 3 and the top-p boundary at p = 0.6 are ties / exact sums."""
    return torch.tensor([[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05]])


def test_boundary_ties_exact_kept_sets():
    x = _boundary_row()
    # top-k 3: the 3rd largest value 0.1 is tied four times; all ties are kept
    law, _ = ref.tokens_filtered_probs(x, top_k=3, input="probs")
    assert torch.equal(law[0] > 0, torch.tensor([True] * 6 + [False] * 2))
    r = tokens.renorm_probs(x, top_k=3)
    assert torch.equal(r[0] > 0, law[0] > 0)
    # top-p 0.5: mass strictly above 0.2 is 0.3 < 0.5, above the 0.1s it is 0.5, not < 0.5
    r = tokens.renorm_probs(x, top_p=0.5)
    assert torch.equal(r[0] > 0, torch.tensor([True, True] + [False] * 6))
    ids = tokens.sample(x, input="probs", top_p=0.5, seeds=3, n=DRAWS).ids[0]
    assert set(ids.unique().tolist()) == {0, 1}
    law, _ = ref.tokens_filtered_probs(x, top_p=0.5, input="probs")
    assert chi2_p(torch.bincount(ids, minlength=8), law[0]) > THRESHOLD


def _draw_wrong(law: torch.Tensor, seed: int) -> torch.Tensor:
    """Counts of DRAWS draws from a (wrong) law: a stand-in for a faulty sampler."""
    ids = torch.multinomial(law.float(), DRAWS, replacement=True, generator=_gen(seed))
    return torch.bincount(ids, minlength=law.numel())


def test_negative_control_topk_off_by_one():
    """A sampler keeping one token too many at the top-k boundary fails the same test."""
    x = _row("normal1", 1000, 11)[None]
    law, _ = ref.tokens_filtered_probs(x, top_k=50)
    wrong, _ = ref.tokens_filtered_probs(x, top_k=51)
    assert chi2_p(_draw_wrong(wrong[0], 1), law[0]) < THRESHOLD


def test_negative_control_topp_mass_off():
    """A sampler whose top-p mass is off by 1e-3 (so one more token is kept) fails the same test."""
    x = torch.linspace(0, -6, 400)[None]
    law, _ = ref.tokens_filtered_probs(x, top_p=0.9)
    wrong, _ = ref.tokens_filtered_probs(x, top_p=0.9 + 1e-3)
    assert int((wrong[0] > 0).sum()) > int((law[0] > 0).sum())
    assert chi2_p(_draw_wrong(wrong[0], 4), law[0]) < THRESHOLD


def test_negative_control_shifted_law():
    """The same kept set with 0.3 % of the mass moved between two tokens fails the G-test."""
    x = _row("normal1", 100, 12)[None]
    law, _ = ref.tokens_filtered_probs(x, top_k=20)
    wrong = law[0].clone()
    idx = torch.nonzero(wrong > 0)[:, 0]
    a, b = int(idx[0]), int(idx[1])
    moved = min(0.003, float(wrong[a]) / 2)
    wrong[a] -= moved
    wrong[b] += moved
    assert chi2_p(_draw_wrong(wrong, 5), law[0]) < THRESHOLD


def test_logprobs_match_twin():
    x = _row("normal5", 5000, 3)[None].expand(4, 5000)
    kw = dict(top_k=200, top_p=0.95, temperature=0.9)
    law, _ = ref.tokens_filtered_probs(x[:1], **kw)
    r = tokens.sample(x, seeds=torch.arange(4), n=1000, return_logprobs=True, **kw)
    expect = torch.log(law[0][r.ids]).float()
    assert torch.allclose(r.logprobs, expect, atol=1e-5, rtol=1e-5)
    assert math.isclose(float(tokens.sample(x, temperature=0.0, return_logprobs=True).logprobs[0]), 0.0)
