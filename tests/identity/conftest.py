"""Fixtures for identity tests: people in app_user, API clients, and tokens for any principal."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    """The events identity emitted during the test. A spy, not a stand-in: each one is still written to
    the real audit trail first (a failure to write fails the test)."""
    seen: list[audit_hooks.AuditEvent] = []
    real_emit = audit_hooks._emit

    async def spy(
        sessions: async_sessionmaker[AsyncSession] | None, event: audit_hooks.AuditEvent
    ) -> audit_hooks.AuditEvent:
        await real_emit(sessions, event)
        seen.append(event)
        return event

    monkeypatch.setattr(audit_hooks, "_emit", spy)
    return seen


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
