"""Periodic jobs, shared by every package that needs one (audit chainer, idempotency purge, follow-ups...).

APScheduler 3 runs the timing on an asyncio loop of its own thread; PostgreSQL decides who runs: before each
run the job takes a session-level advisory lock named after it (``pg_try_advisory_lock``), so with N worker
replicas exactly one runs a given job at a time and the others skip that tick. Jobs are declared where they
belong with ``@periodic`` (like ``@actor``) and collected by the worker from ``PERIODIC_JOB_MODULES``, so this
module knows no domain. A job must be idempotent: a tick may be skipped, repeated by another replica, or cut
short by a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.kit.db import create_engine, session_factory

logger = logging.getLogger(__name__)
# APScheduler logs every run of every job at INFO (a line pair every few seconds); ours log what matters.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

# Modules whose import declares periodic jobs; the worker imports them before starting the scheduler.
PERIODIC_JOB_MODULES: tuple[str, ...] = (
    "rcm.audit.jobs",
    "rcm.idempotency.jobs",
    "rcm.blobs.jobs",
    "rcm.claims.tasks",
    "rcm.claims.jobs",
    "rcm.claims.status_jobs",
    "rcm.webhooks.tasks",
    "rcm.patient_billing.tasks",
)


class JobResources:
    """What a periodic job gets: the settings and database sessions, one engine per URL, all on the
    scheduler's event loop (an asyncpg engine belongs to the loop it was made on)."""

    def __init__(self, settings: Settings, *, pool_size: int = 2) -> None:
        self.settings = settings
        self.state: dict[str, object] = {}  # what a job keeps between its runs in this process
        # Every job running at once holds its lock's connection (and uses its role's): a pool smaller than
        # the number of jobs makes the last ones wait, and time out, behind long runs (a payer's fetch).
        self.pool_size = pool_size
        self._engines: dict[str, AsyncEngine] = {}

    def engine(self, url: str, *, application_name: str = "rcm-scheduler") -> AsyncEngine:
        found = self._engines.get(url)
        if found is None:
            found = self._engines[url] = create_engine(
                url, pool_size=self.pool_size, application_name=application_name
            )
        return found

    def sessions(
        self, url: str, *, application_name: str = "rcm-scheduler"
    ) -> async_sessionmaker[AsyncSession]:
        return session_factory(self.engine(url, application_name=application_name))

    async def dispose(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()


JobFunction = Callable[[JobResources], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str  # dotted, like actors: "audit.seal_and_checkpoint"
    every_seconds: Callable[[Settings], float]
    fn: JobFunction

    @property
    def lock_key(self) -> int:
        """The advisory lock of this job: a stable signed 64-bit number derived from its name."""
        digest = hashlib.sha256(f"rcm.periodic:{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


_registry: dict[str, PeriodicJob] = {}


def periodic(
    *, name: str, every_seconds: Callable[[Settings], float]
) -> Callable[[JobFunction], PeriodicJob]:
    """Declare a periodic job; ``every_seconds`` reads its interval from the settings."""
    if "." not in name:
        raise ValueError(f"periodic job name {name!r} must be dotted, e.g. 'audit.seal_and_checkpoint'")

    def decorate(fn: JobFunction) -> PeriodicJob:
        if name in _registry:
            raise ValueError(f"a periodic job named {name!r} is already declared")
        job = _registry[name] = PeriodicJob(name, every_seconds, fn)
        return job

    return decorate


def periodic_jobs() -> dict[str, PeriodicJob]:
    for module in PERIODIC_JOB_MODULES:
        importlib.import_module(module)
    return dict(_registry)


async def run_exclusive(job: PeriodicJob, resources: JobResources, lock_url: str) -> bool:
    """Run ``job`` once if no other process is running it; False when another holds its lock.

    The lock is session-level on a connection of its own, held for the whole run (which may span several
    transactions) and released on the way out, or by PostgreSQL if this process dies.
    """
    async with resources.engine(lock_url).connect() as conn:
        acquired = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": job.lock_key})).scalar()
        # No transaction stays open while the job runs: the lock belongs to the session, not the transaction.
        await conn.commit()
        if not acquired:
            return False
        try:
            await job.fn(resources)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": job.lock_key})
            await conn.commit()
    return True


class Scheduler:
    """The process's periodic jobs on an AsyncIOScheduler running in a thread of its own."""

    def __init__(self, settings: Settings, jobs: dict[str, PeriodicJob], *, lock_url: str) -> None:
        self.settings = settings
        self.jobs = jobs
        self.lock_url = lock_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._resources = JobResources(settings, pool_size=max(2, len(jobs)))

    async def _tick(self, job: PeriodicJob) -> None:
        try:
            ran = await run_exclusive(job, self._resources, self.lock_url)
        except Exception:
            # Logged and retried at the next tick; one failure must not stop the schedule.
            logger.exception("periodic job failed", extra={"job": job.name})
            return
        if not ran:
            logger.debug("periodic job skipped: another process holds its lock", extra={"job": job.name})

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
            for job in self.jobs.values():
                scheduler.add_job(
                    self._tick,
                    "interval",
                    seconds=job.every_seconds(self.settings),
                    args=[job],
                    id=job.name,
                    max_instances=1,  # a slow run is never overlapped by the next tick in this process
                    coalesce=True,  # ticks missed while busy collapse into one
                    next_run_time=datetime.now(UTC),
                )
            scheduler.start()
            self._scheduler = scheduler
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._resources.dispose())
            loop.close()

        self._thread = threading.Thread(target=serve, name="rcm-scheduler", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 30.0) -> None:
        loop, scheduler = self._loop, self._scheduler
        if loop is None or scheduler is None:
            return

        def shutdown() -> None:
            scheduler.shutdown(wait=False)
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(timeout)
