"""``python -m rsfast``: the ``rsfast`` command line (see :mod:`rsfast.cli`)."""

import sys

from .cli import main

sys.exit(main())
