"""Helpers for tests anywhere in the code base: principals and access tokens without the token endpoint.

``mint_access_token`` signs with the deployment's active key (created on first use), so the token passes
the authentication middleware exactly like one from ``/oauth/token``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.keys import KeyRing
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.identity.scopes import PRACTICE_CLIENT_SCOPES, scopes_for_roles
from rcm.identity.tokens import sign_access_token
from rcm.kit.tenant import TenantId


async def mint_access_token(
    principal: Principal,
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    ttl: int | None = None,
    now: datetime | None = None,
) -> str:
    key = await KeyRing(settings).signing_key(sessions)
    token, _ = sign_access_token(principal, key, settings, now=now, ttl=ttl)
    return token


def client_principal(tenant_id: uuid.UUID, *, scopes: frozenset[str] | None = None) -> Principal:
    """A practice API client of ``tenant_id`` (client_id and subject are random)."""
    return Principal(
        kind=PrincipalKind.CLIENT,
        subject=str(uuid.uuid4()),
        roles=frozenset({Role.PRACTICE_CLIENT}),
        scopes=PRACTICE_CLIENT_SCOPES if scopes is None else scopes,
        token_id=uuid.uuid4().hex,
        client_id="rcm_c_test_" + uuid.uuid4().hex[:8],
        home_tenant=TenantId(tenant_id),
    )


def user_principal(
    *roles: Role,
    user_id: uuid.UUID | None = None,
    home_tenant: uuid.UUID | None = None,
    mfa: bool = False,
    scopes: frozenset[str] | None = None,
    auditor_tenants: tuple[uuid.UUID, ...] = (),
) -> Principal:
    """A person with ``roles``; ``user_id`` should name an ``app_user`` row when access checks read it."""
    role_set = frozenset(roles)
    return Principal(
        kind=PrincipalKind.USER,
        subject=str(user_id or uuid.uuid4()),
        roles=role_set,
        scopes=scopes_for_roles(role_set) if scopes is None else scopes,
        token_id=uuid.uuid4().hex,
        user_id=user_id or uuid.uuid4(),
        home_tenant=TenantId(home_tenant) if home_tenant else None,
        mfa=mfa,
        auditor_tenants=tuple(TenantId(t) for t in auditor_tenants),
        all_tenants=Role.AUDITOR in role_set and not auditor_tenants,
    )
