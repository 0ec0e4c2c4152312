"""Frozen digests: every op gives the same bits as when these literals were recorded, for the same
(inputs, seed, offset), on 1, 2 and 3 threads and in both CPU ISA builds.

The outputs come from tests/_frozen_probe.py (fixed inputs from torch's CPU generator, public entry
points only), run in child interpreters. A change of any literal below is a change of the random
streams or of the arithmetic of a kernel: it must be deliberate, and said so in the commit."""

# ruff: noqa: E501  (the digest literals)
from __future__ import annotations

import pytest
from _helpers import thread_digests

pytestmark = pytest.mark.timeout(300)

FROZEN = {
    "propose/normal/torch.float32": "4cfb033fc772bdd60a026f9583300b44a5b5c52c32c7a066450038f153ac777a",
    "propose/normal/torch.float64": "ea026f2c5d98ff23e97f6589dab4e28c4a829bd5c1d5f7ed2f1021981b35951f",
    "propose/uniform/torch.float32": "a7430b3c09fb6a67b5c5d243388b89d8af4df959debd9d55bd5c5b0c64849a03",
    "propose/uniform/torch.float64": "c2a8f953ecaeb2afff4ec579e39c156ed0c6fd34ea9b4933b85bd93e1616fdf4",
    "propose/mixture_normal/torch.float32": "16dc6be6ff9a577cbb0b34db75776d9dbe79078f39b16462781000c1ebd9b3a3",
    "propose/mixture_normal/torch.float64": "53e266c7684e1499c5ff4e33dad50b6e27394f5589159f78d1dfffd8962f0852",
    "accept_compact/torch.float32": "0d9c03a535f36d7ddcb72c940cf464e5fc25c1c217206bc1e441b8bd7b350b20",
    "accept_compact/torch.float64": "2cb8058054c6d3b72e77839b89656018d9190fa642456ef635d531fa65cc9897",
    "accept_compact_rows/torch.float32/sync=True": "b554f90a9f631f8a651a0dd3dfae67612139d2ea75d6d9cc30266bdaacbea232",
    "accept_compact_rows/torch.float32/sync=False": "68915cfca696684cb4a77ec5e4e28b3e88fada5866f39c6635c009d7422052f3",
    "accept_compact_rows/torch.float64/sync=True": "b554f90a9f631f8a651a0dd3dfae67612139d2ea75d6d9cc30266bdaacbea232",
    "accept_compact_rows/torch.float64/sync=False": "68915cfca696684cb4a77ec5e4e28b3e88fada5866f39c6635c009d7422052f3",
    "accept_compact_rows/torch.float16/sync=True": "b554f90a9f631f8a651a0dd3dfae67612139d2ea75d6d9cc30266bdaacbea232",
    "accept_compact_rows/torch.float16/sync=False": "68915cfca696684cb4a77ec5e4e28b3e88fada5866f39c6635c009d7422052f3",
    "accept_compact_rows/torch.bfloat16/sync=True": "85351d62790aa3e9b84096f422e6bea7fd7019183dd4576be1f7cefb4543df83",
    "accept_compact_rows/torch.bfloat16/sync=False": "afdefbe448145767160bb30d6201f80ada33f55ea02d634a8a46277f38a9b3f6",
    "fused_sample/normal/torch.float32": "18c7df5b899955b5624508b5f35c97aa0239ab007c2ce0a73ae55665e1c1f69d",
    "fused_sample/normal/torch.float64": "5ccc994a49728bf95e35633766cf2f55e98b8e16c15218fc92ed554e5a732bab",
    "fused_sample/uniform/torch.float32": "bde19fa92801ff0a2e01b70c9a92d8d5a62b8771e9be0e479d6f900c662226ce",
    "fused_sample/uniform/torch.float64": "a98e6d7eed6994a7eb65cb9b3caed91157c695e6a0ed002666645ee76db0b0a3",
    "fused_sample/mixture_normal/torch.float32": "a31f9ad5423141d2277bdd5ed09733c0bb4556fec31b98dccd5582aa6370a04f",
    "fused_sample/mixture_normal/torch.float64": "23d9fe3d220776bffab798f78fb70955e639629f966880628e890af1f9a0909a",
    "slot_sample/truncated_normal/torch.float32": "80af62762fb7fe8bd06d7b3b3f766ecda32ff41e03bbe1091829c473177de186",
    "slot_sample/truncated_normal/torch.float32/rows": "6258d9796c2b49610bd2ccdbd6b7ad579da9a6d75d84e44234d5d2bd5da7f53a",
    "slot_sample/truncated_normal/torch.float64": "e96ebe465458fc2d1ea5a033b2a0b2b4312631e77ab84895c2f546c4b67aff83",
    "slot_sample/truncated_normal/torch.float64/rows": "294a4774fb1fa7950f61e290145dde93d0b90e29acaa4bf8e41fd7f5492a888f",
    "slot_sample/von_mises/torch.float32": "442d2c6e8db04cd64a4c9bc9777b61448178cebfc80bdad987f5cfbfb18554fe",
    "slot_sample/von_mises/torch.float32/rows": "7af219a27a7adf996cbc1ca80aac4f7304a771ffc4fe9f7d65a488c6d1f5d8d4",
    "slot_sample/von_mises/torch.float64": "57dd6f0b3fe885d67305d0d772be555e4bbb8c25f782d7b1da979f35ec3c4fe2",
    "slot_sample/von_mises/torch.float64/rows": "fb40ef2ed5c253b45e8ef75704018aef5feb358f7bfa3afcaf224a4271bd5ef7",
    "slot_sample/gamma/torch.float32": "e67aabce7c1d8e9beec8fa915a22e3faab488d96898868b8d2e10a702f02a9c5",
    "slot_sample/gamma/torch.float32/rows": "7b23466be66c5c3ce8214111c523c763d246f7f280b0f3bfc7d01d2825efe08e",
    "slot_sample/gamma/torch.float64": "5884f998376da2c43302754c92c6ed80beb7ad0b94790d9f501400ebb34c8d89",
    "slot_sample/gamma/torch.float64/rows": "c75192c6d5637db04720b68d9c11e4f4bf29a1fff435a82a5ff1e6e44b8facbf",
    "slot_sample/beta/torch.float32": "bd92379e4ce90612b71e88b5dec5f549a0f23aef0c30de3ef3d3833b090c57ce",
    "slot_sample/beta/torch.float32/rows": "b04b93fde49661330f6700b9a7715f8bfedc2ea9c24d090de63a3156df319e36",
    "slot_sample/beta/torch.float64": "c5c8135b1e40fa1a0690d31b4aa59b6ba9488756a7c20c24270442b639b32bb4",
    "slot_sample/beta/torch.float64/rows": "b4b017f24360bce630a2172ca0801c4a7400410e8fb73ef16eeda08e4cd03896",
    "slot_sample/poisson/torch.float32": "f832679136b0502dd9f1243ec86ab444a9a25d293474877b364771d3ca0c20c7",
    "slot_sample/poisson/torch.float32/rows": "9f1d7dcfcef459be20e3daac1a8410020784d388640ccf5dd2fc8a43ed4630a0",
    "slot_sample/poisson/torch.float64": "4b43e42773d459b3cffd1e51350d97ca775d85528b21f8df1100a4d7c87cbe34",
    "slot_sample/poisson/torch.float64/rows": "8ce820edec9c0ce232e35072cd426e27b5a81aeffe42d336cfeb365ed05e7f0e",
    "slot_sample/binomial/torch.float32": "e7755f05a2887fd2dbef085b9982e8cca0e3f2ecc63c7f4c5035ca20d28c75ba",
    "slot_sample/binomial/torch.float32/rows": "74a30b7c18b927486eab94586d74161967b3b41732801d4f8edc1598db24e18a",
    "slot_sample/binomial/torch.float64": "f068ca8035fed53e8ebe8621f5dc636eb750a21c1467087680412ad1fe99d0c1",
    "slot_sample/binomial/torch.float64/rows": "0161b1a8d3838f7f899c0ae890d4b70fa4f876a0a6d9675afe85d8f66a44282c",
    "best_of_n/torch.float32": "9d2fd007327e290e0bf6050dd9a1f38bdaf62af5825ec604d88572b99b200ad0",
    "rso/torch.float32": "e290fd200f5d88ad551220617b4919448ca9c828713f2f84ab71c984849a48a4",
    "threshold/torch.float32": "ef66111c39f37b2d0cb493ed0011603ea766499936fe7eb1e6b660f2a80d0c12",
    "top_fraction/torch.float32": "fd26b7dba05b8f2e08f21fc3697d9ee338d77c2054fef3b36299a0325e463d99",
    "best_of_n/torch.float64": "9d2fd007327e290e0bf6050dd9a1f38bdaf62af5825ec604d88572b99b200ad0",
    "rso/torch.float64": "c142542ed72d00cdd130425cd3be697ce113b7502852ca3bfdfa638e89118d9d",
    "threshold/torch.float64": "ef66111c39f37b2d0cb493ed0011603ea766499936fe7eb1e6b660f2a80d0c12",
    "top_fraction/torch.float64": "fd26b7dba05b8f2e08f21fc3697d9ee338d77c2054fef3b36299a0325e463d99",
    "filter_groups": "71bd564defb7d9155ed861de78634c87779e50e6c89969c3aaf8d575b54193c3",
    "dedupe": "0f2de35104cd2be312cdfa93fe7154eb0049e3b61eb475411576f040fc62cda2",
    "perturb_": "cc6c08a016700b4fb3629d75c394dbea43c0f3f173f8a0eda0165314432c3c99",
    "tokens/sample": "d57f305aa475e69696781bbe569bb76aeb8072f061d960b04eee2e323ea7d87f",
    "tokens/verify": "cd9238e2b336b2c19755b6b5f25852b6238c0bc518c10b99c884ef6e320b5d7d",
}


@pytest.fixture(scope="module")
def frozen_runs() -> dict:
    """{label: digests} for OMP_NUM_THREADS = 1, 2, 3 (best ISA) and 2 (baseline ISA), run concurrently."""
    runs = {
        f"threads={t}": d for t, d in thread_digests((1, 2, 3), timeout=280, probe="_frozen_probe.py").items()
    }
    runs["baseline"] = thread_digests((2,), timeout=280, isa="baseline", probe="_frozen_probe.py")[2]
    return runs


def test_probe_covers_every_case(frozen_runs):
    for label, got in frozen_runs.items():
        assert sorted(k for k in got if k not in ("cpu_isa", "openmp_threads")) == sorted(FROZEN), label


@pytest.mark.parametrize("label", ["threads=1", "threads=2", "threads=3", "baseline"])
def test_bits_are_frozen(frozen_runs, label):
    got = frozen_runs[label]
    if label == "baseline":
        assert got["cpu_isa"] == "baseline"
    else:
        assert got["openmp_threads"] == int(label.split("=")[1])
    changed = [k for k in FROZEN if got.get(k) != FROZEN[k]]
    assert not changed, f"{label}: outputs changed for {changed}"
