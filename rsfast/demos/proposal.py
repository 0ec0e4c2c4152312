"""``rsfast demo proposal``: tune a broad mixture proposal to a ring of six modes with ProposalTuner.

Samples the target by rejection before and after tuning (``rsfast.sample``, ``log_M="auto"``),
reports the acceptance of both, checks that the samples after tuning are still exact (chi-square of
the mode frequencies, Kolmogorov-Smirnov of the in-mode coordinates) and saves a figure of the target
and of both proposals when matplotlib is installed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import torch
from torch import Tensor

#: One line for ``rsfast demo`` (the list) and its place in it.
DESCRIPTION = "ProposalTuner: tune a broad mixture proposal to a ring of 6 modes; acceptance before/after"
ORDER = 1

#: The target: MODES equal-weight isotropic normals of std SPREAD on a circle of radius RADIUS.
MODES, RADIUS, SPREAD = 6, 5.0, 0.5
#: Initial proposal: COMPONENTS normals of scale INIT_SCALE at locations ~ N(0, INIT_LOC^2).
COMPONENTS, INIT_LOC, INIT_SCALE = 12, 3.0, 3.0
FIGURE = "rsfast_demo_proposal.png"


def centers(dtype: torch.dtype = torch.float32) -> Tensor:
    """[MODES, 2] mode centres."""
    ang = torch.arange(MODES, dtype=torch.float64) * (2 * math.pi / MODES)
    return torch.stack([RADIUS * ang.cos(), RADIUS * ang.sin()], 1).to(dtype)


def log_target(x: Tensor) -> Tensor:
    """Unnormalised log density of the ring of modes, x [m, 2] -> [m]."""
    d = ((x.unsqueeze(1) - centers(x.dtype)) / SPREAD).pow(2).sum(-1)
    return torch.logsumexp(-0.5 * d, 1)


def initial_proposal(seed: int = 0) -> Any:
    from ..proposals import MixtureNormal

    g = torch.Generator().manual_seed(seed)
    loc = INIT_LOC * torch.randn(COMPONENTS, 2, generator=g)
    return MixtureNormal(torch.zeros(COMPONENTS), loc, torch.full((COMPONENTS, 2), INIT_SCALE))


def exactness(samples: Tensor) -> tuple[float, float]:
    """(chi-square p-value of the mode frequencies against 1/MODES each, smallest KS p-value of the
    in-mode coordinates (x - centre) / SPREAD against N(0, 1)), the modes assigned by nearest centre."""
    import numpy as np
    import scipy.stats as st

    c = centers(samples.dtype)
    mode = torch.cdist(samples, c).argmin(1)
    counts = torch.bincount(mode, minlength=MODES).double().numpy()
    chi_p = float(st.chisquare(counts, np.full(MODES, counts.sum() / MODES)).pvalue)
    z = ((samples - c[mode]) / SPREAD).double().numpy()
    ks = min(float(st.kstest(z[:, j], "norm").pvalue) for j in range(2))
    return chi_p, ks


def _figure(path: str, before: Any, after: Any) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    grid = torch.linspace(-8, 8, 201)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    with torch.no_grad():
        panels = [("target p", log_target(pts)), ("proposal before", before.log_prob(pts))]
        panels.append(("proposal after", after.log_prob(pts)))
    for ax, (title, lp) in zip(axes, panels):
        ax.contourf(xx.numpy(), yy.numpy(), torch.exp(lp - lp.max()).reshape(xx.shape).numpy(), levels=20)
        ax.set_title(title)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(json_output: bool, quick: bool | None = None) -> int:
    """Run the demo; ``quick`` (default: environment variable RSFAST_DEMO_QUICK=1) uses fewer draws.
    With ``json_output`` prints only one JSON line. Returns 0, or 1 when the samples fail the
    exactness tests at level 1e-3."""
    import rsfast
    from rsfast.finetune import ProposalTuner

    if quick is None:
        quick = os.environ.get("RSFAST_DEMO_QUICK", "") not in ("", "0")
    n = 20_000 if quick else 200_000
    say = (lambda *a: None) if json_output else print
    g = torch.Generator().manual_seed(2024)

    q0 = initial_proposal()
    say(
        f"target: {MODES} normals (std {SPREAD}) on a circle of radius {RADIUS}; initial proposal: "
        f"{COMPONENTS} normals of scale {INIT_SCALE}"
    )
    before = rsfast.sample(log_target, q0, n, generator=g)
    say(f"before: acceptance {before.acceptance_rate:.4f} ({before.num_proposals:,} proposals for {n:,})")

    tuner = ProposalTuner(
        q0, log_target, "fkl", eval_draws=1 << (14 if quick else 16), max_seconds=10.0 if quick else 30.0
    )
    t0 = time.perf_counter()
    tuned = tuner.fit(generator=g)
    seconds = time.perf_counter() - t0
    report = tuner.report
    assert report is not None
    say(report.summary())

    after = rsfast.sample(log_target, tuned, n, generator=g)
    chi_p, ks_p = exactness(after.samples)
    say(
        f"after: acceptance {after.acceptance_rate:.4f} ({after.num_proposals:,} proposals for {n:,}), "
        f"{after.acceptance_rate / before.acceptance_rate:.1f}x; overweight proposals "
        f"{after.num_overweight}; exactness: mode frequencies chi-square p = {chi_p:.3g}, in-mode KS p = "
        f"{ks_p:.3g}"
    )
    figure = _figure(FIGURE, initial_proposal(), tuned)
    if figure is None:
        say("matplotlib is not installed: no figure (pip install matplotlib)")
    else:
        say(f"figure: {figure}")
    ok = chi_p > 1e-3 and ks_p > 1e-3
    if json_output:
        print(
            json.dumps(
                {
                    "demo": "proposal",
                    "acceptance_before": before.acceptance_rate,
                    "acceptance_after": after.acceptance_rate,
                    "gain": after.acceptance_rate / before.acceptance_rate,
                    "seconds": seconds,
                    "steps": report.steps,
                    "stop_reason": report.stop_reason,
                    "log_M_before": before.log_M,
                    "log_M_after": after.log_M,
                    "overweight_rate": after.num_overweight / max(after.num_proposals, 1),
                    "estimated_acceptance_after": report.after.acceptance,
                    "efficiency_after": report.after.efficiency,
                    "chi2_p": chi_p,
                    "ks_p": ks_p,
                    "samples": n,
                    "torch_threads": torch.get_num_threads(),
                    "figure": figure,
                }
            )
        )
    if not ok:
        print("rsfast demo proposal: samples after tuning fail the exactness tests", file=sys.stderr)
    return 0 if ok else 1
