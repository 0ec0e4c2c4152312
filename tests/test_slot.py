"""The slot-mode kernel rsfast::slot_sample (csrc/ops/slot_sample/core.h): agreement with its torch
twin (same Philox streams: float32 bit for bit, float64 to an ulp), parameter broadcasting, thread
count independence, the exhausted-tries bound, torch.library.opcheck, torch.compile(fullgraph=True)
and argument checks. The laws themselves are tested against scipy in test_distributions.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from _helpers import DTYPES, SEED, TESTS_DIR, _child_env

from rsfast import ops, reference
from rsfast.ops.slot_sample import slot_sample_into

pytestmark = pytest.mark.timeout(120)

INF = math.inf

# law -> {regime: parameter values}: every proposal mode of every law.
REGIMES = {
    "truncated_normal": {
        "central_narrow": (0.3, 1.5, -1.0, 1.0),
        "central_wide": (0.3, 1.5, -INF, INF),
        "right_tail": (0.0, 1.0, 3.0, INF),
        "left_tail_mirrored": (0.3, 1.5, -INF, -5.0),
        "short_tail_interval": (0.0, 1.0, 8.0, 8.5),
        "far_tail": (0.0, 1.0, 50.0, 60.0),
        "tail_uniform": (0.0, 1.0, 5.0, 5.05),
        "one_sided_near_zero": (0.0, 2.0, 0.5, 3.0),
    },
    "von_mises": {
        "tiny_k": (0.5, 1e-3),
        "k_half": (0.5, 0.5),
        "k_10_loc_near_pi": (3.1, 10.0),
        "huge_k": (-2.0, 1e4),
        "loc_outside_circle": (10.0, 2.0),
    },
    "gamma": {
        "a_0.01": (0.01, 2.0),
        "a_0.3": (0.3, 1.0),
        "a_1": (1.0, 1.0),
        "a_2.5": (2.5, 3.0),
        "a_100": (100.0, 0.5),
    },
    "beta": {
        "small": (0.05, 0.1),
        "half": (0.5, 0.5),
        "uniform": (1.0, 1.0),
        "large": (300.0, 100.0),
        "mixed": (0.3, 40.0),
    },
}
CASES = [(law, name) for law, regimes in REGIMES.items() for name in regimes]


def _params(law: str, regime: str, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.tensor(v, dtype=dtype) for v in REGIMES[law][regime]]


def _assert_twin(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    assert a.shape == b.shape
    if dtype == torch.float32:
        # Same words, same float arithmetic operation by operation: identical bits.
        assert torch.equal(a, b)
    else:
        # torch's log/sin/cos vs the C library: an ulp apart, decisions identical.
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law,regime", CASES)
def test_kernel_matches_twin(law, regime, dtype):
    params = _params(law, regime, dtype)
    out, exhausted = ops.slot_sample(law, params, [3000], SEED, 7)
    ref, ref_exhausted = reference.slot_sample(law, params, [3000], SEED, 7)
    _assert_twin(out, ref, dtype)
    assert int(exhausted) == 0 and int(ref_exhausted) == 0
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("sample_shape", [[40, 5], [3]], ids=["row_major_chunks", "per_element_chunks"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law", list(REGIMES))
def test_batched_parameters_broadcast_like_torch(law, dtype, sample_shape):
    """Parameters of shapes [3, 1] and [3, 2] (one regime per row) broadcast to batch [3, 2]; the
    output is [*sample_shape, 3, 2] and every element follows its own row (twin agreement). Both
    CPU paths: many samples per row (vectorised row by row) and few (per-element parameters)."""
    rows = list(REGIMES[law].values())[:3]
    k = len(rows[0])
    params = [torch.tensor([r[j] for r in rows], dtype=dtype).unsqueeze(1) for j in range(k)]  # [3, 1]
    params[0] = params[0] + torch.zeros(1, 2, dtype=dtype)  # [3, 2]: the batch grows a column
    out, exhausted = ops.slot_sample(law, params, sample_shape, SEED, 2)
    assert out.shape == (*sample_shape, 3, 2) and int(exhausted) == 0
    ref, _ = reference.slot_sample(law, params, sample_shape, SEED, 2)
    _assert_twin(out, ref, dtype)
    # Element (s, r, c) uses row r: the truncated-normal rows have disjoint supports where they differ.
    if law == "truncated_normal":
        for r, (_, _, low, high) in enumerate(rows):
            assert bool((out[..., r, :] >= low).all() and (out[..., r, :] <= high).all())


def test_thread_count_independence():
    """1 and 2 OpenMP threads (child interpreters) give the same bits, batched and single-row."""
    procs = {
        t: subprocess.Popen(
            [sys.executable, str(TESTS_DIR / "_slot_probe.py")],
            env=_child_env(t),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for t in (1, 2)
    }
    res = {}
    for t, p in procs.items():
        out, err = p.communicate(timeout=100)
        assert p.returncode == 0, err[-3000:]
        res[t] = json.loads(out.strip().splitlines()[-1])
    assert res[1]["openmp_threads"] == 1 and res[2]["openmp_threads"] == 2
    keys = [k for k in res[1] if "/" in k]
    assert keys
    for k in keys:
        assert res[1][k] == res[2][k], k


def test_same_seed_same_bits_other_offset_other_bits():
    params = _params("truncated_normal", "central_wide", torch.float32)
    a, _ = ops.slot_sample("truncated_normal", params, [1000], SEED, 1)
    b, _ = ops.slot_sample("truncated_normal", params, [1000], SEED, 1)
    c, _ = ops.slot_sample("truncated_normal", params, [1000], SEED, 2)
    d, _ = ops.slot_sample("truncated_normal", params, [1000], SEED + 1, 1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_invalid_rows_write_nan_count_and_flag(dtype):
    """The kernel checks every row as it reads it: a bad row's elements are NaN, counted in
    ``exhausted``, and its failed checks OR-ed into ``invalid`` (bit 0: loc not finite; bit 3:
    scale <= 0), whichever CPU path (row-major or per-element) draws them; good rows still draw."""
    for sample in (1, 100):  # per-element path, then one row per chunk
        params = [
            torch.tensor([math.nan, 0.0, 0.0], dtype=dtype),
            torch.tensor([1.0, -1.0, 1.0], dtype=dtype),
            torch.tensor([3.0, 3.0, -1.0], dtype=dtype),
            torch.tensor([4.0, 4.0, 1.0], dtype=dtype),
        ]
        out = torch.empty(sample * 3, dtype=dtype)
        exhausted = torch.zeros(1, dtype=torch.int64)
        invalid = torch.zeros(1, dtype=torch.int64)
        slot_sample_into("truncated_normal", params, SEED, 0, out, exhausted, invalid)
        out = out.reshape(sample, 3)
        assert bool(torch.isnan(out[:, :2]).all()) and not bool(torch.isnan(out[:, 2]).any())
        assert int(exhausted) == 2 * sample and int(invalid) == (1 << 0) | (1 << 3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("law", list(REGIMES))
def test_opcheck(law, dtype):
    rows = list(REGIMES[law].values())[:2]
    params = [torch.tensor([r[j] for r in rows], dtype=dtype) for j in range(len(rows[0]))]
    torch.library.opcheck(ops.slot_sample_op, (law, params, [33], SEED, 5))
    torch.library.opcheck(ops.slot_sample_op, (law, [p[:1] for p in params], [0], SEED, 5))


def test_compile_fullgraph_matches_eager():
    def f(loc, scale, low, high):
        x, exhausted = ops.slot_sample("truncated_normal", [loc, scale, low, high], [4096], SEED, 3)
        return 2.0 * x + 1.0, exhausted

    args = [torch.tensor(v) for v in (0.0, 1.0, -0.5, 2.0)]
    eager = f(*args)
    torch._dynamo.reset()
    comp = torch.compile(f, fullgraph=True, backend="aot_eager")(*args)
    assert torch.equal(eager[0], comp[0]) and torch.equal(eager[1], comp[1])


def test_fake_kernel_shapes_without_running():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        params = [torch.zeros(3, 1), torch.ones(1, 4), torch.full((4,), -1.0), torch.ones(())]
        out, exhausted = ops.slot_sample("truncated_normal", params, [5], SEED, 0)
        assert out.shape == (5, 3, 4) and exhausted.shape == (1,)
        with pytest.raises(ValueError, match="broadcast"):
            ops.slot_sample("truncated_normal", [torch.zeros(3), torch.ones(2)] + params[2:], [5], SEED, 0)


def test_empty_outputs():
    params = _params("truncated_normal", "central_narrow", torch.float32)
    out, exhausted = ops.slot_sample("truncated_normal", params, [0, 3], SEED, 0)
    assert out.shape == (0, 3) and int(exhausted) == 0
    out, _ = ops.slot_sample("truncated_normal", [p.expand(0) for p in params], [4], SEED, 0)
    assert out.shape == (4, 0)


def test_argument_checks():
    p = _params("truncated_normal", "central_narrow", torch.float32)
    with pytest.raises(TypeError, match="law"):
        ops.slot_sample(3, p, [2], SEED, 0)
    with pytest.raises(TypeError, match="params"):
        ops.slot_sample("truncated_normal", p[:3] + [1.0], [2], SEED, 0)
    with pytest.raises(ValueError, match="law"):
        ops.slot_sample("cauchy", p, [2], SEED, 0)
    with pytest.raises(ValueError, match="params"):
        ops.slot_sample("truncated_normal", p[:3], [2], SEED, 0)
    with pytest.raises(TypeError, match="dtype"):
        ops.slot_sample("truncated_normal", p[:3] + [p[3].to(torch.int64)], [2], SEED, 0)
    with pytest.raises(ValueError, match="dtype and device"):
        ops.slot_sample("truncated_normal", p[:3] + [p[3].double()], [2], SEED, 0)
    with pytest.raises(ValueError, match="sample_shape"):
        ops.slot_sample("truncated_normal", p, [-1], SEED, 0)
    with pytest.raises(TypeError, match="sample_shape"):
        ops.slot_sample("truncated_normal", p, 5, SEED, 0)
    with pytest.raises(ValueError, match="seed"):
        ops.slot_sample("truncated_normal", p, [2], -1, 0)
    with pytest.raises(ValueError, match="offset"):
        ops.slot_sample("truncated_normal", p, [2], SEED, 2**32)


@pytest.mark.parametrize(
    "law,index,bad,match",
    [
        ("truncated_normal", 1, 0.0, "scale"),
        ("truncated_normal", 1, -1.0, "scale"),
        ("truncated_normal", 1, INF, "scale"),
        ("truncated_normal", 0, math.nan, "loc"),
        ("truncated_normal", 0, INF, "loc"),
        ("truncated_normal", 2, math.nan, "low"),
        ("truncated_normal", 3, math.nan, "high"),
        ("truncated_normal", 2, 1.0, "low must be < high"),
        ("truncated_normal", 2, 2.0, "low must be < high"),
        ("truncated_normal", 3, -INF, "low must be < high"),
    ],
)
def test_invalid_values_raise_naming_the_parameter(law, index, bad, match):
    params = [torch.tensor([v, v], dtype=torch.float64) for v in REGIMES[law][next(iter(REGIMES[law]))]]
    params[index][1] = bad
    with pytest.raises(ValueError, match=match):
        ops.slot_sample(law, params, [3], SEED, 0)
