"""Python's cyclic garbage collector, tuned while work holds many young objects at once.

The bulk job prepares a batch of a few hundred encounters (ten-odd ORM rows each, their dicts and sealed
values) and holds it until the database has stored it, while the next batch is prepared. With the default
first-generation threshold (700 allocations) the collector runs hundreds of times per batch and scans every
object the batches hold each time: measured with bench/bulk.py, 30-45 % of the job's CPU went to it.
``larger_young_generation`` raises that threshold while such work runs and restores it when the last such
work ends. The setting is process-wide (the collector has no narrower scope): other work in the process is
collected less often meanwhile, which costs memory for garbage cycles only, bounded by the threshold.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000


class _Holders:
    """How many pieces of work hold the raised threshold, and the thresholds to restore after the last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.saved: tuple[int, int, int] = gc.get_threshold()


_holders = _Holders()


@contextmanager
def larger_young_generation(threshold: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Collect the youngest generation after ``threshold`` net allocations (never fewer than configured)
    while the block runs; nested and concurrent blocks share one raise."""
    with _holders.lock:
        if _holders.count == 0:
            _holders.saved = gc.get_threshold()
            first, *older = _holders.saved
            gc.set_threshold(max(first, threshold), *older)
        _holders.count += 1
    try:
        yield
    finally:
        with _holders.lock:
            _holders.count -= 1
            if _holders.count == 0:
                gc.set_threshold(*_holders.saved)
