"""Decoding: :func:`generate` samples completions from a causal LM with a KV cache and rsfast's token
kernel (speculative decoding with a draft model); :mod:`.model_io` drives the model."""

from .generate import Generation, generate

__all__ = ["Generation", "generate"]
