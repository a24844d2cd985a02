"""May this caller act in this tenant? The one decision every tenant route makes after resolving the slug.

A refusal is never explained to the caller: the route answers the standard 404 (not found and not yours
are the same answer). The decision's ``reason`` is for the audit trail only.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.break_glass_store import BreakGlassStore
from rcm.identity.principal import PRACTICE_ROLES, Principal, PrincipalKind, Role
from rcm.kit.db import apply_tenant_context
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.vocabulary import TenantStatus


class AccessBasis(enum.StrEnum):
    HOME_TENANT = "home_tenant"  # practice client or practice owner in their own tenant
    ASSIGNMENT = "assignment"  # staff assigned to the tenant
    BREAK_GLASS = "break_glass"  # a started, unexpired, unrevoked grant of this person, used with MFA
    AUDITOR_SCOPE = "auditor_scope"  # auditor whose scope covers the tenant (read-only by role)
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class AccessDecision:
    allowed: bool
    basis: AccessBasis
    reason: str  # machine-readable, for the audit trail; never shown to the caller
    context: TenantContext | None = None
    break_glass_grant_id: uuid.UUID | None = None

    @classmethod
    def deny(cls, reason: str) -> AccessDecision:
        return cls(False, AccessBasis.DENIED, reason)


class TenantRow(Protocol):
    """The registry row as the decision reads it (the ORM row, or the request's cached copy)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def status(self) -> str: ...


class _Binding:
    """Binds the transaction to the tenant at most once per decision (each set_config is a round trip)."""

    def __init__(self, session: AsyncSession, *, bound: bool) -> None:
        self.session, self.bound = session, bound

    async def bind(self, context: TenantContext) -> None:
        if not self.bound:
            await apply_tenant_context(self.session, context)
            self.bound = True


async def resolve_tenant_access(
    session: AsyncSession,
    principal: Principal,
    tenant: TenantRow,
    *,
    now: datetime | None = None,
    bound: bool = False,
) -> AccessDecision:
    """Decide, and on success leave ``session``'s transaction bound to the tenant's context.

    ``bound`` says the transaction is already bound to this tenant (the tenant lookup did it in the same
    statement). On refusal the transaction's tenant context is cleared, so nothing of the tenant can be
    read after it.
    """
    binding = _Binding(session, bound=bound)
    decision = await _decide(binding, principal, tenant, now or utcnow())
    if decision.context is not None:
        await binding.bind(decision.context)
    else:
        # An empty context: the transaction sees no tenant's rows from here on.
        await apply_tenant_context(session, TenantContext(()))
    return decision


def decide_without_rows(principal: Principal, tenant: TenantRow) -> AccessDecision | None:
    """The decision, when the caller (live, as checked on every request) and the tenant row settle it;
    None when it turns on the tenant's staff assignment and break-glass rows (``resolve_tenant_access``
    reads them). The first rules of ``resolve_tenant_access``, and its decision whenever this gives one."""
    if tenant.status != TenantStatus.ACTIVE:
        return AccessDecision.deny("tenant_not_active")
    tenant_id = TenantId(tenant.id)
    context = TenantContext.single(tenant_id)

    if principal.kind is PrincipalKind.CLIENT or principal.roles & PRACTICE_ROLES:
        if principal.home_tenant == tenant_id:
            return AccessDecision(True, AccessBasis.HOME_TENANT, "home_tenant", context)
        return AccessDecision.deny("not_home_tenant")

    if principal.user_id is None:
        return AccessDecision.deny("no_user")

    if Role.AUDITOR in principal.roles and (principal.all_tenants or tenant_id in principal.auditor_tenants):
        return AccessDecision(True, AccessBasis.AUDITOR_SCOPE, "auditor_scope", context)
    return None


async def _decide(
    binding: _Binding, principal: Principal, tenant: TenantRow, now: datetime
) -> AccessDecision:
    settled = decide_without_rows(principal, tenant)
    if settled is not None:
        return settled
    assert principal.user_id is not None  # refused above otherwise
    tenant_id = TenantId(tenant.id)
    context = TenantContext.single(tenant_id)

    # Staff assignments and break-glass grants are tenant-owned rows: read them inside that tenant's context.
    session = binding.session
    await binding.bind(context)
    store = BreakGlassStore(session)
    # The caller's own assignment: someone else's assignment to this tenant grants nothing.
    if principal.is_staff and await store.is_assigned(tenant_id, principal.user_id):
        return AccessDecision(True, AccessBasis.ASSIGNMENT, "assignment", context)

    if principal.is_staff or Role.ADMIN in principal.roles:
        grant = await store.active_grant(tenant_id, principal.user_id, now)
        if grant is not None:
            # Emergency access is used, as it is opened, only with a second factor: a grant opened with MFA
            # is not honoured for a session (a token) of the same person without it.
            if not principal.mfa:
                return AccessDecision.deny("break_glass_requires_mfa")
            return AccessDecision(True, AccessBasis.BREAK_GLASS, "break_glass", context, grant.id)
    return AccessDecision.deny("no_assignment")
