"""Creating and updating tenants from manifests; assigning staff."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.cache import tenants_changed
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant


async def apply_manifest(session: AsyncSession, document: dict[str, Any]) -> tuple[Tenant, bool]:
    """Create or update the tenant a manifest describes; returns (tenant, created)."""
    manifest = validate_manifest(document)
    tenant = (
        await session.execute(select(Tenant).where(Tenant.slug == manifest["slug"]))
    ).scalar_one_or_none()
    created = tenant is None
    if tenant is None:
        tenant = Tenant(id=uuid.uuid4(), slug=manifest["slug"], name=manifest["name"], manifest=manifest)
        session.add(tenant)
    else:
        tenant.name = manifest["name"]
        tenant.manifest = manifest
        if tenant.status != "offboarded":
            tenant.status = manifest.get("status", "active")
    await session.flush()
    tenants_changed()  # this process's tenant cache reloads (others within RCM_TENANT_CACHE_TTL_SECONDS)
    emails = manifest.get("staff", [])
    if emails:
        await assign_staff(session, TenantId(tenant.id), emails)
    return tenant, created


async def assign_staff(session: AsyncSession, tenant_id: TenantId, emails: list[str]) -> None:
    users = (await session.execute(select(AppUser).where(AppUser.email.in_(emails)))).scalars().all()
    await apply_tenant_context(session, TenantContext.single(tenant_id))
    existing = set(
        (
            await session.execute(
                select(StaffAssignment.user_id).where(StaffAssignment.tenant_id == tenant_id)
            )
        ).scalars()
    )
    for user in users:
        if user.id not in existing:
            session.add(StaffAssignment(tenant_id=tenant_id, user_id=user.id))
    await session.flush()


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    if "\x00" in slug:
        # PostgreSQL text cannot hold NUL, so no tenant has this slug; the driver would refuse the query.
        return None
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def system_assigned_tenants(session: AsyncSession, user_id: uuid.UUID) -> tuple[TenantId, ...]:
    """Every tenant a person is assigned to, read across tenants (the loudly named system path).

    The transaction's tenant context is cleared again afterwards, so nothing after this sees any tenant.
    """
    all_tenants = tuple(TenantId(t) for t in (await session.execute(select(Tenant.id))).scalars())
    if not all_tenants:
        return ()
    await apply_tenant_context(session, TenantContext.system_cross_tenant(all_tenants))
    try:
        rows = await session.execute(
            select(StaffAssignment.tenant_id)
            .where(StaffAssignment.user_id == user_id)
            .order_by(StaffAssignment.tenant_id)
        )
        return tuple(TenantId(t) for t in rows.scalars())
    finally:
        await session.execute(text("SELECT set_config('rcm.tenant_id', '', true)"))
