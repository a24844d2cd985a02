"""Helpers for tests anywhere in the code base: principals and access tokens without the token endpoint.

``mint_access_token`` signs with the deployment's active key (created on first use), so the token passes
the authentication middleware exactly like one from ``/oauth/token``. A token's caller is checked live on
every request (``rcm.identity.status``), so minting also registers the caller when it does not exist yet: an
active ``app_user`` with the token's roles (and an auditor's assignments), or an active ``api_client`` of the
token's tenant. Callers that
exist already (made by a test) are left as they are.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.clients import hash_secret, lookup_client_for_token_endpoint
from rcm.identity.keys import KeyRing
from rcm.identity.models import ApiClient, ApiClientStatus, AuthMethod
from rcm.identity.oidc import DEV_ISSUER
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.identity.scopes import PRACTICE_CLIENT_SCOPES, Scope, scopes_for_roles
from rcm.identity.tokens import sign_access_token
from rcm.kit.control import open_control_sessions
from rcm.kit.db import apply_tenant_context, platform_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant


async def mint_access_token(
    principal: Principal,
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    ttl: int | None = None,
    now: datetime | None = None,
    control: async_sessionmaker[AsyncSession] | None = None,
) -> str:
    """A signed access token for ``principal``; ``control`` (control-role sessions) registers its caller and
    creates the first signing key. Without it, a short-lived control pool is opened from ``settings``."""
    if control is None:
        async with open_control_sessions(settings, application_name="rcm-tests-mint") as opened:
            return await mint_access_token(
                principal, sessions=sessions, settings=settings, ttl=ttl, now=now, control=opened
            )
    await register_caller(control, principal)
    key = await KeyRing(settings, control=control).signing_key(sessions)
    token, _ = sign_access_token(principal, key, settings, now=now, ttl=ttl)
    return token


async def register_caller(control: async_sessionmaker[AsyncSession], principal: Principal) -> None:
    """Make the row the live status check will look for, unless it exists (or its tenant does not)."""
    async with platform_transaction(control) as session:
        if principal.kind is PrincipalKind.CLIENT:
            if principal.home_tenant is None or principal.client_id is None:
                return
            if await session.get(Tenant, principal.home_tenant) is None:
                return  # a made-up tenant: the token is refused, as it would be in production
            if await lookup_client_for_token_endpoint(session, principal.client_id) is not None:
                return
            await apply_tenant_context(session, TenantContext.single(principal.home_tenant))
            session.add(
                ApiClient(
                    tenant_id=principal.home_tenant,
                    id=uuid.UUID(principal.subject),
                    client_id=principal.client_id,
                    name="Test client (minted)",
                    auth_method=AuthMethod.CLIENT_SECRET_BASIC,
                    secret_hash=hash_secret(uuid.uuid4().hex),
                    scopes=sorted(principal.scopes),
                    status=ApiClientStatus.ACTIVE,
                )
            )
            return
        if principal.user_id is None or await session.get(AppUser, principal.user_id) is not None:
            return
        home = principal.home_tenant
        if home is not None and await session.get(Tenant, home) is None:
            return
        email = f"minted-{principal.user_id.hex[:12]}@test.invalid"
        session.add(
            AppUser(
                id=principal.user_id,
                issuer=DEV_ISSUER,
                subject=email,
                email=email,
                display_name="Test person (minted)",
                roles=sorted(str(r) for r in principal.roles),
                home_tenant_id=home,
                active=True,
            )
        )
        await session.flush()
        # An auditor's token names the practices they may read; the live check wants the assignments.
        for tenant_id in principal.auditor_tenants:
            if tenant_id != home and await session.get(Tenant, tenant_id) is not None:
                await apply_tenant_context(session, TenantContext.single(tenant_id))
                session.add(StaffAssignment(tenant_id=tenant_id, user_id=principal.user_id))
                await session.flush()


def client_principal(tenant_id: uuid.UUID, *, scopes: frozenset[Scope] | None = None) -> Principal:
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
    scopes: frozenset[Scope] | None = None,
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
