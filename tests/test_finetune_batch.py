"""rsfast.finetune.BatchRejection and freeze, and ``rsfast demo batch``: acceptance counts against
sum min(1, ratio / M) (with a negative control), the law of the accepted rows (KS, with a negative
control), the three ratios, importance weights, statistics, bad input, and the demo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, gen
from torch import nn

from rsfast import cli
from rsfast.demos.batch import run_demo
from rsfast.finetune import BatchRejection, Selection, freeze

pytestmark = pytest.mark.timeout(60)


def z_p(k: float, p: np.ndarray) -> float:
    """Two-sided p-value of an accepted count k against independent Bernoulli(p) rows (normal
    approximation of the Poisson-binomial law; tens of thousands of rows)."""
    mean, var = p.sum(), (p * (1 - p)).sum()
    return float(2 * st.norm.sf(abs(k - mean) / math.sqrt(var)))


# ---------------------------------------------------------------- acceptance statistics


def _offer_batches(br: BatchRejection, log_ratios: list[torch.Tensor]) -> None:
    for lr in log_ratios:
        br(torch.arange(lr.shape[0]), log_ratio=lr)


def _random_log_ratios(n_batches=20, b=5000):
    g = gen(21)
    return [torch.randn(b, generator=g) * 1.5 - 0.5 for _ in range(n_batches)]


def test_acceptance_count_is_binomial_in_sum_of_min_ratio():
    log_M = 0.3
    lrs = _random_log_ratios()
    br = BatchRejection(lambda x: None, log_M=log_M, generator=gen(1))
    _offer_batches(br, lrs)
    p = np.minimum(1.0, np.exp(torch.cat(lrs).double().numpy() - log_M))
    assert br.num_seen == p.size and br.num_batches == len(lrs)
    assert br.expected_accepted == pytest.approx(p.sum(), rel=1e-6)
    assert z_p(br.num_accepted, p) > ALPHA
    assert br.acceptance_rate == br.num_accepted / br.num_seen


def test_negative_control_count_rejects_a_five_percent_larger_envelope():
    log_M = 0.3
    lrs = _random_log_ratios()
    br = BatchRejection(lambda x: None, log_M=log_M, generator=gen(1))
    _offer_batches(br, lrs)
    wrong = np.minimum(1.0, np.exp(torch.cat(lrs).double().numpy() - log_M) / 1.05)
    assert z_p(br.num_accepted, wrong) < ALPHA


def test_running_rate_and_reset():
    br = BatchRejection(lambda x: None, log_M=0.0, momentum=0.5, generator=gen(2))
    rates = []
    for lr in (torch.full((1000,), 50.0), torch.full((1000,), -50.0), torch.full((1000,), 50.0)):
        sel = br(torch.zeros(1000), log_ratio=lr)
        rates.append(int(sel.count) / 1000)
    assert rates == [1.0, 0.0, 1.0]
    assert br.running_acceptance_rate == pytest.approx(0.5 * (0.5 * 1.0 + 0.5 * 0.0) + 0.5 * 1.0)
    assert br.num_accepted == 2000 and br.stats()["num_seen"] == 3000
    br.reset_stats()
    assert br.num_seen == 0 and br.num_accepted == 0 and math.isnan(br.acceptance_rate)


# ---------------------------------------------------------------- the accepted rows


def _normal_logpdf(x, mu, sd):
    return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


SRC, TGT = (0.0, 1.0), (0.8, 0.7)


def _density_ratio_selection(n_source=3000, n_target=1000, seed=3):
    """Source rows x ~ N(0, 1) through a density_ratio BatchRejection whose domain classifier is exact:
    logit P(target | x) = log(n_t p_t(x)) - log(n_s p_s(x)); M = the exact sup of p_t / p_s."""

    def clf(x):
        return math.log(n_target) + _normal_logpdf(x, *TGT) - math.log(n_source) - _normal_logpdf(x, *SRC)

    grid = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    log_M = float((_normal_logpdf(grid, *TGT) - _normal_logpdf(grid, *SRC)).max()) + 1e-9
    br = BatchRejection(
        "density_ratio", log_M=log_M, domain_classifier=clf, n_source=n_source, n_target=n_target,
        generator=gen(seed),
    )  # fmt: skip
    x = torch.randn(200_000, generator=gen(seed + 1), dtype=torch.float64)
    sel = br(x)
    return sel, br, log_M


def test_density_ratio_accepts_rows_distributed_like_the_target():
    sel, br, log_M = _density_ratio_selection()
    (xa,) = sel.tensors
    assert xa.shape[0] == int(sel.count) > 10_000
    assert st.kstest(xa.numpy(), st.norm(*TGT).cdf).pvalue > ALPHA
    # acceptance 1/M for an exact, normalised ratio
    assert z_p(int(sel.count), np.full(200_000, math.exp(-log_M))) > ALPHA


def test_negative_control_ks_rejects_the_source_law_and_a_shifted_target():
    sel, _, _ = _density_ratio_selection()
    xa = sel.tensors[0].numpy()
    assert st.kstest(xa, st.norm(*SRC).cdf).pvalue < ALPHA
    assert st.kstest(xa, st.norm(TGT[0] + 0.03, TGT[1]).cdf).pvalue < ALPHA


def test_density_ratio_log_ratio_adds_the_prior_odds():
    br = BatchRejection("density_ratio", domain_classifier=lambda x: x[:, 0] * 2, n_source=300, n_target=100)
    x = torch.randn(50, 3, generator=gen(4))
    assert torch.allclose(br.log_ratio(x), x[:, 0] * 2 + math.log(3.0))
    # [B, 1] logits, precomputed logits, classifier on inputs= other than tensors[0]
    br2 = BatchRejection("density_ratio", n_source=1, n_target=1)
    assert torch.equal(br2.log_ratio(x, domain_logits=x[:, :1]), x[:, 0])
    br3 = BatchRejection("density_ratio", domain_classifier=lambda z: z.sum(1), n_source=1, n_target=1)
    assert torch.equal(br3.log_ratio(torch.zeros(50), inputs=x), x.sum(1))


@pytest.mark.parametrize("prior", ["uniform", "tensor"])
def test_inverse_confidence_ratio(prior):
    g = gen(5)
    logits = torch.randn(64, 4, generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    cp = torch.tensor([0.1, 0.2, 0.3, 0.4])
    br = BatchRejection("inverse_confidence", class_prior=cp if prior == "tensor" else "uniform")
    log_hat = torch.log(cp)[y] if prior == "tensor" else torch.full((64,), -math.log(4))
    expect = log_hat - torch.log_softmax(logits, 1)[torch.arange(64), y]
    assert torch.allclose(br.log_ratio(logits=logits, labels=y), expect, atol=1e-6)
    # labels default to tensors[1]; the accepted rows are the ones whose ratio drew acceptance
    sel = BatchRejection("inverse_confidence", log_M=0.0, generator=gen(6))(
        torch.arange(64), y, logits=logits
    )
    assert bool((sel.tensors[1] == y[sel.tensors[0]]).all())


def test_inverse_confidence_prefers_wrong_rows():
    """Rows the model gets wrong (low p(y|x)) are kept more often than confident right ones."""
    b = 20_000
    y = torch.zeros(b, dtype=torch.int64)
    logits = torch.zeros(b, 2)
    logits[: b // 2, 0] = 4.0  # right and confident
    logits[b // 2 :, 1] = 4.0  # wrong and confident
    sel = BatchRejection("inverse_confidence", log_M=0.0, generator=gen(7))(torch.arange(b), y, logits=logits)
    kept = sel.tensors[0]
    right, wrong = int((kept < b // 2).sum()), int((kept >= b // 2).sum())
    p_right = 0.5 / torch.softmax(torch.tensor([4.0, 0.0]), 0)[0].item()  # ratio of a right row, < 1
    assert wrong == b // 2  # ratio > 1: always kept
    assert binom_p_ok(right, b // 2, p_right)


def binom_p_ok(k, n, p):
    return st.binomtest(k, n, p).pvalue > ALPHA


def test_importance_weights_and_losses():
    b = 4000
    lr = torch.randn(b, generator=gen(8)) * 2
    log_M = 0.5
    br = BatchRejection(lambda x: None, log_M=log_M, importance_correction=True, generator=gen(9))
    sel = br(torch.arange(b), log_ratio=lr)
    (rows,) = sel.tensors
    assert torch.allclose(sel.weights, torch.clamp(torch.exp(lr[rows] - log_M), min=1.0))
    assert bool((sel.weights > 1).any())
    losses = torch.rand(rows.shape[0], generator=gen(10))
    w = sel.weights
    assert torch.allclose(sel.loss(losses), (w * losses).sum() / w.sum())
    assert torch.allclose(sel.loss(losses, "unbiased"), (w * losses).sum() * math.exp(log_M) / b)
    assert torch.allclose(sel.loss(torch.full_like(losses, 3.0)), torch.tensor(3.0))
    plain = BatchRejection(lambda x: None, log_M=log_M, generator=gen(9))(torch.arange(b), log_ratio=lr)
    assert torch.equal(plain.tensors[0], rows) and bool((plain.weights == 1).all())


def test_sync_false_pads_with_zero_weights():
    b = 3000
    lr = torch.randn(b, generator=gen(11))
    sel = BatchRejection(lambda x: None, log_M=0.0, sync=False, generator=gen(12))(
        torch.arange(b) + 1, torch.ones(b, 2), log_ratio=lr
    )
    k = int(sel.count)
    assert sel.tensors[0].shape == (b,) and sel.weights.shape == (b,)
    assert bool((sel.weights[:k] == 1).all()) and bool((sel.weights[k:] == 0).all())
    assert bool((sel.tensors[0][k:] == 0).all()) and bool((sel.tensors[0][:k] > 0).all())
    # the loss over the padded batch equals the loss over the exact one
    losses = sel.tensors[0].double()
    exact = BatchRejection(lambda x: None, log_M=0.0, generator=gen(12))(torch.arange(b) + 1, log_ratio=lr)
    assert torch.allclose(sel.loss(losses), exact.tensors[0].double().mean())


def test_batch_max_always_keeps_the_largest_ratio():
    for seed in range(5):
        lr = torch.randn(500, generator=gen(seed))
        lr[7] = math.nan
        sel = BatchRejection(lambda x: None, log_M="batch_max", generator=gen(seed))(
            torch.arange(500), log_ratio=lr
        )
        assert int(torch.nan_to_num(lr, nan=-1e9).argmax()) in sel.tensors[0].tolist()
        assert float(sel.log_M) == float(torch.nan_to_num(lr, nan=-1e9).max())


def test_selection_unpacks():
    sel = BatchRejection(lambda x: None, log_M=0.0, generator=gen(1))(
        torch.arange(10), torch.ones(10), log_ratio=torch.full((10,), 9.0)
    )
    assert isinstance(sel, Selection)
    x, y = sel
    assert torch.equal(x, torch.arange(10)) and len(sel) == 2 and sel[1].shape == (10,)


def test_batch_rejection_bad_inputs():
    cases = [
        (ValueError, "ratio", lambda: BatchRejection("density")),
        (TypeError, "ratio", lambda: BatchRejection(3)),
        (ValueError, "log_M", lambda: BatchRejection(lambda x: x, log_M=math.inf)),
        (ValueError, "log_M", lambda: BatchRejection(lambda x: x, log_M="max")),
        (TypeError, "log_M", lambda: BatchRejection(lambda x: x, log_M=None)),
        (TypeError, "n_source", lambda: BatchRejection("density_ratio", n_target=3)),
        (ValueError, "n_target", lambda: BatchRejection("density_ratio", n_source=3, n_target=0)),
        (ValueError, "class_prior", lambda: BatchRejection("inverse_confidence", class_prior="freq")),
        (ValueError, "class_prior", lambda: BatchRejection("inverse_confidence", class_prior=torch.zeros(3))),
        (ValueError, "momentum", lambda: BatchRejection(lambda x: x, momentum=1.0)),
        (TypeError, "generator", lambda: BatchRejection(lambda x: x, generator=1)),
    ]
    br = BatchRejection(lambda x: x, log_M=0.0)
    ic = BatchRejection("inverse_confidence")
    cases += [
        (ValueError, "log_ratio", lambda: br(torch.zeros(5), log_ratio=torch.zeros(4))),
        (TypeError, "log_ratio", lambda: br(torch.zeros(5), log_ratio=torch.zeros(5, dtype=torch.int64))),
        (TypeError, r"tensors\[1\]", lambda: br(torch.zeros(5), [1, 2])),
        (ValueError, "at least one", lambda: br()),
        (ValueError, "logits", lambda: ic(torch.zeros(5))),
        (
            ValueError,
            "logits",
            lambda: ic(torch.zeros(5), logits=torch.zeros(5), labels=torch.zeros(5).long()),
        ),
        (TypeError, "labels", lambda: ic(torch.zeros(5), logits=torch.zeros(5, 2), labels=torch.zeros(5))),
        (
            ValueError,
            "domain_classifier",
            lambda: BatchRejection("density_ratio", n_source=1, n_target=1)(torch.zeros(5)),
        ),
        (ValueError, "tensors\\[1\\]", lambda: br(torch.zeros(5), torch.zeros(4), log_ratio=torch.zeros(5))),
    ]
    for exc, word, fn in cases:
        with pytest.raises(exc, match=word):
            fn()


# ---------------------------------------------------------------- freeze


def _model():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))


def test_freeze_by_name_prefix_and_module():
    m = _model()
    trainable = freeze(m, except_="2.1")
    assert [id(p) for p in trainable] == [id(m[2][1].weight), id(m[2][1].bias)]
    assert [p.requires_grad for p in m.parameters()] == [False, False, False, False, True, True]
    trainable = freeze(m, except_=["0.bias", m[2][0]])
    assert {id(p) for p in trainable} == {id(m[0].bias), id(m[2][0].weight), id(m[2][0].bias)}
    assert not m[2][1].weight.requires_grad  # frozen again: freeze sets every flag
    assert freeze(m) == [] and not any(p.requires_grad for p in m.parameters())
    assert len(freeze(m, except_="2")) == 4
    # a trainable head learns, the frozen rest does not move
    trainable = freeze(m, except_="2.1")
    before = m[0].weight.clone()
    opt = torch.optim.SGD(trainable, lr=0.1)
    m(torch.randn(8, 3)).sum().backward()
    opt.step()
    assert torch.equal(m[0].weight, before) and m[0].weight.grad is None


def test_freeze_prefix_matches_whole_names_only():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(2, 2)
            self.header = nn.Linear(2, 2)

    n = Net()
    assert {id(p) for p in freeze(n, except_="head")} == {id(n.head.weight), id(n.head.bias)}


def test_freeze_bad_inputs():
    m = _model()
    with pytest.raises(ValueError, match=r"except_\[0\].*'3'"):
        freeze(m, except_="3")
    with pytest.raises(ValueError, match=r"except_\[1\]"):
        freeze(m, except_=["0", nn.Linear(2, 2)])
    with pytest.raises(TypeError, match=r"except_\[0\]"):
        freeze(m, except_=[1])
    with pytest.raises(TypeError, match="except_"):
        freeze(m, except_=5)
    with pytest.raises(TypeError, match="model"):
        freeze("model")
    assert all(p.requires_grad for p in m.parameters())  # a refused call changes nothing


# ---------------------------------------------------------------- the demo


def test_demo_batch_json_quick(monkeypatch, capsys):
    monkeypatch.setenv("RSFAST_DEMO_QUICK", "1")
    assert cli.main(["demo", "batch", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    for key in ("target_accuracy_plain", "target_accuracy_rejection", "acceptance_rate", "seconds"):
        assert isinstance(res[key], float), key
    assert res["quick"] is True and 0 < res["acceptance_rate"] < 0.2
    assert res["rows_accepted"] == round(res["acceptance_rate"] * res["rows_seen"])
    assert z_p(res["rows_accepted"], np.full(res["rows_seen"], res["expected_acceptance_rate"])) > ALPHA


def test_demo_batch_meets_its_bar_on_the_default_seed():
    res = run_demo(0)
    assert res["target_accuracy_rejection"] >= res["target_accuracy_plain"] + 0.03, res
    assert res["target_accuracy_rejection"] > 0.9
