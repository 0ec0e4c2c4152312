"""ProposalTuner with its default settings on targets that are not the demo: unequal mode weights, a
number of components different from the number of modes, anisotropic modes in 3 and 5 dimensions, a
start far from the modes and a curved (banana) target. Each multimodal target reaches an acceptance
of 0.4 (the banana, which eight normals cannot follow closely, 0.15) with at most 1% of the target
(exact draws) outside the envelope rsfast.sample used, and the samples drawn with the tuned proposal
and that envelope pass chi-square (mode masses) and Kolmogorov-Smirnov (exact 1-D marginals) tests
against the target. Negative controls of the bar: test_proposal_tuner_coverage.py."""

from __future__ import annotations

import math
import warnings

import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, gen, ks_p
from _mixtures import Mixture, mass_outside

import rsfast
from rsfast.finetune import ModeCollapseWarning, ProposalTuner
from rsfast.proposals import MixtureNormal

pytestmark = pytest.mark.timeout(300)

#: The acceptance every multimodal holdout target must reach with the default settings.
BAR = 0.4
#: The curved target: eight normals cannot follow the bend closely (measured 0.18; EM alone 0.03).
BANANA_BAR = 0.15
SAMPLES = 20_000
#: Largest fraction of the target (exact draws) where p > M q, M the envelope rsfast.sample used.
MASS_OUTSIDE = 0.01


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def ring(weights, radius=5.0, spread=0.5):
    a = torch.arange(len(weights), dtype=torch.float64) * (2 * math.pi / len(weights))
    return Mixture(weights, torch.stack([radius * a.cos(), radius * a.sin()], 1), [spread])


def banana(x):
    """Curved 2-D target: x1 ~ N(0, 1.5^2) truncated to |x1| <= 3, x2 | x1 ~ N(0.4 x1^2 - 1, 0.5^2)."""
    x1, x2 = x[:, 0].double(), x[:, 1].double()
    lp = -0.5 * (x1 / 1.5) ** 2 - 0.5 * ((x2 - 0.4 * x1**2 + 1) / 0.5) ** 2
    return torch.where(x1.abs() <= 3, lp, torch.full_like(lp, -math.inf)).to(x.dtype)


def banana_exact(n, generator):
    """n exact draws of the banana (x1 by the inverse cdf of its truncated normal)."""
    u = torch.rand(n, dtype=torch.float64, generator=generator)
    x1 = torch.as_tensor(st.truncnorm(-2, 2).ppf(u.numpy())) * 1.5
    x2 = 0.4 * x1**2 - 1 + 0.5 * torch.randn(n, dtype=torch.float64, generator=generator)
    return torch.stack([x1, x2], 1)


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
    res = rsfast.sample(target, tuned, SAMPLES, generator=gen(2), on_overweight="ignore")
    bar = BANANA_BAR if name == "banana_k8" else BAR
    assert res.acceptance_rate >= bar, (name, tuner.report.summary())
    exact = target.exact(10**5, gen(5)) if isinstance(target, Mixture) else banana_exact(10**5, gen(5))
    assert mass_outside(target, tuned, res.log_M, exact) <= MASS_OUTSIDE, (name, res)
    if name == "banana_k8":
        # Its sup p / q sits on the edge of the support, where the ascent of log_M="auto" stops short:
        # a few draws may exceed the envelope (the mass outside it is bounded above).
        assert res.num_overweight <= 1e-4 * res.num_proposals
    else:
        assert res.num_overweight == 0
    # The estimate of the report agrees with the acceptance of the sampler (each estimates log M
    # from its own pilot draws).
    assert tuner.report.after.acceptance == pytest.approx(res.acceptance_rate, rel=0.2)
    p1, p2 = target.check(res.samples) if isinstance(target, Mixture) else banana_check(res.samples)
    assert p1 > ALPHA and p2 > ALPHA, (name, p1, p2)


def test_checks_reject_a_wrong_law():
    """The exactness checks reject samples of a slightly wrong mixture (one weight moved by 0.03)."""
    target = CASES["ring6_unequal_k8"][0]
    wrong = ring([0.47, 0.23, 0.1, 0.1, 0.05, 0.05])
    fitted = MixtureNormal(wrong.w.log().float(), wrong.loc.float(), torch.full((6, 2), 0.55))
    res = rsfast.sample(wrong, fitted, SAMPLES, generator=gen(3))
    assert min(target.check(res.samples)) < ALPHA
