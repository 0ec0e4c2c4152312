"""The benchmark baselines of rsfast.reference (sample_torch_loop, sample_per_sample) draw from the
target too: a benchmark against a wrong baseline would compare against the wrong thing."""

from __future__ import annotations

import math

import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, gen, grid_log_M, ks_p

from rsfast import baselines as B
from rsfast import proposals

pytestmark = pytest.mark.timeout(60)

LOG_2PI = math.log(2 * math.pi)


def target(x):
    """N(1, 0.7^2), normalised, of x [m, 1]."""
    return -0.5 * ((x[:, 0] - 1.0) / 0.7) ** 2 - math.log(0.7) - 0.5 * LOG_2PI


PROPOSALS = {
    "rsfast Normal": proposals.Normal([0.0], [2.0]),
    "rsfast Uniform": proposals.Uniform([-4.0], [6.0]),
    "rsfast MixtureNormal": proposals.MixtureNormal([0.0, 0.5], [[-1.0], [2.0]], [[2.0], [1.5]]),
    "torch Normal": torch.distributions.Normal(torch.tensor([0.0]), torch.tensor([2.0])),
}


def _law_on_box(name):
    """The law the samples must follow: the target, truncated to the Uniform's box."""
    if name == "rsfast Uniform":
        n = st.norm(1.0, 0.7)
        lo, hi = n.cdf(-4.0), n.cdf(6.0)
        return lambda v: (n.cdf(v) - lo) / (hi - lo)
    return st.norm(1.0, 0.7)


@pytest.mark.parametrize("name", PROPOSALS)
def test_sample_torch_loop(name):
    prop = PROPOSALS[name]
    log_M = grid_log_M(
        target, prop if isinstance(prop, proposals.Proposal) else PROPOSALS["rsfast Normal"], -4, 6
    )
    s = B.sample_torch_loop(target, prop, 50_000, log_M, generator=gen(0))
    assert s.shape == (50_000, 1)
    assert ks_p(s[:, 0], _law_on_box(name)) > ALPHA
    assert ks_p(s[:, 0], st.norm(1.05, 0.7)) < ALPHA  # negative control


def test_sample_per_sample():
    prop = PROPOSALS["rsfast Normal"]
    s = B.sample_per_sample(target, prop, 2000, grid_log_M(target, prop, -12, 12), generator=gen(0))
    assert s.shape == (2000, 1)
    assert ks_p(s[:, 0], st.norm(1.0, 0.7)) > ALPHA
    assert ks_p(s[:, 0], st.norm(1.2, 0.7)) < ALPHA  # negative control at this smaller n


def test_baselines_are_bounded():
    never = lambda x: torch.full((x.shape[0],), -math.inf)  # noqa: E731
    with pytest.raises(RuntimeError):
        B.sample_torch_loop(
            never, PROPOSALS["rsfast Normal"], 10, 0.0, generator=gen(0), max_proposals=10_000
        )
    with pytest.raises(RuntimeError):
        B.sample_per_sample(never, PROPOSALS["rsfast Normal"], 1, 0.0, generator=gen(0), max_proposals=200)
