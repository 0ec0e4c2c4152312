"""One rank of the 2-process RejectionSamplingFineTuner test (tests/test_rft_inputs.py::test_ddp_two_ranks).

Run as ``python _rft_ddp_worker.py OUT`` with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT); writes the round statistics and the final weights to OUT (torch.save). :func:`run` is also
called in-process (world size 1) by the test for the single-process reference.
"""

from __future__ import annotations

import sys

import torch

from rsfast.demos.rft import TinyCausalLM
from rsfast.finetune.rft import RejectionSamplingFineTuner

VOCAB, EOS = 8, 7


def prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(11)
    # Lengths 2..4: the sampler batches by length, the shards mix lengths.
    return [torch.randint(0, EOS, (2 + i % 3,), generator=g).tolist() for i in range(13)]


def reward(prompts: list, completions: list, references: list | None) -> list[float]:
    """Pass iff the completion's first token has the parity of the prompt's sum."""
    return [float(bool(c) and c[0] % 2 == sum(p) % 2) for p, c in zip(prompts, completions)]


def run() -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = TinyCausalLM(VOCAB, 16, d_model=16, n_layers=1, n_heads=2)
    tuner = RejectionSamplingFineTuner(
        model,
        reward,
        selection="verifier",
        samples_per_prompt=4,
        max_new_tokens=3,
        eos_token_id=EOS,
        # SGD: Adam would turn the rounding noise of gradients that are zero in exact arithmetic (the
        # key bias) into full-size steps, and the comparison with one process needs a smooth update.
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
        batch_size=8,
        sft_epochs=2,
        generator=torch.Generator().manual_seed(5),
    )
    stats = [tuner.step(prompts()).to_dict() for _ in range(2)]
    return {
        "stats": stats,
        "records": tuner.accepted_records,
        "weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "train_model": type(tuner.train_model).__name__,
    }


def main(out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        result = run()
        result["rank"] = dist.get_rank()
        result["world_size"] = dist.get_world_size()
        torch.save(result, out)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
