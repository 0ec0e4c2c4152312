"""``rsfast demo perturb``: fine-tune a small MLP without gradients by accepted/undone perturbations.

The task is made here: inputs x ~ N(0, I_8); a *source* function
``f(x) = sin(a·x) + 0.5 tanh(b·x)`` on which an MLP (8 -> 32 -> 32 -> 1, tanh, 1,409 parameters) is
pretrained with Adam, and a *target* function ``f(x) + 0.6 sin(c·x) - 0.3`` (a shifted task) on
which the pretrained MLP is fine-tuned with :class:`rsfast.finetune.PerturbationTuner` (greedy,
T = 0; σ adapted toward 20 % acceptance), using only forward passes. ``loss_before`` /
``loss_after`` are the mean squared errors on the target training set (the tuned objective);
``eval_loss_before`` / ``eval_loss_after`` the same on held-out target data.

Memory (``peak_memory_ratio``): measured by tracking the storages that torch allocates, with a
:class:`torch.utils._python_dispatch.TorchDispatchMode` that sees every op: an op output whose
storage is not one of the op's inputs' storages is a new allocation of ``storage.nbytes()``; it is
freed when the last tensor object referring to it (tracked by weak-reference finalisers) is
collected. The ratio is (model + data + peak live allocations while the tuner is built and run)
over (model + data + peak live allocations during one forward pass and loss on the training set),
both measured the same way; what a backprop step would need (one forward, backward and Adam step,
measured the same way) is reported as ``backprop_memory_ratio`` for comparison. The perturbation
kernel itself allocates nothing (checked by the test suite on a 400 MB tensor).
"""

from __future__ import annotations

import json
import math
import os
import time
import weakref
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..finetune.perturbation import PerturbationTuner

#: One line for ``rsfast demo`` (the list) and its place in it.
DESCRIPTION = "fine-tune a small MLP without gradients (PerturbationTuner)"
ORDER = 2

__all__ = ["run", "demo_metrics", "LiveMemory"]

SEED = 0
DIM, HIDDEN = 8, 32
N_TRAIN, N_EVAL = 2048, 2048
#: (pretraining Adam steps, tuning steps): full, and quick (``RSFAST_DEMO_QUICK=1``, for smoke tests).
STEPS = {False: (400, 1500), True: (150, 300)}


class LiveMemory(TorchDispatchMode):
    """Bytes of tensor storages allocated by torch ops inside the mode and still referenced: ``live``
    now, ``peak`` the largest seen. Storages that an op only reads, views or writes in place are not
    counted (they belong to the op's inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage pointer -> [tensor objects alive, nbytes]

    def _release(self, key: int) -> None:
        ref = self._refs.get(key)
        if ref is None:
            return
        ref[0] -= 1
        if ref[0] == 0:
            self.live -= ref[1]
            del self._refs[key]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, Tensor) and t.device.type != "meta"
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, Tensor):
                continue
            key = t.untyped_storage().data_ptr()
            if key == 0:
                continue
            if key in self._refs:
                self._refs[key][0] += 1
            elif key not in inputs:
                nbytes = t.untyped_storage().nbytes()
                self._refs[key] = [1, nbytes]
                self.live += nbytes
                self.peak = max(self.peak, self.live)
            else:
                continue
            weakref.finalize(t, self._release, key)
        return out


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(DIM, HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN, 1),
    )


def _task(g: torch.Generator) -> dict[str, Tensor]:
    a, b, c = (torch.randn(DIM, generator=g) / math.sqrt(DIM) * 1.5 for _ in range(3))

    def source(x: Tensor) -> Tensor:
        return torch.sin(x @ a) + 0.5 * torch.tanh(x @ b)

    def target(x: Tensor) -> Tensor:
        return source(x) + 0.6 * torch.sin(x @ c) - 0.3

    xs = torch.randn(N_TRAIN, DIM, generator=g)
    xt = torch.randn(N_TRAIN, DIM, generator=g)
    xe = torch.randn(N_EVAL, DIM, generator=g)
    return {
        "x_src": xs,
        "y_src": source(xs).unsqueeze(1),
        "x_tgt": xt,
        "y_tgt": target(xt).unsqueeze(1),
        "x_eval": xe,
        "y_eval": target(xe).unsqueeze(1),
    }


def _bytes(tensors: Any) -> int:
    return sum(t.untyped_storage().nbytes() for t in tensors)


def demo_metrics(quick: bool = False, progress: bool = False) -> dict[str, Any]:
    """Run the demo (pretraining, then the tuning steps of :data:`STEPS`) and return its metrics.

    Runs on one CPU thread (torch's count is restored afterwards): the model is tiny, and on a small
    shared machine a second thread only adds waiting at every op's barrier."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _demo(*STEPS[quick], progress)
    finally:
        torch.set_num_threads(threads)


def _demo(pretrain_steps: int, steps: int, progress: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)  # nn.Linear's initialisation
    data = _task(g)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(pretrain_steps):  # gradient pretraining on the source task (not the demo's subject)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(data["x_src"]), data["y_src"]).backward()
        opt.step()
    del opt
    for p in model.parameters():
        p.grad = None
        p.requires_grad_(False)
    x, y = data["x_tgt"], data["y_tgt"]

    def loss_fn() -> Tensor:
        return torch.nn.functional.mse_loss(model(x), y)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(data["x_eval"]), data["y_eval"]))

    static = _bytes(model.parameters()) + _bytes(data.values())
    with torch.no_grad(), LiveMemory() as fwd:
        float(loss_fn())
    # What one backprop step on a copy of the model would need, measured the same way.
    copy = _mlp()
    copy.load_state_dict(model.state_dict())
    with LiveMemory() as bp:
        opt = torch.optim.Adam(copy.parameters(), lr=1e-3)
        torch.nn.functional.mse_loss(copy(x), y).backward()
        opt.step()
        del opt
    del copy

    eval_before = eval_loss()
    t_tune = time.perf_counter()
    with LiveMemory() as tune_mem:
        tuner = PerturbationTuner(
            model.parameters(),
            loss_fn,
            sigma=0.01,
            acceptance_temperature=0.0,
            generator=torch.Generator().manual_seed(SEED + 1),
            target_acceptance=0.2,
            adapt_rate=0.05,
        )
        tuner.run(steps, progress=progress)
    tune_seconds = time.perf_counter() - t_tune
    return {
        "loss_before": tuner.initial_loss,
        "loss_after": tuner.loss,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_loss(),
        "acceptance_rate": tuner.acceptance_rate,
        "steps": steps,
        "final_sigma": tuner.sigma,
        "parameters": sum(p.numel() for p in model.parameters()),
        "peak_memory_ratio": (static + tune_mem.peak) / (static + fwd.peak),
        "backprop_memory_ratio": (static + bp.peak) / (static + fwd.peak),
        "memory_bytes": {"model_and_data": static, "forward_peak": fwd.peak, "tuning_peak": tune_mem.peak},
        "tune_seconds": tune_seconds,
        "seconds": time.perf_counter() - t0,
    }


def run(json_output: bool) -> int:
    """``rsfast demo perturb``: prints progress (a tqdm bar when tqdm is installed), then the metrics;
    with ``json_output`` only one JSON line. ``RSFAST_DEMO_QUICK=1`` runs the short smoke-test
    setting. Returns the exit status 0."""
    quick = os.environ.get("RSFAST_DEMO_QUICK", "0") not in ("", "0")
    if not json_output:
        print(
            f"pretraining an MLP ({DIM}->{HIDDEN}->{HIDDEN}->1) on a source task, then fine-tuning it on a "
            f"shifted target task with {STEPS[quick][1]} gradient-free perturbation steps...",
            flush=True,
        )
    m = demo_metrics(quick=quick, progress=not json_output)
    if json_output:
        print(json.dumps(m))
        return 0
    print(f"train MSE {m['loss_before']:.4f} -> {m['loss_after']:.4f}; held-out MSE "
          f"{m['eval_loss_before']:.4f} -> {m['eval_loss_after']:.4f}")  # fmt: skip
    print(f"acceptance rate {m['acceptance_rate']:.3f}, final sigma {m['final_sigma']:.3g}")
    print(f"peak memory while tuning / model + one forward pass: {m['peak_memory_ratio']:.3f} "
          f"(one backprop + Adam step: {m['backprop_memory_ratio']:.3f})")  # fmt: skip
    print(f"{m['seconds']:.1f} s in all ({m['tune_seconds']:.1f} s tuning)")
    return 0
