"""ProposalTuner and the trainable MixtureNormal: acceptance rises for each loss on two targets, samples
stay exact after tuning, the report is sane, gradients are right, the mode-collapse guard fires when it
should and only then, generic modules work, bad input is refused, and the demo runs."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, chisq_p, gen, ks_p

import rsfast
from rsfast import cli, ops
from rsfast.demos import proposal as demo
from rsfast.finetune import ModeCollapseWarning, ProposalMetrics, ProposalTuner, TuningReport
from rsfast.finetune.proposal import DefensiveMixture
from rsfast.proposals import MixtureNormal, Normal, Proposal

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _one_thread():
    # The tuner's tensors are small: one thread is fastest, and on a loaded 2-core machine a second
    # thread makes every small op wait for a descheduled worker (conftest restores the count).
    torch.set_num_threads(1)


def donut(x):
    """A ring-shaped density: |x| ~ 4 +- 0.4; no mixture of a few normals fits it exactly."""
    return -0.5 * ((x.norm(dim=-1) - 4.0) / 0.4) ** 2


# Per loss: tuner options and steps, short enough for the suite, long enough to converge.
SETTINGS = {
    "fkl": (dict(batch_size=2048), 40),
    "chi2": (dict(batch_size=2048, lr=0.1), 150),
    "rkl": (dict(batch_size=2048, lr=0.05, anneal_steps=200), 400),
}
TARGETS = {"ring": demo.log_target, "donut": donut}


def _tune(target, loss, seed=1):
    kw, steps = SETTINGS[loss]
    tuner = ProposalTuner(demo.initial_proposal(), target, loss, eval_draws=1 << 14, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        tuned = tuner.fit(steps=steps, generator=gen(seed))
    return tuner, tuned


@pytest.fixture(scope="module")
def ring_fkl():
    torch.set_num_threads(1)
    return _tune(demo.log_target, "fkl")


# ---------------------------------------------------------------- MixtureNormal as a module


def test_mixture_normal_is_a_trainable_module_and_a_proposal():
    q = MixtureNormal([0.0, 1.0], [[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [0.5, 1.5]])
    assert isinstance(q, Proposal) and isinstance(q, torch.nn.Module)
    assert isinstance(q, torch.distributions.Distribution) and q.has_rsample
    assert [n for n, _ in q.named_parameters()] == ["logits", "loc", "log_scale"]
    torch.testing.assert_close(q.scale, torch.tensor([[1.0, 2.0], [0.5, 1.5]]))
    params = q.params()
    assert all(type(p) is torch.Tensor and not p.requires_grad for p in params)
    # sample() is the fused kernel on the detached parameters: the same bits as ops.propose.
    x = q.sample((1000,), generator=gen(3))
    seed = rsfast._random.draw_seed(gen(3))
    torch.testing.assert_close(x, ops.propose("mixture_normal", params, 1000, seed, 0)[0], rtol=0, atol=0)
    # log_prob agrees with torch.distributions and is differentiable.
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=q.logits.detach()),
        torch.distributions.Independent(torch.distributions.Normal(q.loc.detach(), q.scale.detach()), 1),
    )
    torch.testing.assert_close(q.log_prob(x), ref.log_prob(x), rtol=1e-5, atol=1e-5)
    assert q(x).requires_grad
    # rsfast.sample uses the kernel and leaves no gradient on the parameters.
    res = rsfast.sample(lambda v: -2.0 * (v * v).sum(-1), q, 100, generator=gen(4), on_overweight="ignore")
    assert res.samples.shape == (100, 2) and all(p.grad is None for p in q.parameters())
    moved = q.double()
    assert moved.dtype == torch.float64 and moved.sample((5,)).dtype == torch.float64


def test_mixture_normal_rsample_gradients_match_finite_differences():
    torch.manual_seed(0)
    q = MixtureNormal(torch.randn(3), torch.randn(3, 2), torch.rand(3, 2) + 0.5).double()

    def f(module):  # a smooth function of the draws, with the same components and noise each call
        x = module.rsample((64,), generator=gen(7))
        return (torch.sin(x) * x).sum()

    f(q).backward()
    for name in ("loc", "log_scale"):
        p = getattr(q, name)
        grad = p.grad.clone()
        fd = torch.zeros_like(p)
        h = 1e-6
        for idx in np.ndindex(*p.shape):
            with torch.no_grad():
                p[idx] += h
                up = float(f(q))
                p[idx] -= 2 * h
                down = float(f(q))
                p[idx] += h
            fd[idx] = (up - down) / (2 * h)
        torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-6)
    assert q.logits.grad is None  # the component choice carries no gradient: documented

    # rsample_components: E_q[f] as sum_k w_k E_k[f] is differentiable in the logits too; for f = x
    # the estimate of E_q[x] is sum_k w_k mean_k(x); its gradient in logits is analytic.
    q.zero_grad()
    xk = q.rsample_components(50_000, generator=gen(8))
    est = (torch.softmax(q.logits, 0).unsqueeze(1) * xk[..., 0]).sum(0).mean()
    est.backward()
    w = torch.softmax(q.logits.detach(), 0)
    m = xk[..., 0].detach().mean(1)
    torch.testing.assert_close(q.logits.grad, w * (m - (w * m).sum()), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(float(est.detach()), float(q.mean[0].detach()), rtol=0, atol=0.02)


# ---------------------------------------------------------------- acceptance and exactness


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("loss", ["fkl", "chi2", "rkl"])
def test_acceptance_rises(target, loss, ring_fkl):
    tuner, tuned = ring_fkl if (target, loss) == ("ring", "fkl") else _tune(TARGETS[target], loss)
    r = tuner.report
    gain = {"ring": 5.0, "donut": 2.5}[target]
    assert r.after.acceptance >= gain * r.before.acceptance, r.summary()
    if target == "ring":
        assert r.after.acceptance >= 0.3, r.summary()
    assert r.after.overweight_rate <= 1e-3 and r.after.overweight_mass <= 1e-2, r.summary()


def _mode_stats(samples):
    c = demo.centers(samples.dtype)
    mode = torch.cdist(samples, c).argmin(1)
    counts = torch.bincount(mode, minlength=demo.MODES)
    z = (samples - c[mode]) / demo.SPREAD
    return counts, z


def test_samples_exact_after_tuning(ring_fkl):
    tuner, tuned = ring_fkl
    assert isinstance(tuned, MixtureNormal)  # the defensive mixture keeps the fused kernel
    res = rsfast.sample(demo.log_target, tuned, 60_000, generator=gen(11), on_overweight="raise")
    assert res.acceptance_rate >= 0.3 and res.acceptance_rate >= 5 * tuner.report.before.acceptance
    counts, z = _mode_stats(res.samples)
    assert chisq_p(counts.numpy(), np.full(demo.MODES, 1.0)) > ALPHA
    for j in range(2):
        assert ks_p(z[:, j], st.norm) > ALPHA
    # Negative control: the tuned proposal's own draws (no rejection) fail the same checks.
    raw = tuned.sample((60_000,), generator=gen(12))
    counts, z = _mode_stats(raw)
    p_values = [chisq_p(counts.numpy(), np.full(demo.MODES, 1.0))] + [
        ks_p(z[:, j], st.norm) for j in range(2)
    ]
    assert min(p_values) < ALPHA


def test_report_fields(ring_fkl):
    tuner, _ = ring_fkl
    r = tuner.report
    assert isinstance(r, TuningReport) and isinstance(r.after, ProposalMetrics)
    for m in (r.before, r.after):
        assert 0 < m.acceptance <= 1 and 0 < m.efficiency <= 1 and 0 < m.ess_per_sample <= 1
        assert 0 <= m.overweight_rate <= 1 and 0 <= m.overweight_mass <= 1 and math.isfinite(m.log_M)
        assert m.num_draws == 1 << 14
    assert r.before.defensive_share == pytest.approx(0.05, rel=1e-6)  # q_theta = reference at the start
    assert r.after.defensive_share < 0.05
    assert r.after.log_M < r.before.log_M and r.after.ess_per_sample > r.before.ess_per_sample
    assert r.loss == "fkl" and r.steps == len(r.loss_history) == 40 and r.stop_reason == "steps"
    assert r.seconds >= r.train_seconds > 0 and not r.mode_collapse and r.defensive == 0.05
    assert r.acceptance_gain == pytest.approx(r.after.acceptance / r.before.acceptance)
    assert [s for s, _ in r.efficiency_history] == list(range(40))
    assert "acceptance" in r.summary()


def test_plateau_stop_and_determinism():
    runs = []
    for _ in range(2):
        q = demo.initial_proposal()
        tuner = ProposalTuner(q, demo.log_target, batch_size=2048, eval_draws=1 << 12, max_steps=300)
        tuned = tuner.fit(generator=gen(5))
        runs.append((tuner.report, [p.detach().clone() for p in tuned.parameters()]))
    (r1, p1), (r2, p2) = runs
    assert r1.stop_reason == "plateau" and r1.steps < 300
    assert r1.loss_history == r2.loss_history and r1.after.acceptance == r2.after.acceptance
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_progress_bar_runs(capsys):
    pytest.importorskip("tqdm")
    tuner = ProposalTuner(demo.initial_proposal(), demo.log_target, batch_size=512, eval_draws=1 << 10)
    tuner.fit(steps=3, generator=gen(2), progress=True)
    assert tuner.report.steps == 3 and "ProposalTuner(fkl)" in capsys.readouterr().err


# ---------------------------------------------------------------- mode collapse


def _two_modes(x):
    return torch.logaddexp(
        -0.5 * ((x - 4.0) / 0.5).pow(2).sum(-1), -0.5 * ((x + 4.0) / 0.5).pow(2).sum(-1) + math.log(0.5)
    )


def test_mode_collapse_warning_fires_on_a_collapsed_proposal_only():
    reference = MixtureNormal([0.0], [[0.0, 0.0]], [[4.0, 4.0]])
    tuner = ProposalTuner(reference, _two_modes, defensive=0.0, eval_draws=1 << 14)
    collapsed = MixtureNormal([0.0], [[4.0, 4.0]], [[0.6, 0.6]])  # misses the mode at (-4, -4)
    with pytest.warns(ModeCollapseWarning, match="misses part of the target"):
        m = tuner.evaluate(collapsed, generator=gen(1))
    assert m.overweight_mass > 0.2  # a third of the target is outside the envelope
    good = MixtureNormal([0.0, math.log(0.5)], [[4.0, 4.0], [-4.0, -4.0]], [[0.6, 0.6], [0.6, 0.6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        m = tuner.evaluate(good, generator=gen(1))
    assert m.overweight_rate == 0 and m.overweight_mass < 1e-3
    # With a defensive component the envelope holds, but the trained part still misses a mode.
    tuner = ProposalTuner(reference, _two_modes, defensive=0.05, eval_draws=1 << 14)
    with pytest.warns(ModeCollapseWarning, match="defensive"):
        m = tuner.evaluate(MixtureNormal.combine([(0.95, collapsed), (0.05, reference)]), generator=gen(2))
    assert m.defensive_share > 0.2


# ---------------------------------------------------------------- generic modules


class AffineFlow(torch.nn.Module):
    """x = loc + exp(log_scale) * z, z ~ N(0, I): a one-layer flow with rsample and log_prob."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.loc = torch.nn.Parameter(torch.zeros(dim))
        self.log_scale = torch.nn.Parameter(torch.full((dim,), math.log(3.0)))

    def rsample(self, sample_shape=()):
        z = torch.randn(torch.Size(sample_shape) + self.loc.shape)
        return self.loc + torch.exp(self.log_scale) * z

    def log_prob(self, x):
        z = (x - self.loc) * torch.exp(-self.log_scale)
        return (-0.5 * z * z - self.log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)


class NumSamplesFlow(AffineFlow):
    """normflows' convention: sample(num_samples) -> (x, log q)."""

    def sample(self, num_samples=1):
        x = self.rsample((num_samples,))
        return x, self.log_prob(x)


def _shifted(x):
    return -0.5 * ((x - torch.tensor([2.0, -1.0])) / torch.tensor([0.7, 1.5])).pow(2).sum(-1)


@pytest.mark.parametrize("loss", ["rkl", "fkl"])
def test_generic_module_is_tuned_and_sampled(loss):
    flow = AffineFlow(2)
    tuner = ProposalTuner(flow, _shifted, loss, lr=0.1, batch_size=1024, eval_draws=1 << 13, anneal_steps=0)
    tuned = tuner.fit(steps=150, generator=gen(3))
    assert isinstance(tuned, DefensiveMixture) and tuned.proposal is flow
    r = tuner.report
    assert r.after.acceptance >= 3 * r.before.acceptance and r.after.acceptance > 0.5, r.summary()
    torch.testing.assert_close(flow.loc.detach(), torch.tensor([2.0, -1.0]), rtol=0, atol=0.15)
    res = rsfast.sample(_shifted, tuned, 20_000, generator=gen(4), on_overweight="raise")
    assert ks_p(res.samples[:, 0], st.norm(2.0, 0.7)) > ALPHA
    assert ks_p(res.samples[:, 1], st.norm(-1.0, 1.5)) > ALPHA


def test_normflows_style_module_works_with_rsfast_sample():
    flow = NumSamplesFlow(2)
    res = rsfast.sample(_shifted, flow, 5000, generator=gen(5), on_overweight="raise")
    assert res.samples.shape == (5000, 2) and not res.samples.requires_grad
    assert ks_p(res.samples[:, 1], st.norm(-1.0, 1.5)) > ALPHA


# ---------------------------------------------------------------- bad input


class NoLogProb(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(2))

    def sample(self, shape):
        return torch.randn(*shape, 2)


def test_bad_inputs_are_refused_naming_the_argument():
    q = demo.initial_proposal()
    with pytest.raises(TypeError, match="proposal must have a log_prob"):
        ProposalTuner(NoLogProb(), demo.log_target)
    with pytest.raises(TypeError, match="proposal must be a torch.nn.Module with trainable"):
        ProposalTuner(Normal([0.0, 0.0], [1.0, 1.0]), demo.log_target)
    with pytest.raises(TypeError, match="log_target"):
        ProposalTuner(q, "not callable")
    with pytest.raises(ValueError, match="loss must be one of"):
        ProposalTuner(q, demo.log_target, "kl")
    with pytest.raises(ValueError, match="defensive"):
        ProposalTuner(q, demo.log_target, defensive=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        ProposalTuner(q, demo.log_target, "rkl", optimizer="em")
    with pytest.raises(ValueError, match="batch_size"):
        ProposalTuner(q, demo.log_target, batch_size=0)
    tuner = ProposalTuner(q, demo.log_target, eval_draws=256)
    for steps, exc in ((0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="steps"):
            tuner.fit(steps=steps)
    with pytest.raises(TypeError, match="generator"):
        tuner.fit(steps=1, generator=3)
    with pytest.raises(TypeError, match="progress"):
        tuner.fit(steps=1, progress="yes")
    nan_target = ProposalTuner(
        q, lambda x: torch.where(x[:, 0] > 0, torch.nan, -(x[:, 0] ** 2)), eval_draws=256
    )
    with pytest.raises(ValueError, match="log_target returned NaN"):
        nan_target.fit(steps=2, generator=gen(0))
    pos_inf = ProposalTuner(q, lambda x: torch.full_like(x[:, 0], math.inf), eval_draws=256)
    with pytest.raises(ValueError, match=r"log_target returned NaN or \+inf|log_target returned \+inf"):
        pos_inf.fit(steps=2, generator=gen(0))
    detached = ProposalTuner(q, lambda x: demo.log_target(x.detach()), "rkl", eval_draws=256)
    with pytest.raises(ValueError, match="differentiable"):
        detached.fit(steps=2, generator=gen(0))
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in q.parameters())


# ---------------------------------------------------------------- demo


def test_demo_json(monkeypatch, capsys):
    monkeypatch.setenv("RSFAST_DEMO_QUICK", "1")
    assert "proposal" in cli.DEMOS
    assert cli.main(["demo", "proposal", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["acceptance_after"] >= 0.3 and out["acceptance_after"] >= 5 * out["acceptance_before"]
    assert out["seconds"] > 0 and out["overweight_rate"] <= 1e-3
    assert out["chi2_p"] > ALPHA and out["ks_p"] > ALPHA and out["figure"] in (None, demo.FIGURE)
