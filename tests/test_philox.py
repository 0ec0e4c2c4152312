"""Philox4x32-10: Random123 known-answer vectors, the native module against the pure-torch
twin, the stream layout the kernels use, and the uniformity of the words."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch
from _helpers import ALPHA, SEED, chisq_p

from rsfast import _C, ops
from rsfast import reference as R
from rsfast.reference import philox as P

pytestmark = pytest.mark.timeout(60)

M32 = 0xFFFFFFFF

# (counter[4], key[2]) -> out[4], from Random123's kat_vectors (philox4x32 10 rounds).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def native(counter, key):
    return tuple(int(v) for v in _C.philox4x32_10(list(counter), list(key)))


def reference(counter, key):
    return tuple(int(v) for v in R.philox4x32_10(torch.tensor(counter, dtype=torch.int64), key))


@pytest.mark.parametrize("impl", [native, reference], ids=["native", "reference"])
@pytest.mark.parametrize("counter,key,expected", KAT, ids=["zeros", "ones", "pi"])
def test_known_answer_vectors(impl, counter, key, expected):
    assert impl(counter, key) == expected


def test_native_matches_reference_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    ctr = torch.randint(0, 2**32, (300, 4), generator=g, dtype=torch.int64)
    keys = torch.randint(0, 2**32, (300, 2), generator=g, dtype=torch.int64)
    for c, k in zip(ctr.tolist(), keys.tolist()):
        assert native(c, k) == reference(c, tuple(k))


def test_reference_is_vectorised_consistently():
    """The batched twin gives the same words as one counter at a time."""
    ctr = torch.tensor([[1, 2, 3, 4], [M32, 0, 7, 9], [5, 6, 7, 8]], dtype=torch.int64)
    batch = R.philox4x32_10(ctr, (11, 12))
    for row, words in zip(ctr.tolist(), batch.tolist()):
        assert tuple(words) == native(row, (11, 12))


def test_block_layout_counter_and_key():
    """philox_block: counter (block, stream_lo, stream_hi, offset), key (seed_lo, seed_hi)."""
    stream = torch.tensor([0, 1, 2**32 + 5, 2**40 + 3], dtype=torch.int64)
    got = R.philox_block(SEED, stream, 77, 3)
    for s, words in zip(stream.tolist(), got.tolist()):
        expect = native((3, s & M32, s >> 32, 77), (SEED & M32, SEED >> 32))
        assert tuple(words) == expect


def test_kernel_streams_follow_the_layout():
    """The native propose kernel's float32 uniforms come from the documented words:
    row i, value j reads word j % 4 of Philox block (j // 4, i, offset) under key (seed)."""
    m, dim, offset = 2000, 6, 9
    x, _ = ops.propose("uniform", [torch.zeros(dim), torch.ones(dim)], m, SEED, offset)
    rows = torch.arange(m)
    for j in range(dim):
        words = R.philox_block(SEED, rows, offset, j // 4)[:, j % 4]
        assert torch.equal(x[:, j], R.u01_f23(words)), f"value {j}"


def test_uniform_maps_stay_in_range():
    w = torch.tensor([0, 1, 2**31, M32], dtype=torch.int64)
    for u in (R.u01_f23(w), R.u01_log_arg(w), R.u01_f52(w, w)):
        assert bool(((u > 0) & (u <= 1)).all())


# Row 2660524, value 3 of ops.propose(uniform, seed=SEED, offset=0) reads word 0xfffffff7.
TOP_ROW, TOP_COL, TOP_WORD = 2660524, 3, 0xFFFFFFF7


@pytest.mark.parametrize("name", ["u01_f23", "u01_f52"])
def test_uniform_maps_are_open_at_one(name):
    """philox.h documents u01_f23 and u01_f52 as (0, 1) ("all open intervals"), so that a Uniform
    proposal stays in its half-open box [low, high). For the all-ones words, (k + 0.5) * 2^-24 in
    float32 (and (k + 0.5) * 2^-53 in float64) is a tie that rounds to 1.0. In float32 that is one
    value in 2^24: the kernel returns x == high (test below)."""
    w = torch.tensor([TOP_WORD, M32], dtype=torch.int64)
    u = R.u01_f23(w) if name == "u01_f23" else R.u01_f52(w, w)
    assert float(u.max()) < 1.0


def test_uniform_proposal_never_returns_high():
    word = R.philox_block(SEED, torch.tensor([TOP_ROW]), 0, TOP_COL // 4)[0, TOP_COL % 4]
    assert int(word) == TOP_WORD
    x, _ = ops.propose("uniform", [torch.zeros(4), torch.ones(4)], TOP_ROW + 1, SEED, 0)
    assert float(x[TOP_ROW, TOP_COL]) < 1.0, "Uniform(0, 1) proposal returned x == high"
    assert bool((x < 1).all())


def _philox_rounds(counter: torch.Tensor, key: tuple[int, int], rounds: int) -> torch.Tensor:
    """Philox4x32 with a chosen number of rounds (10 is the real one): the negative control."""
    c0, c1, c2, c3 = (counter[..., i] for i in range(4))
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + P._W0) & M32, (k1 + P._W1) & M32
        hi0, lo0 = P._mulhilo(P._M0, c0)
        hi1, lo1 = P._mulhilo(P._M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return torch.stack([c0, c1, c2, c3], -1)


def _byte_histogram(words: torch.Tensor, bits: int = 32) -> np.ndarray:
    b = torch.stack([(words >> s) & 0xFF for s in range(0, bits, 8)], -1).reshape(-1)
    return torch.bincount(b, minlength=256).numpy()


def _bit_chisq_p(words: torch.Tensor, bits: int = 32) -> float:
    """Each bit position is 1 with probability 1/2: sum of squared z over positions ~ chi2(bits)."""
    n = words.numel()
    ones = torch.stack([((words >> s) & 1).sum() for s in range(bits)]).double().numpy()
    z = (ones - n / 2) / np.sqrt(n / 4)
    return float(st.chi2.sf((z * z).sum(), bits))


SEQ = torch.zeros((1 << 16, 4), dtype=torch.int64)
SEQ[:, 1] = torch.arange(1 << 16)  # consecutive streams, as the kernels use them


def test_reference_words_uniform_bytes_and_bits():
    words = R.philox4x32_10(SEQ, (SEED & M32, SEED >> 32)).reshape(-1)
    assert chisq_p(_byte_histogram(words), np.ones(256)) > ALPHA
    assert _bit_chisq_p(words) > ALPHA


def test_negative_control_three_rounds_fail():
    """The same byte test rejects Philox with 3 rounds on the same consecutive counters."""
    assert torch.equal(_philox_rounds(SEQ[:8], (1, 2), 10), R.philox4x32_10(SEQ[:8], (1, 2)))
    weak = _philox_rounds(SEQ, (SEED & M32, SEED >> 32), 3).reshape(-1)
    assert chisq_p(_byte_histogram(weak), np.ones(256)) < ALPHA


def test_kernel_words_uniform_bytes_and_bits():
    """Top 24 bits of 1M native words, read back through the float64 uniform path
    (u = (k + 0.5) 2^-53 with k = (w0 >> 5) << 26 | w1 >> 6, so floor(u 2^24) = w0 >> 8)."""
    x, _ = ops.propose("uniform", [torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)],
                       1 << 19, SEED, 1)  # fmt: skip
    top24 = (x * 2**24).floor().to(torch.int64).reshape(-1)
    assert chisq_p(_byte_histogram(top24, 24), np.ones(256)) > ALPHA
    assert _bit_chisq_p(top24, 24) > ALPHA
