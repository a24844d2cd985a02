"""Audit fixtures: principals, request info, a signing key directory and event factories."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.chainer import all_tenants_context, seal_pending
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.trail import record
from rcm.config import Settings, audit_database_url
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.kit.db import apply_tenant_context, create_engine, session_factory, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId


def principal(*roles: Role, subject: str | None = None) -> Principal:
    user_id = uuid.uuid4()
    return Principal(
        kind=PrincipalKind.USER,
        subject=subject or str(user_id),
        roles=frozenset(roles),
        scopes=frozenset(),
        token_id=uuid.uuid4().hex,
        user_id=user_id,
    )


@pytest.fixture(params=[Role.AUDITOR])
def auditor(request: pytest.FixtureRequest) -> Principal:
    return principal(request.param)


@pytest.fixture
def coder() -> Principal:
    return principal(Role.CODER)


def request_info() -> RequestInfo:
    return RequestInfo(request_id=uuid.uuid4().hex, trace_id=uuid.uuid4().hex, source_ip="203.0.113.7")


MakeEvent = Callable[..., AuditEvent]


@pytest.fixture
def make_event(coder: Principal) -> MakeEvent:
    def make(tenant_id: uuid.UUID, **overrides: Any) -> AuditEvent:
        values: dict[str, Any] = {
            "tenant_id": TenantId(tenant_id),
            "event_type": "patient.read",
            "action": Action.READ,
            "outcome": Outcome.SUCCESS,
            "request": request_info(),
            "actor": coder,
            "resource_type": "patient",
            "resource_ids": (uuid.uuid4(),),
            "patient_ids": (uuid.uuid4(),),
            "detail": {"count": 1},
        }
        values.update(overrides)
        return AuditEvent(**values)

    return make


async def write_events(sessions: async_sessionmaker[AsyncSession], events: list[AuditEvent]) -> None:
    """Each event in its own committed transaction, as requests would."""
    for event in events:
        async with tenant_transaction(sessions, TenantContext.single(event.tenant_id)) as session:
            record(session, event)


async def write_together(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, events: list[AuditEvent]
) -> None:
    """Many events of one practice in one committed transaction (a day's worth of history at once)."""
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant_id))) as session:
        for event in events:
            record(session, event)


def person_event(
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    patient_id: uuid.UUID,
    event_type: str = "patient.read",
    **overrides: Any,
) -> AuditEvent:
    """A successful read by a person (an app user's id) of one patient's record."""
    values: dict[str, Any] = {
        "tenant_id": TenantId(tenant_id),
        "event_type": event_type,
        "action": Action.READ,
        "outcome": Outcome.SUCCESS,
        "request": request_info(),
        "actor": principal(Role.BILLER, subject=str(user_id)),
        "resource_type": "patient",
        "resource_ids": (uuid.uuid4(),),
        "patient_ids": (patient_id,),
    }
    values.update(overrides)
    return AuditEvent(**values)


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit-keys"


@pytest.fixture
async def superuser(owner_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A superuser connection with the append-only triggers switched off for this session only
    (``session_replication_role = replica``), as an attacker with database superuser would."""
    async with owner_engine.connect() as conn:
        await conn.execute(text("SET session_replication_role = replica"))
        yield conn
        await conn.commit()


@pytest.fixture(scope="session")
async def audit_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The chainer's connection: role rcm_audit, as the worker's periodic job has it."""
    engine = create_engine(audit_database_url(settings), pool_size=4, application_name="rcm-tests-chainer")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def audit_sessions(audit_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(audit_engine)


async def _newest_xid(audit_sessions: async_sessionmaker[AsyncSession]) -> int:
    async with audit_sessions() as session, session.begin():
        await apply_tenant_context(session, await all_tenants_context(session))
        newest = (await session.execute(text("SELECT max(xid) FROM rcm.audit_event"))).scalar_one()
        return int(newest or 0)


async def seal_all(audit_sessions: async_sessionmaker[AsyncSession], *, within: float = 60.0) -> None:
    """Run the chainer until every event committed so far is sealed (the watermark passed the newest xid).
    The horizon is this database's oldest running transaction, so another test's open transaction can
    delay sealing for a moment: retry, briefly."""
    target = await _newest_xid(audit_sessions)
    deadline = time.monotonic() + within
    while True:
        await seal_pending(audit_sessions)
        async with audit_sessions() as session, session.begin():
            if await repository.watermark(session) > target:
                return
        if time.monotonic() > deadline:
            raise AssertionError("the chainer did not seal every event in time")
        await asyncio.sleep(0.05)
