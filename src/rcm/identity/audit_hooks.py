"""Every audit event the identity package emits, behind one small module.

Two ways to record, chosen by outcome:
- successes (token issued, login, break-glass, administration) take the caller's ``AsyncSession`` and are
  recorded with ``rcm.audit.trail.record`` in the SAME transaction as the change: the change and its audit
  row commit together or not at all (45 CFR 164.312(b));
- denials (failed logins, refused token requests, 401/403) take the session factory and are recorded with
  ``record_now`` in a transaction of their own, because the request's transaction does not commit.
No hook takes a secret, a token or a PHI value.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo, request_info_from
from rcm.audit.repository import context_tenants
from rcm.audit.trail import record, record_now
from rcm.identity.principal import Principal
from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId

Sessions = async_sessionmaker[AsyncSession]


async def _emit(session: AsyncSession, event: AuditEvent) -> AuditEvent:
    """Record the event in ``session``'s transaction; if it cannot be written, that transaction fails.

    Call it after the change has been flushed. The audit row goes on the event's tenant chain, and RLS on
    the audit tables needs that tenant in the transaction's context: the context is widened to include it,
    never narrowed, so whatever else the transaction still writes stays within its context.
    """
    context = [TenantId(t) for t in await context_tenants(session)]
    if event.tenant_id not in context:
        await apply_tenant_context(session, TenantContext.system_cross_tenant((*context, event.tenant_id)))
    record(session, event)
    return event


async def _emit_now(sessions: Sessions | None, event: AuditEvent) -> AuditEvent:
    """Record a denial in a transaction of its own (the request's transaction does not commit)."""
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
    session: AsyncSession, *, request: RequestInfo, principal: Principal, grant_type: str
) -> AuditEvent:
    """An API client obtained an access token (client_credentials)."""
    return await _emit(
        session,
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
    session: AsyncSession, *, request: RequestInfo, principal: Principal, issuer: str, linked: bool = False
) -> AuditEvent:
    """A person exchanged an ID token for an access token (jwt-bearer); ``linked``: this login recorded
    the issuer's subject on a user found by email (first login)."""
    detail: dict[str, str | bool | None] = {
        "issuer": issuer,
        "jti": principal.token_id,
        "mfa": principal.mfa,
        "linked": linked,
    }
    return await _emit(session, _person_event("user.login", request, principal, detail))


async def logout(
    session: AsyncSession, *, request: RequestInfo, principal: Principal, session_id: str
) -> AuditEvent:
    """A person ended their browser session (the session id is recorded as ended in the same transaction)."""
    return await _emit(session, _person_event("user.logout", request, principal, {"session": session_id}))


def _person_event(
    event_type: str, request: RequestInfo, principal: Principal, detail: dict[str, str | bool | None]
) -> AuditEvent:
    return AuditEvent(
        tenant_id=_tenant_of(principal),
        event_type=event_type,
        action=Action.EXECUTE,
        outcome=Outcome.SUCCESS,
        request=request,
        actor=principal,
        resource_type="app_user",
        resource_ids=(principal.user_id,) if principal.user_id else (),
        detail=detail,
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
    return await _emit_now(
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
    return await _emit_now(
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


_BREAK_GLASS_ACTIONS = {
    "open": Action.CREATE,
    "approve": Action.UPDATE,
    "revoke": Action.UPDATE,
    "use": Action.EXECUTE,
}


async def break_glass_changed(
    session: AsyncSession,
    *,
    request: RequestInfo,
    principal: Principal,
    change: str,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    detail: dict[str, str | int | bool | None],
) -> AuditEvent:
    """Emergency access was requested (``open``), approved or revoked, in the change's own transaction, on
    the tenant's chain. The free-text reason stays in the grant row (it may hold anything); the category,
    status, window and the grant's holder are in ``detail``."""
    return await _emit(
        session,
        _break_glass_event(
            request=request,
            principal=principal,
            change=change,
            tenant_id=tenant_id,
            grant_id=grant_id,
            detail=detail,
        ),
    )


async def break_glass_used(
    sessions: Sessions | None,
    *,
    request: RequestInfo,
    principal: Principal,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    route: str,
) -> AuditEvent:
    """A request was let into a tenant on a break-glass grant. Recorded in its own transaction, so the use
    is on record whether or not the request then succeeds (what it touched is audited by the route)."""
    event = _break_glass_event(
        request=request,
        principal=principal,
        change="use",
        tenant_id=tenant_id,
        grant_id=grant_id,
        detail={"route": route},
    )
    return await _emit_now(sessions, event)


def _break_glass_event(
    *,
    request: RequestInfo,
    principal: Principal,
    change: str,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    detail: dict[str, str | int | bool | None],
) -> AuditEvent:
    return AuditEvent(
        tenant_id=tenant_id,
        event_type=f"break_glass.{change}",
        action=_BREAK_GLASS_ACTIONS[change],
        outcome=Outcome.SUCCESS,
        request=request,
        actor=principal,
        resource_type="break_glass_grant",
        resource_ids=(grant_id,),
        detail=detail,
    )


async def admin_action(
    session: AsyncSession,
    *,
    request: RequestInfo,
    principal: Principal,
    event_type: str,
    action: Action,
    tenant_id: TenantId | None = None,
    resource_type: str | None = None,
    resource_ids: tuple[uuid.UUID, ...] = (),
    detail: dict[str, str | int | bool | None] | None = None,
) -> AuditEvent:
    """Platform administration: tenant onboarding, API client issue/rotate/revoke, signing-key rotation.

    ``principal`` is the admin's token principal, or ``operator_principal(command)`` for the CLI.
    """
    return await _emit(
        session,
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


async def tenant_onboarded(
    session: AsyncSession, *, request: RequestInfo, principal: Principal, tenant_id: TenantId, created: bool
) -> AuditEvent:
    """A practice was created or updated from its manifest (admin API or ``rcm tenants apply``)."""
    return await admin_action(
        session,
        request=request,
        principal=principal,
        event_type="tenant.onboard",
        action=Action.CREATE if created else Action.UPDATE,
        tenant_id=tenant_id,
        resource_type="tenant",
        resource_ids=(tenant_id,),
    )


_CLIENT_CHANGES = {"issue": Action.CREATE, "rotate": Action.UPDATE, "revoke": Action.UPDATE}


async def api_client_changed(
    session: AsyncSession,
    *,
    request: RequestInfo,
    principal: Principal,
    change: str,
    tenant_id: TenantId,
    client_row_id: uuid.UUID,
) -> AuditEvent:
    """An API client was issued, had its credential rotated, or was revoked (admin API or CLI)."""
    return await admin_action(
        session,
        request=request,
        principal=principal,
        event_type=f"api_client.{change}",
        action=_CLIENT_CHANGES[change],
        tenant_id=tenant_id,
        resource_type="api_client",
        resource_ids=(client_row_id,),
    )


async def signing_keys_rewrapped(
    session: AsyncSession, *, request: RequestInfo, principal: Principal, rewrapped: int, unreadable: int
) -> AuditEvent:
    """Signing keys' private halves were re-wrapped under the current KEK (``rcm keys rotate``)."""
    return await admin_action(
        session,
        request=request,
        principal=principal,
        event_type="signing_key.rewrap",
        action=Action.EXECUTE,
        resource_type="signing_key",
        detail={"rewrapped": rewrapped, "unreadable": unreadable},
    )
