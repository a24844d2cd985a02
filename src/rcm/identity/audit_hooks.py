"""Every audit event the identity package emits, behind one small module.

Each hook records through ``rcm.audit.trail.record_now``, in its own transaction on purpose:
denials and failed logins must be kept even when the request's transaction rolls back.
No hook takes a secret, a token or a PHI value.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo, request_info_from
from rcm.audit.trail import record_now
from rcm.identity.principal import Principal
from rcm.kit.tenant import PLATFORM_TENANT, TenantId

Sessions = async_sessionmaker[AsyncSession]


async def _emit(sessions: Sessions | None, event: AuditEvent) -> AuditEvent:
    """Write the event; if it cannot be written the caller's operation fails with it."""
    if sessions is None:
        raise RuntimeError("audit events need a database session factory")
    await record_now(sessions, event)
    return event


def request_info(connection: ASGIConnection[Any, Any, Any, Any] | None) -> RequestInfo:
    """Where the call came from; ``None`` for in-process callers (CLI). See ``request_info_from``."""
    return request_info_from(connection)


def _tenant_of(principal: Principal | None) -> TenantId:
    return principal.home_tenant if principal and principal.home_tenant else PLATFORM_TENANT


async def token_issued(
    sessions: Sessions | None, *, request: RequestInfo, principal: Principal, grant_type: str
) -> AuditEvent:
    """An API client obtained an access token (client_credentials)."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=_tenant_of(principal),
            event_type="token.issue",
            action=Action.EXECUTE,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=principal,
            actor_hint=principal.client_id,
            resource_type="api_client",
            detail={
                "grant_type": grant_type,
                "jti": principal.token_id,
                "scope": " ".join(sorted(principal.scopes)),
            },
        ),
    )


async def login(
    sessions: Sessions | None, *, request: RequestInfo, principal: Principal, issuer: str
) -> AuditEvent:
    """A person exchanged an ID token for an access token (jwt-bearer)."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=_tenant_of(principal),
            event_type="user.login",
            action=Action.EXECUTE,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=principal,
            resource_type="app_user",
            resource_ids=(principal.user_id,) if principal.user_id else (),
            detail={"issuer": issuer, "jti": principal.token_id, "mfa": principal.mfa},
        ),
    )


async def token_denied(
    sessions: Sessions | None,
    *,
    request: RequestInfo,
    grant_type: str | None,
    error: str,
    actor_hint: str | None,
    tenant_id: TenantId | None = None,
) -> AuditEvent:
    """A token request was refused (bad secret, bad assertion, untrusted issuer, unknown user...)."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=tenant_id or PLATFORM_TENANT,
            event_type="token.denied",
            action=Action.EXECUTE,
            outcome=Outcome.SERIOUS_FAILURE,
            request=request,
            actor=None,
            actor_hint=(actor_hint or "")[:200] or None,
            detail={"grant_type": (grant_type or "")[:100], "error": error},
        ),
    )


async def access_denied(
    sessions: Sessions | None,
    *,
    request: RequestInfo,
    principal: Principal | None,
    reason: str,
    tenant_id: TenantId | None = None,
    actor_hint: str | None = None,
) -> AuditEvent:
    """Authentication failed (no/bad token) or a guard or tenant-access check said no."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=tenant_id or _tenant_of(principal),
            event_type="access.denied",
            action=Action.EXECUTE,
            outcome=Outcome.SERIOUS_FAILURE,
            request=request,
            actor=principal,
            actor_hint=actor_hint,
            detail={"reason": reason},
        ),
    )


async def break_glass_opened(
    sessions: Sessions | None,
    *,
    request: RequestInfo,
    principal: Principal,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    expires_at: datetime,
) -> AuditEvent:
    """Emergency access was granted. The reason is in the grant row (it is free text; kept out of here)."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=tenant_id,
            event_type="break_glass.open",
            action=Action.CREATE,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=principal,
            resource_type="break_glass_grant",
            resource_ids=(grant_id,),
            detail={"expires_at": expires_at.isoformat()},
        ),
    )


async def admin_action(
    sessions: Sessions | None,
    *,
    request: RequestInfo,
    principal: Principal | None,
    event_type: str,
    action: Action,
    tenant_id: TenantId | None = None,
    resource_type: str | None = None,
    resource_ids: tuple[uuid.UUID, ...] = (),
    detail: dict[str, str | int | bool | None] | None = None,
) -> AuditEvent:
    """Platform administration: tenant onboarding, API client issue/rotate/revoke, signing-key rotation."""
    return await _emit(
        sessions,
        AuditEvent(
            tenant_id=tenant_id or PLATFORM_TENANT,
            event_type=event_type,
            action=action,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=principal,
            resource_type=resource_type,
            resource_ids=resource_ids,
            detail=detail or {},
        ),
    )
