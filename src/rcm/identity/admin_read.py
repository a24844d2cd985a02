"""Read-only platform administration: list and read practices, their API clients, and people.

The same gate as every admin route (admin role, ``admin`` scope, a second factor; refusals are audited by
the guards), and every read is an audit event in the read's own transaction, naming what was shown. API
clients are shown without any credential material: no secret (it is never stored), no hash, no JWKS.
Writes stay where they are: manifests and ``AdminController`` for practices and clients; people's roles and
assignments in ``admin_people``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.identity import admin_read_repository as repository
from rcm.identity import audit_hooks
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.models import ApiClient, ApiClientStatus, AuthMethod
from rcm.identity.principal import Role
from rcm.identity.scopes import ADMIN, Scope, parse_scopes
from rcm.kit.db import apply_tenant_context, platform_transaction
from rcm.kit.errors import FieldError, InvalidInput, NotFound, problem_responses
from rcm.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, paginate
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.service import tenant_by_slug
from rcm.tenancy.vocabulary import TenantStatus

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[
    str | None, QueryParameter(description="Opaque cursor from the previous page's next_cursor")
]


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    status: TenantStatus
    created_at: datetime
    updated_at: datetime


class TenantDetail(TenantOut):
    # The manifest as last applied (tenants/schema.json): identifiers and payers, no secrets, no PHI.
    manifest: dict[str, Any]


class ApiClientListed(msgspec.Struct):
    """An API client as an admin sees it later: never its secret, hash or keys."""

    client_id: str
    tenant_id: uuid.UUID
    name: str
    auth_method: AuthMethod
    scopes: list[Scope]
    status: ApiClientStatus
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class AssignmentOut(msgspec.Struct):
    tenant_id: uuid.UUID
    tenant_slug: str
    assigned_at: datetime
    assigned_by: uuid.UUID | None


class PersonOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    display_name: str
    roles: list[str]
    active: bool
    issuer: str
    home_tenant_id: uuid.UUID | None
    home_tenant_slug: str | None
    # Staff reach a practice through these (practice owners through their home tenant instead).
    assignments: list[AssignmentOut]
    created_at: datetime


def _after(cursor: str | None) -> repository.Keyset | None:
    return decode_cursor(cursor) if cursor else None


def _tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        status=tenant.status,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def _client_out(client: ApiClient) -> ApiClientListed:
    return ApiClientListed(
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        name=client.name,
        auth_method=client.auth_method,
        scopes=sorted(parse_scopes(client.scopes)),
        status=client.status,
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        revoked_at=client.revoked_at,
    )


async def _people_out(session: AsyncSession, people: Sequence[AppUser]) -> dict[uuid.UUID, PersonOut]:
    """People with their assignments and home practice, read in two statements for the whole page."""
    assignments = await repository.system_assignments_across_tenants(session, [p.id for p in people])
    homes = await repository.tenant_slugs(session, [p.home_tenant_id for p in people if p.home_tenant_id])
    by_person: dict[uuid.UUID, list[AssignmentOut]] = {}
    for a in assignments:
        by_person.setdefault(a.user_id, []).append(
            AssignmentOut(a.tenant_id, a.tenant_slug, assigned_at=a.assigned_at, assigned_by=a.assigned_by)
        )
    return {
        p.id: PersonOut(
            id=p.id,
            email=p.email,
            display_name=p.display_name,
            roles=list(p.roles),
            active=p.active,
            issuer=p.issuer,
            home_tenant_id=p.home_tenant_id,
            home_tenant_slug=homes.get(p.home_tenant_id) if p.home_tenant_id else None,
            assignments=by_person.get(p.id, []),
            created_at=p.created_at,
        )
        for p in people
    }


async def _audit_read(
    session: AsyncSession,
    request: Request[Any, Any, Any],
    event_type: str,
    resource_type: str,
    ids: Sequence[uuid.UUID],
    *,
    tenant_id: TenantId = PLATFORM_TENANT,
    detail: dict[str, str | int | bool | None] | None = None,
) -> None:
    await audit_hooks.admin_action(
        session,
        request=audit_hooks.request_info(request),
        principal=current_principal(request),
        event_type=event_type,
        action=Action.READ,
        tenant_id=tenant_id,
        resource_type=resource_type,
        resource_ids=tuple(ids),
        detail=detail,
    )


async def _tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound()
    return tenant


class AdminReadController(Controller):
    """Read-only views for platform admins; same guards as ``AdminController``."""

    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa]

    @get("/tenants", summary="List practices (oldest first)", responses=problem_responses())
    async def list_tenants(
        self,
        request: Request[Any, Any, Any],
        state: State,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TenantOut]:
        async with platform_transaction(state.sessions) as session:
            rows = await repository.tenants_page(session, limit=limit + 1, after=_after(cursor))
            page = paginate(rows, limit, _tenant_out)
            await _audit_read(session, request, "tenant.list", "tenant", [t.id for t in page.items])
        return page

    @get("/tenants/{slug:str}", summary="Read a practice and its manifest", responses=problem_responses())
    async def read_tenant(
        self, slug: FromPath[str], request: Request[Any, Any, Any], state: State
    ) -> TenantDetail:
        async with platform_transaction(state.sessions) as session:
            tenant = await _tenant(session, slug)
            tenant_id = TenantId(tenant.id)
            await _audit_read(session, request, "tenant.read", "tenant", [tenant.id], tenant_id=tenant_id)
        manifest = tenant.manifest.document()
        return TenantDetail(**msgspec.structs.asdict(_tenant_out(tenant)), manifest=manifest)

    @get(
        "/tenants/{slug:str}/clients",
        summary="List a practice's API clients (never their credentials)",
        responses=problem_responses(),
    )
    async def list_clients(
        self,
        slug: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ApiClientListed]:
        async with platform_transaction(state.sessions) as session:
            tenant = await _tenant(session, slug)
            context = TenantContext.single(TenantId(tenant.id))
            await apply_tenant_context(session, context)
            rows = await repository.ApiClientReads(session, context).page(
                limit=limit + 1, after=_after(cursor)
            )
            page = paginate(rows, limit, _client_out)
            await _audit_read(
                session,
                request,
                "api_client.list",
                "api_client",
                [row.id for row in rows[:limit]],
                tenant_id=context.tenant_id,
            )
        return page

    @get(
        "/people",
        summary="List people: email, roles, assignments, active (oldest first)",
        responses=problem_responses(),
    )
    async def list_people(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        email: Annotated[
            str | None, QueryParameter(max_length=320, description="Exactly this email (case-insensitive)")
        ] = None,
        role: Annotated[Role | None, QueryParameter(description="Only people holding this role")] = None,
    ) -> Page[PersonOut]:
        if email is not None and "\x00" in email:
            # PostgreSQL text cannot hold NUL; the driver would fail the query.
            raise InvalidInput(
                "A filter is not valid.", errors=[FieldError("/email", "must not contain NUL")]
            )
        async with platform_transaction(state.sessions) as session:
            rows = await repository.people_page(
                session, limit=limit + 1, after=_after(cursor), email=email, role=role.value if role else None
            )
            people = await _people_out(session, rows[:limit])
            page = paginate(rows, limit, lambda row: people[row.id])
            await _audit_read(session, request, "app_user.list", "app_user", list(people))
        return page

    @get(
        "/people/{user_id:uuid}",
        summary="Read a person: roles, assignments, active",
        responses=problem_responses(),
    )
    async def read_person(
        self, user_id: FromPath[uuid.UUID], request: Request[Any, Any, Any], state: State
    ) -> PersonOut:
        async with platform_transaction(state.sessions) as session:
            found = await repository.person(session, user_id)
            if found is None:
                raise NotFound()
            person = (await _people_out(session, [found]))[found.id]
            await _audit_read(session, request, "app_user.read", "app_user", [found.id])
        return person
