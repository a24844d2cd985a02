"""Creating and updating tenants from manifests; assigning staff."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from rcm.tenancy.repository import system_assigned_tenants, tenant_by_slug

__all__ = ["apply_manifest", "assign_staff", "system_assigned_tenants", "tenant_by_slug"]


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
