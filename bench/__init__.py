"""Gatehouse's benchmark harness: ``python -m bench`` (``make bench``).

Every figure is a ratio against a baseline measured in the same run, interleaved with
the subject, so a slow or noisy machine moves both sides alike and the ratio stays
meaningful (see DESIGN.md, "Budgets"). The harness starts its own in-memory DynamoDB
Local and its own servers; it never touches ``.local/dynamodb`` or a running server.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# ``app``, ``chalicelib`` and ``scripts`` import from the project root, whatever the cwd.
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))
