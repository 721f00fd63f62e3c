"""Entry point for ``python -m bench`` (``--check``: exit 1 when a budget is missed)."""

from __future__ import annotations

import sys

from bench.main import main

sys.exit(main(sys.argv[1:]))
