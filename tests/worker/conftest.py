"""Worker fixtures: a test actor on its own queue that records what it ran, and an in-process broker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from opentelemetry import trace

from rcm.config import Settings
from rcm.worker import actor, setup_broker

TEST_QUEUE = "rcm_test_worker"
ran: list[dict[str, Any]] = []
ran_event = threading.Event()


@actor(name="tests.record_run", max_retries=0, time_limit_ms=10_000, queue_name=TEST_QUEUE)
async def record_run(*, tenant_id: str, nonce: str) -> None:
    span = trace.get_current_span().get_span_context()
    ran.append({"tenant_id": tenant_id, "nonce": nonce, "trace_id": format(span.trace_id, "032x")})
    ran_event.set()


@pytest.fixture
def stub_broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    broker = setup_broker(settings.model_copy(update={"broker_url": None}))
    broker.flush_all()
    ran.clear()
    ran_event.clear()
    yield broker
    broker.flush_all()
