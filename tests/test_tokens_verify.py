"""rsfast.tokens.verify: exact laws by enumeration on small vocabularies (emitted tokens follow the target,
the number accepted follows its law), p = q always accepts, one-hot targets, greedy mode, ragged = dense,
determinism, bad requests, opcheck."""

import math

import pytest
import torch
from scipy import stats

import rsfast.tokens as tokens
from rsfast.ops import tokens as ops
from rsfast.reference import tokens as ref

N = 100_000
ALPHA = 1e-4
THRESHOLD = ALPHA / 12


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def chi2_p(counts: torch.Tensor, law: torch.Tensor) -> float:
    """Pearson chi-square p-value, bins of expected count < 5 merged; 0 if a draw fell outside the law."""
    counts, law = counts.reshape(-1).double(), law.reshape(-1).double()
    e = law * counts.sum()
    if float(counts[e == 0].sum()) > 0:
        return 0.0
    order = torch.argsort(e)
    oc, oe, ac, ae = [], [], 0.0, 0.0
    for c, x in zip(counts[order].tolist(), e[order].tolist()):
        if x == 0:
            continue
        ac, ae = ac + c, ae + x
        if ae >= 5:
            oc.append(ac)
            oe.append(ae)
            ac = ae = 0.0
    if ae > 0 and oe:
        oc[-1] += ac
        oe[-1] += ae
    if len(oe) < 2:
        return 1.0
    c, x = torch.tensor(oc), torch.tensor(oe)
    return float(stats.chi2.sf(float(((c - x) ** 2 / x).sum()), len(oe) - 1))


def _case(v: int, s: int, seed: int, kw: dict):
    g = _gen(seed)
    logits = 2 * torch.randn(s + 1, v, generator=g)
    q = torch.softmax(1.5 * torch.randn(s, v, generator=g), -1)
    law, _ = ref.tokens_filtered_probs(logits, **kw)
    return logits, q, law


def _exact_joint(draft, law, q):
    """[S + 1, V] law of (num_accepted = j, last emitted token = t) for fixed drafts."""
    s, v = q.shape
    out = torch.zeros(s + 1, v, dtype=torch.float64)
    reach = 1.0
    for j in range(s):
        d = int(draft[j])
        a = min(1.0, float(law[j, d]) / float(q[j, d])) if float(q[j, d]) > 0 else float(law[j, d] > 0)
        resid = (law[j] - q[j].double()).clamp_min(0)
        if float(resid.sum()) > 0:
            out[j] = reach * (1 - a) * resid / resid.sum()
        reach *= a
    out[s] = reach * law[s]
    return out


@pytest.mark.parametrize(
    "v,s,kw,with_q",
    [
        (4, 1, {}, True),
        (6, 2, dict(top_k=3), True),
        (8, 3, dict(top_p=0.8, temperature=0.7), True),
        (10, 3, dict(min_p=0.1, top_k=6), False),
        (5, 2, dict(temperature=1.3), False),
    ],
)
def test_fixed_drafts_exact_joint_law(v, s, kw, with_q):
    logits, q, law = _case(v, s, v * 10 + s, kw)
    draft = torch.multinomial(q, 1, generator=_gen(1))[:, 0]
    if not with_q:
        q = torch.nn.functional.one_hot(draft, v).float()
    r = tokens.verify(
        draft[None].expand(N, s),
        logits[None].expand(N, s + 1, v),
        q[None].expand(N, s, v) if with_q else None,
        seeds=torch.arange(N),
        **kw,
    )
    assert bool(r.valid.all())
    assert torch.equal(r.num_emitted, r.num_accepted + 1)
    n_acc = r.num_accepted
    last = r.ids.gather(1, n_acc[:, None])[:, 0]
    for j in range(s):  # accepted prefix equals the drafts
        rows = n_acc > j
        assert bool((r.ids[rows, j] == draft[j]).all())
    assert bool((r.ids.gather(1, (n_acc[:, None] + 1).clamp_max(s))[n_acc < s] == -1).all())
    counts = torch.zeros(s + 1, v)
    counts.index_put_((n_acc, last), torch.ones(N), accumulate=True)
    assert chi2_p(counts, _exact_joint(draft, law, q)) > THRESHOLD


def test_drafts_from_q_emit_the_target_law():
    """Drafts drawn from q: each emitted position follows the target law, and the number accepted follows
    P(n >= j + 1 | n >= j) = sum_i min(p_j(i), q_j(i))."""
    v, s = 7, 3
    kw = dict(top_k=5, top_p=0.9)
    logits, q, law = _case(v, s, 77, kw)
    draft = torch.stack(
        [torch.multinomial(q[j], N, replacement=True, generator=_gen(j)) for j in range(s)], 1
    )
    r = tokens.verify(
        draft, logits[None].expand(N, s + 1, v), q[None].expand(N, s, v), seeds=torch.arange(N), **kw
    )
    for j in range(s + 1):
        rows = r.num_emitted > j
        assert chi2_p(torch.bincount(r.ids[rows, j], minlength=v), law[j]) > THRESHOLD
    beta = torch.minimum(law[:s], q.double()).sum(1)
    reach = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), beta]), 0)
    acc_law = torch.cat([reach[:-1] - reach[1:], reach[-1:]])
    assert chi2_p(torch.bincount(r.num_accepted, minlength=s + 1), acc_law) > THRESHOLD


def test_p_equals_q_always_accepts():
    p = torch.tensor([0.5, 0.25, 0.125, 0.125])  # exact in binary: p(d) == q(d) bit for bit
    s, n = 3, 20_000
    draft = torch.multinomial(p, n * s, replacement=True, generator=_gen(2)).view(n, s)
    r = tokens.verify(draft, p.expand(n, s + 1, 4), p.expand(n, s, 4), input="probs", seeds=torch.arange(n))
    assert bool((r.num_accepted == s).all())
    assert torch.equal(r.ids[:, :s], draft)


def test_one_hot_targets_give_a_fixed_output():
    v, s, n = 9, 3, 2000
    target = torch.full((s + 1, v), -math.inf)
    winners = [2, 5, 5, 8]
    for j, w in enumerate(winners):
        target[j, w] = 0.0
    draft = torch.tensor([2, 5, 1])
    r = tokens.verify(draft.expand(n, s), target.expand(n, s + 1, v), seeds=torch.arange(n), top_p=0.7)
    assert bool((r.ids == torch.tensor([2, 5, 5, -1])).all())
    assert bool((r.num_accepted == 2).all())
    q = torch.softmax(torch.randn(s, v, generator=_gen(3)), -1)
    r = tokens.verify(
        draft.expand(n, s), target.expand(n, s + 1, v), q.expand(n, s, v), seeds=torch.arange(n)
    )
    assert bool((r.ids == torch.tensor([2, 5, 5, -1])).all())


def test_greedy_mode():
    b, s, v = 50, 4, 30
    target = torch.randn(b, s + 1, v, generator=_gen(4))
    am = target.argmax(-1)
    draft = am[:, :s].clone()
    flip = torch.rand(b, s, generator=_gen(5)) < 0.3
    draft[flip] = (draft[flip] + 1) % v
    r = tokens.verify(draft, target, mode="greedy")
    for i in range(b):
        n = 0
        while n < s and int(draft[i, n]) == int(am[i, n]):
            n += 1
        assert int(r.num_accepted[i]) == n
        assert r.ids[i, : n + 1].tolist() == [*draft[i, :n].tolist(), int(am[i, n])]
        assert bool((r.ids[i, n + 1 :] == -1).all())


def test_ragged_matches_dense_per_request_and_batch_position():
    v = 40
    counts = [3, 0, 2, 1, 3]
    g = _gen(6)
    cu = torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()])
    n = int(cu[-1])
    draft = torch.randint(0, v, (n,), generator=g)
    target = torch.randn(n + len(counts), v, generator=g)
    q = torch.softmax(torch.randn(n, v, generator=g), -1)
    seeds = torch.tensor([11, 12, 13, 14, 15])
    kw = dict(top_k=20, top_p=0.95, temperature=0.9)
    r = tokens.verify(draft, target, q, cu_num_draft_tokens=cu, seeds=seeds, offsets=4, **kw)
    assert r.ids.shape == (5, 4)
    for b, sb in enumerate(counts):
        d0, t0 = int(cu[b]), int(cu[b]) + b
        one = tokens.verify(
            draft[d0 : d0 + sb][None],
            target[t0 : t0 + sb + 1][None],
            q[d0 : d0 + sb][None],
            seeds=int(seeds[b]),
            offsets=4,
            **kw,
        )
        assert int(one.num_accepted[0]) == int(r.num_accepted[b])
        assert one.ids[0].tolist() == r.ids[b, : sb + 1].tolist()
        assert bool((r.ids[b, sb + 1 :] == -1).all())


def test_thread_count_does_not_matter():
    b, s, v = 64, 4, 3000
    g = _gen(7)
    target = torch.randn(b, s + 1, v, generator=g)
    draft = torch.randint(0, v, (b, s), generator=g)
    outs = []
    for nt in (1, 2):
        torch.set_num_threads(nt)
        outs.append(tokens.verify(draft, target, seeds=torch.arange(b), top_k=50).ids)
    assert torch.equal(outs[0], outs[1])


def test_bad_requests():
    b, s, v = 5, 2, 12
    g = _gen(8)
    target = torch.randn(b, s + 1, v, generator=g)
    draft = torch.randint(0, v, (b, s), generator=g)
    clean = tokens.verify(draft, target, seeds=torch.arange(b))
    target[0, 2, 3] = math.nan  # the bonus row
    target[1, 0] = -math.inf
    draft[2, 1] = v  # out of the vocabulary
    r = tokens.verify(draft, target, seeds=torch.arange(b))
    assert r.valid.tolist() == [False, False, False, True, True]
    assert r.num_emitted[:3].tolist() == [0, 0, 0] and bool((r.ids[:3] == -1).all())
    assert torch.equal(r.ids[3:], clean.ids[3:])
    q = torch.softmax(torch.randn(b, s, v, generator=g), -1)
    q[4, 0, 0] = -1.0
    r = tokens.verify(
        clean.ids[:, :s].clamp_min(0), target.nan_to_num(0.0, 0.0, 0.0), q, seeds=torch.arange(b)
    )
    assert not bool(r.valid[4])
    assert bool(((r.ids >= -1) & (r.ids < v)).all())


def test_argument_errors():
    target = torch.randn(2, 3, 5)
    draft = torch.zeros(2, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="target"):
        tokens.verify(draft, torch.randn(2, 2, 5))
    with pytest.raises(ValueError, match="mode"):
        tokens.verify(draft, target, mode="typical")
    with pytest.raises(TypeError, match="draft_token_ids"):
        tokens.verify(draft.float(), target)
    with pytest.raises(ValueError, match="draft_probs"):
        tokens.verify(draft, target, torch.rand(2, 2, 4))
    with pytest.raises(ValueError, match="cu_num_draft_tokens"):
        tokens.verify(
            torch.zeros(3, dtype=torch.int64), torch.randn(5, 5), cu_num_draft_tokens=torch.tensor([0, 2, 1])
        )


def test_opcheck():
    b, s, v = 3, 2, 16
    g = _gen(9)
    target = torch.randn(b, s + 1, v, generator=g)
    draft = torch.randint(0, v, (b, s), generator=g)
    q = torch.softmax(torch.randn(b, s, v, generator=g), -1)
    params = (
        torch.ones(b),
        torch.zeros(b, dtype=torch.int64),
        torch.ones(b, dtype=torch.float64),
        torch.zeros(b, dtype=torch.float64),
        torch.arange(b),
        torch.zeros(b, dtype=torch.int64),
    )
    torch.library.opcheck(ops.tokens_verify_op, (draft, target, q, None, s, *params, False, 0, 0, 0))


def test_ragged_layout_out_of_range_is_invalid_not_read():
    """With max_num_draft_tokens the host does not read cu: a layout outside the arrays is invalid."""
    v = 10
    draft = torch.zeros(4, dtype=torch.int64)
    target = torch.randn(4 + 3, v)
    cu = torch.tensor([0, 2, 9, 4])  # request 1 claims drafts 2..9 of 4
    r = tokens.verify(draft, target, cu_num_draft_tokens=cu, max_num_draft_tokens=7, seeds=torch.arange(3))
    assert r.valid.tolist() == [True, False, False]
    assert r.num_emitted.tolist()[1:] == [0, 0]
