"""SQL of the tenancy layer that units of work stand on: which practices a staff member may work in."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    if "\x00" in slug:
        # PostgreSQL text cannot hold NUL, so no tenant has this slug; the driver would refuse the query.
        return None
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def tenant_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.id == tenant_id))).scalar_one_or_none()


async def tenants_by_slugs(session: AsyncSession, slugs: list[str]) -> list[Tenant]:
    return list(
        (await session.execute(select(Tenant).where(Tenant.slug.in_(slugs)).order_by(Tenant.slug))).scalars()
    )


async def person_by_email(session: AsyncSession, email: str) -> AppUser | None:
    return (await session.execute(select(AppUser).where(AppUser.email == email))).scalar_one_or_none()


async def tenant_ids(session: AsyncSession, *, active_only: bool = False) -> tuple[uuid.UUID, ...]:
    """Every practice's id (or every live one's); the tenant registry is global: no tenant context needed."""
    stmt = select(Tenant.id).order_by(Tenant.id)
    if active_only:
        stmt = stmt.where(Tenant.status == "active")
    return tuple((await session.execute(stmt)).scalars())


async def not_offboarded_tenants(
    session: AsyncSession, *, slug: str | None = None
) -> list[tuple[uuid.UUID, str]]:
    """(id, slug) of every practice whose keys still exist (or of the one named ``slug``), by slug."""
    stmt = select(Tenant.id, Tenant.slug).where(Tenant.status != "offboarded").order_by(Tenant.slug)
    if slug is not None:
        stmt = stmt.where(Tenant.slug == slug)
    return [(row.id, row.slug) for row in await session.execute(stmt)]


async def set_tenant_status(session: AsyncSession, tenant_id: TenantId, status: str) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(status=status))


async def system_assigned_tenants(
    session: AsyncSession, user_id: uuid.UUID, *, active_only: bool = False
) -> tuple[TenantId, ...]:
    """Every tenant (or every live tenant) a person is assigned to, read across tenants: the loudly named
    system path of the auth layer.

    Staff assignments are tenant-owned rows under RLS, and whose they are is what we are looking for: the
    transaction is bound to every tenant for this one read, and cleared again afterwards, so nothing after
    this sees any tenant until the caller binds the answer. The statement names the person: one's own
    assignments only.
    """
    candidates = await tenant_ids(session, active_only=active_only)
    if not candidates:
        return ()
    await apply_tenant_context(
        session, TenantContext.system_cross_tenant(tuple(TenantId(t) for t in candidates))
    )
    try:
        rows = await session.execute(
            select(StaffAssignment.tenant_id)
            .where(StaffAssignment.user_id == user_id, StaffAssignment.tenant_id.in_(candidates))
            .order_by(StaffAssignment.tenant_id)
        )
        return tuple(TenantId(t) for t in rows.scalars())
    finally:
        await apply_tenant_context(session, TenantContext(()))


async def person_status(
    session: AsyncSession, user_id: uuid.UUID
) -> Row[tuple[bool, list[str], uuid.UUID | None]] | None:
    """A person's live status (active, roles, home tenant): read on every request of theirs (revocation)."""
    stmt = select(AppUser.active, AppUser.roles, AppUser.home_tenant_id).where(AppUser.id == user_id)
    return (await session.execute(stmt)).first()


# Only ever the one row of the slug: set_config runs for that row alone (no row, no binding).
_LOOKUP_AND_BIND = select(
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.status,
    Tenant.manifest,
    func.set_config("rcm.tenant_id", cast(Tenant.id, Text), True).label("bound"),
).where(Tenant.slug == bindparam("slug"))


async def lookup_and_bind(session: AsyncSession, slug: str) -> Row[Any] | None:
    """The tenant of ``slug``, and the transaction bound to it in the same statement (one round trip)."""
    return (await session.execute(_LOOKUP_AND_BIND, {"slug": slug})).first()


async def assignment_of(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> StaffAssignment | None:
    """A person's assignment to a practice, read in a transaction bound to that practice (RLS)."""
    return (
        await session.execute(
            select(StaffAssignment).where(
                StaffAssignment.tenant_id == tenant_id, StaffAssignment.user_id == user_id
            )
        )
    ).scalar_one_or_none()


async def person_by_id(session: AsyncSession, user_id: uuid.UUID) -> AppUser | None:
    return (await session.execute(select(AppUser).where(AppUser.id == user_id))).scalar_one_or_none()


_LOOKUP_AND_BIND_BY_ID = select(
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.status,
    Tenant.manifest,
    func.set_config("rcm.tenant_id", cast(Tenant.id, Text), True).label("bound"),
).where(Tenant.id == bindparam("tenant_id"))


async def lookup_and_bind_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Row[Any] | None:
    """The tenant of ``tenant_id``, and the transaction bound to it in the same statement."""
    return (await session.execute(_LOOKUP_AND_BIND_BY_ID, {"tenant_id": tenant_id})).first()
