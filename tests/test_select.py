"""rsfast.select: every op against its pure-torch twin and the per-row Python algorithm, RSO's law
against the exact law of the paper's algorithm, determinism, thread count, bad input, opcheck."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, DTYPES, SEED, chisq_p, digest, gen, rsfast_root
from _select_inputs import LAYOUTS, case, dense_rewards, ragged_rewards, rows_of

from rsfast import baselines as B
from rsfast import ops, select
from rsfast import reference as R

# ---------------------------------------------------------------- best_of_n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ties", [False, True])
def test_best_of_n_matches_twin_and_per_row(dtype, layout, ties):
    r, off = case(layout, dtype, ties)
    for k in (1, 2, 5, 33, 37):
        got = select.best_of_n(r, k, offsets=off)
        assert got.dtype == torch.int64 and got.shape == (off.shape[0] - 1 if off is not None else 61, k)
        assert torch.equal(got, R.best_of_n(r, k, off))
        assert got.tolist() == B.best_of_n_per_row(rows_of(r, off), k)


def test_best_of_n_ties_infinities_and_signed_zero():
    r = torch.tensor([[0.0, -0.0, math.inf, -math.inf, math.inf, 1.0]])
    assert select.best_of_n(r, 6).tolist() == [[2, 4, 5, 0, 1, 3]]
    # k larger than a ragged group: -1 padding; an empty group is all -1.
    got = select.best_of_n(torch.tensor([3.0, 1.0, 2.0]), 2, offsets=torch.tensor([0, 1, 1, 3]))
    assert got.tolist() == [[0, -1], [-1, -1], [1, 0]]


def test_best_of_n_large_k_path():
    r = dense_rewards(5, 300, torch.float32, ties=True)
    assert torch.equal(select.best_of_n(r, 100), R.best_of_n(r, 100))


# ---------------------------------------------------------------- rso: twin and edge cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ties", [False, True])
def test_rso_matches_twin(dtype, layout, ties):
    r, off = case(layout, dtype, ties)
    for k, beta in ((1, 1.0), (3, 0.1), (8, 1.0), (8, 10.0), (37, 0.5)):
        got = ops.select_rso(r, k, beta, SEED, 7, off)
        assert torch.equal(got, R.rso(r, k, beta, SEED, 7, off)), (k, beta)


def test_rso_result_is_a_valid_selection():
    r, off = ragged_rewards(torch.float32, False)
    k = 6
    got = select.rso(r, k, 0.7, offsets=off, generator=gen(3))
    sizes = (off[1:] - off[:-1]).tolist()
    for row, n in zip(got.tolist(), sizes):
        kept = [i for i in row if i >= 0]
        assert len(kept) == min(k, n) and len(set(kept)) == len(kept) and all(0 <= i < n for i in kept)
        assert row[len(kept) :] == [-1] * (k - len(kept))


def test_rso_infinities_and_equal_rewards():
    # Equal rewards: every candidate has probability 1, so the first k in index order (the paper's law).
    assert select.rso(torch.zeros(3, 6), 4, 1.0, generator=gen(0)).tolist() == [[0, 1, 2, 3]] * 3
    # +inf is taken first, the rest of that round never; -inf only when nothing finite remains.
    r = torch.tensor([[-math.inf, 0.0, math.inf, -math.inf, 0.0]])
    got = select.rso(r, 5, 1.0, generator=gen(0)).tolist()[0]
    assert got[0] == 2 and sorted(got[1:3]) == [1, 4] and got[3:] == [0, 3]


def test_rso_generator_determinism():
    r = dense_rewards(200, 16, torch.float32, False)
    a = select.rso(r, 4, 0.5, generator=gen(11))
    b = select.rso(r, 4, 0.5, generator=gen(11))
    c = select.rso(r, 4, 0.5, generator=gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the seed drawn from the generator keys Philox: the op with that seed gives the same result
    seed = int(torch.randint(0, 2**63 - 1, (), generator=gen(11)))
    assert torch.equal(a, ops.select_rso(r, 4, 0.5, seed, 0, None))


# ---------------------------------------------------------------- rso: the law


def rso_exact_law(r: list[float], k: int, beta: float) -> dict[tuple[int, ...], float]:
    """Exact distribution of the ordered output of the paper's algorithm, by enumerating every accept /
    reject outcome of every round (small groups only)."""
    law: dict[tuple[int, ...], float] = {}

    def next_round(remaining: tuple[int, ...], accepted: tuple[int, ...], prob: float) -> None:
        if len(accepted) == k or not remaining:
            law[accepted] = law.get(accepted, 0.0) + prob
            return
        r_max = max(r[i] for i in remaining)

        def visit(j: int, got: tuple[int, ...], prob: float) -> None:
            if len(accepted) + len(got) == k or j == len(remaining):
                next_round(tuple(i for i in remaining if i not in got), accepted + got, prob)
                return
            i = remaining[j]
            p = math.exp((r[i] - r_max) / beta)
            if p > 0:
                visit(j + 1, got + (i,), prob * p)
            if p < 1:
                visit(j + 1, got, prob * (1 - p))

        visit(0, (), prob)

    next_round(tuple(range(len(r))), (), 1.0)
    return law


def law_p_values(samples: list[tuple[int, ...]], law: dict, n: int, k: int) -> dict[str, float]:
    """Chi-square p-values of sampled ordered outputs against an exact law: on the full ordered tuples, on
    the first accepted index, and on the inclusion counts."""
    reps = len(samples)
    # ordered tuples (cells with expected count < 5 pooled)
    keys = sorted(law, key=lambda t: -law[t])
    big = [t for t in keys if law[t] * reps >= 5]
    counts = {t: 0 for t in big}
    other = 0
    for s in samples:
        if s in counts:
            counts[s] += 1
        else:
            other += 1
    obs = [counts[t] for t in big] + [other]
    exp = [law[t] for t in big] + [max(0.0, 1.0 - sum(law[t] for t in big))]
    if exp[-1] * reps < 1e-9:
        assert other == 0, "a sampled output has probability 0 under the law"
        obs, exp = obs[:-1], exp[:-1]
    p_tuple = chisq_p(obs, exp)
    first = np.zeros(n)
    first_exp = np.zeros(n)
    incl = np.zeros(n)
    incl_exp = np.zeros(n)
    for t, p in law.items():
        first_exp[t[0]] += p
        for i in t:
            incl_exp[i] += p
    for s in samples:
        first[s[0]] += 1
        for i in s:
            incl[i] += 1
    keep = first_exp > 0
    p_first = chisq_p(first[keep], first_exp[keep]) if keep.sum() > 1 else 1.0
    # inclusion counts: k per replicate; the pooled chi-square on them is conservative (negatively
    # correlated cells), the binomial test per candidate is exact: both reported, the minimum used
    live = incl_exp > 0
    assert incl[~live].sum() == 0, "a candidate of probability 0 was accepted"
    p_incl = chisq_p(incl[live], incl_exp[live])
    p_binom = min(float(st.binomtest(int(incl[i]), reps, min(1.0, incl_exp[i])).pvalue) * n for i in range(n))
    return {"tuple": p_tuple, "first": p_first, "inclusion": p_incl, "inclusion_binom": min(1.0, p_binom)}


LAW_CASES = [
    ([0.0, 0.5, 1.0, 1.5, 2.0], 2, 1.0),
    ([0.5, 1.0, 0.0, 0.3, 1.0, -0.4], 3, 0.5),
    ([0.0, -3.0, 2.0, 1.0, -1.0], 3, 2.0),
    ([0.2, 0.1, 0.0, -0.1, -0.2, -0.3, 0.25], 4, 0.1),
]
REPS = 20_000


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rewards,k,beta", LAW_CASES)
def test_rso_law_matches_the_paper_algorithm(dtype, rewards, k, beta):
    law = rso_exact_law(rewards, k, beta)
    assert abs(sum(law.values()) - 1) < 1e-12
    r = torch.tensor(rewards, dtype=dtype).repeat(REPS, 1)  # row g draws from its own stream
    got = [tuple(t) for t in select.rso(r, k, beta, generator=gen(len(rewards) + k)).tolist()]
    ps = law_p_values(got, law, len(rewards), k)
    assert min(ps.values()) > ALPHA, ps


def test_rso_exact_law_agrees_with_the_per_row_python_algorithm():
    """The enumeration used as the oracle is the paper's algorithm: its per-row Python transcription
    (Python's own RNG) passes the same test."""
    rewards, k, beta = LAW_CASES[1]
    rng = random.Random(5)
    got = [tuple(t) for t in B.rso_per_row([rewards] * REPS, k, beta, rng.random)]
    ps = law_p_values(got, rso_exact_law(rewards, k, beta), len(rewards), k)
    assert min(ps.values()) > ALPHA, ps


def test_rso_kernel_and_per_row_python_two_sample():
    """Kernel samples against per-row Python samples of the paper's algorithm (chi-square contingency on
    ordered outputs), on a reward vector with ragged rows around it."""
    rewards, k, beta = [0.3, -0.2, 0.9, 0.9, 0.0, 0.5], 3, 0.4
    flat = torch.tensor(rewards * 8000 + [1.0, 2.0])
    off = torch.tensor([6 * i for i in range(8001)] + [6 * 8000 + 2])
    ours = [tuple(t) for t in select.rso(flat, k, beta, offsets=off, generator=gen(8)).tolist()[:-1]]
    rng = random.Random(9)
    theirs = [tuple(t) for t in B.rso_per_row([rewards] * 8000, k, beta, rng.random)]
    cells = sorted(set(ours) | set(theirs))
    table = np.array([[ours.count(c) for c in cells], [theirs.count(c) for c in cells]])
    table = table[:, table.sum(0) >= 10]
    assert st.chi2_contingency(table).pvalue > ALPHA


@pytest.mark.parametrize("rewards,k,beta", LAW_CASES[:2])
def test_rso_negative_control_half_temperature_is_rejected(rewards, k, beta):
    """Accepting with exp((r - r_max) / (2 beta)) must fail the same test at the same level."""
    law = rso_exact_law(rewards, k, beta)
    r = torch.tensor(rewards).repeat(REPS, 1)
    got = [tuple(t) for t in select.rso(r, k, 2 * beta, generator=gen(len(rewards) + k)).tolist()]
    assert min(law_p_values(got, law, len(rewards), k).values()) < ALPHA


def test_rso_negative_control_with_replacement_max_is_rejected():
    """A subtly different algorithm (r_max over all candidates, not the remaining ones) is rejected."""
    rewards, k, beta = [0.0, 0.5, 1.0, 1.5, 2.0], 3, 0.5
    law = rso_exact_law(rewards, k, beta)
    rng = random.Random(1)
    wrong = []
    for _ in range(REPS):
        acc: list[int] = []
        r_max = max(rewards)
        while len(acc) < k:
            for i, x in enumerate(rewards):
                if i not in acc and rng.random() < math.exp((x - r_max) / beta):
                    acc.append(i)
                    if len(acc) == k:
                        break
        wrong.append(tuple(acc))
    assert min(law_p_values(wrong, law, len(rewards), k).values()) < ALPHA


# ---------------------------------------------------------------- threshold, top_fraction, filters, dedupe


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ties", [False, True])
def test_threshold_matches_twin_and_per_row(dtype, layout, ties):
    r, off = case(layout, dtype, ties)
    for bar, cap in ((0.0, None), (0.5, 1), (-math.inf, 3), (math.inf, None), (0.3, 100)):
        idx, counts = select.threshold(r, bar, max_per_group=cap, offsets=off)
        want_idx, want_counts = R.threshold(r, bar, cap, off)
        assert torch.equal(idx, want_idx) and torch.equal(counts, want_counts)
        assert idx.tolist() == B.threshold_per_row(rows_of(r, off), bar, cap)
        assert int(counts.sum()) == idx.shape[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ties", [False, True])
def test_top_fraction_matches_twin_and_per_row(dtype, layout, ties):
    r, off = case(layout, dtype, ties)
    for fraction in (1e-9, 0.1, 0.3, 0.5, 0.77, 1.0):
        got = select.top_fraction(r, fraction, offsets=off)
        assert torch.equal(got, R.top_fraction(r, fraction, off))
        assert got.tolist() == B.top_fraction_per_row(rows_of(r, off), fraction)


def test_top_fraction_count_and_order():
    r = torch.tensor([0.5, 3.0, -0.0, 0.0, 3.0, -math.inf, math.inf, 0.0, 1.0, 2.0])
    assert select.top_fraction(r, 0.3).tolist() == [1, 4, 6]  # 0.3 * 10 is 3 rows, not 4
    assert select.top_fraction(r, 0.75).tolist() == [0, 1, 2, 3, 4, 6, 8, 9]  # ceil(7.5); -0.0 ties 0.0
    assert select.top_fraction(r, 0.01).tolist() == [6]


def test_top_fraction_large_batch_threads():
    r = dense_rewards(512, 300, torch.float32, ties=True)  # 153,600 values: several chunks and threads
    for f in (0.01, 0.5):
        assert torch.equal(select.top_fraction(r, f), R.top_fraction(r, f))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.int32])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_filter_groups_matches_twin_and_per_row(dtype, layout):
    r, off = case(layout, torch.float64, ties=True)
    metric = (r > 0).to(dtype) if dtype in (torch.bool, torch.int32) else (r > 0).to(dtype) * 2 - 1
    if dtype.is_floating_point:
        metric = torch.where(r == 0, r, metric)  # signed zeros: -0.0 == 0.0
    got = select.filter_groups(metric, offsets=off)
    assert got.dtype == torch.bool
    assert torch.equal(got, R.filter_groups(metric, off))
    assert got.tolist() == B.filter_groups_per_row(rows_of(metric, off))


def test_filter_groups_small_groups_are_dropped():
    got = select.filter_groups(
        torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, -0.0]), offsets=torch.tensor([0, 0, 1, 3, 4, 6])
    )
    assert got.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("m,nkeys,ngroups", [(0, 1, 1), (1, 1, 1), (1000, 5, 7), (70_000, 3000, 40)])
def test_dedupe_matches_twin_and_per_row(m, nkeys, ngroups):
    g = gen(m)
    keys = torch.randint(-(2**62), 2**62, (nkeys,), generator=g)[torch.randint(0, nkeys, (m,), generator=g)]
    groups = torch.randint(-5, ngroups, (m,), generator=g)
    got = select.dedupe(keys, groups)
    assert torch.equal(got, R.dedupe(keys, groups))
    assert got.tolist() == B.dedupe_per_row(keys.tolist(), groups.tolist())


# ---------------------------------------------------------------- threads, ISA, NaN, bad input


def _digests() -> dict[str, str]:
    out = {}
    for dtype in DTYPES:
        r = dense_rewards(3000, 37, dtype, ties=False, seed=4)  # 111,000 values: split across threads
        f, off = r.reshape(-1), torch.arange(0, 3001 * 37, 37)
        out[f"best/{dtype}"] = digest(select.best_of_n(r, 5))
        out[f"rso/{dtype}"] = digest(
            ops.select_rso(f, 6, 0.3, SEED, 2, off), ops.select_rso(r, 6, 3.0, SEED, 2, None)
        )
        out[f"threshold/{dtype}"] = digest(*select.threshold(r, 0.2, max_per_group=4))
        out[f"top/{dtype}"] = digest(select.top_fraction(r, 0.37))
        out[f"filter/{dtype}"] = digest(select.filter_groups((r > -2.5).to(dtype)))
    keys = torch.arange(120_000) % 1001
    out["dedupe"] = digest(select.dedupe(keys, torch.arange(120_000) % 7))
    return out


def test_thread_count_independence():
    torch.set_num_threads(1)
    one = _digests()
    torch.set_num_threads(2)
    two = _digests()
    torch.set_num_threads(3)
    assert one == two == _digests()


def test_baseline_and_avx2_builds_agree():
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, RSFAST_CPU_ISA="baseline", OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join([rsfast_root(), here, env.get("PYTHONPATH", "")])
    code = "import json, test_select as t; print(json.dumps(t._digests()))"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=here
    )
    assert res.returncode == 0, res.stderr[-3000:]
    import json

    assert json.loads(res.stdout.strip().splitlines()[-1]) == _digests()


def test_half_precision_bool_and_integer_rewards_are_widened():
    r = dense_rewards(20, 9, torch.float32, ties=True)
    assert torch.equal(select.best_of_n(r.half(), 3), select.best_of_n(r, 3))
    verdict = r > 0
    assert torch.equal(select.best_of_n(verdict, 2), select.best_of_n(verdict.float(), 2))
    got, want = select.threshold(verdict, 1), select.threshold(verdict.float(), 1)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    big = (r * 2**40).long()
    assert torch.equal(select.best_of_n(big, 4), select.best_of_n(big.double(), 4))
    assert torch.equal(
        select.rso(r.bfloat16(), 3, 1.0, generator=gen(1)), select.rso(r, 3, 1.0, generator=gen(1))
    )


def test_strided_inputs():
    r = dense_rewards(30, 40, torch.float64, ties=True)
    t = r.t().contiguous().t()  # same values, column-major
    assert torch.equal(select.best_of_n(t, 4), select.best_of_n(r, 4))
    assert torch.equal(select.rso(t, 4, 0.5, generator=gen(2)), select.rso(r, 4, 0.5, generator=gen(2)))
    assert torch.equal(select.threshold(t[:, ::2], 0.0)[0], select.threshold(r[:, ::2].contiguous(), 0.0)[0])


NAN = torch.tensor([[0.0, math.nan, 1.0]])
OFF = torch.tensor([0, 2, 3])
R2 = torch.zeros(2, 3)

BAD = [
    (lambda: select.best_of_n(NAN, 1), ValueError, "rewards contains NaN"),
    (lambda: select.rso(NAN, 1, 1.0), ValueError, "rewards contains NaN"),
    (lambda: select.threshold(NAN, 0.0), ValueError, "rewards contains NaN"),
    (lambda: select.top_fraction(NAN, 0.5), ValueError, "rewards contains NaN"),
    (lambda: select.filter_groups(NAN), ValueError, "metric contains NaN"),
    (lambda: select.best_of_n([[1.0]], 1), TypeError, "rewards must be a Tensor"),
    (lambda: select.best_of_n(R2, 1.0), TypeError, "k must be an int"),
    (lambda: select.best_of_n(R2, 0), ValueError, "k must be >= 1"),
    (lambda: select.best_of_n(R2, 4), ValueError, "k must be <= N"),
    (lambda: select.rso(R2, 4, 1.0), ValueError, "k must be <= N"),
    (lambda: select.rso(R2, 0, 1.0), ValueError, "k must be >= 1"),
    (lambda: select.best_of_n(torch.zeros(3), 1), ValueError, "rewards must be"),
    (lambda: select.best_of_n(torch.zeros(2, 3, 4), 1), ValueError, "rewards must be"),
    (
        lambda: select.best_of_n(torch.zeros(2, 3, dtype=torch.complex64), 1),
        ValueError,
        "rewards must be real",
    ),
    (lambda: select.rso(R2, 1, 0.0), ValueError, "beta must be finite and > 0"),
    (lambda: select.rso(R2, 1, -1.0), ValueError, "beta must be finite and > 0"),
    (lambda: select.rso(R2, 1, math.inf), ValueError, "beta must be finite and > 0"),
    (lambda: select.rso(torch.zeros(1, 2**17), 2**17, 1.0), ValueError, "2\\*\\*32 Philox blocks"),
    (lambda: select.rso(R2, 1, math.nan), ValueError, "beta must be finite and > 0"),
    (lambda: select.rso(R2, 1, "1"), TypeError, "beta must be a float"),
    (lambda: select.rso(R2, 1, 1.0, generator=1), TypeError, "generator"),
    (lambda: select.threshold(R2, math.nan), ValueError, "min_reward must not be NaN"),
    (lambda: select.threshold(R2, 0.0, max_per_group=0), ValueError, "max_per_group must be >= 1"),
    (lambda: select.threshold(R2, 0.0, max_per_group=1.5), TypeError, "max_per_group must be an int"),
    (lambda: select.top_fraction(R2, 0.0), ValueError, r"fraction must be in \(0, 1\]"),
    (lambda: select.top_fraction(R2, 1.5), ValueError, r"fraction must be in \(0, 1\]"),
    (lambda: select.top_fraction(R2, None), TypeError, "fraction must be a float"),
    (lambda: select.best_of_n(torch.zeros(3), 1, offsets=[0, 3]), TypeError, "offsets must be a Tensor"),
    (lambda: select.best_of_n(torch.zeros(3), 1, offsets=OFF.int()), ValueError, "offsets must be int64"),
    (
        lambda: select.best_of_n(torch.zeros(3), 1, offsets=torch.tensor([1, 3])),
        ValueError,
        "offsets must start",
    ),
    (lambda: select.best_of_n(torch.zeros(3), 1, offsets=torch.tensor([0, 2])), ValueError, "end at 3"),
    (
        lambda: select.rso(torch.zeros(3), 1, 1.0, offsets=torch.tensor([0, 2, 1, 3])),
        ValueError,
        "nondecreasing",
    ),
    (
        lambda: select.threshold(torch.zeros(3), 0.0, offsets=torch.tensor([[0, 3]])),
        ValueError,
        "offsets must be",
    ),
    (lambda: select.best_of_n(R2, 1, offsets=OFF), ValueError, "flat"),
    (
        lambda: select.filter_groups(torch.zeros(2, 2, dtype=torch.complex64)),
        ValueError,
        "metric must be real",
    ),
    (
        lambda: select.dedupe(torch.zeros(3, dtype=torch.int64), [0, 0, 0]),
        TypeError,
        "groups must be a Tensor",
    ),
    (
        lambda: select.dedupe(torch.zeros(3), torch.zeros(3, dtype=torch.int64)),
        ValueError,
        "keys must be int64",
    ),
    (
        lambda: select.dedupe(torch.zeros(3, dtype=torch.int64), torch.zeros(2, dtype=torch.int64)),
        ValueError,
        "groups must have the shape of keys",
    ),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input(i):
    fn, exc, match = BAD[i]
    with pytest.raises(exc, match=match):
        fn()


def test_empty_inputs():
    assert select.best_of_n(torch.zeros(0, 4), 2).shape == (0, 2)
    assert select.rso(torch.zeros(0), 2, 1.0, offsets=torch.tensor([0, 0])).tolist() == [[-1, -1]]
    idx, counts = select.threshold(torch.zeros(0, 3), 0.0)
    assert idx.numel() == 0 and counts.numel() == 0
    assert select.top_fraction(torch.zeros(0), 0.5).numel() == 0
    assert select.filter_groups(torch.zeros(0, 3)).numel() == 0
    assert select.dedupe(torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)).numel() == 0
