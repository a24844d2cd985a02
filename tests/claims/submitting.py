"""Helpers for the submission tests: the sandbox payer's directory as the workers see it, batches built as
the batcher builds them, and a handler wired the way the worker wires it (with a clock the test moves)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.batches import build_batches
from rcm.claims.submission import Policy, Submitter, file_name
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.kit.secrets import SecretResolver
from rcm.payers.breaker import MemoryBreaker
from rcm.tenancy.models import Tenant
from tests.claims.conftest import practice_scope, rows
from tests.support import Api

CREDENTIALS_ENV = "DEMO_MCR_CREDENTIALS"  # the test practices' DEMO-MCR enrollment names it


def sandbox_dir(settings: Settings) -> Path:
    """Where the directory's ``sandbox:claims`` endpoint keeps its state (RCM_DATA_DIR/sandbox-payer)."""
    return settings.data_dir / "sandbox-payer" / "claims"


def set_faults(settings: Settings, **faults: Any) -> None:
    directory = sandbox_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "faults.json").write_bytes(msgspec.json.encode(faults))


def received(settings: Settings, name: str) -> int:
    """How many times the sandbox payer received the file ``name`` (it never de-duplicates)."""
    folder = sandbox_dir(settings) / "received"
    if not folder.exists():
        return 0
    return sum(1 for path in folder.iterdir() if path.name.split("-", 1)[1] == name)


@pytest.fixture
def sandbox_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sandbox payer of this run's data directory, runnable (RCM_ENV=test), with no faults asked."""
    monkeypatch.setenv("RCM_ENV", "test")
    monkeypatch.setenv("RCM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv(CREDENTIALS_ENV, "sandbox-user")
    set_faults(settings)
    yield sandbox_dir(settings)
    set_faults(settings)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def submitter(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, clock: Clock, failures: int = 5
) -> Submitter:
    return Submitter(
        sessions=sessions,
        keystore=KeyStore(key_provider(settings)),
        store=BlobStore.from_settings(settings),
        breaker=MemoryBreaker(failures=failures, cooldown_seconds=60.0),
        secrets=SecretResolver(),
        policy=Policy(max_attempts=3, backoff_seconds=10.0, lease_seconds=60.0),
        clock=clock,
    )


async def build(sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant) -> list[Any]:
    async with practice_scope(sessions, settings, tenant) as scope:
        return await build_batches(scope)


async def batch_row(owner_engine: AsyncEngine, batch_id: uuid.UUID) -> Any:
    found = await rows(
        owner_engine,
        "SELECT status, attempts, next_attempt_at, last_error, receipt_reference"
        " FROM rcm.submission_batch WHERE id = :b",
        b=batch_id,
    )
    return found[0]


async def claim_states(owner_engine: AsyncEngine, batch_id: uuid.UUID) -> list[str]:
    found = await rows(owner_engine, "SELECT state FROM rcm.claim WHERE submission_batch_id = :b", b=batch_id)
    return sorted(row[0] for row in found)


__all__ = ["file_name"]


# The submission tests' practices render their batches as 837s (address, TIN, submitter contact).
@pytest.fixture
async def practice(billing_practice: Tenant) -> Tenant:
    return billing_practice


@pytest.fixture
async def intake(billing_intake: Api) -> Api:
    return billing_intake
