"""SQL of the admin read routes: the tenant registry, a practice's API clients, people and their assignments.

Tenants and people are global tables (no tenant context needed). API clients and staff assignments are
tenant-owned: they are read through ``TenantScopedRepository`` under an explicit context, one practice for its
clients, and every practice (``TenantContext.system_cross_tenant``, the loudly named path) for the
assignments of a page of people. Pages are keyset pages on ``(created_at, id)``, fetched one row long.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.models import ApiClient
from rcm.kit.db import apply_tenant_context
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantRowRepository, TenantScopedRepository
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant

Keyset = tuple[datetime, uuid.UUID]


async def tenants_page(session: AsyncSession, *, limit: int, after: Keyset | None) -> Sequence[Tenant]:
    statement = select(Tenant)
    if after is not None:
        statement = statement.where(after_key(Tenant.created_at, Tenant.id, after))
    statement = statement.order_by(Tenant.created_at, Tenant.id).limit(limit)
    return (await session.execute(statement)).scalars().all()


async def tenant_slugs(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Tenant.id, Tenant.slug).where(Tenant.id.in_(set(ids))))
    return {row.id: row.slug for row in rows}


class ApiClientReads(TenantScopedRepository[ApiClient]):
    """A practice's API clients (the routes' DTOs copy no credential column out of these rows)."""

    model = ApiClient

    async def page(self, *, limit: int, after: Keyset | None) -> Sequence[ApiClient]:
        statement = self.base_statement()
        if after is not None:
            statement = statement.where(after_key(ApiClient.created_at, ApiClient.id, after))
        statement = statement.order_by(ApiClient.created_at, ApiClient.id).limit(limit)
        return (await self.session.execute(statement)).scalars().all()


async def people_page(
    session: AsyncSession, *, limit: int, after: Keyset | None, email: str | None, role: str | None
) -> Sequence[AppUser]:
    statement = select(AppUser)
    if email is not None:
        statement = statement.where(func.lower(AppUser.email) == email.lower())
    if role is not None:
        statement = statement.where(AppUser.roles.contains([role]))
    if after is not None:
        statement = statement.where(after_key(AppUser.created_at, AppUser.id, after))
    statement = statement.order_by(AppUser.created_at, AppUser.id).limit(limit)
    return (await session.execute(statement)).scalars().all()


async def person(session: AsyncSession, user_id: uuid.UUID) -> AppUser | None:
    found: AppUser | None = await session.get(AppUser, user_id)
    return found


@dataclass(frozen=True, slots=True)
class Assignment:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    assigned_by: uuid.UUID | None
    assigned_at: datetime


class _Assignments(TenantRowRepository[StaffAssignment]):
    model = StaffAssignment

    async def of_people(self, user_ids: Sequence[uuid.UUID]) -> list[Assignment]:
        statement = (
            self.base_statement()
            .add_columns(Tenant.slug)
            .join(Tenant, Tenant.id == StaffAssignment.tenant_id)
            .where(StaffAssignment.user_id.in_(user_ids))
            .order_by(StaffAssignment.user_id, Tenant.slug)
        )
        return [
            Assignment(row.user_id, row.tenant_id, slug, row.assigned_by, row.created_at)
            for row, slug in (await self.session.execute(statement)).tuples()
        ]


async def system_assignments_across_tenants(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> list[Assignment]:
    """The staff assignments of ``user_ids`` in every practice: an admin's cross-tenant read.

    The transaction's context is widened to every tenant for this read; the audit event recorded after it
    widens it again as it needs, so nothing narrower is assumed afterwards.
    """
    if not user_ids:
        return []
    every_tenant = tuple(TenantId(t) for t in (await session.execute(select(Tenant.id))).scalars())
    if not every_tenant:
        return []
    context = TenantContext.system_cross_tenant(every_tenant)
    await apply_tenant_context(session, context)
    return await _Assignments(session, context).of_people(user_ids)
