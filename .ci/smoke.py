"""A smoke workload of the installed rsfast (no test files): every op family once, results checked."""

import torch

import rsfast

print(f"smoke: rsfast {rsfast.__version__} from {rsfast.__file__} on torch {torch.__version__}")
g = torch.Generator().manual_seed(0)
q = rsfast.proposals.Normal(torch.zeros(2), 3 * torch.ones(2))
res = rsfast.sample(lambda x: -0.5 * x.pow(2).sum(-1), q, n=10_000, log_M="auto", generator=g)
assert res.samples.shape == (10_000, 2) and torch.isfinite(res.samples).all()
assert abs(res.samples.std().item() - 1.0) < 0.05, res.samples.std()
tn = rsfast.distributions.TruncatedNormal(0.0, 1.0, 1.0, 2.0).sample((1000,))
assert ((tn >= 1) & (tn <= 2)).all()
k = rsfast.select.best_of_n(torch.tensor([[0.1, 0.9, 0.5]]), 2)
assert k.tolist() == [[1, 2]], k
x, keep = torch.arange(6.0), torch.zeros(6)
out, count = rsfast.accept_compact_rows(keep, 0.0, x, generator=g)
assert int(count) == 6 and torch.equal(out, x)
p = torch.zeros(100)
rsfast.perturb_([p], 1, 0.5)
rsfast.perturb_([p], 1, -0.5)
assert p.abs().max() < 1e-6
print("smoke: ok")
