"""SQL of the tenancy layer that units of work stand on: which practices a staff member may work in."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import StaffAssignment, Tenant


async def active_tenant_ids(session: AsyncSession) -> tuple[uuid.UUID, ...]:
    """Every practice that is live (the tenant registry is global: no tenant context needed)."""
    rows = await session.execute(select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id))
    return tuple(rows.scalars())


async def assigned_tenant_ids(session: AsyncSession, user_id: uuid.UUID) -> tuple[TenantId, ...]:
    """The active practices ``user_id`` is assigned to.

    Staff assignments are tenant-owned rows under RLS, and whose they are is what we are looking for: the
    transaction is bound to every active tenant for this one read (a system path of the auth layer), then
    the caller rebinds it to the answer. The statement still names the person: one's own assignments only.
    """
    active = await active_tenant_ids(session)
    if not active:
        return ()
    await apply_tenant_context(session, TenantContext.system_cross_tenant(tuple(TenantId(t) for t in active)))
    rows = await session.execute(
        select(StaffAssignment.tenant_id)
        .where(StaffAssignment.user_id == user_id, StaffAssignment.tenant_id.in_(active))
        .order_by(StaffAssignment.tenant_id)
    )
    return tuple(TenantId(t) for t in rows.scalars())
