"""Benchmark cases of ``slot_sample``: truncated_normal, von_mises, gamma, beta, and the same laws with one
parameter set per element (``<law>_per_element``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..common import (
    SEED,
    BenchCase,
    Prepared,
    _device,
    _generator,
)

#: Place of these cases in the report.
ORDER = 6

#: Samples per call of the distribution cases: (full, quick).
DIST_N = (2_000_000, 200_000)
#: Samples per call of scipy's truncnorm.rvs baseline (slow; compared by throughput): (full, quick).
SCIPY_N = (200_000, 50_000)


def _dist_check(items: dict[str, int], mean: float, sd: float) -> Callable[[str, Any], None]:
    """Sanity of a distribution case's output: shape, finite, sample mean within 8 standard errors."""

    def check(method: str, out: Any) -> None:

        a = out.detach().cpu().double().numpy() if isinstance(out, Tensor) else np.asarray(out, dtype=float)
        assert a.shape == (items[method],), f"{method}: shape {a.shape}"
        assert np.isfinite(a).all(), f"{method}: non-finite samples"
        se = sd / math.sqrt(a.size)
        assert abs(a.mean() - mean) < 8 * se + 1e-6, f"{method}: mean {a.mean()} vs {mean}"

    return check


def _dist_prepared(
    case: str, dev: torch.device, n: int, run_rsfast: Callable[[], Tensor], run_torch: Callable[[], Tensor],
    mean: float, sd: float, meta: dict[str, Any],
) -> Prepared:  # fmt: skip
    """A distribution case: n float32 samples per call from rsfast and from torch's sampler."""
    items = {"rsfast": n, "torch": n}
    return Prepared(
        case=case,
        unit="samples/s",
        methods={"rsfast": run_rsfast, "torch": run_torch},
        items=items,
        check=_dist_check(items, mean, sd),
        device=dev,
        meta={"n": n, "dtype": "float32", **meta},
    )


#: What brings an optional baseline's package: shown when that baseline is skipped.
_OPTIONAL_BASELINE_HINT = "pip install 'rsfast[bench]' (or 'rsfast[test]') brings it"


def _truncnorm_moments(a: float) -> tuple[float, float]:
    """Mean and sd of the standard normal truncated to [a, inf) (closed form; no scipy needed)."""
    lam = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi) / (0.5 * math.erfc(a / math.sqrt(2)))
    return lam, math.sqrt(1 + a * lam - lam * lam)


def _setup_truncated_normal(quick: bool, device: str) -> Prepared:
    from ...distributions import TruncatedNormal

    dev = _device(device)
    n, n_scipy = DIST_N[quick], SCIPY_N[quick]
    d = TruncatedNormal(*(torch.tensor(v, device=dev) for v in (0.0, 1.0, 3.0, math.inf)))
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    methods: dict[str, Callable[[], Any]] = {"rsfast": run_rsfast}
    items = {"rsfast": n}
    skipped: dict[str, str] = {}
    try:  # scipy is optional: without it rsfast is still timed and the scipy baseline is skipped
        import scipy.stats as st
    except ImportError:
        skipped["scipy"] = f"scipy is not installed; {_OPTIONAL_BASELINE_HINT}"
    else:
        ref = st.truncnorm(3.0, np.inf)

        def run_scipy() -> Any:
            return ref.rvs(n_scipy, random_state=np.random.default_rng(SEED))

        methods["scipy"] = run_scipy
        items["scipy"] = n_scipy
    mean, sd = _truncnorm_moments(3.0)
    return Prepared(
        case="truncated_normal",
        unit="samples/s",
        methods=methods,
        items=items,
        check=_dist_check(items, mean, sd),
        device=dev,
        meta={"n": n, "n_scipy": n_scipy, "law": "TruncatedNormal(0, 1, 3, inf)", "dtype": "float32"},
        skipped=skipped,
    )


def _setup_von_mises(quick: bool, device: str) -> Prepared:
    from ...distributions import VonMises

    dev = _device(device)
    n = DIST_N[quick]
    loc, k = torch.tensor(0.0, device=dev), torch.tensor(1.0, device=dev)
    d = VonMises(loc, k)
    ref = torch.distributions.VonMises(loc, k)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return ref.sample((n,))

    return _dist_prepared("von_mises", dev, n, run_rsfast, run_torch, 0.0, 1.3, {"law": "VonMises(0, 1)"})


def _setup_gamma(quick: bool, device: str) -> Prepared:
    from ...distributions import Gamma

    dev = _device(device)
    n = DIST_N[quick]
    d = Gamma(torch.tensor(2.5, device=dev), torch.tensor(1.0, device=dev))
    alpha = torch.full((n,), 2.5, device=dev)  # torch's sampler takes one concentration per sample
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return torch._standard_gamma(alpha, generator=g)

    meta = {"law": "Gamma(2.5, 1)", "baseline": "torch._standard_gamma"}
    return _dist_prepared("gamma", dev, n, run_rsfast, run_torch, 2.5, math.sqrt(2.5), meta)


def _setup_beta(quick: bool, device: str) -> Prepared:
    from ...distributions import Beta

    dev = _device(device)
    n = DIST_N[quick]
    c1, c0 = torch.tensor(2.0, device=dev), torch.tensor(3.0, device=dev)
    d = Beta(c1, c0)
    ref = torch.distributions.Beta(c1, c0)
    g = _generator(dev)

    def run_rsfast() -> Tensor:
        return d.sample((n,), generator=g)

    def run_torch() -> Tensor:
        return ref.sample((n,))

    return _dist_prepared("beta", dev, n, run_rsfast, run_torch, 0.4, 0.2, {"law": "Beta(2, 3)"})


# ---------------------------------------------------------------- per-element parameters
#
# One parameter set per output element (VAEs, Dirichlet layers, hierarchical models): the distribution
# is built on [n] parameter tensors and sampled once. Methods: ``rsfast`` (per-element parameters),
# ``rsfast_scalar`` (the same law with scalar parameters, n samples: the per-element overhead is the
# ``rsfast x`` of this row) and ``torch`` (torch's sampler on the same [n] parameters; scipy for the
# truncated normal, which torch lacks). The discrete laws' cases are in ``slot_discrete``.

#: Elements per call of the per-element cases: (full, quick).
PER_ELEMENT_N = (1_000_000, 200_000)


def _per_element_setup(
    case: str, cls_name: str, values: tuple[float, ...], baseline: str, mean: float, sd: float
) -> Callable[[bool, str], Prepared]:
    def setup(quick: bool, device: str) -> Prepared:
        from ... import distributions

        cls = getattr(distributions, cls_name)
        dev = _device(device)
        n = PER_ELEMENT_N[quick]
        vec = [torch.full((n,), v, device=dev) for v in values]
        d_vec = cls(*vec)
        d_one = cls(*(torch.tensor(v, device=dev) for v in values))
        g = _generator(dev)
        items = {"rsfast": n, "rsfast_scalar": n, baseline: n}

        def run_rsfast() -> Tensor:
            return d_vec.sample(generator=g)

        def run_scalar() -> Tensor:
            return d_one.sample((n,), generator=g)

        methods: dict[str, Callable[[], Any]] = {"rsfast": run_rsfast, "rsfast_scalar": run_scalar}
        skipped: dict[str, str] = {}
        if baseline == "scipy":  # truncated normal: per-element bounds in standard units
            try:  # scipy is optional: without it rsfast is still timed and this baseline is skipped
                import scipy.stats as st
            except ImportError:
                st = None
                skipped["scipy"] = f"scipy is not installed; {_OPTIONAL_BASELINE_HINT}"
                del items[baseline]
            if st is not None:
                n_scipy = SCIPY_N[quick]
                items[baseline] = n_scipy
                lo, hi = ((np.full(n_scipy, values[k]) - values[0]) / values[1] for k in (2, 3))

                def run_scipy() -> Any:
                    return st.truncnorm.rvs(lo, hi, random_state=np.random.default_rng(SEED))

                methods[baseline] = run_scipy
        elif cls_name == "Gamma":

            def run_gamma() -> Any:
                return torch._standard_gamma(vec[0], generator=g) / vec[1]

            methods[baseline] = run_gamma
        elif cls_name == "Poisson":

            def run_poisson() -> Any:
                return torch.poisson(vec[0], generator=g)

            methods[baseline] = run_poisson
        else:  # torch.distributions.<cls> on the same [n] parameters (global generator)
            ref = getattr(torch.distributions, cls_name)(*vec)
            methods[baseline] = ref.sample

        return Prepared(
            case=case,
            unit="samples/s",
            methods=methods,
            items=items,
            check=_dist_check(items, mean, sd),
            device=dev,
            meta={"n": n, "dtype": "float32", "law": f"{cls_name}{values}", "parameters": "per element"},
            skipped=skipped,
        )

    return setup


def per_element_cases(table: dict[str, tuple[str, tuple[float, ...], str, float, float]]) -> list[BenchCase]:
    """Bench cases from name -> (distribution class, parameters, baseline method, mean, sd)."""
    return [
        BenchCase(
            name,
            f"{cls}{vals}, float32, 1M distinct parameter rows (one sample each): rsfast vs its"
            f" scalar-parameter speed (rsfast_scalar) and {base}",
            _per_element_setup(name, cls, vals, base, mean, sd),
        )
        for name, (cls, vals, base, mean, sd) in table.items()
    ]


_TN_MEAN = 3.2830987  # TruncatedNormal(0, 1) on [3, inf): phi(3) / (1 - Phi(3)), and its sd
_TN_SD = 0.2656298
_VM_SD = 1.3

#: name -> (class, parameters, baseline method, mean, sd) of the continuous per-element cases.
PER_ELEMENT_CASES = {
    "truncated_normal_per_element": ("TruncatedNormal", (0.0, 1.0, 3.0, math.inf), "scipy", _TN_MEAN, _TN_SD),
    "von_mises_per_element": ("VonMises", (0.0, 1.0), "torch", 0.0, _VM_SD),
    "gamma_per_element": ("Gamma", (2.5, 1.0), "torch", 2.5, math.sqrt(2.5)),
    "beta_per_element": ("Beta", (2.0, 3.0), "torch", 0.4, 0.2),
}


#: The cases of this module, in report order.
CASES = [
    BenchCase(
        "truncated_normal",
        "TruncatedNormal(0, 1) on [3, inf), float32: rsfast slot kernel vs scipy.stats.truncnorm.rvs",
        _setup_truncated_normal,
    ),
    BenchCase(
        "von_mises",
        "VonMises(0, 1), float32: rsfast slot kernel vs torch.distributions.VonMises.sample",
        _setup_von_mises,
    ),
    BenchCase(
        "gamma",
        "Gamma(2.5, 1), float32: rsfast slot kernel vs torch._standard_gamma (same thread count)",
        _setup_gamma,
    ),
    BenchCase(
        "beta",
        "Beta(2, 3), float32: rsfast slot kernel vs torch.distributions.Beta.sample",
        _setup_beta,
    ),
    *per_element_cases(PER_ELEMENT_CASES),
]
