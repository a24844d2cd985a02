"""Imported first by every bench script: the standard library comes before the bench directory on the path.

``bench/queue.py`` (named as the issue asks) would otherwise shadow the standard library's ``queue``, which
asyncio's thread pool and dramatiq import. The bench helpers (``benchkit``) stay importable, after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p not in (HERE, "")] + [HERE]
