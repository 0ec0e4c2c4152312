"""rsfast.sample: exactness against scipy for several (target, proposal) pairs, the acceptance rate,
the result's fields, determinism, overweight and NaN handling, progress and n = 0."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, binom_p, chisq_p, corr, fisher_z, gen, grid_log_M, ks_p

import rsfast
from rsfast import proposals

pytestmark = pytest.mark.timeout(120)

N = 50_000
LOG_2PI = math.log(2 * math.pi)


def no_overweight(res):
    assert res.num_overweight == 0 and res.max_log_ratio <= res.log_M
    return res


# ---------------------------------------------------------------- targets


def normal_1d(mu=1.0, sd=0.7):
    """Normalised N(mu, sd^2) log density of x [m, 1]."""
    return lambda x: -0.5 * ((x[:, 0] - mu) / sd) ** 2 - math.log(sd) - 0.5 * LOG_2PI


NORMAL_PROPOSAL = proposals.Normal([0.0], [2.0])


@pytest.fixture(scope="module")
def normal_run():
    lt = normal_1d()
    log_M = grid_log_M(lt, NORMAL_PROPOSAL, -12, 12)
    return no_overweight(rsfast.sample(lt, NORMAL_PROPOSAL, N, log_M=log_M, generator=gen(1))), log_M


# ---------------------------------------------------------------- exactness


def test_normal_target_normal_proposal(normal_run):
    res, _ = normal_run
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7)) > ALPHA


def test_negative_control_shifted_and_rescaled_law(normal_run):
    """The KS check has power at this n: a target shifted by 0.05 or scaled by 1.05 is rejected."""
    res, _ = normal_run
    assert ks_p(res.samples[:, 0], st.norm(1.05, 0.7)) < ALPHA
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7 * 1.05)) < ALPHA


def test_negative_control_wrong_envelope_is_detected():
    """A log_M 0.5 too small biases the samples; the same KS check rejects them."""
    lt = normal_1d()
    log_M = grid_log_M(lt, NORMAL_PROPOSAL, -12, 12) - 0.5
    res = rsfast.sample(lt, NORMAL_PROPOSAL, N, log_M=log_M, generator=gen(1), on_overweight="ignore")
    assert res.num_overweight > 0
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7)) < ALPHA


def test_normal_target_auto_log_M():
    lt = normal_1d()
    res = no_overweight(rsfast.sample(lt, NORMAL_PROPOSAL, N, log_M="auto", generator=gen(2)))
    exact = grid_log_M(lt, NORMAL_PROPOSAL, -12, 12)
    assert exact <= res.log_M <= exact + math.log(1.1) + 1e-3
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7)) > ALPHA


def test_acceptance_rate_is_Z_over_M(normal_run):
    """Normalised target (Z = 1): accepted ~ Binomial(num_proposals, 1 / M)."""
    res, log_M = normal_run
    assert res.acceptance_rate == res.num_accepted / res.num_proposals
    assert binom_p(res.num_accepted, res.num_proposals, math.exp(-log_M)) > ALPHA


def test_gamma_like_target_on_uniform_box_float64():
    """Gamma(3, 1) restricted to [0, 20) from a float64 Uniform box; exact envelope at the mode x = 2."""
    box = proposals.Uniform(
        torch.tensor([0.0], dtype=torch.float64), torch.tensor([20.0], dtype=torch.float64)
    )
    lt = lambda x: 2 * torch.log(x[:, 0]) - x[:, 0]  # noqa: E731
    log_M = 2 * math.log(2) - 2 + math.log(20) + 1e-9
    res = no_overweight(rsfast.sample(lt, box, N, log_M=log_M, generator=gen(3)))
    assert res.samples.dtype == torch.float64 and res.samples.shape == (N, 1)
    g = st.gamma(3)
    assert ks_p(res.samples[:, 0], lambda v: g.cdf(v) / g.cdf(20)) > ALPHA
    z = math.gamma(3) * g.cdf(20)  # acceptance = Z / M
    assert binom_p(res.num_accepted, res.num_proposals, z / math.exp(log_M)) > ALPHA


def test_beta_target_on_unit_box_auto():
    lt = lambda x: torch.log(x[:, 0]) + 4 * torch.log1p(-x[:, 0])  # noqa: E731  Beta(2, 5)
    res = no_overweight(rsfast.sample(lt, proposals.Uniform([0.0], [1.0]), N, log_M="auto", generator=gen(4)))
    assert ks_p(res.samples[:, 0], st.beta(2, 5)) > ALPHA


SIGMA = torch.tensor([[1.0, 1.2], [1.2, 4.0]])  # sd (1, 2), correlation 0.6


def test_correlated_gaussian_2d():
    prec = torch.linalg.inv(SIGMA)
    lt = lambda x: -0.5 * ((x @ prec) * x).sum(-1)  # noqa: E731
    prop = proposals.Normal(torch.zeros(2), torch.tensor([2.5, 4.0]))
    # diag(2.5^2, 4^2) - SIGMA is positive definite, so log p - log q peaks at 0: log M = -log q(0).
    log_M = LOG_2PI + math.log(2.5 * 4.0) + 1e-6
    res = no_overweight(rsfast.sample(lt, prop, N, log_M=log_M, generator=gen(5)))
    s = res.samples
    assert ks_p(s[:, 0], st.norm(0, 1)) > ALPHA
    assert ks_p(s[:, 1], st.norm(0, 2)) > ALPHA
    r = corr(s)
    assert abs(fisher_z(r, 0.6, N)) < st.norm.isf(ALPHA / 2)
    assert abs(fisher_z(r, 0.62, N)) > st.norm.isf(ALPHA / 2)  # negative control: rho off by 0.02
    z = 2 * math.pi * math.sqrt(float(torch.linalg.det(SIGMA)))
    assert binom_p(res.num_accepted, res.num_proposals, z / math.exp(log_M)) > ALPHA


def bimodal_2d(x):
    """0.3 N((-2, -2), 0.5^2 I) + 0.7 N((2, 2), 0.5^2 I), normalised."""
    c = -2 * math.log(0.5) - LOG_2PI
    a = math.log(0.3) + c - 0.5 * ((x + 2) / 0.5).pow(2).sum(-1)
    b = math.log(0.7) + c - 0.5 * ((x - 2) / 0.5).pow(2).sum(-1)
    return torch.logaddexp(a, b)


def test_bimodal_2d_auto():
    prop = proposals.Normal(torch.zeros(2), torch.full((2,), 3.0))
    res = no_overweight(rsfast.sample(bimodal_2d, prop, N, log_M="auto", generator=gen(6)))
    s = res.samples
    right = s.sum(1) > 0
    assert chisq_p([int((~right).sum()), int(right.sum())], [0.3, 0.7]) > ALPHA
    assert chisq_p([int((~right).sum()), int(right.sum())], [0.32, 0.68]) < ALPHA  # negative control
    for mask, mu in ((~right, -2.0), (right, 2.0)):
        for d in range(2):
            assert ks_p(s[mask, d], st.norm(mu, 0.5)) > ALPHA


def test_truncated_normal_target():
    lo, hi = 0.5, 2.0

    def lt(x):
        v = x[:, 0]
        return torch.where((v >= lo) & (v <= hi), -0.5 * v * v, torch.full_like(v, -math.inf))

    prop = proposals.Normal([1.0], [1.0])
    log_M = 0.5 * LOG_2PI + 1e-6  # log p - log q = 0.5 - x + log sqrt(2 pi), largest at x = 0.5
    res = no_overweight(rsfast.sample(lt, prop, N, log_M=log_M, generator=gen(7)))
    assert res.num_rounds >= 2  # acceptance 0.29: several rounds, each with its own offsets
    s = res.samples[:, 0]
    assert float(s.min()) >= lo and float(s.max()) <= hi
    assert ks_p(s, st.truncnorm(lo, hi)) > ALPHA
    z = math.sqrt(2 * math.pi) * (st.norm.cdf(hi) - st.norm.cdf(lo))
    assert binom_p(res.num_accepted, res.num_proposals, z / math.exp(log_M)) > ALPHA


def test_torch_student_t_proposal_batch_shape_2_auto():
    """A torch.distributions proposal with batch shape (2,) is a product proposal on R^2."""
    prop = torch.distributions.StudentT(torch.tensor(4.0), torch.zeros(2), torch.tensor([1.5, 1.0]))
    lt = lambda x: -0.5 * ((x[:, 0] - 0.5) ** 2 + ((x[:, 1] + 0.5) / 0.8) ** 2)  # noqa: E731
    res = no_overweight(rsfast.sample(lt, prop, N, log_M="auto", generator=gen(8)))
    assert res.samples.shape == (N, 2)
    assert ks_p(res.samples[:, 0], st.norm(0.5, 1)) > ALPHA
    assert ks_p(res.samples[:, 1], st.norm(-0.5, 0.8)) > ALPHA


def test_torch_normal_proposal_exact_envelope():
    prop = torch.distributions.Normal(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 2.0]))
    lt = lambda x: -0.5 * (x * x).sum(-1)  # noqa: E731  N(0, I_2), unnormalised
    # the ratio is a product over the two coordinates: log M is the sum of the 1-D suprema.
    log_M = grid_log_M(lambda v: -0.5 * v[:, 0] ** 2, proposals.Normal([0.0], [2.0]), -10, 10)
    log_M += grid_log_M(lambda v: -0.5 * v[:, 0] ** 2, proposals.Normal([1.0], [2.0]), -10, 10)
    res = no_overweight(rsfast.sample(lt, prop, N, log_M=log_M, generator=gen(9)))
    for d in range(2):
        assert ks_p(res.samples[:, d], st.norm(0, 1)) > ALPHA


MIX_W, MIX_MU, MIX_SD = (0.4, 0.6), (-3.0, 2.5), (0.8, 1.2)


def mixture_target(x):
    v = x[:, 0]
    parts = [
        math.log(w) - math.log(s) - 0.5 * LOG_2PI - 0.5 * ((v - m) / s) ** 2
        for w, m, s in zip(MIX_W, MIX_MU, MIX_SD)
    ]
    return torch.logaddexp(*parts)


def mixture_cdf(v):
    return sum(w * st.norm.cdf(v, m, s) for w, m, s in zip(MIX_W, MIX_MU, MIX_SD))


def test_mixture_normal_proposal():
    prop = proposals.MixtureNormal([0.0, 0.0], [[-3.0], [2.5]], [[1.5], [1.5]])
    log_M = grid_log_M(mixture_target, prop, -15, 15)
    res = no_overweight(rsfast.sample(mixture_target, prop, N, log_M=log_M, generator=gen(10)))
    assert ks_p(res.samples[:, 0], mixture_cdf) > ALPHA
    assert binom_p(res.num_accepted, res.num_proposals, math.exp(-log_M)) > ALPHA


def test_float64_normal_target():
    prop = proposals.Normal(torch.zeros(1, dtype=torch.float64), torch.full((1,), 2.0, dtype=torch.float64))
    lt = normal_1d()
    res = no_overweight(rsfast.sample(lt, prop, N, log_M=grid_log_M(lt, prop, -12, 12), generator=gen(11)))
    assert res.samples.dtype == torch.float64
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7)) > ALPHA
    assert torch.unique(res.samples).numel() == N  # no stream is drawn twice across rounds


def test_discrete_target_torch_categorical_proposal():
    """int64 candidates (event shape ()) through the engine: Binomial(10, 0.3) from a uniform
    Categorical, log_M="auto" (no gradient ascent on integers)."""
    pmf = torch.tensor(st.binom(10, 0.3).pmf(np.arange(11)))
    res = no_overweight(
        rsfast.sample(lambda k: torch.log(pmf[k]), torch.distributions.Categorical(logits=torch.zeros(11)), N,
                      log_M="auto", generator=gen(13))
    )  # fmt: skip
    assert res.samples.dtype == torch.int64 and res.samples.shape == (N,)
    counts = torch.bincount(res.samples, minlength=11).numpy()
    assert chisq_p(counts, pmf.numpy()) > ALPHA
    assert chisq_p(counts, st.binom(10, 0.31).pmf(np.arange(11))) < ALPHA  # negative control


def test_estimate_log_M_matches_sample_auto():
    lt = normal_1d()
    est = rsfast.estimate_log_M(lt, NORMAL_PROPOSAL, generator=gen(2))
    exact = grid_log_M(lt, NORMAL_PROPOSAL, -12, 12)
    assert est == pytest.approx(exact + math.log(1.1), abs=1e-3)


# ---------------------------------------------------------------- the result


def test_result_fields(normal_run):
    res, log_M = normal_run
    assert isinstance(res, rsfast.SampleResult)
    assert (
        res.samples.shape == (N, 1)
        and res.samples.dtype == torch.float32
        and res.samples.device.type == "cpu"
    )
    assert res.samples.is_contiguous()
    assert res.log_M == log_M
    assert res.num_accepted >= N and res.num_proposals >= res.num_accepted
    assert 1 <= res.num_rounds <= res.num_proposals
    assert res.num_overweight == 0 and res.num_nan == 0
    assert -math.inf < res.max_log_ratio <= log_M
    assert res.setup_seconds >= 0
    assert res.seconds >= 0
    text = repr(res)
    assert text.startswith("SampleResult(samples=[50000, 1] float32 on cpu")
    for field in (
        "log_M=",
        "acceptance_rate=",
        "num_proposals=",
        "num_rounds=",
        "num_overweight=",
        "num_nan=",
    ):
        assert field in text
    assert "\n" not in text and "tensor(" not in text


def test_n_zero_returns_empty():
    res = rsfast.sample(normal_1d(), NORMAL_PROPOSAL, 0, log_M=1.0)
    assert res.samples.shape == (0, 1) and res.samples.dtype == torch.float32
    assert res.num_accepted == 0
    d = rsfast.sample(lambda x: -x * x, proposals.Normal(torch.zeros(3), torch.ones(3)), 0, log_M=1.0)
    assert d.samples.shape == (0, 3)


def test_event_shape_scalar_torch_proposal():
    """A torch proposal with event shape () gives samples [n]."""
    res = rsfast.sample(
        lambda x: -0.5 * x * x, torch.distributions.Normal(0.0, 2.0), 1000, log_M="auto", generator=gen(1)
    )
    assert res.samples.shape == (1000,)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_samples_different_seed_different():
    lt = normal_1d()
    a = rsfast.sample(lt, NORMAL_PROPOSAL, 5000, log_M="auto", generator=gen(42))
    b = rsfast.sample(lt, NORMAL_PROPOSAL, 5000, log_M="auto", generator=gen(42))
    c = rsfast.sample(lt, NORMAL_PROPOSAL, 5000, log_M="auto", generator=gen(43))
    assert torch.equal(a.samples, b.samples) and a.num_proposals == b.num_proposals
    assert not torch.equal(a.samples, c.samples)


def test_default_generator_follows_torch_manual_seed():
    lt = normal_1d()
    torch.manual_seed(123)
    a = rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=2.0)
    torch.manual_seed(123)
    b = rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=2.0)
    c = rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=2.0)  # the global generator moved on
    assert torch.equal(a.samples, b.samples) and not torch.equal(a.samples, c.samples)


def test_torch_proposal_deterministic_and_global_rng_untouched():
    prop = torch.distributions.Normal(torch.zeros(2), torch.ones(2) * 2)
    lt = lambda x: -0.5 * (x * x).sum(-1)  # noqa: E731
    state = torch.get_rng_state()
    a = rsfast.sample(lt, prop, 3000, log_M="auto", generator=gen(5))
    b = rsfast.sample(lt, prop, 3000, log_M="auto", generator=gen(5))
    assert torch.equal(a.samples, b.samples)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.timeout(180)
def test_sample_thread_count_independence(digests_by_threads):
    assert len({res["sample"] for res in digests_by_threads.values()}) == 1


# ---------------------------------------------------------------- overweight, NaN, non-contiguous


def test_overweight_warn_raise_ignore():
    lt = normal_1d()
    log_M = grid_log_M(lt, NORMAL_PROPOSAL, -12, 12) - 0.3
    with pytest.warns(rsfast.OverweightWarning, match="log_M") as record:
        res = rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=log_M, generator=gen(1), on_overweight="warn")
    assert res.num_overweight > 0 and res.max_log_ratio > log_M
    assert record[0].filename == __file__  # the warning points at the caller
    assert f"{res.max_log_ratio:.6g}" in str(record[0].message)  # and says which log_M would do
    with pytest.raises(rsfast.SamplingError, match="log_M"):
        rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=log_M, generator=gen(1), on_overweight="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = rsfast.sample(lt, NORMAL_PROPOSAL, 2000, log_M=log_M, generator=gen(1), on_overweight="ignore")
    assert res.num_overweight > 0


def test_nan_rows_counted_and_rest_exact():
    """NaN wherever x > 1.5 behaves as rejection: the samples follow N(0, 1) truncated to x <= 1.5."""

    def lt(x):
        v = x[:, 0]
        return torch.where(v > 1.5, torch.full_like(v, math.nan), -0.5 * v * v)

    prop = proposals.Normal([0.0], [1.5])
    log_M = 0.5 * LOG_2PI + math.log(1.5) + 1e-6
    res = no_overweight(rsfast.sample(lt, prop, N, log_M=log_M, generator=gen(12)))
    assert res.num_nan > 0
    assert float(res.samples.max()) <= 1.5
    assert ks_p(res.samples[:, 0], st.truncnorm(-np.inf, 1.5)) > ALPHA
    assert binom_p(res.num_nan, res.num_proposals, st.norm.sf(1.5 / 1.5)) > ALPHA


def test_non_contiguous_log_target_output():
    """A log_target may return a strided view (here a column of a [m, 2] tensor); the samples must
    still follow the target (or the engine must refuse it, naming log_target)."""

    def lt(x):
        lp = normal_1d()(x)
        return torch.stack([lp, torch.zeros_like(lp)], 1)[:, 0]

    log_M = grid_log_M(normal_1d(), NORMAL_PROPOSAL, -12, 12)
    try:
        res = rsfast.sample(
            lt, NORMAL_PROPOSAL, 20_000, log_M=log_M, generator=gen(1), on_overweight="ignore"
        )
    except (ValueError, TypeError) as e:
        assert "log_target" in str(e)
        return
    assert res.num_overweight == 0
    assert ks_p(res.samples[:, 0], st.norm(1.0, 0.7)) > ALPHA


# ---------------------------------------------------------------- progress


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    res = rsfast.sample(normal_1d(), NORMAL_PROPOSAL, 3000, log_M=2.0, generator=gen(1), progress=True)
    assert res.samples.shape == (3000, 1)
    err = capsys.readouterr().err
    assert "3000" in err or "3.00k" in err


def test_sampler_package_keeps_the_names_of_the_former_module():
    """rsfast.sampler became a package of small modules; every name the single module defined is still
    importable from it, and the public ones are rsfast's own."""
    from rsfast import sampler

    names = (
        "sample estimate_log_M SampleResult SamplingError OverweightWarning LogTarget ProposalLike "
        "AUTO_LOG_MARGIN AUTO_PILOT_DRAWS AUTO_ASCENT_STARTS AUTO_ASCENT_STEPS DEFAULT_MIN_PROPOSALS "
        "DEFAULT_PROPOSALS_PER_SAMPLE MAX_ROUNDS _CPU_ROUND_BYTES _CPU_ROUND_ROWS _CUDA_ROUND_ROWS "
        "_MIN_ROUND_ROWS _OVERSHOOT _Source _KernelSource _TorchSource _ModuleSource draw_module "
        "module_device _module_device _make_source _distribution_device _log_p _ratio_dtype _auto_log_M "
        "_ascend _check_args _round_rows _Progress _budget _warn_overweight _fused_applies _sample_fused"
    ).split()
    assert [n for n in names if not hasattr(sampler, n)] == []
    public = ["sample", "estimate_log_M", "SampleResult", "SamplingError", "OverweightWarning"]
    assert sampler.__all__ == public
    for name in sampler.__all__:
        assert getattr(sampler, name) is getattr(rsfast, name)
