"""What the pages read besides the domains' own services: the practices a person can open."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.principal import Principal, Role
from rcm.kit.db import platform_transaction
from rcm.tenancy.repository import active_tenants, system_assigned_tenants, tenants_by_ids
from rcm.tenancy.vocabulary import TenantStatus


@dataclass(frozen=True, slots=True)
class PracticeLink:
    slug: str
    name: str


async def visible_practices(
    sessions: async_sessionmaker[AsyncSession], principal: Principal
) -> list[PracticeLink]:
    """The active practices ``principal`` may open, by name: a practice owner's own, a staff member's live
    assignments, an auditor's practices (all of them for the company's own auditor). Only names and slugs
    from the practice registry; whether a practice page then opens is decided by the tenant scope, as for
    the API. Break-glass access is not listed: it is opened on purpose, never browsed into."""
    async with platform_transaction(sessions) as session:
        if principal.home_tenant is not None:
            tenants = await tenants_by_ids(session, [principal.home_tenant])
        elif Role.AUDITOR in principal.roles and principal.all_tenants:
            tenants = await active_tenants(session)
        elif Role.AUDITOR in principal.roles:
            tenants = await tenants_by_ids(session, list(principal.auditor_tenants))
        elif principal.is_staff and principal.user_id is not None:
            assigned = await system_assigned_tenants(session, principal.user_id, active_only=True)
            tenants = await tenants_by_ids(session, list(assigned))
        else:
            tenants = []
    links = [PracticeLink(t.slug, t.name) for t in tenants if t.status == TenantStatus.ACTIVE]
    return sorted(links, key=lambda p: (p.name.lower(), p.slug))
