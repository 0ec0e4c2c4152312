"""In-batch rejection: train on the rows of each batch accepted with probability ``min(1, ratio / M)``.

:class:`BatchRejection` computes a ratio per row of a training batch, keeps each row with probability
``min(1, ratio / M)`` (one call of :func:`rsfast.accept_compact_rows`: one pass, stable order) and
returns the accepted sub-batch, optionally with importance weights, while tracking how many rows it
accepts. Ratios:

* ``"density_ratio"``: target over source density from a domain classifier ``c(x) = P(target | x)``
  trained on ``n_source`` source and ``n_target`` target examples:
  ``ratio = c / (1 - c) * n_source / n_target``; the classifier returns the logit of c, so
  ``log ratio = logit + log(n_source / n_target)``. The accepted rows of source batches are then
  distributed like the target (exactly so where ``ratio <= M``): domain adaptation by rejection, as DSIR
  selects data offline.
* ``"inverse_confidence"``: ``ratio = p_hat(y) / p(y | x; theta)`` from the model's logits and the
  labels: rows the model finds unlikely are kept more often (focus on what the model gets wrong).
  ``p_hat`` is an empirical label probability: ``class_prior="uniform"`` (default, ``1 / C``) or a
  tensor of class frequencies ``[C]``.
* a callable ``ratio(*tensors) -> log_ratio [B]``: any ratio, returned as its natural **log**.

Ratios are computed without gradient (they choose rows; the loss of the chosen rows is what trains).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import ops
from .._random import draw_seed

__all__ = ["BatchRejection", "Selection"]

_RATIOS = ("density_ratio", "inverse_confidence")


@dataclass
class Selection:
    """The accepted sub-batch of one :class:`BatchRejection` call.

    Attributes:
        tensors: the accepted rows of each tensor passed, in row order (``sync=True``: exactly ``count``
            rows; ``sync=False``: B rows, zero rows after the first ``count``).
        weights: float32 [rows]: the importance weight of each accepted row (``max(1, ratio / M)`` with
            ``importance_correction``, else 1); 0 on the padding rows of ``sync=False``.
        count: accepted rows, int64 0-d tensor on the batch's device.
        log_ratio: the log ratios of the whole batch, [B], detached.
        log_M: the log envelope used for this batch (a float, or a 0-d tensor for ``"batch_max"``).
    """

    tensors: tuple[Tensor, ...]
    weights: Tensor
    count: Tensor
    log_ratio: Tensor
    log_M: float | Tensor

    def __iter__(self):  # noqa: ANN204 - ``x, y = br(x, y)`` unpacks the accepted tensors
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __getitem__(self, i: int) -> Tensor:
        return self.tensors[i]

    def loss(self, losses: Tensor, normalization: str = "self") -> Tensor:
        """Reduce per-row losses [rows] of the accepted rows to one scalar.

        ``"self"`` (default): ``sum(w * loss) / sum(w)``, the self-normalised weighted mean (0 when no row
        was accepted): consistent for the target risk ``E_target[loss]`` whenever the ratio is
        proportional to the target/source density ratio. ``"unbiased"``: ``M / B * sum(w * loss)``, an
        unbiased estimate of ``E_source[ratio * loss]`` (= ``E_target[loss]`` when the ratio is the exact,
        normalised density ratio), with a higher variance. Both need ``weights`` (``importance_correction``)
        to stay exact where ``ratio > M``.
        """
        w = self.weights.to(losses.dtype)
        if normalization == "self":
            return (w * losses).sum() / w.sum().clamp(min=torch.finfo(losses.dtype).tiny)
        if normalization == "unbiased":
            b = self.log_ratio.shape[0]
            log_M = self.log_M if isinstance(self.log_M, Tensor) else torch.tensor(self.log_M)
            return (w * losses).sum() * torch.exp(log_M.to(losses.device, losses.dtype)) / max(b, 1)
        raise ValueError(f"normalization must be 'self' or 'unbiased', got {normalization!r}")


class BatchRejection:
    """Keep each row of a training batch with probability ``min(1, ratio / M)``; train on the kept rows.

    Args:
        ratio: ``"density_ratio"``, ``"inverse_confidence"`` or a callable ``ratio(*tensors) -> [B]``
            returning the natural log of each row's ratio (see the module docstring).
        log_M: natural log of the envelope M: a finite float, a 0-d tensor, or ``"batch_max"`` (M = the
            largest finite ratio of each batch, so the most extreme row is always kept; adaptive, hence no
            longer an exact rejection sampler across batches). Rows with ``ratio > M`` are always kept;
            ``importance_correction`` restores their missing weight.
        importance_correction: give each accepted row the weight ``max(1, ratio / M)`` (see
            :meth:`Selection.loss`); without it every weight is 1.
        domain_classifier: for ``"density_ratio"``: a callable (an ``nn.Module``) mapping inputs [B, ...] to
            the logit of P(target | x), [B] or [B, 1]. May instead be passed per call as ``domain_logits``.
        n_source, n_target: for ``"density_ratio"``: the numbers of source and target examples the
            classifier was trained on (the prior odds it learnt are removed).
        class_prior: for ``"inverse_confidence"``: ``"uniform"`` (p_hat(y) = 1/C) or a tensor [C] of class
            probabilities (e.g. label frequencies of the training set).
        sync: True: the accepted tensors have exactly ``count`` rows (one host sync per call on CUDA).
            False: B rows with zero padding and zero weights, no host sync (use :meth:`Selection.loss`).
        generator: torch.Generator the per-call Philox seeds are drawn from (None: torch's default CPU
            generator).
        momentum: of the running acceptance rate (exponential moving average over calls).

    Example::

        br = BatchRejection("density_ratio", log_M=math.log(4.0), domain_classifier=clf,
                            n_source=len(src), n_target=len(tgt), importance_correction=True)
        for x, y in loader:
            sel = br(x, y)                  # accepted rows of x and y
            xa, ya = sel.tensors
            loss = sel.loss(F.cross_entropy(model(xa), ya, reduction="none"))
            loss.backward(); opt.step(); opt.zero_grad()
        br.acceptance_rate, br.num_accepted, br.expected_accepted
    """

    def __init__(
        self,
        ratio: str | Callable[..., Tensor] = "density_ratio",
        *,
        log_M: float | Tensor | str = 0.0,
        importance_correction: bool = False,
        domain_classifier: Callable[[Tensor], Tensor] | None = None,
        n_source: int | None = None,
        n_target: int | None = None,
        class_prior: str | Tensor = "uniform",
        sync: bool = True,
        generator: torch.Generator | None = None,
        momentum: float = 0.9,
    ) -> None:
        if isinstance(ratio, str):
            if ratio not in _RATIOS:
                raise ValueError(f"ratio must be one of {_RATIOS} or a callable, got {ratio!r}")
        elif not callable(ratio):
            raise TypeError(f"ratio must be a str or a callable, got {type(ratio).__name__}")
        self.ratio = ratio
        if isinstance(log_M, str):
            if log_M != "batch_max":
                raise ValueError(f"log_M must be a float, a 0-d tensor or 'batch_max', got {log_M!r}")
        elif isinstance(log_M, Tensor):
            if log_M.numel() != 1 or not log_M.dtype.is_floating_point:
                raise ValueError(
                    f"log_M must be a one-element floating tensor, got {log_M.dtype} {tuple(log_M.shape)}"
                )
        elif isinstance(log_M, bool) or not isinstance(log_M, (int, float)):
            raise TypeError(f"log_M must be a float, a 0-d tensor or 'batch_max', got {type(log_M).__name__}")
        elif not math.isfinite(log_M):
            raise ValueError(f"log_M must be finite, got {log_M}")
        self.log_M = float(log_M) if isinstance(log_M, (int, float)) else log_M
        if not isinstance(importance_correction, bool):
            raise TypeError(
                f"importance_correction must be a bool, got {type(importance_correction).__name__}"
            )
        self.importance_correction = importance_correction
        if domain_classifier is not None and not callable(domain_classifier):
            raise TypeError(f"domain_classifier must be callable, got {type(domain_classifier).__name__}")
        self.domain_classifier = domain_classifier
        self.log_prior_odds = 0.0
        if ratio == "density_ratio":
            for name, n in (("n_source", n_source), ("n_target", n_target)):
                if isinstance(n, bool) or not isinstance(n, int):
                    raise TypeError(f"{name} must be an int (examples the domain classifier saw), got {n!r}")
                if n <= 0:
                    raise ValueError(f"{name} must be > 0, got {n}")
            self.log_prior_odds = math.log(n_source / n_target)
        if isinstance(class_prior, str):
            if class_prior != "uniform":
                raise ValueError(f"class_prior must be 'uniform' or a tensor [C], got {class_prior!r}")
        elif isinstance(class_prior, Tensor):
            if class_prior.dim() != 1 or not class_prior.dtype.is_floating_point:
                raise ValueError(
                    f"class_prior must be a floating tensor [C], got {class_prior.dtype} "
                    f"{tuple(class_prior.shape)}"
                )
            if not bool((class_prior > 0).all()):
                raise ValueError("class_prior must be positive")
        else:
            raise TypeError(f"class_prior must be 'uniform' or a tensor, got {type(class_prior).__name__}")
        self.class_prior = class_prior
        if not isinstance(sync, bool):
            raise TypeError(f"sync must be a bool, got {type(sync).__name__}")
        self.sync = sync
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.reset_stats()

    # ------------------------------------------------------------------ statistics

    def reset_stats(self) -> None:
        """Zero the acceptance statistics."""
        self._seen = 0
        self._batches = 0
        self._accepted: Tensor | None = None  # int64 0-d on the batches' device (no sync per call)
        self._expected: Tensor | None = None  # float64 0-d: sum of min(1, ratio / M)
        self._running: Tensor | None = None  # EMA of the per-batch acceptance rate

    @property
    def num_seen(self) -> int:
        """Rows offered so far."""
        return self._seen

    @property
    def num_batches(self) -> int:
        return self._batches

    @property
    def num_accepted(self) -> int:
        """Rows accepted so far."""
        return 0 if self._accepted is None else int(self._accepted)

    @property
    def expected_accepted(self) -> float:
        """Sum over the rows offered so far of their acceptance probability ``min(1, ratio / M)``: the
        expected value of :attr:`num_accepted` (NaN ratios count 0)."""
        return 0.0 if self._expected is None else float(self._expected)

    @property
    def acceptance_rate(self) -> float:
        """``num_accepted / num_seen`` (NaN before the first batch)."""
        return self.num_accepted / self._seen if self._seen else math.nan

    @property
    def running_acceptance_rate(self) -> float:
        """Exponential moving average (``momentum``) of the per-batch acceptance rate."""
        return math.nan if self._running is None else float(self._running)

    def stats(self) -> dict[str, float]:
        """All statistics as plain numbers."""
        return {
            "num_batches": self._batches,
            "num_seen": self._seen,
            "num_accepted": self.num_accepted,
            "expected_accepted": self.expected_accepted,
            "acceptance_rate": self.acceptance_rate,
            "running_acceptance_rate": self.running_acceptance_rate,
        }

    # ------------------------------------------------------------------ ratios

    def log_ratio(
        self,
        *tensors: Tensor,
        logits: Tensor | None = None,
        labels: Tensor | None = None,
        inputs: Tensor | None = None,
        domain_logits: Tensor | None = None,
    ) -> Tensor:
        """Natural log of each row's ratio, [B], detached (see the class docstring for the arguments of
        :meth:`__call__`)."""
        with torch.no_grad():
            if callable(self.ratio):
                lr = self.ratio(*tensors)
                if not isinstance(lr, Tensor):
                    raise TypeError(f"the ratio callable must return a Tensor, got {type(lr).__name__}")
                return lr.detach()
            if self.ratio == "density_ratio":
                if domain_logits is None:
                    if self.domain_classifier is None:
                        raise ValueError(
                            "density_ratio needs domain_classifier (constructor) or domain_logits"
                        )
                    x = inputs if inputs is not None else (tensors[0] if tensors else None)
                    if x is None:
                        raise ValueError(
                            "density_ratio needs the classifier's inputs: pass tensors or inputs="
                        )
                    domain_logits = self.domain_classifier(x)
                if not isinstance(domain_logits, Tensor):
                    raise TypeError(f"domain logits must be a Tensor, got {type(domain_logits).__name__}")
                d = domain_logits.detach()
                if d.dim() == 2 and d.shape[1] == 1:
                    d = d[:, 0]
                if d.dim() != 1:
                    raise ValueError(f"domain logits must be [B] or [B, 1], got {tuple(domain_logits.shape)}")
                return d + self.log_prior_odds
            # inverse_confidence
            if logits is None or labels is None:
                raise ValueError("inverse_confidence needs logits= [B, C] and labels= [B]")
            if not isinstance(logits, Tensor) or not isinstance(labels, Tensor):
                raise TypeError("logits and labels must be Tensors")
            if logits.dim() != 2 or labels.shape != (logits.shape[0],):
                raise ValueError(
                    f"inverse_confidence needs logits [B, C] and labels [B], got {tuple(logits.shape)} and "
                    f"{tuple(labels.shape)}"
                )
            if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
            logp = torch.log_softmax(logits.detach().float(), -1)
            log_py = logp.gather(1, labels.long().unsqueeze(1))[:, 0]
            if isinstance(self.class_prior, Tensor):
                if self.class_prior.shape[0] != logits.shape[1]:
                    raise ValueError(
                        f"class_prior has {self.class_prior.shape[0]} classes, logits {logits.shape[1]}"
                    )
                log_hat = torch.log(self.class_prior.to(logits.device, torch.float32))[labels.long()]
            else:
                log_hat = torch.full_like(log_py, -math.log(logits.shape[1]))
            return log_hat - log_py

    # ------------------------------------------------------------------ selection

    def __call__(
        self,
        *tensors: Tensor,
        logits: Tensor | None = None,
        labels: Tensor | None = None,
        inputs: Tensor | None = None,
        domain_logits: Tensor | None = None,
        log_ratio: Tensor | None = None,
    ) -> Selection:
        """Select the accepted rows of ``tensors`` (each with leading dimension B).

        Args:
            *tensors: the batch (inputs, labels, anything row-aligned: any dtype).
            logits, labels: for ``"inverse_confidence"``: the model's logits [B, C] on the batch and the
                labels [B] (``labels`` defaults to ``tensors[1]`` when omitted and there are two tensors
                or more).
            inputs: for ``"density_ratio"``: what the domain classifier reads (default ``tensors[0]``).
            domain_logits: for ``"density_ratio"``: precomputed logits of P(target | x), [B].
            log_ratio: [B]: use these log ratios instead of computing them.

        Returns:
            a :class:`Selection` (unpacks as the accepted tensors).
        """
        if not tensors:
            raise ValueError("pass at least one tensor (the batch)")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"tensors[{i}] must be a Tensor, got {type(t).__name__}")
        if log_ratio is None:
            if self.ratio == "inverse_confidence" and labels is None and len(tensors) >= 2:
                labels = tensors[1]
            log_ratio = self.log_ratio(
                *tensors, logits=logits, labels=labels, inputs=inputs, domain_logits=domain_logits
            )
        elif not isinstance(log_ratio, Tensor):
            raise TypeError(f"log_ratio must be a Tensor, got {type(log_ratio).__name__}")
        log_ratio = log_ratio.detach()
        b = tensors[0].shape[0] if tensors[0].dim() else -1
        if log_ratio.shape != (b,):
            raise ValueError(
                f"log_ratio must have shape [{b}] (one per row of the batch), got {tuple(log_ratio.shape)}"
            )
        if not log_ratio.dtype.is_floating_point:
            raise TypeError(f"log_ratio must be floating, got {log_ratio.dtype}")
        if log_ratio.dtype in (torch.float16, torch.bfloat16):
            log_ratio = log_ratio.float()

        log_M: float | Tensor = self.log_M
        if isinstance(log_M, str):  # batch_max: the largest finite ratio (0 when none is finite)
            finite = torch.isfinite(log_ratio)
            lm = torch.where(finite, log_ratio, torch.full_like(log_ratio, -math.inf)).max() if b else None
            log_M = torch.where(torch.isfinite(lm), lm, torch.zeros_like(lm)) if lm is not None else 0.0
        elif isinstance(log_M, Tensor):
            log_M = log_M.to(log_ratio.device, log_ratio.dtype).reshape(())

        extra = [log_ratio] if self.importance_correction else []
        outs, count = ops.accept_compact_rows(
            log_ratio, log_M, [*tensors, *extra], draw_seed(self.generator), 0, sync=self.sync
        )
        rows = outs[0].shape[0]
        valid = (torch.arange(rows, device=count.device) < count).to(torch.float32)
        if self.importance_correction:
            lr_acc = outs.pop()
            excess = (lr_acc - log_M).clamp(min=0)  # log max(1, ratio / M); 0 on padding rows
            weights = torch.exp(excess).to(torch.float32) * valid
        else:
            weights = valid
        self._update_stats(log_ratio, log_M, count, b)
        return Selection(tuple(outs), weights, count, log_ratio, log_M)

    def _update_stats(self, log_ratio: Tensor, log_M: float | Tensor, count: Tensor, b: int) -> None:
        with torch.no_grad():
            p = torch.exp((log_ratio - log_M).clamp(max=0)).double()  # min(1, ratio / M)
            expected = torch.nan_to_num(p, nan=0.0).sum()
            rate = count.double() / max(b, 1)
            if self._accepted is None:
                self._accepted = count.clone()
                self._expected = expected
                self._running = rate
            else:
                self._accepted = self._accepted + count
                self._expected = self._expected + expected
                self._running = self.momentum * self._running + (1 - self.momentum) * rate
        self._seen += b
        self._batches += 1
