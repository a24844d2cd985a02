"""A real receiver on 127.0.0.1 (the standard library's HTTP server in a thread, as the REST clearinghouse
tests run theirs), the claims practices and helpers, and the webhook jobs run the way the worker runs them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.crypto.tasks import job_keystore, use_keystore
from rcm.webhooks.models import DeliveryStatus
from rcm.webhooks.tasks import deliver_one, dispatch_due
from rcm.worker import configure_jobs, encode_payload_roundtrip
from tests.claims.conftest import (  # noqa: F401 - fixtures shared with the claims tests
    claims,
    intake,
    make_staff,
    other_intake,
    other_practice,
    payer_directory,
    practice,
)
from tests.support import Api, http_server


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 204

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rcm"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]


def _handler(state: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Received(dict(self.headers.items()), raw))
            status = state.statuses.pop(0) if state.statuses else 204
            payload = b'{"error": "receiver says no"}' if status >= 300 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    with http_server(_handler(state)) as port:
        state.port = port
        yield state


@pytest.fixture
def jobs(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Iterator[None]:
    """The jobs of this process use the test's sessions (on this event loop) and keys."""
    configure_jobs(settings, sessions=sessions)
    use_keystore(KeyStore(key_provider(settings)))
    yield
    use_keystore(None)
    configure_jobs(settings)


async def subscribe(api: Api, url: str, *types: str) -> dict[str, Any]:
    answer = await api.post(
        "/webhooks/subscriptions",
        {"url": url, "event_types": list(types or ["claim.status_changed", "encounter.status_changed"])},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def run_due(sessions: async_sessionmaker[AsyncSession], api: Api) -> list[str | None]:
    """One dispatcher tick, then the messages of ``api``'s practice run as a worker would run them (payload
    through JSON). Other tests' practices are left alone."""
    due = await dispatch_due(sessions, job_keystore())
    outcomes = []
    for tenant_id, delivery_id in due:
        if str(tenant_id) != api.tenant_id:
            continue
        message = deliver_one.message(tenant_id=tenant_id, delivery_id=delivery_id)
        outcomes.append(await deliver_one(**encode_payload_roundtrip(message)))
    return outcomes


async def make_due(owner_engine: AsyncEngine, delivery_id: str) -> None:
    """Time passes: the delivery's next attempt is due now (the backoff already recorded stays)."""
    from sqlalchemy import text

    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.webhook_delivery SET next_attempt_at = now() WHERE id = :id"),
            {"id": uuid.UUID(delivery_id)},
        )


PENDING, DELIVERED, DEAD = (s.value for s in DeliveryStatus)
