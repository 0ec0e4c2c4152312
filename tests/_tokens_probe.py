"""Child probe of test_tokens: prints a digest of sample / renorm_probs / verify outputs (run under
OMP_NUM_THREADS and RSFAST_CPU_ISA set by the parent)."""

import hashlib

import torch

import rsfast.tokens as T

g = torch.Generator().manual_seed(0)
x = 3 * torch.randn(16, 4000, generator=g)  # 64,000 values: above the one-thread cut
p = dict(
    temperature=torch.rand(16, generator=g) + 0.2,
    top_k=torch.randint(0, 4001, (16,), generator=g),
    top_p=(torch.rand(16, generator=g) * 0.9 + 0.1).double(),
    min_p=(torch.rand(16, generator=g) * 0.3).double(),
)
r = T.sample(x, seeds=torch.arange(16), num_samples=5, return_logprobs=True, **p)
f = T.renorm_probs(x, input="logits", **p)
draft = torch.randint(0, 4000, (16, 3), generator=g)
v = T.verify(draft, 2 * torch.randn(16, 4, 4000, generator=g), seeds=torch.arange(16))
h = hashlib.sha256()
for t in (r.ids, r.logprobs, f, *v):
    h.update(t.numpy().tobytes())
print(h.hexdigest())
