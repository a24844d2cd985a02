"""HTTP routes of break-glass: request, approve and revoke a grant; the owner's view; the review report.

Under ``/api/v1/tenants/{slug}/break-glass``:
- ``POST``: staff or an admin, with MFA, asks for emergency access (category, reason, minutes);
- ``POST /{id}/approvals``: a supervisor or admin with MFA, not the requester, lets a pending grant start;
- ``DELETE /{id}``: the holder, a supervisor or an admin ends a grant now;
- ``GET``: the practice owner sees the grants on their practice (who, category, when, status; no reason
  text, which is free text and may say anything).
Review: ``GET /api/v1/admin/break-glass`` (admin, admin scope, MFA) over every tenant and
``GET /api/v1/audit/break-glass`` (auditor, audit:read) over the auditor's tenants, filterable by tenant,
person, status and time; ``GET /api/v1/break-glass/pending`` shows approvers what waits for them.

Every change is audited in its own transaction; every refusal is audited under the tenant that was probed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.idempotency.service import IdemKey, created_responses, run_idempotent
from rcm.identity import audit_hooks
from rcm.identity.break_glass import (
    PENDING_LAPSES_AFTER,
    BreakGlassPolicy,
    approve_grant,
    grant_status,
    request_grant,
    revoke_grant,
)
from rcm.identity.break_glass_store import BreakGlassStore, GrantFilter, GrantRow
from rcm.identity.controllers import _system_tenant_scope
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.models import BreakGlassCategory, BreakGlassGrant, BreakGlassStatus
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import ADMIN, AUDIT_READ, REPORTS_READ
from rcm.kit.control import control_transaction
from rcm.kit.db import platform_transaction
from rcm.kit.errors import FieldError, Forbidden, InvalidInput, NotFound, RCMError, problem_responses
from rcm.kit.models import utcnow
from rcm.kit.tenant import PLATFORM_TENANT, TenantId
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.vocabulary import TenantStatus

Req = Request[Any, Any, Any]


def grant_store(session: AsyncSession) -> BreakGlassStore:
    """THE ONE PLACE break-glass routes get their repository. Opening, approving and revoking hand it a
    control-role session (only ``rcm_control`` may write grants); the reports read as the app role."""
    return BreakGlassStore(session)


class BreakGlassCreate(msgspec.Struct, forbid_unknown_fields=True):
    category: BreakGlassCategory
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    # Unset: the deployment's default (RCM_BREAK_GLASS_DEFAULT_MINUTES); at most RCM_BREAK_GLASS_MAX_MINUTES.
    minutes: Annotated[int, msgspec.Meta(ge=1, le=240)] | None = None


class BreakGlassGrantSummary(msgspec.Struct):
    """A grant as the practice owner sees it: no reason text."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    user_email: str | None
    category: BreakGlassCategory
    status: BreakGlassStatus
    minutes: int
    requires_approval: bool
    created_at: datetime
    starts_at: datetime | None
    expires_at: datetime | None
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    revoked_by: uuid.UUID | None
    revoked_at: datetime | None


class BreakGlassGrantOut(BreakGlassGrantSummary):
    """A grant as its holder, approvers and reviewers see it."""

    reason: str


def _summary_fields(grant: BreakGlassGrant, email: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": grant.id,
        "tenant_id": grant.tenant_id,
        "user_id": grant.user_id,
        "user_email": email,
        "category": grant.category,
        "status": grant_status(grant, now),
        "minutes": grant.minutes,
        "requires_approval": grant.requires_approval,
        "created_at": grant.created_at,
        "starts_at": grant.starts_at,
        "expires_at": grant.expires_at,
        "approved_by": grant.approved_by,
        "approved_at": grant.approved_at,
        "revoked_by": grant.revoked_by,
        "revoked_at": grant.revoked_at,
    }


def _out(grant: BreakGlassGrant, email: str | None = None) -> BreakGlassGrantOut:
    return BreakGlassGrantOut(**_summary_fields(grant, email, utcnow()), reason=grant.reason)


def _event_detail(grant: BreakGlassGrant) -> dict[str, str | int | bool | None]:
    return {
        "holder": str(grant.user_id),
        "category": str(grant.category),
        "status": str(grant_status(grant, utcnow())),
        "minutes": grant.minutes,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
    }


@asynccontextmanager
async def _refusals_audited(request: Req, state: State, probed: list[TenantId]) -> AsyncIterator[None]:
    """Audit a refusal (the request's own transaction rolls back) under the tenant that was probed."""
    try:
        yield
    except RCMError as exc:
        await audit_hooks.access_denied(
            state.sessions,
            request=audit_hooks.request_info(request),
            principal=current_principal(request),
            reason=f"break_glass:{exc.status_code}",
            tenant_id=probed[0] if probed else PLATFORM_TENANT,
        )
        raise


async def _active_tenant(session: AsyncSession, slug: str, probed: list[TenantId]) -> Tenant:
    tenant = await grant_store(session).tenant_by_slug(slug)
    if tenant is None:
        raise NotFound
    probed.append(TenantId(tenant.id))
    if tenant.status != TenantStatus.ACTIVE:
        raise NotFound
    return tenant


_STAFF_AND_ADMINS = requires_roles(Role.CODER, Role.BILLER, Role.SUPERVISOR, Role.ADMIN)


class BreakGlassController(Controller):
    path = "/api/v1/tenants/{tenant_slug:str}/break-glass"
    tags = ["break-glass"]

    @post(
        summary="Ask for time-boxed emergency access to a tenant outside your assignments (MFA, category, "
        "reason); pending until approved where the deployment requires a second approver",
        guards=[_STAFF_AND_ADMINS, requires_mfa],
        responses=created_responses(BreakGlassGrantOut),
    )
    async def open(
        self,
        tenant_slug: FromPath[str],
        data: JSONBody[BreakGlassCreate],
        request: Req,
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        principal = current_principal(request)
        policy = BreakGlassPolicy.from_settings(state.settings)
        probed: list[TenantId] = []
        async with _refusals_audited(request, state, probed), control_transaction(state) as session:
            tenant = await _active_tenant(session, tenant_slug, probed)
            scope = await _system_tenant_scope(session, request, state, tenant, access="break_glass_request")

            async def produce() -> tuple[int, BreakGlassGrantOut]:
                grant = await request_grant(
                    grant_store(session),
                    actor=principal,
                    tenant_id=TenantId(tenant.id),
                    category=data.category,
                    reason=data.reason,
                    minutes=data.minutes,
                    policy=policy,
                )
                await _audit_change(session, request, "open", grant)
                return 201, _out(grant)

            return await run_idempotent(
                scope, request, key=idempotency_key, resource_type="break_glass_grant", produce=produce
            )

    @post(
        "/{grant_id:uuid}/approvals",
        summary="Approve a pending grant (a supervisor or admin with MFA, never its requester): access "
        "starts now, for the minutes asked; answers the grant",
        guards=[requires_roles(Role.SUPERVISOR, Role.ADMIN), requires_mfa],
        responses=created_responses(BreakGlassGrantOut),
    )
    async def approve(
        self,
        tenant_slug: FromPath[str],
        grant_id: FromPath[uuid.UUID],
        request: Req,
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        probed: list[TenantId] = []
        async with _refusals_audited(request, state, probed), control_transaction(state) as session:
            tenant = await _active_tenant(session, tenant_slug, probed)
            scope = await _system_tenant_scope(session, request, state, tenant, access="break_glass_approval")

            async def produce() -> tuple[int, BreakGlassGrantOut]:
                grant = await approve_grant(
                    grant_store(session),
                    actor=current_principal(request),
                    tenant_id=TenantId(tenant.id),
                    grant_id=grant_id,
                )
                await _audit_change(session, request, "approve", grant)
                return 201, _out(grant)

            return await run_idempotent(
                scope, request, key=idempotency_key, resource_type="break_glass_grant", produce=produce
            )

    @delete(
        "/{grant_id:uuid}",
        status_code=200,
        summary="Revoke a grant now (its holder, a supervisor or an admin; another's grant needs MFA)",
        guards=[_STAFF_AND_ADMINS],
        responses=problem_responses(400, 401, 403, 404, 409, 422, 429),
    )
    async def revoke(
        self, tenant_slug: FromPath[str], grant_id: FromPath[uuid.UUID], request: Req, state: State
    ) -> BreakGlassGrantOut:
        probed: list[TenantId] = []
        async with _refusals_audited(request, state, probed), control_transaction(state) as session:
            tenant = await _active_tenant(session, tenant_slug, probed)
            grant, revoked = await revoke_grant(
                grant_store(session),
                actor=current_principal(request),
                tenant_id=TenantId(tenant.id),
                grant_id=grant_id,
            )
            if revoked:  # a repeated DELETE changes nothing and records nothing new
                await _audit_change(session, request, "revoke", grant)
            return _out(grant)

    @get(
        summary="The practice owner's view of break-glass grants on their practice (no reason text)",
        guards=[requires_roles(Role.PRACTICE_OWNER), requires_scopes(REPORTS_READ)],
        dependencies={"tenant": Provide(provide_tenant_scope)},
        responses=problem_responses(),
    )
    async def list_for_owner(self, tenant: NamedDependency[TenantScope]) -> list[BreakGlassGrantSummary]:
        now = utcnow()
        rows = await grant_store(tenant.session).report(
            GrantFilter(tenant_ids=(tenant.tenant_id,)), now=now, pending_for=PENDING_LAPSES_AFTER
        )
        tenant.audit(
            "break_glass.list",
            Action.READ,
            resource_type="break_glass_grant",
            resource_ids=[row.grant.id for row in rows],
        )
        return [BreakGlassGrantSummary(**_summary_fields(r.grant, r.user_email, now)) for r in rows]


async def _audit_change(session: AsyncSession, request: Req, change: str, grant: BreakGlassGrant) -> None:
    await audit_hooks.break_glass_changed(
        session,
        request=audit_hooks.request_info(request),
        principal=current_principal(request),
        change=change,
        tenant_id=TenantId(grant.tenant_id),
        grant_id=grant.id,
        detail=_event_detail(grant),
    )


# -- review report -----------------------------------------------------------------------------------------

Instant = Annotated[datetime | None, msgspec.Meta(description="ISO 8601 instant with an offset")]


def _instant(name: str, value: datetime | None) -> list[FieldError]:
    return [FieldError(f"query:{name}", "must carry a UTC offset")] if value and value.tzinfo is None else []


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """What a reviewer narrows the grants to (query parameters); every field optional."""

    tenant: str | None = None
    user_id: uuid.UUID | None = None
    email: str | None = None
    status: BreakGlassStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


async def provide_review_filter(
    *,
    tenant: FromQuery[str | None] = None,
    user_id: FromQuery[uuid.UUID | None] = None,
    email: FromQuery[str | None] = None,
    status: FromQuery[BreakGlassStatus | None] = None,
    since: FromQuery[Instant] = None,
    until: FromQuery[Instant] = None,
) -> ReviewFilter:
    """The review filters, shared by the admins' and the auditors' report (as the audit search does)."""
    return ReviewFilter(tenant=tenant, user_id=user_id, email=email, status=status, since=since, until=until)


async def _report(
    request: Req,
    state: State,
    *,
    readable: tuple[TenantId, ...] | None,
    review: ReviewFilter,
) -> list[BreakGlassGrantOut]:
    """Grants the caller may review (``readable``; ``None`` = every tenant), filtered, newest first."""
    tenant, user_id, email = review.tenant, review.user_id, review.email
    status, since, until = review.status, review.since, review.until
    errors = _instant("since", since) + _instant("until", until)
    if errors:
        raise InvalidInput("The report filter is invalid.", errors=errors)
    principal = current_principal(request)
    probed: list[TenantId] = []
    async with _refusals_audited(request, state, probed), platform_transaction(state.sessions) as session:
        store = grant_store(session)
        tenant_ids = readable if readable is not None else await store.all_tenant_ids()
        if tenant is not None:
            found = await _active_or_any_tenant(store, tenant, probed)
            if found not in tenant_ids:
                raise NotFound
            tenant_ids = (found,)
        if email is not None:
            by_email = await store.user_id_by_email(email)
            if by_email is None or (user_id is not None and user_id != by_email):
                return []
            user_id = by_email
        wanted = GrantFilter(tenant_ids=tenant_ids, user_id=user_id, status=status, since=since, until=until)
        rows = await store.report(wanted, now=utcnow(), pending_for=PENDING_LAPSES_AFTER)
        await audit_hooks.admin_action(
            session,
            request=audit_hooks.request_info(request),
            principal=principal,
            event_type="break_glass.report",
            action=Action.READ,
            resource_type="break_glass_grant",
            resource_ids=tuple(row.grant.id for row in rows),
        )
    return [_row_out(row) for row in rows]


async def _active_or_any_tenant(store: BreakGlassStore, slug: str, probed: list[TenantId]) -> TenantId:
    """Review covers offboarded and suspended practices too."""
    found = await store.tenant_by_slug(slug)
    if found is None:
        raise NotFound
    probed.append(TenantId(found.id))
    return TenantId(found.id)


def _row_out(row: GrantRow) -> BreakGlassGrantOut:
    return _out(row.grant, row.user_email)


def _auditor_tenants(principal: Principal) -> tuple[TenantId, ...] | None:
    if principal.all_tenants:
        return None
    if not principal.auditor_tenants:
        raise Forbidden("No tenant is assigned to this auditor.")
    return principal.auditor_tenants


class BreakGlassReviewController(Controller):
    """Break-glass review for admins (every tenant) and auditors (their tenants)."""

    path = "/api/v1"
    tags = ["break-glass"]

    @get(
        "/admin/break-glass",
        summary="Break-glass grants across all tenants, newest first, filterable (review)",
        guards=[requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa],
        dependencies={"review": Provide(provide_review_filter)},
        responses=problem_responses(),
    )
    async def admin_report(
        self, *, request: Req, state: State, review: NamedDependency[ReviewFilter]
    ) -> list[BreakGlassGrantOut]:
        return await _report(request, state, readable=None, review=review)

    @get(
        "/break-glass/pending",
        summary="Grants waiting for a second approver, across tenants, for supervisors and admins with MFA "
        "(with the reason, which the approver judges)",
        guards=[requires_roles(Role.SUPERVISOR, Role.ADMIN), requires_mfa],
        responses=problem_responses(),
    )
    async def pending(
        self, request: Req, state: State, tenant: FromQuery[str | None] = None
    ) -> list[BreakGlassGrantOut]:
        pending = ReviewFilter(tenant=tenant, status=BreakGlassStatus.PENDING)
        return await _report(request, state, readable=None, review=pending)

    @get(
        "/audit/break-glass",
        summary="Break-glass grants of the auditor's tenants, newest first, filterable (review)",
        guards=[requires_roles(Role.AUDITOR), requires_scopes(AUDIT_READ)],
        dependencies={"review": Provide(provide_review_filter)},
        responses=problem_responses(),
    )
    async def auditor_report(
        self, *, request: Req, state: State, review: NamedDependency[ReviewFilter]
    ) -> list[BreakGlassGrantOut]:
        async with _refusals_audited(request, state, []):
            readable = _auditor_tenants(current_principal(request))
        return await _report(request, state, readable=readable, review=review)
