"""Fine-tuning strategies built on the rsfast kernels (each helper module adds its export lines)."""

from __future__ import annotations

from .batch import BatchRejection, Selection  # noqa: E402
from .freeze import freeze  # noqa: E402

__all__ = ["BatchRejection", "Selection", "freeze"]
