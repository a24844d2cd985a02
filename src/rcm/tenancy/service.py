"""Creating and updating tenants from manifests; assigning staff."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.payers.service import sync_enrollments
from rcm.tenancy.cache import tenants_changed
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.models import StaffAssignment, Tenant
from rcm.tenancy.repository import (
    assigned_user_ids,
    people_by_emails,
    system_assigned_tenants,
    tenant_by_slug,
)
from rcm.tenancy.vocabulary import TenantStatus

__all__ = ["apply_manifest", "assign_staff", "system_assigned_tenants", "tenant_by_slug"]


async def apply_manifest(session: AsyncSession, manifest: TenantManifest) -> tuple[Tenant, bool]:
    """Create or update the tenant a manifest describes; returns (tenant, created)."""
    tenant = await tenant_by_slug(session, manifest.slug)
    created = tenant is None
    if tenant is None:
        tenant = Tenant(id=uuid.uuid4(), slug=manifest.slug, name=manifest.name, manifest=manifest)
        session.add(tenant)
    else:
        tenant.name = manifest.name
        tenant.manifest = manifest
        if tenant.status != TenantStatus.OFFBOARDED:
            tenant.status = manifest.status or TenantStatus.ACTIVE
    await session.flush()
    tenants_changed()  # this process's tenant cache reloads (others within RCM_TENANT_CACHE_TTL_SECONDS)
    # Its payers become its payer enrollment (refused, whole, when one is not in the payer directory).
    await sync_enrollments(session, TenantId(tenant.id), manifest)
    if manifest.staff:
        await assign_staff(session, TenantId(tenant.id), list(manifest.staff))
    return tenant, created


async def assign_staff(session: AsyncSession, tenant_id: TenantId, emails: list[str]) -> None:
    users = await people_by_emails(session, emails)
    await apply_tenant_context(session, TenantContext.single(tenant_id))
    existing = await assigned_user_ids(session, tenant_id)
    for user in users:
        if user.id not in existing:
            session.add(StaffAssignment(tenant_id=tenant_id, user_id=user.id))
    await session.flush()
