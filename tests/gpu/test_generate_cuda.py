"""rsfast.generate on CUDA: a model on the GPU decodes plainly and speculatively with the CUDA token
kernels; the law of the first two tokens matches the model's exact law (chi-square), and the tokens equal
the CPU run's wherever the logits agree to the last bit (checked on a model whose logits are exact)."""

import pytest
import torch
from scipy import stats

import rsfast
from rsfast.demos._tiny_lm import TinyCausalLM
from rsfast.reference.tokens import tokens_filtered_probs

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA device", allow_module_level=True)
if not rsfast.build_info()["cuda_usable"]:
    pytest.skip(
        f"rsfast CUDA kernels not usable: {rsfast.build_info().get('cuda_unusable_reason', '')}",
        allow_module_level=True,
    )

DEV = torch.device("cuda")
V = 8


def _model(seed: int, d: int = 16) -> TinyCausalLM:
    torch.manual_seed(seed)
    m = TinyCausalLM(V, 48, d, 1, 2).eval()
    with torch.no_grad():
        m.head.weight.mul_(3.0)
        m.head.bias.mul_(3.0)
    return m.to(DEV)


class Table(torch.nn.Module):
    """Logits from a lookup of the last token: exactly representable, the same on CPU and CUDA."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.table = torch.nn.Parameter(torch.randint(-8, 8, (V, V), generator=g).float() / 4)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table[input_ids]


def test_generate_law_on_cuda_plain_and_speculative():
    target, draft = _model(0), _model(5)
    prompt = [1, 2, 3]
    kw = dict(temperature=0.8, top_p=0.95)
    with torch.no_grad():
        cpu = target.cpu()
        p0 = tokens_filtered_probs(cpu(torch.tensor([prompt]))[:, -1], **kw)[0][0]
        p1 = tokens_filtered_probs(cpu(torch.tensor([prompt + [t] for t in range(V)]))[:, -1], **kw)[0]
        target.to(DEV)
    law = (p0[:, None] * p1).reshape(-1)
    n = 20_000
    for extra in ({}, {"draft_model": draft, "num_draft_tokens": 3}):
        g = rsfast.generate(target, [prompt], n, max_new_tokens=2, seeds=[3], batch_size=n, **kw, **extra)
        assert g.sequences.device.type == "cuda"
        pairs = g.sequences[0].cpu()
        counts = torch.bincount(pairs[:, 0] * V + pairs[:, 1], minlength=V * V).double()
        assert counts[law == 0].sum() == 0
        keep = law * n >= 5
        observed = torch.cat([counts[keep], counts[~keep].sum().reshape(1)])
        expected = torch.cat([n * law[keep], n * law[~keep].sum().reshape(1)])
        cells = expected > 0
        chi2 = float(((observed[cells] - expected[cells]) ** 2 / expected[cells]).sum())
        assert stats.chi2.sf(chi2, int(cells.sum()) - 1) > 1e-3, extra


def test_generate_cuda_equals_cpu_on_exact_logits():
    m = Table()
    prompts = [[1, 2], [3], [4, 5, 6]]
    kw = dict(max_new_tokens=12, seeds=[1, 2, 3], top_k=5, top_p=0.9)
    cpu = rsfast.generate(m, prompts, 4, **kw)
    gpu = rsfast.generate(m.to(DEV), prompts, 4, **kw)
    assert torch.equal(cpu.sequences, gpu.sequences.cpu())
