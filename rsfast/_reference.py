"""Deprecated: the twins moved to :mod:`rsfast.reference` and the baselines to :mod:`rsfast.baselines`.

This module re-exports both for one release and warns (DeprecationWarning) when imported.
"""

import warnings

from .baselines import *  # noqa: F403
from .reference import *  # noqa: F403

warnings.warn(
    "rsfast._reference is deprecated: use rsfast.reference (twins) and rsfast.baselines (baselines)",
    DeprecationWarning,
    stacklevel=2,
)
