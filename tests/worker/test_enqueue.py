"""Send-after-commit, payload rules and trace propagation, on the in-process broker with a real worker."""

from __future__ import annotations

import uuid

import dramatiq
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.kit.db import tenant_transaction
from rcm.kit.telemetry import configure_tracing
from rcm.kit.tenant import TenantContext
from rcm.tenancy.models import Tenant
from rcm.worker import (
    JobPayloadError,
    actor,
    enqueue,
    get_actor,
    pending_messages,
    start_inprocess_worker,
    stop_inprocess_worker,
)
from tests.conftest import tid
from tests.worker.conftest import TEST_QUEUE, ran, ran_event, record_run


def _queued(broker: dramatiq.Broker) -> int:
    return int(broker.queues[TEST_QUEUE].qsize())


async def test_sent_only_after_commit(
    stub_broker: dramatiq.Broker, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
        message = enqueue(session, record_run, tenant_id=tenant.id, nonce="commit")
        assert pending_messages(session) == [message]
        assert _queued(stub_broker) == 0  # nothing leaves before the commit
    assert _queued(stub_broker) == 1
    sent = dramatiq.Message.decode(stub_broker.queues[TEST_QUEUE].get_nowait())
    assert sent.actor_name == "tests.record_run"
    assert sent.kwargs == {"tenant_id": str(tenant.id), "nonce": "commit"}


async def test_nothing_sent_on_rollback(
    stub_broker: dramatiq.Broker, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    async def failing_request() -> None:
        async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
            enqueue(session, "tests.record_run", tenant_id=tenant.id, nonce="rollback")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_request()
    assert _queued(stub_broker) == 0
    # The same session object used again afterwards does not resurrect the dropped message.
    async with sessions() as session:
        async with session.begin():
            enqueue(session, record_run, tenant_id=tenant.id, nonce="dropped")
            await session.rollback()
        async with session.begin():
            pass
    assert _queued(stub_broker) == 0


def test_payload_rules() -> None:
    with pytest.raises(JobPayloadError, match="tenant_id is required"):
        record_run.payload(nonce="x")
    with pytest.raises(JobPayloadError, match="'nonce' is not a JSON id"):
        record_run.payload(tenant_id=uuid.uuid4(), nonce={"name": "secret"})
    with pytest.raises(TypeError, match="keyword-only tenant_id"):

        @actor(name="tests.no_tenant", max_retries=0, time_limit_ms=1000)
        async def no_tenant(*, other: str) -> None: ...

    with pytest.raises(ValueError, match="dotted"):
        actor(name="undotted", max_retries=0, time_limit_ms=1000)
    with pytest.raises(LookupError):
        get_actor("tests.nothing_here")
    bound = record_run.dramatiq_actor
    assert bound.options == {"max_retries": 0, "time_limit": 10_000}


async def test_worker_runs_job_in_a_span_under_the_senders_trace(
    stub_broker: dramatiq.Broker, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    configure_tracing("rcm-test", None)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    worker = start_inprocess_worker(stub_broker)
    try:
        with trace.get_tracer("tests").start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
                message = enqueue(session, record_run, tenant_id=tenant.id, nonce="traced")
        assert message.options["traceparent"].split("-")[1] == trace_id
        stub_broker.join(TEST_QUEUE, timeout=10_000)
        worker.join()
    finally:
        stop_inprocess_worker(worker)
    assert ran == [{"tenant_id": str(tenant.id), "nonce": "traced", "trace_id": trace_id}]
    assert ran_event.is_set()
