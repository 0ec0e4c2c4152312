"""Mixture-of-normals test targets for the ProposalTuner tests: known weights, exact draws (torch's own
sampling, independent of rsfast) and the checks the holdout tests apply to samples."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats as st
import torch
from _helpers import chisq_p, gen, ks_p


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
        """n exact draws of the target."""
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


def mass_outside(log_target, proposal, log_M: float, exact) -> float:
    """Fraction of the exact target draws ``exact`` [n, D] (float64) where p > M q: the target mass
    that rejection sampling with envelope exp(``log_M``) under-represents."""
    with torch.no_grad():
        lw = log_target(exact).double() - proposal.log_prob(exact.to(proposal.loc.dtype)).double()
    return float((lw > log_M).double().mean())
