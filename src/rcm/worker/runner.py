"""Running workers: in the API process for ``rcm dev``, or as their own process with ``rcm worker``."""

from __future__ import annotations

import dramatiq
from dramatiq import Worker


def start_inprocess_worker(broker: dramatiq.Broker, *, threads: int = 2) -> Worker:
    """Start consuming every declared queue in background threads of this process."""
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker


def stop_inprocess_worker(worker: Worker, *, timeout_ms: int = 10_000) -> None:
    worker.stop(timeout=timeout_ms)
