"""Every SQL statement on break-glass grants, in one repository.

THE SEAM FOR THE CONTROL ROLE: ``BreakGlassStore`` takes the session it writes through. The HTTP routes build
it in exactly one place (``rcm.identity.break_glass_routes.grant_store``); handing that function a session of
a separate database role routes every grant insert, approval and revocation through that role, with no change
here or in the rules (``rcm.identity.break_glass``).

Grants are tenant-owned rows under RLS: a method that reads or writes one tenant's grants binds the
transaction to that tenant first; the cross-tenant methods (the per-person daily count, the review report)
bind it to an explicit set of tenants, the loudly named system path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.models import BreakGlassGrant, BreakGlassStatus
from rcm.kit.db import apply_tenant_context
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant

# Transaction-scoped advisory lock per person: two concurrent requests of one person are counted one after
# the other, so the daily limit cannot be raced.
_LOCK_PERSON = text("SELECT pg_advisory_xact_lock(hashtextextended('rcm.break_glass:' || :user_id, 0))")
REPORT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class GrantFilter:
    """What the review report asks for; ``None`` means any."""

    tenant_ids: tuple[TenantId, ...]
    user_id: uuid.UUID | None = None
    status: BreakGlassStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class GrantRow:
    grant: BreakGlassGrant
    user_email: str | None


def status_condition(status: BreakGlassStatus, now: datetime, pending_for: timedelta) -> ColumnElement[bool]:
    """SQL twin of ``rcm.identity.break_glass.grant_status``."""
    g = BreakGlassGrant
    live = g.revoked_at.is_(None)
    conditions = {
        BreakGlassStatus.REVOKED: g.revoked_at.is_not(None),
        BreakGlassStatus.PENDING: and_(live, g.starts_at.is_(None), g.created_at > now - pending_for),
        BreakGlassStatus.LAPSED: and_(live, g.starts_at.is_(None), g.created_at <= now - pending_for),
        BreakGlassStatus.ACTIVE: and_(live, g.starts_at <= now, g.expires_at > now),
        BreakGlassStatus.EXPIRED: and_(live, g.expires_at <= now),
    }
    return conditions[status]


class BreakGlassStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bind(self, tenant_id: TenantId) -> None:
        await apply_tenant_context(self.session, TenantContext.single(tenant_id))

    async def all_tenant_ids(self) -> tuple[TenantId, ...]:
        return tuple(TenantId(t) for t in (await self.session.execute(select(Tenant.id))).scalars())

    async def lock_person(self, user_id: uuid.UUID) -> None:
        await self.session.execute(_LOCK_PERSON, {"user_id": str(user_id)})

    async def requests_since(self, user_id: uuid.UUID, since: datetime) -> int:
        """SYSTEM PATH, CROSS-TENANT: how many grants ``user_id`` asked for since ``since``, in any tenant.

        Leaves the transaction bound to every tenant; the caller binds the one it works in next.
        """
        tenant_ids = await self.all_tenant_ids()
        if not tenant_ids:
            return 0
        await apply_tenant_context(self.session, TenantContext.system_cross_tenant(tenant_ids))
        statement = select(func.count()).where(
            BreakGlassGrant.user_id == user_id, BreakGlassGrant.created_at > since
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def is_assigned(self, tenant_id: TenantId, user_id: uuid.UUID) -> bool:
        """The transaction must be bound to ``tenant_id``."""
        statement = select(StaffAssignment.user_id).where(
            StaffAssignment.tenant_id == tenant_id, StaffAssignment.user_id == user_id
        )
        return (await self.session.execute(statement)).first() is not None

    async def add(self, grant: BreakGlassGrant) -> BreakGlassGrant:
        self.session.add(grant)
        await self.session.flush()
        return grant

    async def get_for_update(self, tenant_id: TenantId, grant_id: uuid.UUID) -> BreakGlassGrant | None:
        """One grant of the bound tenant, locked until the transaction ends (approve and revoke serialise)."""
        statement = (
            select(BreakGlassGrant)
            .where(BreakGlassGrant.tenant_id == tenant_id, BreakGlassGrant.id == grant_id)
            .with_for_update()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def approve(
        self, grant: BreakGlassGrant, *, approver: uuid.UUID, at: datetime, expires_at: datetime
    ) -> BreakGlassGrant:
        grant.approved_by = approver
        grant.approved_at = at
        grant.starts_at = at
        grant.expires_at = expires_at
        await self.session.flush()
        return grant

    async def revoke(self, grant: BreakGlassGrant, *, by: uuid.UUID, at: datetime) -> BreakGlassGrant:
        grant.revoked_by = by
        grant.revoked_at = at
        await self.session.flush()
        return grant

    async def active_grant(
        self, tenant_id: TenantId, user_id: uuid.UUID, now: datetime
    ) -> BreakGlassGrant | None:
        """The person's grant in force now in the bound tenant: started (so approved where that is required),
        not expired, not revoked."""
        statement = (
            select(BreakGlassGrant)
            .where(
                BreakGlassGrant.tenant_id == tenant_id,
                BreakGlassGrant.user_id == user_id,
                BreakGlassGrant.revoked_at.is_(None),
                BreakGlassGrant.starts_at <= now,
                BreakGlassGrant.expires_at > now,
            )
            .order_by(BreakGlassGrant.expires_at.desc())
            .limit(1)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def report(self, wanted: GrantFilter, *, now: datetime, pending_for: timedelta) -> list[GrantRow]:
        """SYSTEM PATH, CROSS-TENANT: grants of ``wanted.tenant_ids``, newest first, with the person's email.

        Binds the transaction to exactly those tenants (the caller has decided the reader may see them).
        """
        if not wanted.tenant_ids:
            return []
        await apply_tenant_context(self.session, TenantContext.system_cross_tenant(wanted.tenant_ids))
        statement = (
            select(BreakGlassGrant, AppUser.email)
            .outerjoin(AppUser, AppUser.id == BreakGlassGrant.user_id)
            .where(BreakGlassGrant.tenant_id.in_(wanted.tenant_ids))
            .order_by(BreakGlassGrant.created_at.desc(), BreakGlassGrant.id)
            .limit(REPORT_LIMIT)
        )
        if wanted.user_id is not None:
            statement = statement.where(BreakGlassGrant.user_id == wanted.user_id)
        if wanted.since is not None:
            statement = statement.where(BreakGlassGrant.created_at >= wanted.since)
        if wanted.until is not None:
            statement = statement.where(BreakGlassGrant.created_at < wanted.until)
        if wanted.status is not None:
            statement = statement.where(status_condition(wanted.status, now, pending_for))
        return [GrantRow(grant, email) for grant, email in (await self.session.execute(statement)).all()]

    async def user_id_by_email(self, email: str) -> uuid.UUID | None:
        statement = select(AppUser.id).where(func.lower(AppUser.email) == email.strip().lower())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def tenant_by_slug(self, slug: str) -> Tenant | None:
        return (await self.session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()
