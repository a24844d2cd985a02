"""Fixtures for identity tests: people in app_user, API clients, and tokens for any principal."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity import audit_hooks
from rcm.identity.clients import IssuedClient, create_client
from rcm.identity.oidc import DEV_ISSUER
from rcm.identity.principal import Principal
from rcm.identity.testing import mint_access_token
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, Tenant

Mint = Callable[[Principal], Awaitable[str]]


@pytest.fixture
def mint(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Mint:
    """``await mint(principal)`` -> a Bearer access token the app accepts."""

    async def _mint(principal: Principal) -> str:
        return await mint_access_token(principal, sessions=sessions, settings=settings)

    return _mint


@pytest.fixture(autouse=True)
def audit_log(monkeypatch: pytest.MonkeyPatch) -> list[audit_hooks.AuditEvent]:
    """The events identity emitted during the test, in order. A spy, not a stand-in: each event still goes
    to the real audit trail (in the caller's transaction, or its own for denials), and a failure to write
    it fails the operation. Tests that care whether a row committed read ``rcm.audit_event`` instead."""
    seen: list[audit_hooks.AuditEvent] = []
    real_emit, real_emit_now = audit_hooks._emit, audit_hooks._emit_now

    async def spy(session: AsyncSession, event: audit_hooks.AuditEvent) -> audit_hooks.AuditEvent:
        await real_emit(session, event)
        seen.append(event)
        return event

    async def spy_now(
        sessions: async_sessionmaker[AsyncSession] | None, event: audit_hooks.AuditEvent
    ) -> audit_hooks.AuditEvent:
        await real_emit_now(sessions, event)
        seen.append(event)
        return event

    monkeypatch.setattr(audit_hooks, "_emit", spy)
    monkeypatch.setattr(audit_hooks, "_emit_now", spy_now)
    return seen


async def audit_rows(
    owner_engine: AsyncEngine, *event_types: str, tenant_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Committed ``rcm.audit_event`` rows of these types (read beneath the app role), oldest first.

    Each row also carries ``xmin``, the id of the transaction that wrote it, so a test can tell whether a
    change and its event committed together.
    """
    async with owner_engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT xmin::text AS xmin, * FROM rcm.audit_event WHERE event_type = ANY(:types) "
                "AND (CAST(:tenant AS uuid) IS NULL OR tenant_id = :tenant) ORDER BY occurred_at, xid, id"
            ),
            {"types": list(event_types), "tenant": tenant_id},
        )
        return [dict(row._mapping) for row in result]


async def make_user(
    sessions: async_sessionmaker[AsyncSession],
    roles: list[str],
    *,
    home_tenant: Tenant | None = None,
    active: bool = True,
) -> AppUser:
    email = f"{roles[0]}-{uuid.uuid4().hex[:8]}@test.invalid"
    async with platform_transaction(sessions) as session:
        user = AppUser(
            id=uuid.uuid4(),
            issuer=DEV_ISSUER,
            subject=email,
            email=email,
            display_name="Test person",
            roles=roles,
            home_tenant_id=home_tenant.id if home_tenant else None,
            active=active,
        )
        session.add(user)
    return user


async def make_client(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, **kwargs: object
) -> IssuedClient:
    async with platform_transaction(sessions) as session:
        return await create_client(session, TenantId(tenant.id), name="Test EHR", **kwargs)  # type: ignore[arg-type]


def idem(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus a fresh Idempotency-Key, as every POST needs."""
    return {**headers, "Idempotency-Key": uuid.uuid4().hex}
