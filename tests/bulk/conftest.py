"""Bulk intake helpers: upload a file, run its job the way the worker does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.bulk.tasks import run_intake
from rcm.config import Settings
from rcm.worker import configure_jobs
from tests.support import Api


@pytest.fixture
def jobs(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Iterator[None]:
    """Jobs of this process use the test's sessions (run on this event loop)."""
    configure_jobs(settings, sessions=sessions)
    yield
    configure_jobs(settings)


def ndjson(*documents: Any) -> bytes:
    return b"".join((d if isinstance(d, bytes) else msgspec.json.encode(d)) + b"\n" for d in documents)


async def upload(
    api: Api, content: bytes, media: str = "application/x-ndjson", *, key: str | None = None
) -> httpx.Response:
    headers = {**api.headers, "Content-Type": media, "Idempotency-Key": key or uuid.uuid4().hex}
    return await api.client.post(api.url("/bulk-intakes"), content=content, headers=headers)


async def run(api: Api, job_id: str) -> str:
    """The job as the worker runs it: its payload round-tripped through JSON."""
    payload = msgspec.json.decode(msgspec.json.encode({"tenant_id": api.tenant_id, "job_id": job_id}))
    return str(await run_intake(**payload))
