"""Break-glass: time-boxed access to a tenant outside one's assignments, with a reason, always audited."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.models import BreakGlassGrant
from rcm.identity.principal import Principal, Role
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import Conflict, FieldError, Forbidden, InvalidInput
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import StaffAssignment, Tenant

MAX_MINUTES = 240  # four hours: the migration's check constraint enforces the same ceiling
MAX_REASON_CHARS = 2000


async def open_break_glass(
    session: AsyncSession,
    *,
    actor: Principal,
    tenant: Tenant,
    reason: str,
    minutes: int,
    now: datetime | None = None,
) -> BreakGlassGrant:
    """Grant ``actor`` access to ``tenant`` for ``minutes``. Staff (or admins with MFA) only; a reason is
    required. The caller's transaction commits and the caller records the audit event."""
    errors = []
    if not reason or not reason.strip():
        errors.append(FieldError("/reason", "is required"))
    elif len(reason) > MAX_REASON_CHARS:
        errors.append(FieldError("/reason", f"must have at most {MAX_REASON_CHARS} characters"))
    if not 1 <= minutes <= MAX_MINUTES:
        errors.append(FieldError("/minutes", f"must be between 1 and {MAX_MINUTES}"))
    if errors:
        raise InvalidInput("The break-glass request is invalid.", errors=errors)
    if actor.user_id is None or not (actor.is_staff or Role.ADMIN in actor.roles):
        raise Forbidden("Only staff and administrators may break the glass.")
    if Role.ADMIN in actor.roles and not actor.is_staff and not actor.mfa:
        raise Forbidden("Administrators need multi-factor authentication to break the glass.")
    tenant_id = TenantId(tenant.id)
    await apply_tenant_context(session, TenantContext.single(tenant_id))
    assigned = (
        await session.execute(
            select(StaffAssignment.user_id).where(
                StaffAssignment.tenant_id == tenant_id, StaffAssignment.user_id == actor.user_id
            )
        )
    ).first()
    if assigned is not None:
        raise Conflict("You are assigned to this tenant; break-glass is for access outside assignments.")
    created = now or utcnow()
    grant = BreakGlassGrant(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        user_id=actor.user_id,
        reason=reason.strip(),
        created_at=created,
        expires_at=created + timedelta(minutes=minutes),
    )
    session.add(grant)
    await session.flush()
    return grant


async def system_break_glass_report_across_tenants(
    session: AsyncSession, *, since: datetime | None = None
) -> list[BreakGlassGrant]:
    """SYSTEM PATH, CROSS-TENANT: every break-glass grant of every tenant, for platform admins' review.

    Binds the transaction to all tenants at once (``TenantContext.system_cross_tenant``); only the admin
    break-glass report may call it.
    """
    tenant_ids = tuple(TenantId(t) for t in (await session.execute(select(Tenant.id))).scalars())
    if not tenant_ids:
        return []
    await apply_tenant_context(session, TenantContext.system_cross_tenant(tenant_ids))
    statement = select(BreakGlassGrant).order_by(BreakGlassGrant.created_at.desc())
    if since is not None:
        statement = statement.where(BreakGlassGrant.created_at >= since)
    return list((await session.execute(statement.limit(1000))).scalars())
