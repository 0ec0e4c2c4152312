"""Accept/reject fine-tuning of parameter perturbations, without gradients.

:class:`PerturbationTuner` proposes ``θ' = θ + σ z`` with ``z ~ N(0, I)`` drawn by the
:func:`rsfast.perturb_` kernel from a fresh Philox seed, evaluates the loss at θ' (no autograd),
and accepts with probability ``min(1, exp(-(L(θ') - L(θ)) / T))`` (T = 0: greedy, accept iff
``L(θ') <= L(θ)``). A rejected move is undone by regenerating the same noise from its seed and
subtracting it, so the tuner never stores Δθ: its memory is the model's inference memory (the
trick of MeZO, Malladi et al. 2023). Any loss works, non-differentiable ones included.

Undo error. float32: ``x + σz − σz`` is not exactly x; each do/undo pair leaves a few ulp of
rounding, unbiased (round to nearest even is symmetric). Measured: after 50 pairs (σ = 1e-3) on
1M N(0, 1) parameters the largest drift is 1.1e-6 and the mean drift 2e-11 (tests/test_perturb.py
bounds it by 5e-6 and checks the mean). float64: below 1e-15. float16/bfloat16: every call rounds to
the storage type (8 significant bits in bfloat16), so a rejected move leaves up to half an ulp of
the parameter (bfloat16: 0.2 % relative) per undo, a random walk that grows with the number of
rejections, and a σ below half an ulp may not move a parameter at all. Hence the default
``master_weights=True``: for float16/bfloat16 parameters the tuner keeps a float32 master copy
(4 bytes per such parameter), perturbs the master and writes ``round(master)`` into the parameter,
so rejected moves leave the parameter bit-identical and small σ accumulate. ``master_weights=False``
perturbs 16-bit parameters in place (no extra memory, inexact undo, documented above).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import ops
from .._random import draw_seed

__all__ = ["PerturbationStep", "PerturbationTuner"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class PerturbationStep:
    """One step of a :class:`PerturbationTuner`.

    Attributes:
        step: 0-based step number.
        seed: the Philox seed of the proposed noise (``perturb_(params, seed, sigma)`` replays it).
        sigma: the noise scale used by this step (before any adaptation it triggers).
        loss_before: the loss at the current parameters when the step started.
        proposed_loss: the loss at the perturbed parameters (NaN/inf count as a rejection).
        accepted: whether the move was kept.
        loss: the loss at the parameters after the step (proposed_loss if accepted, else loss_before).
    """

    step: int
    seed: int
    sigma: float
    loss_before: float
    proposed_loss: float
    accepted: bool
    loss: float


def _finite_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class PerturbationTuner:
    """Gradient-free fine-tuning by accepted or undone Gaussian perturbations of ``params``.

    Args:
        params: the tensors to tune, an iterable of Tensors / nn.Parameters (any subset of a model:
            a LoRA adapter, a head) or an ``nn.Module`` (all its parameters). float32, float64,
            float16 or bfloat16, contiguous; cpu or cuda. Duplicates (the same tensor twice) are kept
            once. Modified in place.
        loss_fn: ``loss_fn() -> float`` (or a one-element tensor), the objective at the current
            parameters; called under ``torch.no_grad()``. Lower is better. NaN or +inf proposals are
            rejected.
        sigma: the noise scale σ > 0 (standard deviation per parameter element).
        acceptance_temperature: T >= 0, the temperature of the Metropolis acceptance test (not a
            sampling temperature; ``temperature=`` is its deprecated spelling). T = 0: greedy,
            accept iff L(θ') <= L(θ) (ties are accepted, so the
            walk can cross plateaus of non-differentiable losses). T > 0: accept with probability
            ``min(1, exp(-(L(θ') - L(θ)) / T))`` (Metropolis; the chain then samples
            ``exp(-L / T)``, up to the σ adaptation).
        generator: torch.Generator for the seeds and the Metropolis uniforms (the default CPU
            generator when None). A seeded generator and a deterministic loss make the run
            reproducible bit for bit.
        target_acceptance: None (σ fixed) or a rate in (0, 1): after each step
            ``log σ += adapt_rate * (accepted - target_acceptance)`` (stochastic approximation with
            constant gain, which tracks the changing landscape), σ clamped to
            ``[sigma_min, sigma_max]``.
        adapt_rate: the gain of the σ adaptation, > 0.
        sigma_min, sigma_max: bounds of the adapted σ (0 < sigma_min <= sigma <= sigma_max).
        master_weights: True (default): a float32 master copy of each float16/bfloat16 parameter
            (none for float32/float64 ones), perturbed in their place, the parameter holding its
            rounding. False: perturb 16-bit parameters in place (no extra memory; undo is then
            inexact, see the module docstring).
        reevaluate: False (default): the loss at the current parameters is remembered from the last
            accepted step (one loss evaluation per step). True: evaluate it again at the start of
            every step (two per step), for stochastic losses (a fresh minibatch per call) so that
            both sides of the comparison see the same noise level.

    Attributes:
        history: list of :class:`PerturbationStep`, one per step taken.
        sigma: the current σ.
        loss: the loss at the current parameters (None before the first step).
        initial_loss: the loss before the first step (None before the first step).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | torch.nn.Module,
        loss_fn: Callable[[], float | Tensor],
        sigma: float,
        acceptance_temperature: float = 0.0,
        *,
        generator: torch.Generator | None = None,
        target_acceptance: float | None = None,
        adapt_rate: float = 0.05,
        sigma_min: float = 1e-8,
        sigma_max: float = 10.0,
        master_weights: bool = True,
        reevaluate: bool = False,
        temperature: float | None = None,
    ) -> None:
        if temperature is not None:
            warnings.warn(
                "PerturbationTuner(temperature=) is deprecated: use acceptance_temperature=",
                DeprecationWarning,
                stacklevel=2,
            )
            acceptance_temperature = temperature
        if isinstance(params, torch.nn.Module):
            params = list(params.parameters())
        elif isinstance(params, Tensor):
            params = [params]
        else:
            try:
                params = list(params)
            except TypeError:
                raise TypeError(
                    f"params must be an iterable of Tensors or an nn.Module, got {type(params).__name__}"
                ) from None
        unique: list[Tensor] = []
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}] must be a Tensor, got {type(p).__name__}")
            if p.dtype not in ops.PERTURB_DTYPES:
                raise TypeError(f"params[{i}] has dtype {p.dtype}; only floating parameters can be perturbed")
            if not p.is_contiguous():
                raise ValueError(
                    f"params[{i}] must be contiguous (perturb_ works in place on contiguous data)"
                )
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        if not unique:
            raise ValueError("params is empty: nothing to tune")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        sigma = _finite_float(sigma, "sigma")
        sigma_min = _finite_float(sigma_min, "sigma_min")
        sigma_max = _finite_float(sigma_max, "sigma_max")
        if not 0 < sigma_min <= sigma <= sigma_max:
            raise ValueError(
                f"need 0 < sigma_min <= sigma <= sigma_max, got {sigma_min}, {sigma}, {sigma_max}"
            )
        temperature = _finite_float(acceptance_temperature, "acceptance_temperature")
        if temperature < 0:
            raise ValueError(f"acceptance_temperature must be >= 0, got {temperature}")
        if target_acceptance is not None:
            target_acceptance = _finite_float(target_acceptance, "target_acceptance")
            if not 0 < target_acceptance < 1:
                raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance}")
        adapt_rate = _finite_float(adapt_rate, "adapt_rate")
        if adapt_rate <= 0:
            raise ValueError(f"adapt_rate must be > 0, got {adapt_rate}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if not isinstance(master_weights, bool):
            raise TypeError(f"master_weights must be a bool, got {type(master_weights).__name__}")
        if not isinstance(reevaluate, bool):
            raise TypeError(f"reevaluate must be a bool, got {type(reevaluate).__name__}")

        self.params = unique
        self.loss_fn = loss_fn
        self.sigma = sigma
        self.acceptance_temperature = temperature
        self.generator = generator
        self.target_acceptance = target_acceptance
        self.adapt_rate = adapt_rate
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.reevaluate = reevaluate
        use_master = master_weights
        # The tensors the kernel perturbs, in parameter order (tensor i keeps noise index i): a float32
        # master in place of each 16-bit parameter when master weights are on.
        self._masters: list[tuple[Tensor, Tensor]] = []
        self._targets: list[Tensor] = []
        with torch.no_grad():
            for p in unique:
                if use_master and p.dtype in _LOW_PRECISION:
                    m = p.detach().to(torch.float32).contiguous()
                    self._masters.append((p, m))
                    self._targets.append(m)
                else:
                    self._targets.append(p)
        self.history: list[PerturbationStep] = []
        self.loss: float | None = None
        self.initial_loss: float | None = None

    # ------------------------------------------------------------------ internals

    def _evaluate(self) -> float:
        with torch.no_grad():
            value = self.loss_fn()
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"loss_fn must return a scalar, got a tensor of shape {tuple(value.shape)}")
            return float(value.item())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"loss_fn must return a float or a one-element Tensor, got {type(value).__name__}"
            )
        return float(value)

    def _move(self, seed: int, scale: float) -> None:
        ops.perturb_(self._targets, seed, scale)
        if self._masters:
            with torch.no_grad():
                for p, m in self._masters:
                    p.copy_(m)  # one rounding to the parameter's dtype

    def _uniform(self) -> float:
        device = self.generator.device if self.generator is not None else torch.device("cpu")
        return float(torch.rand((), generator=self.generator, device=device, dtype=torch.float64))

    # ------------------------------------------------------------------ public

    @property
    def temperature(self) -> float:
        """Deprecated spelling of :attr:`acceptance_temperature`."""
        warnings.warn(
            "PerturbationTuner.temperature is deprecated: use acceptance_temperature",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.acceptance_temperature

    @property
    def acceptance_rate(self) -> float:
        """Accepted steps / steps taken (NaN before the first step)."""
        if not self.history:
            return math.nan
        return sum(s.accepted for s in self.history) / len(self.history)

    def step(self) -> PerturbationStep:
        """Propose, evaluate, accept or undo; adapt σ if asked. Returns the step's record."""
        if self.loss is None or self.reevaluate:
            self.loss = self._evaluate()
            if self.initial_loss is None:
                self.initial_loss = self.loss
        old = self.loss
        sigma = self.sigma
        seed = draw_seed(self.generator)
        self._move(seed, sigma)
        new = self._evaluate()
        if self.acceptance_temperature > 0:
            u = self._uniform()  # drawn every step: the generator advances the same way whatever happens
            delta = new - old
            accept = math.isfinite(new) and (delta <= 0 or math.log(u) < -delta / self.acceptance_temperature)
        else:
            accept = math.isfinite(new) and new <= old
        if accept:
            self.loss = new
        else:
            self._move(seed, -sigma)
        if self.target_acceptance is not None:
            log_sigma = math.log(self.sigma) + self.adapt_rate * (float(accept) - self.target_acceptance)
            self.sigma = min(self.sigma_max, max(self.sigma_min, math.exp(log_sigma)))
        record = PerturbationStep(len(self.history), seed, sigma, old, new, accept, self.loss)
        self.history.append(record)
        return record

    def run(self, steps: int, progress: bool = False) -> list[PerturbationStep]:
        """Take ``steps`` steps; with ``progress=True`` show a tqdm bar (loss, acceptance, σ) when tqdm
        is installed. Returns the records of these steps."""
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps must be an int, got {type(steps).__name__}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # optional dependency: run without a bar
                tqdm = None
            if tqdm is not None:
                bar = tqdm(total=steps, desc="perturbation tuning", unit="step")
        start = len(self.history)
        try:
            for k in range(steps):
                rec = self.step()
                if bar is not None:
                    bar.update(1)
                    if k % 10 == 0 or k == steps - 1:
                        bar.set_postfix(loss=f"{rec.loss:.4g}", acc=f"{self.acceptance_rate:.2f}",
                                        sigma=f"{self.sigma:.3g}")  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        return self.history[start:]
