"""A real RabbitMQ: enqueue after commit, a real worker consumes, the job's effect is visible."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.kit.db import tenant_transaction
from rcm.kit.telemetry import configure_tracing
from rcm.kit.tenant import TenantContext
from rcm.tenancy.models import Tenant
from rcm.worker import enqueue, start_inprocess_worker, stop_inprocess_worker
from tests.brokers import real_broker
from tests.conftest import tid
from tests.worker.conftest import TEST_QUEUE, ran, ran_event, record_run

pytestmark = pytest.mark.broker


@pytest.fixture
def rabbitmq(settings: Settings) -> Iterator[dramatiq.Broker]:
    with real_broker(settings, TEST_QUEUE) as broker:
        ran.clear()
        ran_event.clear()
        yield broker


async def test_rabbitmq_round_trip(
    rabbitmq: dramatiq.Broker, sessions: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    configure_tracing("rcm-test", None)
    nonce = uuid.uuid4().hex
    worker = start_inprocess_worker(rabbitmq)
    try:
        with trace.get_tracer("tests").start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            async with tenant_transaction(sessions, TenantContext.single(tid(tenant))) as session:
                enqueue(session, record_run, tenant_id=tenant.id, nonce=nonce)
        assert ran_event.wait(timeout=20), "the worker did not run the job within 20 s"
    finally:
        stop_inprocess_worker(worker)
    assert ran == [{"tenant_id": str(tenant.id), "nonce": nonce, "trace_id": trace_id}]
