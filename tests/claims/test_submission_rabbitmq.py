"""Submission on a real RabbitMQ: duplicate messages send a batch once, and THE fault test: a real worker
process killed (SIGKILL) after the payer recorded a file and before the worker recorded sending it, then
restarted; every claim of several batches reaches the sandbox payer exactly once and every batch ends sent.

The sandbox payer never de-duplicates (each submit is a file in its ``received`` folder), so its count
proves our side."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.submission import file_name
from rcm.claims.submit_tasks import submit_batch_job
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from rcm.worker import configure_jobs
from tests.brokers import BROKER_URL, real_broker
from tests.claims.conftest import Claims, billing_enrolled
from tests.claims.submitting import (
    CREDENTIALS_ENV,
    batch_row,
    build,
    claim_states,
    intake,
    practice,
    received,
    sandbox_env,
    set_faults,
)
from tests.coding.conftest import MakeStaff
from tests.support import Api

QUEUE = "claims"
RCM = str(Path(sys.executable).with_name("rcm"))

pytestmark = pytest.mark.broker
__all__ = ["intake", "practice", "sandbox_env"]  # fixtures, imported so pytest finds them here


@pytest.fixture
async def other_practice(
    control_sessions: async_sessionmaker[AsyncSession], admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> Tenant:
    return await billing_enrolled(control_sessions, admin_url, monkeypatch, "billing-b")


@pytest.fixture
def rabbitmq(settings: Settings) -> Iterator[dramatiq.Broker]:
    with real_broker(settings, QUEUE) as broker:
        configure_jobs(settings)  # the worker's jobs open their own engine on the worker's event loop
        yield broker
        broker.flush(QUEUE)


async def _until(check: Callable[[], object], *, seconds: float, what: str) -> None:
    for _ in range(int(seconds * 10)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_duplicate_messages_on_the_broker_send_once(
    *,
    rabbitmq: dramatiq.Broker,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(intake, practice)
    (batch,) = await build(sessions, settings, practice)  # its message goes after commit
    for _ in range(3):  # a relay tick, a redelivery, a replayed message: all the same batch
        submit_batch_job.send_now(tenant_id=practice.id, batch_id=batch.id)
    worker = Worker(rabbitmq, queues={QUEUE}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:

        async def sent() -> bool:
            return bool((await batch_row(owner_engine, batch.id)).status == "sent")

        await _until(sent, seconds=30, what="the batch to be sent")
        await asyncio.sleep(1.0)  # let the other messages run: they must find nothing to do
    finally:
        worker.stop(timeout=10_000)
    assert received(settings, file_name(batch)) == 1
    assert await claim_states(owner_engine, batch.id) == ["submitted"]


async def test_a_retry_and_a_replay_travel_through_the_broker(
    *,
    rabbitmq: dramatiq.Broker,
    sandbox_env: Path,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    """A transient failure comes back as a delayed message after its backoff; a permanent one waits for a
    biller, whose replay sends it again through the broker."""
    configure_jobs(settings.model_copy(update={"submission_backoff_seconds": 0.2}))
    await claims.new(intake, practice)
    set_faults(settings, transient=1)
    (retried,) = await build(sessions, settings, practice)
    worker = Worker(rabbitmq, queues={QUEUE}, worker_threads=2, worker_timeout=100)
    worker.start()
    try:

        async def status(batch_id: Any) -> str:
            return str((await batch_row(owner_engine, batch_id)).status)

        await _until(lambda: _is(status(retried.id), "sent"), seconds=30, what="the retried batch to be sent")
        assert (await batch_row(owner_engine, retried.id)).attempts == 2

        await claims.new(intake, practice)
        set_faults(settings, permanent=1)
        (dead,) = await build(sessions, settings, practice)
        await _until(lambda: _is(status(dead.id), "dead"), seconds=30, what="the dead letter")
        biller = await make_staff(Role.BILLER, practice)
        assert (await biller.post(f"/billing/submission-batches/{dead.id}/replay")).status_code == 200
        await _until(lambda: _is(status(dead.id), "sent"), seconds=30, what="the replayed batch")
    finally:
        worker.stop(timeout=10_000)
        configure_jobs(settings)
    assert [received(settings, file_name(b)) for b in (retried, dead)] == [1, 1]


async def _is(value: Awaitable[str], expected: str) -> bool:
    return await value == expected


def _start_worker(settings: Settings, admin_url: str, log: Path) -> subprocess.Popen[bytes]:
    """``rcm worker`` as ``make run`` starts it, on the real broker, with a short lease and relay tick."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCM_")}
    env.update(
        RCM_ENV="test",
        RCM_DATABASE_URL=admin_url,
        RCM_DATA_DIR=str(settings.data_dir),
        RCM_BROKER_URL=BROKER_URL,
        RCM_CONNECTOR_TIMEOUT_SECONDS="1",
        RCM_SUBMISSION_LEASE_SECONDS="2",
        RCM_SUBMISSION_RELAY_SECONDS="1",
        RCM_LOG_LEVEL="WARNING",
    )
    env[CREDENTIALS_ENV] = "sandbox-user"
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [RCM, "worker", "--threads", "1"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_a_worker_killed_mid_batch_submits_every_claim_exactly_once(
    *,
    rabbitmq: dramatiq.Broker,
    sandbox_env: Path,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    admin_url: str,
    tmp_path: Path,
) -> None:
    for _ in range(2):
        await claims.new(intake, practice)
    await claims.new(intake, practice, payer_id="DEMO-BCX")
    await claims.new(other_intake, other_practice)
    batches = [
        *await build(sessions, settings, practice),
        *await build(sessions, settings, other_practice),
    ]
    assert len(batches) == 3
    names = [file_name(b) for b in batches]
    # The payer records each file, then stalls before answering: the worker is killed in that window.
    set_faults(settings, hold_seconds=60)
    log = tmp_path / "worker.log"
    first = _start_worker(settings, admin_url, log)
    try:
        await _until(
            lambda: sum(received(settings, n) for n in names) >= 1,
            seconds=90,
            what=f"the payer to record a file (worker log: {log})",
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    recorded_before_kill = [n for n in names if received(settings, n)]
    assert recorded_before_kill  # the kill came after the payer had a file, before we recorded it
    statuses = {(await batch_row(owner_engine, b.id)).status for b in batches}
    assert "sending" in statuses

    set_faults(settings)  # the payer answers at once again
    second = _start_worker(settings, admin_url, log)
    try:

        async def all_sent() -> bool:
            return all([(await batch_row(owner_engine, b.id)).status == "sent" for b in batches])

        await _until(all_sent, seconds=90, what=f"every batch to be sent (worker log: {log})")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(timeout=10)

    assert [received(settings, n) for n in names] == [1, 1, 1]
    for batch in batches:
        assert await claim_states(owner_engine, batch.id) == ["submitted"] * batch.claim_count
    # The batch whose file the payer had was settled by the probe (no second attempt spent on it).
    for batch in batches:
        if file_name(batch) in recorded_before_kill:
            row = await batch_row(owner_engine, batch.id)
            assert (row.attempts, row.receipt_reference) == (1, None)
