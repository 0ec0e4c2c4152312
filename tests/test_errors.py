"""Every error path: bad arguments raise ValueError / TypeError naming the argument, bounded loops
raise SamplingError instead of hanging, and nothing is returned half-written."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _helpers import SEED, accept_buffers, gen

import rsfast
from rsfast import ops, proposals

pytestmark = pytest.mark.timeout(30)

PROP = proposals.Normal([0.0], [2.0])


def good_target(x):
    return -0.5 * (x * x).sum(-1)


def sample(**kw):
    args = dict(log_target=good_target, proposal=PROP, n=100, log_M=2.0, generator=gen(0))
    args.update(kw)
    return rsfast.sample(args.pop("log_target"), args.pop("proposal"), args.pop("n"), **args)


# ---------------------------------------------------------------- rsfast.sample arguments


@pytest.mark.timeout(10)
def test_negative_n():
    with pytest.raises(ValueError, match="n must be >= 0"):
        sample(n=-1)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("n", [1.5, 10.0, True, "3", None, np.float64(3)])
def test_n_not_int(n):
    with pytest.raises(TypeError, match="n must be an int"):
        sample(n=n)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("proposal", ["normal", object(), torch.zeros(3), None])
def test_proposal_not_a_proposal(proposal):
    with pytest.raises(TypeError, match="proposal"):
        sample(proposal=proposal)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("log_target", [3, None, "x", torch.zeros(3)])
def test_log_target_not_callable(log_target):
    with pytest.raises(TypeError, match="log_target"):
        sample(log_target=log_target)


BAD_TARGETS = {
    "shape [m, 1]": (lambda x: good_target(x).unsqueeze(1), ValueError),
    "shape [m + 1]": (lambda x: torch.cat([good_target(x), torch.zeros(1)]), ValueError),
    "scalar": (lambda x: good_target(x).sum(), ValueError),
    "python float": (lambda x: 1.0, TypeError),
    "numpy array": (lambda x: good_target(x).numpy(), TypeError),
    "list": (lambda x: good_target(x).tolist(), TypeError),
    "int tensor": (lambda x: torch.zeros(x.shape[0], dtype=torch.int64), TypeError),
    "meta device": (lambda x: torch.zeros(x.shape[0], device="meta"), ValueError),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("log_M", [2.0, "auto"])
@pytest.mark.parametrize("case", BAD_TARGETS, ids=list(BAD_TARGETS))
def test_log_target_bad_return(case, log_M):
    fn, exc = BAD_TARGETS[case]
    with pytest.raises(exc, match="log_target"):
        sample(log_target=fn, log_M=log_M)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("log_M", [2.0, "auto"])
def test_log_target_plus_inf(log_M):
    def lt(x):
        lp = good_target(x)
        return torch.where(x[:, 0] > 1.0, torch.full_like(lp, math.inf), lp)

    with pytest.raises(ValueError, match=r"log_target returned \+inf"):
        sample(log_target=lt, log_M=log_M)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("log_M", ["Auto", "", "max", math.nan, math.inf, -math.inf])
def test_log_M_bad_value(log_M):
    with pytest.raises(ValueError, match="log_M"):
        sample(log_M=log_M)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("log_M", [None, [1.0], True, b"auto", 1j])
def test_log_M_bad_type(log_M):
    with pytest.raises(TypeError, match="log_M"):
        sample(log_M=log_M)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", [0, -5, 1.5, True, "10"])
def test_max_proposals_bad(value):
    with pytest.raises(ValueError, match="max_proposals"):
        sample(max_proposals=value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["Warn", "error", None, True])
def test_on_overweight_bad(value):
    with pytest.raises(ValueError, match="on_overweight"):
        sample(on_overweight=value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("generator", [0, "cpu", np.random.default_rng(0), torch.device("cpu")])
def test_generator_wrong_type(generator):
    with pytest.raises(TypeError, match="generator"):
        sample(generator=generator)


@pytest.mark.timeout(10)
def test_progress_wrong_type():
    with pytest.raises(TypeError, match="progress"):
        sample(progress="yes")


# ---------------------------------------------------------------- bounded loops


@pytest.mark.timeout(30)
def test_max_proposals_exceeded():
    with pytest.raises(rsfast.SamplingError, match=r"acceptance 0\.\d+") as info:
        sample(n=10_000, max_proposals=2_000)
    e = info.value
    assert 0 < e.num_accepted < 10_000 and 0 < e.num_proposals <= 2_000
    assert e.acceptance_rate == e.num_accepted / e.num_proposals
    assert 0.2 < e.acceptance_rate < 0.8
    assert "max_proposals" in str(e)


@pytest.mark.timeout(30)
def test_target_minus_inf_everywhere_fixed_log_M():
    lt = lambda x: torch.full((x.shape[0],), -math.inf)  # noqa: E731
    with pytest.raises(rsfast.SamplingError, match="acceptance 0") as info:
        sample(log_target=lt, n=10, max_proposals=10**5)
    assert info.value.num_accepted == 0 and info.value.acceptance_rate == 0.0
    assert 0 < info.value.num_proposals <= 10**5


@pytest.mark.timeout(30)
@pytest.mark.parametrize("value", [-math.inf, math.nan], ids=["-inf", "nan"])
def test_target_without_support_auto(value):
    """log_M="auto" sees no finite log p - log q in its pilot draws: SamplingError from the pilot
    (max_proposals keeps a wrong outcome fast: the loop would otherwise run to the 1e8 default)."""
    lt = lambda x: torch.full((x.shape[0],), value)  # noqa: E731
    with pytest.raises(rsfast.SamplingError, match="pilot") as info:
        sample(log_target=lt, n=10, log_M="auto", max_proposals=10**5)
    assert info.value.num_accepted == 0


@pytest.mark.timeout(30)
def test_estimate_log_M_without_support():
    lt = lambda x: torch.full((x.shape[0],), -math.inf)  # noqa: E731
    with pytest.raises(rsfast.SamplingError, match="pilot"):
        rsfast.estimate_log_M(lt, PROP, generator=gen(0))


@pytest.mark.timeout(10)
@pytest.mark.parametrize("pilot,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_estimate_log_M_bad_pilot(pilot, exc):
    """pilot is a count of draws >= 1; today 0 gives a misleading "misses the target's support"
    SamplingError, -1 a RuntimeError from torch.empty and 1.5 a torch TypeError about 'size'."""
    with pytest.raises(exc, match="pilot"):
        rsfast.estimate_log_M(good_target, PROP, generator=gen(0), pilot=pilot)


@pytest.mark.timeout(10)
def test_estimate_log_M_bad_arguments():
    with pytest.raises(TypeError, match="generator"):
        rsfast.estimate_log_M(good_target, PROP, generator=1)
    with pytest.raises(TypeError, match="proposal"):
        rsfast.estimate_log_M(good_target, "normal")


@pytest.mark.timeout(30)
def test_target_nan_everywhere_fixed_log_M():
    lt = lambda x: torch.full((x.shape[0],), math.nan)  # noqa: E731
    with pytest.raises(rsfast.SamplingError, match="acceptance 0"):
        sample(log_target=lt, n=10, max_proposals=10**5)


# ---------------------------------------------------------------- proposals with bad parameters


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: proposals.Normal([0.0], [0.0]), "scale"),
        (lambda: proposals.Normal([0.0, 1.0], [1.0, -1.0]), "scale"),
        (lambda: proposals.Normal([math.nan], [1.0]), "loc"),
        (lambda: proposals.Normal([math.inf], [1.0]), "loc"),
        (lambda: proposals.Normal([0.0], [math.inf]), "scale"),
        (lambda: proposals.Normal([0.0, 0.0], [1.0, 1.0, 1.0]), "loc"),
        (lambda: proposals.Normal(torch.zeros(2, 2), torch.ones(2, 2)), "loc"),
        (lambda: proposals.Uniform([1.0], [1.0]), "high"),
        (lambda: proposals.Uniform([0.0, 2.0], [1.0, 1.0]), "high"),
        (lambda: proposals.Uniform([-math.inf], [1.0]), "low"),
        (lambda: proposals.Uniform([0.0], [math.nan]), "high"),
        (lambda: proposals.Uniform([0.0, 0.0], [1.0, 1.0, 1.0]), "low"),
        (lambda: proposals.MixtureNormal([0.0, 0.0, 0.0], [[0.0], [1.0]], [[1.0], [1.0]]), "logits"),
        (lambda: proposals.MixtureNormal([0.0, 0.0], [0.0, 1.0], [1.0, 1.0]), "loc"),
        (lambda: proposals.MixtureNormal([0.0, 0.0], [[0.0], [1.0]], [[1.0, 1.0], [1.0, 1.0]]), "scale"),
        (lambda: proposals.MixtureNormal([0.0, 0.0], [[0.0], [1.0]], [[1.0], [0.0]]), "scale"),
        (lambda: proposals.MixtureNormal([0.0, math.nan], [[0.0], [1.0]], [[1.0], [1.0]]), "logits"),
        (lambda: proposals.MixtureNormal([0.0, 0.0], [[0.0], [math.inf]], [[1.0], [1.0]]), "loc"),
    ],
)
def test_proposal_bad_parameters(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: proposals.Normal("a", 1.0), "loc"),
        (lambda: proposals.Normal(0.0, [True]), "scale"),
        (lambda: proposals.Uniform(0.0, 1j), "high"),
        (lambda: proposals.MixtureNormal([0.0], object(), [[1.0]]), "loc"),
    ],
)
def test_proposal_parameters_of_wrong_type(make, name):
    with pytest.raises(TypeError, match=name):
        make()


@pytest.mark.timeout(10)
def test_proposal_sample_generator_wrong_type():
    with pytest.raises(TypeError, match="generator"):
        PROP.sample((3,), generator=np.random.default_rng(0))


@pytest.mark.timeout(10)
def test_proposal_log_prob_wrong_event_shape():
    with pytest.raises(ValueError, match="event shape"):
        PROP.log_prob(torch.zeros(4, 2))


# ---------------------------------------------------------------- ops.propose


def prop_args(**kw):
    args = dict(kind="normal", params=[torch.zeros(2), torch.ones(2)], m=10, seed=SEED, offset=0)
    args.update(kw)
    return args


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(kind="gauss"), ValueError, "kind"),
        (dict(params=[torch.zeros(2)]), ValueError, "params"),
        (dict(params=[torch.zeros(2), torch.ones(3)]), ValueError, "loc"),
        (dict(params=[torch.zeros(2, 1), torch.ones(2, 1)]), ValueError, "loc"),
        (
            dict(params=[torch.zeros(2, dtype=torch.int64), torch.ones(2, dtype=torch.int64)]),
            TypeError,
            "loc",
        ),
        (
            dict(params=[torch.zeros(2, dtype=torch.float16), torch.ones(2, dtype=torch.float16)]),
            TypeError,
            "loc",
        ),
        (dict(params=[torch.zeros(2, dtype=torch.float64), torch.ones(2)]), ValueError, "loc"),
        (dict(params=[torch.zeros(2, device="meta"), torch.ones(2)]), ValueError, "loc"),
        (dict(kind="uniform", params=[torch.zeros(2), torch.ones(3)]), ValueError, "low"),
        (
            dict(kind="mixture_normal", params=[torch.zeros(3), torch.zeros(2, 2), torch.ones(2, 2)]),
            ValueError,
            "logits",
        ),
        (
            dict(kind="mixture_normal", params=[torch.zeros(2), torch.zeros(2), torch.ones(2)]),
            ValueError,
            "loc",
        ),
        (
            dict(kind="mixture_normal", params=[torch.zeros(2), torch.zeros(2, 2), torch.ones(2, 3)]),
            ValueError,
            "scale",
        ),
        (dict(m=-1), ValueError, "m must be"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(offset=-1), ValueError, "offset"),
        (dict(offset=2**32), ValueError, "offset"),
    ],
)
def test_propose_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        ops.propose(**prop_args(**kw))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(params=[0.0, torch.ones(2)]), TypeError, "params|loc"),
        (dict(m=10.0), TypeError, "m"),
        (dict(seed=2**63), ValueError, "seed"),
    ],
    ids=["non-tensor param", "float m", "seed 2**63"],
)
def test_propose_bad_argument_types_at_the_op_boundary(kw, exc, match):
    """ops.py checks these itself (TypeError / ValueError naming the argument, design section 4), but
    torch's schema parsing runs first and raises RuntimeError."""
    with pytest.raises(exc, match=match):
        ops.propose(**prop_args(**kw))


# ---------------------------------------------------------------- ops.accept_compact


def acc_args(m=8, **kw):
    out, counts, mx = accept_buffers(m, (3,))
    args = dict(
        x=torch.zeros(m, 3), log_p=torch.zeros(m), log_q=torch.zeros(m), log_M=0.0, seed=SEED, offset=0,
        out=out, counts=counts, max_log_ratio=mx,
    )  # fmt: skip
    args.update(kw)
    return args


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(x=torch.tensor(1.0)), ValueError, "x"),
        (dict(log_p=torch.zeros(7)), ValueError, "log_p"),
        (dict(log_p=torch.zeros(8, 1)), ValueError, "log_p"),
        (dict(log_q=torch.zeros(9)), ValueError, "log_q"),
        (dict(log_p=torch.zeros(8, dtype=torch.int64)), TypeError, "log_p"),
        (dict(log_q=torch.zeros(8, dtype=torch.float16)), TypeError, "log_q"),
        (dict(log_p=torch.zeros(8, dtype=torch.float64)), TypeError, "log_p and log_q"),
        (dict(out=torch.zeros(8, 4)), ValueError, "out"),
        (dict(out=torch.zeros(8, 3, dtype=torch.float64)), ValueError, "out"),
        (dict(out=torch.zeros(8)), ValueError, "out"),
        (dict(out=torch.zeros(3, 8).t()), ValueError, "out"),
        (dict(x=torch.zeros(3, 8).t()), ValueError, "x"),
        (dict(counts=torch.zeros(4, dtype=torch.int32)), ValueError, "counts"),
        (dict(counts=torch.zeros(3, dtype=torch.int64)), ValueError, "counts"),
        (dict(max_log_ratio=torch.zeros(1)), ValueError, "max_log_ratio"),
        (dict(max_log_ratio=torch.zeros(2, dtype=torch.float64)), ValueError, "max_log_ratio"),
        (dict(out=torch.zeros(8, 3, device="meta")), ValueError, "out"),
        (dict(log_p=torch.zeros(8, device="meta")), ValueError, "log_p"),
        (dict(counts=torch.zeros(4, dtype=torch.int64, device="meta")), ValueError, "counts"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(offset=2**32), ValueError, "offset"),
    ],
)
def test_accept_compact_bad_arguments(kw, exc, match):
    args = acc_args(**kw)
    before = (args["out"].clone(), args["counts"].clone(), args["max_log_ratio"].clone())
    with pytest.raises(exc, match=match):
        ops.accept_compact(**args)
    if args["out"].device.type == "cpu" and args["counts"].device.type == "cpu":
        # nothing half-written
        for t, b in zip((args["out"], args["counts"], args["max_log_ratio"]), before):
            if t.device.type == "cpu" and t.shape == b.shape:
                assert torch.equal(t, b)
