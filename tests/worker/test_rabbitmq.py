"""A real RabbitMQ: enqueue after commit, a real worker consumes, the job's effect is visible."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from opentelemetry import trace
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.kit.db import tenant_transaction
from rcm.kit.telemetry import configure_tracing
from rcm.kit.tenant import TenantContext
from rcm.tenancy.models import Tenant
from rcm.worker import enqueue, setup_broker, start_inprocess_worker, stop_inprocess_worker
from tests.conftest import tid
from tests.worker.conftest import TEST_QUEUE, ran, ran_event, record_run

BROKER_URL = os.environ.get("RCM_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")

pytestmark = pytest.mark.broker


@pytest.fixture
def rabbitmq(settings: Settings) -> Iterator[dramatiq.Broker]:
    url = make_url(BROKER_URL.replace("amqp://", "postgresql://", 1))  # only to parse host and port
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5672), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"RabbitMQ does not answer at {BROKER_URL} ({exc}); set RCM_TEST_BROKER_URL")
    broker = setup_broker(settings.model_copy(update={"broker_url": BROKER_URL}))
    broker.flush(TEST_QUEUE)  # leftovers of an earlier interrupted run
    ran.clear()
    ran_event.clear()
    yield broker
    broker.close()
    setup_broker(settings.model_copy(update={"broker_url": None}))


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
