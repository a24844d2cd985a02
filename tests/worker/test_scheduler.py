"""The shared periodic scheduler: one run at a time across processes (advisory lock), ticks that run."""

from __future__ import annotations

import asyncio
import time

import pytest

from rcm.config import Settings, app_database_url
from rcm.worker.scheduler import JobResources, PeriodicJob, Scheduler, periodic, periodic_jobs, run_exclusive


async def test_two_instances_never_run_one_job_at_once(settings: Settings) -> None:
    """Two replicas' schedulers tick together: the advisory lock lets exactly one of them run the job."""
    running: list[str] = []
    overlaps: list[str] = []

    async def slow(resources: JobResources) -> None:
        if running:
            overlaps.append("overlap")
        running.append("run")
        await asyncio.sleep(0.3)
        running.pop()

    job = PeriodicJob("tests.slow", lambda s: 1.0, slow)
    first, second = JobResources(settings), JobResources(settings)  # two processes' own engines
    url = app_database_url(settings)
    try:
        ran = await asyncio.gather(run_exclusive(job, first, url), run_exclusive(job, second, url))
        assert sorted(ran) == [False, True]
        assert overlaps == []
        # The lock is released after the run: the next tick, wherever it comes from, runs.
        assert await run_exclusive(job, second, url) is True
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_failing_job_releases_its_lock(settings: Settings) -> None:
    async def broken(resources: JobResources) -> None:
        raise RuntimeError("boom")

    job = PeriodicJob("tests.broken", lambda s: 1.0, broken)
    resources = JobResources(settings)
    url = app_database_url(settings)
    try:
        with pytest.raises(RuntimeError):
            await run_exclusive(job, resources, url)
        with pytest.raises(RuntimeError):  # not "skipped": the lock did not outlive the failed run
            await run_exclusive(job, resources, url)
    finally:
        await resources.dispose()


def test_the_scheduler_ticks_and_stops(settings: Settings) -> None:
    ticks: list[float] = []

    async def tick(resources: JobResources) -> None:
        ticks.append(time.monotonic())

    job = PeriodicJob("tests.tick", lambda s: 0.1, tick)
    scheduler = Scheduler(settings, {job.name: job}, lock_url=app_database_url(settings))
    scheduler.start()
    deadline = time.monotonic() + 10
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert len(ticks) >= 3
    count = len(ticks)
    time.sleep(0.3)
    assert len(ticks) == count  # stopped means stopped


def test_jobs_are_declared_where_they_belong() -> None:
    jobs = periodic_jobs()
    assert {"audit.seal_and_checkpoint", "idempotency.purge", "blobs.sweep"} <= set(jobs)
    with pytest.raises(ValueError, match="already declared"):
        periodic(name="audit.seal_and_checkpoint", every_seconds=lambda s: 1.0)(jobs["idempotency.purge"].fn)
    with pytest.raises(ValueError, match="dotted"):
        periodic(name="undotted", every_seconds=lambda s: 1.0)
