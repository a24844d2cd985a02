"""RabbitMQ for the broker tests (``pytest.mark.broker``): skipped, saying why, where none answers."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import pytest
from sqlalchemy.engine import make_url

from rcm.config import Settings
from rcm.worker import setup_broker

BROKER_URL = os.environ.get("RCM_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


@contextmanager
def real_broker(settings: Settings, *queues: str) -> Iterator[dramatiq.Broker]:
    """RabbitMQ at RCM_TEST_BROKER_URL as this process's broker, ``queues`` declared and emptied of an
    earlier interrupted run's leftovers; the in-process broker is back afterwards."""
    url = make_url(BROKER_URL.replace("amqp://", "postgresql://", 1))  # only to parse host and port
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5672), timeout=2).close()
    except OSError as exc:
        pytest.skip(f"RabbitMQ does not answer at {BROKER_URL} ({exc}); set RCM_TEST_BROKER_URL")
    broker = setup_broker(settings.model_copy(update={"broker_url": BROKER_URL}))
    for queue in queues:
        broker.declare_queue(queue)
        broker.flush(queue)
    try:
        yield broker
    finally:
        broker.close()
        setup_broker(settings.model_copy(update={"broker_url": None}))
