"""``rsfast demo batch``: domain adaptation of a classifier head by in-batch density-ratio rejection.

The task (made here, 2-D so that it runs in seconds on a CPU):

* label rule ``y = 1[x2 > |x1| - 0.5]`` (a V-shaped boundary) in both domains;
* source domain ``x ~ N((-1.5, 0), I)``: mostly the left arm of the V; target domain
  ``x ~ N((1.25, 0), diag(0.5^2, 1))``: the right arm, where source examples are rare (~2 %);
* a feature extractor (MLP 2 -> 32 -> 4, tanh) pretrained with a linear head on labelled source
  examples, then frozen (:func:`rsfast.finetune.freeze`): the head alone is fine-tuned, and a linear
  head cannot follow both arms, so what it is trained on decides where it is right;
* unlabelled target examples and the labelled source ones train a domain classifier (logistic
  regression on quadratic features, which is exact for two Gaussians), giving
  ``ratio(x) = c(x) / (1 - c(x)) * n_source / n_target``.

The head is fine-tuned from the pretrained one twice, on the same stream of source batches: (i)
plainly, every row of every batch, and (ii) with :class:`rsfast.finetune.BatchRejection`
(``"density_ratio"``, M = the 99th percentile of the ratio on the source set, importance correction
for the 1 % above it): only the accepted rows, which are distributed like the target. Target accuracy
is measured on held-out labelled target examples that no training step sees.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..finetune.batch import BatchRejection
from ..finetune.freeze import freeze

#: One line for ``rsfast demo`` (the list) and its place in it.
DESCRIPTION = (
    "covariate shift: a frozen-backbone head fine-tuned plainly vs with density-ratio batch rejection"
)
ORDER = 3

__all__ = ["run", "run_demo", "label_rule"]

SOURCE_MEAN, SOURCE_SD = (-1.5, 0.0), (1.0, 1.0)
TARGET_MEAN, TARGET_SD = (1.25, 0.0), (0.5, 1.0)
#: Output width of the frozen extractor (the head's inputs).
FEATURES = 4


def label_rule(x: Tensor) -> Tensor:
    """``1[x2 > |x1| - 0.5]`` for x [n, 2], int64 [n]."""
    return (x[:, 1] > x[:, 0].abs() - 0.5).long()


def _gaussian(n: int, mean: tuple[float, float], sd: tuple[float, float], g: torch.Generator) -> Tensor:
    return torch.tensor(mean) + torch.tensor(sd) * torch.randn(n, 2, generator=g)


def _quadratic(x: Tensor) -> Tensor:
    return torch.cat([x, x * x, x[:, :1] * x[:, 1:]], 1)


class DomainClassifier(nn.Module):
    """Logistic regression on (x1, x2, x1^2, x2^2, x1 x2): returns the logit of P(target | x), [n]."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(5, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(_quadratic(x))[:, 0]


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run_demo(seed: int = 0, quick: bool = False, features: int = FEATURES) -> dict[str, Any]:
    """Run the demo once; return its metrics (see the module docstring).

    ``quick`` shrinks every stage (data, pretraining and fine-tuning steps) for smoke tests; its
    accuracies are not meant to meet the demo's bar. ``features`` is the extractor's output width.
    Runs on one CPU thread (the models are tiny: more threads only add overhead), restored after.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_demo(seed, quick, features)
    finally:
        torch.set_num_threads(threads)


def _run_demo(seed: int, quick: bool, features: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # parameter initialisation
    n_src, n_tgt, n_test = (2000, 1000, 1000) if quick else (10_000, 5_000, 5_000)
    steps_pre, steps_ft, batch = (40, 40, 512) if quick else (200, 300, 1024)

    xs = _gaussian(n_src, SOURCE_MEAN, SOURCE_SD, g)
    ys = label_rule(xs)
    xt = _gaussian(n_tgt, TARGET_MEAN, TARGET_SD, g)  # unlabelled target examples
    xt_test = _gaussian(n_test, TARGET_MEAN, TARGET_SD, g)
    yt_test = label_rule(xt_test)
    xs_test = _gaussian(n_test, SOURCE_MEAN, SOURCE_SD, g)
    ys_test = label_rule(xs_test)

    # 1. Pretrain extractor + head on the labelled source set.
    extractor = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, features), nn.Tanh())
    model = nn.Sequential(extractor, nn.Linear(features, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps_pre):
        i = torch.randint(0, n_src, (256,), generator=g)
        loss = F.cross_entropy(model(xs[i]), ys[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head_params = freeze(model, except_="1")  # the head, model[1]
    head_state = {k: v.clone() for k, v in model[1].state_dict().items()}
    pretrained_target = _accuracy(model, xt_test, yt_test)

    # 2. Domain classifier: source (label 0) vs unlabelled target (label 1).
    clf = DomainClassifier()
    xd = torch.cat([xs, xt])
    d = torch.cat([torch.zeros(n_src), torch.ones(n_tgt)])
    lbfgs = torch.optim.LBFGS(clf.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        lbfgs.zero_grad()
        loss = F.binary_cross_entropy_with_logits(clf(xd), d)
        loss.backward()
        return loss

    lbfgs.step(closure)
    clf.requires_grad_(False)
    log_prior_odds = math.log(n_src / n_tgt)
    with torch.no_grad():
        log_ratio_src = clf(xs) + log_prior_odds
    log_M = float(torch.quantile(log_ratio_src, 0.99))

    # 3. Fine-tune the head from the pretrained one, (i) plainly and (ii) with batch rejection, on the
    #    same stream of source batches.
    batches = [torch.randint(0, n_src, (batch,), generator=g) for _ in range(steps_ft)]
    results: dict[str, Any] = {}
    rejection = None
    for mode in ("plain", "rejection"):
        model[1].load_state_dict(head_state)
        opt = torch.optim.Adam(head_params, lr=1e-2)
        rejection = BatchRejection(
            "density_ratio",
            log_M=log_M,
            domain_classifier=clf,
            n_source=n_src,
            n_target=n_tgt,
            importance_correction=True,
            generator=torch.Generator().manual_seed(seed + 1),
        )
        for i in batches:
            x, y = xs[i], ys[i]
            if mode == "plain":
                loss = F.cross_entropy(model(x), y)
            else:
                sel = rejection(x, y)
                xa, ya = sel.tensors
                if xa.shape[0] == 0:
                    continue
                loss = sel.loss(F.cross_entropy(model(xa), ya, reduction="none"))
            opt.zero_grad()
            loss.backward()
            opt.step()
        results[f"target_accuracy_{mode}"] = _accuracy(model, xt_test, yt_test)
        results[f"source_accuracy_{mode}"] = _accuracy(model, xs_test, ys_test)
    assert rejection is not None
    return {
        "target_accuracy_plain": results["target_accuracy_plain"],
        "target_accuracy_rejection": results["target_accuracy_rejection"],
        "target_accuracy_pretrained": pretrained_target,
        "source_accuracy_plain": results["source_accuracy_plain"],
        "source_accuracy_rejection": results["source_accuracy_rejection"],
        "acceptance_rate": rejection.acceptance_rate,
        "expected_acceptance_rate": rejection.expected_accepted / max(rejection.num_seen, 1),
        "rows_seen": rejection.num_seen,
        "rows_accepted": rejection.num_accepted,
        "log_M": log_M,
        "fine_tune_steps": steps_ft,
        "batch_size": batch,
        "seed": seed,
        "quick": quick,
        "seconds": time.perf_counter() - t0,
    }


def run(json_output: bool) -> int:
    """``rsfast demo batch``: print the metrics (``--json``: one JSON line); exit status 0.

    ``RSFAST_DEMO_QUICK=1`` in the environment runs the quick setting (smoke tests)."""
    res = run_demo(quick=os.environ.get("RSFAST_DEMO_QUICK", "0") not in ("", "0"))
    if json_output:
        print(json.dumps(res))
        return 0
    print("rsfast demo batch: covariate shift, frozen source-pretrained extractor, linear head fine-tuned")
    print(f"  target accuracy, pretrained head        : {res['target_accuracy_pretrained']:.3f}")
    print(f"  target accuracy, plain fine-tuning      : {res['target_accuracy_plain']:.3f}")
    print(f"  target accuracy, density-ratio rejection: {res['target_accuracy_rejection']:.3f}")
    print(
        f"  source accuracy, plain / rejection      : {res['source_accuracy_plain']:.3f} / "
        f"{res['source_accuracy_rejection']:.3f}"
    )
    print(
        f"  acceptance rate {res['acceptance_rate']:.4f} (expected {res['expected_acceptance_rate']:.4f}), "
        f"{res['rows_accepted']} of {res['rows_seen']} rows; {res['seconds']:.1f} s"
    )
    return 0
