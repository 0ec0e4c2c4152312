"""ProposalTuner with its default settings on targets that are not the demo: unequal mode weights, a
number of components different from the number of modes, anisotropic modes in 3 and 5 dimensions, a
start far from the modes and a curved (banana) target. Each multimodal target reaches an acceptance
of 0.4 (the banana, which eight normals cannot follow closely, 0.15), which EM alone stalls below
(a negative control shows the old behaviour fails the threshold), and the samples drawn with the
tuned proposal and its envelope pass chi-square (mode masses) and Kolmogorov-Smirnov (exact 1-D
marginals) tests against the target."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, chisq_p, gen, ks_p

import rsfast
from rsfast.finetune import ModeCollapseWarning, ProposalTuner
from rsfast.proposals import MixtureNormal

pytestmark = pytest.mark.timeout(300)

#: The acceptance every multimodal holdout target must reach with the default settings.
BAR = 0.4
#: The curved target: eight normals cannot follow the bend closely (measured 0.18; EM alone 0.03).
BANANA_BAR = 0.15
SAMPLES = 20_000


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Mixture:
    """Target: a mixture of diagonal normals, weights w [J], loc [J, D], scale [J, D] (float64)."""

    def __init__(self, w, loc, scale) -> None:
        self.w = torch.as_tensor(w, dtype=torch.float64) / float(sum(w))
        self.loc = torch.as_tensor(loc, dtype=torch.float64)
        self.scale = torch.as_tensor(scale, dtype=torch.float64).expand_as(self.loc)

    def component_log_prob(self, x):
        z = (x.double().unsqueeze(1) - self.loc) / self.scale
        d = self.loc.shape[1]
        return (
            self.w.log() - 0.5 * z.pow(2).sum(-1) - self.scale.log().sum(-1) - 0.5 * d * math.log(2 * math.pi)
        )

    def __call__(self, x):
        return torch.logsumexp(self.component_log_prob(x), 1).to(x.dtype)

    def marginal_cdf(self, j):
        w, m, s = (t.numpy() for t in (self.w, self.loc[:, j], self.scale[:, j]))
        return lambda v: (w * st.norm.cdf((np.asarray(v)[..., None] - m) / s)).sum(-1)

    def exact(self, n, generator):
        """n exact draws of the target (torch's own sampling, independent of rsfast)."""
        comp = torch.multinomial(self.w, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.loc.shape[1], dtype=torch.float64, generator=generator)
        return self.loc[comp] + self.scale[comp] * noise

    def check(self, samples):
        """(chi-square p of the counts per cell -- a draw's cell is its most likely component -- against
        the cell masses of the target, measured on 10^6 exact draws; smallest KS p of the exact 1-D
        marginals)."""
        cells = len(self.w)
        probs = torch.bincount(self.component_log_prob(self.exact(10**6, gen(99))).argmax(1), minlength=cells)
        counts = torch.bincount(self.component_log_prob(samples).argmax(1), minlength=cells)
        ks = min(ks_p(samples[:, j], self.marginal_cdf(j)) for j in range(self.loc.shape[1]))
        return chisq_p(counts.numpy(), probs.double().numpy()), ks


def ring(weights, radius=5.0, spread=0.5):
    a = torch.arange(len(weights), dtype=torch.float64) * (2 * math.pi / len(weights))
    return Mixture(weights, torch.stack([radius * a.cos(), radius * a.sin()], 1), [spread])


def banana(x):
    """Curved 2-D target: x1 ~ N(0, 1.5^2) truncated to |x1| <= 3, x2 | x1 ~ N(0.4 x1^2 - 1, 0.5^2)."""
    x1, x2 = x[:, 0].double(), x[:, 1].double()
    lp = -0.5 * (x1 / 1.5) ** 2 - 0.5 * ((x2 - 0.4 * x1**2 + 1) / 0.5) ** 2
    return torch.where(x1.abs() <= 3, lp, torch.full_like(lp, -math.inf)).to(x.dtype)


def banana_check(samples):
    x1, x2 = samples[:, 0].double(), samples[:, 1].double()
    a = 3 / 1.5
    p1 = ks_p(x1 / 1.5, st.truncnorm(-a, a))
    p2 = ks_p((x2 - 0.4 * x1**2 + 1) / 0.5, st.norm())
    return p1, p2


def start(k, d, seed, loc_std=3.0, scale=3.0, shift=0.0):
    g = gen(seed)
    return MixtureNormal(
        torch.zeros(k), loc_std * torch.randn(k, d, generator=g) + shift, torch.full((k, d), scale)
    )


_G5 = gen(11)
_LOC5 = 4 * torch.randn(4, 5, generator=_G5)
_SCALE5 = 0.5 + torch.rand(4, 5, generator=_G5)

CASES = {
    # The reported stall: 6 modes, unequal weights, 8 starting components (EM alone: acceptance ~0.18).
    "ring6_unequal_k8": (ring([0.5, 0.2, 0.1, 0.1, 0.05, 0.05]), lambda: start(8, 2, 1)),
    # As many components as modes: every component is needed.
    "ring5_unequal_k5_far": (
        ring([0.4, 0.3, 0.15, 0.1, 0.05], radius=4.0),
        lambda: start(5, 2, 5, loc_std=1.0, scale=4.0, shift=6.0),
    ),
    "d3_anisotropic_k8": (
        Mixture(
            [0.6, 0.3, 0.1],
            [[4.0, 0, 0], [-3, 3, 1], [0, -4, -2]],
            [[1.5, 0.4, 0.6], [0.5, 1.0, 0.3], [0.3, 0.3, 1.2]],
        ),
        lambda: start(8, 3, 3),
    ),
    "d5_4modes_k8": (Mixture([0.4, 0.3, 0.2, 0.1], _LOC5, _SCALE5), lambda: start(8, 5, 4, 4.0, 4.0)),
    "banana_k8": (banana, lambda: start(8, 2, 6)),
}


def _fit(name, **kw):
    target, make = CASES[name]
    tuner = ProposalTuner(make(), target, eval_draws=1 << 14, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        tuned = tuner.fit(generator=gen(1))
    return target, tuner, tuned


#: Cases marked slow (the suite still runs them): about 10 s each on an idle core.
SLOW = ("ring5_unequal_k5_far", "d3_anisotropic_k8")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_default_tuner_reaches_the_bar_with_exact_samples(name):
    target, tuner, tuned = _fit(name)
    res = rsfast.sample(target, tuned, SAMPLES, generator=gen(2))
    bar = BANANA_BAR if name == "banana_k8" else BAR
    assert res.acceptance_rate >= bar, (name, tuner.report.summary())
    assert res.num_overweight == 0
    # The estimate of the report agrees with the acceptance of the sampler (each estimates log M
    # from its own pilot draws).
    assert tuner.report.after.acceptance == pytest.approx(res.acceptance_rate, rel=0.2)
    p1, p2 = target.check(res.samples) if isinstance(target, Mixture) else banana_check(res.samples)
    assert p1 > ALPHA and p2 > ALPHA, (name, p1, p2)


def test_em_alone_stalls_on_the_reported_case():
    """Negative control: without split moves and polish (the old default) the same case stays far
    below the bar, so the test above can fail."""
    _, tuner, _ = _fit("ring6_unequal_k8", max_moves=0, polish=False)
    assert tuner.report.after.acceptance < 0.3


def test_checks_reject_a_wrong_law():
    """The exactness checks reject samples of a slightly wrong mixture (one weight moved by 0.03)."""
    target = CASES["ring6_unequal_k8"][0]
    wrong = ring([0.47, 0.23, 0.1, 0.1, 0.05, 0.05])
    fitted = MixtureNormal(wrong.w.log().float(), wrong.loc.float(), torch.full((6, 2), 0.55))
    res = rsfast.sample(wrong, fitted, SAMPLES, generator=gen(3))
    assert min(target.check(res.samples)) < ALPHA
