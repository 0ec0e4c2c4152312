"""Fuzzing the sampling surface: rsfast.sample, every proposal and distribution constructor, and their
``sample`` / ``log_prob``. Each call returns a valid result or raises an error naming an argument."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from _fuzz import ALL_DTYPES, attempt, finite, float_params, seeds, tensors, values
from hypothesis import given
from hypothesis import strategies as st

import rsfast
from rsfast import distributions as D
from rsfast import proposals, targets

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(600)]

SAMPLE_SHAPES = st.sampled_from([(), (0,), (1,), (3,), (2, 3), (0, 2), (5,)])
JUNK_SHAPES = st.sampled_from([(-1,), (2.5,), "3", None, (True,)])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check_log_prob(d, x: torch.Tensor, names) -> None:
    ok, lp = attempt(lambda: d.log_prob(x), names)
    if ok:
        assert not bool(torch.isnan(lp).any()), "log_prob of a sample is NaN"
        assert not bool((lp == math.inf).any()), "log_prob of a sample is +inf"


# ---------------------------------------------------------------- proposals


@given(loc=float_params(), scale=float_params(), shape=st.one_of(SAMPLE_SHAPES, JUNK_SHAPES))
def test_fuzz_proposal_normal(loc, scale, shape) -> None:
    ok, q = attempt(lambda: proposals.Normal(loc, scale), ["loc", "scale"])
    if not ok:
        return
    ok, x = attempt(lambda: q.sample(shape, generator=gen()), ["sample_shape", "shape"])
    if not ok:
        return
    assert x.shape == torch.Size(shape) + q.event_shape and x.dtype == q.dtype
    assert finite(x)
    flat = x.reshape(math.prod(shape), q.event_shape[0])
    _check_log_prob(q, flat, ["x"])


@given(low=float_params(), high=float_params(), shape=SAMPLE_SHAPES)
def test_fuzz_proposal_uniform(low, high, shape) -> None:
    ok, q = attempt(lambda: proposals.Uniform(low, high), ["low", "high"])
    if not ok:
        return
    x = q.sample(shape, generator=gen())
    assert x.shape == torch.Size(shape) + q.event_shape and x.dtype == q.dtype
    assert bool(((x >= q.low) & (x <= q.high)).all()), "uniform sample outside [low, high]"
    _check_log_prob(q, x.reshape(math.prod(shape), q.event_shape[0]), ["x"])


@st.composite
def mixture_params(draw):
    k, d = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    shapes = draw(st.sampled_from(["right", "wrong"]))
    if shapes == "right":
        return (draw(float_params((k,))), draw(float_params((k, d))), draw(float_params((k, d))))
    return tuple(draw(float_params()) for _ in range(3))


@given(params=mixture_params(), n=st.integers(0, 6))
def test_fuzz_proposal_mixture(params, n) -> None:
    ok, q = attempt(lambda: proposals.MixtureNormal(*params), ["logits", "loc", "scale"])
    if not ok:
        return
    x = q.sample((n,), generator=gen())
    assert x.shape == (n, q.event_shape[0]) and x.dtype == q.dtype
    assert finite(x)
    _check_log_prob(q, x, ["x"])


@given(params=mixture_params(), n=st.integers(0, 6))
def test_fuzz_target_mixture(params, n) -> None:
    ok, p = attempt(lambda: targets.MixtureNormal(*params), ["logits", "loc", "scale"])
    if not ok:
        return
    ok, x = attempt(lambda: p.sample((n,), generator=gen()), ["sample_shape", "generator"])
    if ok:
        assert x.shape[0] == n and x.dim() == 2 and finite(x)
        lp = p.log_prob(x)
        assert lp.shape == (n,) and not bool(torch.isnan(lp).any())


# ---------------------------------------------------------------- distributions

# (class, parameter names, support check(sample, distribution))
LAWS = [
    (D.TruncatedNormal, ("loc", "scale", "low", "high"), lambda x, d: (x >= d.low) & (x <= d.high)),
    (D.VonMises, ("loc", "concentration"), lambda x, d: (x >= -math.pi) & (x <= math.pi)),
    (D.Gamma, ("concentration", "rate"), lambda x, d: x >= 0),
    (D.Beta, ("concentration1", "concentration0"), lambda x, d: (x >= 0) & (x <= 1)),
    (D.Poisson, ("rate",), lambda x, d: (x >= 0) & (x == x.round())),
    (D.Binomial, ("total_count", "probs"), lambda x, d: (x >= 0) & (x <= d.total_count) & (x == x.round())),
]


@st.composite
def law_args(draw, n_params: int):
    shape = draw(st.sampled_from([(), (0,), (1,), (3,), (2, 1), (1, 3)]))
    mixed = draw(st.booleans())  # broadcastable shapes, or each its own (maybe incompatible)
    return [draw(float_params(None if mixed else shape)) for _ in range(n_params)]


@pytest.mark.parametrize("cls, names, support", LAWS, ids=[c.__name__ for c, _, _ in LAWS])
def test_fuzz_distribution(cls, names, support) -> None:
    @given(args=law_args(len(names)), shape=st.one_of(SAMPLE_SHAPES, JUNK_SHAPES), seed=st.integers(0, 99))
    def run(args, shape, seed) -> None:
        ok, d = attempt(lambda: cls(*args), names)
        if not ok:
            return
        params = [getattr(d, n) for n in names]
        assert all(isinstance(p, torch.Tensor) and not p.dtype.is_complex for p in params)
        # Parameters keep their real dtype, as torch's do; samples are in their promoted floating dtype
        # (the default dtype when none is floating).
        expected = functools.reduce(torch.promote_types, [p.dtype for p in params])
        expected = expected if expected.is_floating_point else torch.get_default_dtype()
        ok, x = attempt(lambda: d.sample(shape, generator=gen(seed)), ["sample_shape", *names])
        if not ok:
            return
        assert x.shape == torch.Size(shape) + d.batch_shape, (x.shape, shape, d.batch_shape)
        assert x.dtype == expected, (x.dtype, expected)
        assert not bool(torch.isnan(x).any()), "NaN sample"
        assert bool(support(x, d).all()), "sample outside the support"
        _check_log_prob(d, x, ["value"])

    run()


# ---------------------------------------------------------------- rsfast.sample


def _log_target(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x * x).sum(-1)


@given(
    loc=float_params(),
    scale=float_params(),
    n=st.one_of(st.integers(-2, 300), st.sampled_from([1.5, "3", None, True])),
    log_M=st.one_of(values(), st.sampled_from(["auto", "x", None, torch.tensor(1.0)])),
    max_proposals=st.one_of(st.none(), st.integers(-1, 50_000), st.sampled_from([2.5, "9"])),
    fused=st.booleans(),
    seed=seeds(),
)
def test_fuzz_sample(loc, scale, n, log_M, max_proposals, fused, seed) -> None:
    ok, q = attempt(lambda: proposals.Normal(loc, scale), ["loc", "scale"])
    if not ok:
        return
    if max_proposals is None:
        max_proposals = 100_000  # bounded work per example (the default budget scales with n)
    ok, g = attempt(lambda: gen(seed) if isinstance(seed, int) and 0 <= seed < 2**63 else seed, ["seed"])
    names = ["log_target", "proposal", "n", "log_M", "generator", "max_proposals", "on_overweight"]
    ok, res = attempt(
        lambda: rsfast.sample(_log_target, q, n, log_M=log_M, generator=g if isinstance(g, torch.Generator)
                              else None, max_proposals=max_proposals, fused=fused),
        names,
    )  # fmt: skip
    if not ok:
        return
    assert res.samples.shape == (n, q.event_shape[0]) and res.samples.dtype == q.dtype
    assert finite(res.samples)
    assert res.num_accepted == n or res.num_accepted >= n
    assert 0 <= res.num_proposals <= max_proposals or n == 0


@given(log_target=st.sampled_from([_log_target, lambda x: torch.full(x.shape[:1], math.nan),
                                   lambda x: torch.full(x.shape[:1], math.inf),
                                   lambda x: torch.zeros(x.shape[0], dtype=torch.complex64),
                                   lambda x: torch.zeros(3), lambda x: (x * x).sum(-1).half()]),
       n=st.integers(0, 50), dtype=st.sampled_from(ALL_DTYPES))  # fmt: skip
def test_fuzz_sample_bad_targets(log_target, n, dtype) -> None:
    ok, q = attempt(lambda: proposals.Normal(torch.zeros(2, dtype=dtype), torch.ones(2, dtype=dtype)),
                    ["loc", "scale"])  # fmt: skip
    if not ok:
        return
    ok, res = attempt(
        lambda: rsfast.sample(log_target, q, n, log_M=1.0, generator=gen(), max_proposals=20_000),
        ["log_target", "n", "log_M", "max_proposals"],
    )
    if ok:
        assert res.samples.shape == (n, 2) and finite(res.samples)


@given(x=tensors(max_dims=3))
def test_fuzz_proposal_log_prob_inputs(x) -> None:
    q = proposals.Normal(torch.zeros(2), torch.ones(2))
    ok, lp = attempt(lambda: q.log_prob(x), ["x"])
    if ok:
        assert lp.shape == x.shape[:-1]
