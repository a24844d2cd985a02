"""Admin API for people: their roles, whether they may log in, and their staff assignments.

Every route needs the admin role, the admin scope and a second factor (as the other admin routes), writes
through the control role (``rcm.kit.control``: ``rcm_app`` cannot write people or assignments) and records
its audit event in the same transaction as the change. A change applies to the person's next request in this
process and within ``RCM_PRINCIPAL_STATUS_TTL_SECONDS`` in the others (``rcm.identity.status``).

Manifests stay the declarative path for assignments (``staff:`` in a tenant manifest); these routes are for
the changes an administrator makes by hand. A new person and a new assignment are POSTs with an
Idempotency-Key; roles and activity are set with PUT (the same body twice is the same state); removing an
assignment is a DELETE. ``rcm identity people add`` adds a person from the command line (the first admin).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action
from rcm.config import Settings
from rcm.idempotency.service import IdemKey, check_key, created_responses, run_idempotent
from rcm.identity import audit_hooks
from rcm.identity.controllers import _system_tenant_scope
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.oidc import trusted_issuers
from rcm.identity.people_repository import add_person, delete_assignment, person_for_update, save_assignment
from rcm.identity.principal import PRACTICE_ROLES, STAFF_ROLES, Principal, Role, parse_roles
from rcm.identity.scopes import ADMIN
from rcm.identity.status import status_changed
from rcm.kit.control import control_transaction
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound, problem_responses
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from rcm.tenancy.repository import assignment_of, person_by_email
from rcm.tenancy.service import tenant_by_slug
from rcm.tenancy.vocabulary import TenantStatus

Detail = dict[str, str | int | bool | None]

# Roles that reach practices through staff assignments (an auditor's assignments scope what they may read).
ASSIGNABLE_ROLES = STAFF_ROLES | {Role.AUDITOR}


class PersonCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    roles: Annotated[list[Role], msgspec.Meta(max_length=len(Role))]
    # The trusted OIDC issuer the person logs in through; may be left out when exactly one is trusted.
    issuer: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    # A practice owner's practice (slug).
    home_tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=63)] | None = None


class RolesUpdate(msgspec.Struct, forbid_unknown_fields=True):
    roles: Annotated[list[Role], msgspec.Meta(max_length=len(Role))]


class ActiveUpdate(msgspec.Struct, forbid_unknown_fields=True):
    active: bool


class AssignmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=63, description="The practice's slug")]
    # The person reviews this practice's QA samples (coders and supervisors).
    qa_reviewer: bool = False


class PersonOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    display_name: str
    roles: list[Role]
    home_tenant_id: uuid.UUID | None
    active: bool


class AssignmentOut(msgspec.Struct):
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant: str
    assigned_by: uuid.UUID | None
    created_at: datetime
    qa_reviewer: bool = False


_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)


class AdminPeopleController(Controller):
    """People's roles, activity and staff assignments: admin role, admin scope and MFA on every route."""

    path = "/api/v1/admin/people"
    tags = ["admin"]
    guards = [requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa]

    @post(
        summary="Add a person who logs in through a trusted issuer (first matched by their verified email)",
        responses={
            **created_responses(PersonOut),
            200: ResponseSpec(
                data_container=PersonOut,
                description="The same person exists already, exactly as asked (a retry): returned again",
            ),
        },
    )
    async def create(
        self,
        data: JSONBody[PersonCreate],
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[PersonOut]:
        # Idempotent by the person's email, which is unique: the same request again finds the same person
        # and answers as the first time did (a different one is a 409). The key is required like on every
        # POST; people belong to no practice, so there is no per-practice record to replay from.
        check_key(idempotency_key)
        actor = current_principal(request)
        async with control_transaction(state) as session:
            person, created = await create_person(session, state.settings, data)
            if created:
                await audit_hooks.admin_action(
                    session,
                    request=audit_hooks.request_info(request),
                    principal=actor,
                    event_type="person.create",
                    action=Action.CREATE,
                    resource_type="app_user",
                    resource_ids=(person.id,),
                    detail={"roles": ",".join(person.roles)},
                )
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(_person_out(person), status_code=201 if created else 200, headers=headers)

    @put(
        "/{user_id:uuid}/roles",
        summary="Set a person's roles (applies to their next request)",
        responses=_ERRORS,
    )
    async def set_roles(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RolesUpdate],
        request: Request[Any, Any, Any],
        state: State,
    ) -> PersonOut:
        roles = frozenset(data.roles)

        def change(actor: Principal, person: AppUser) -> tuple[str, Detail]:
            _check_roles(person.home_tenant_id, roles)
            if actor.user_id == person.id and Role.ADMIN not in roles:
                raise Conflict("An administrator cannot remove their own admin role; ask another admin.")
            previous = ",".join(sorted(person.roles))
            person.roles = sorted(str(r) for r in roles)
            return "person.roles", {"roles": ",".join(person.roles), "previous": previous}

        return await _change_person(request, state, user_id, change)

    @put(
        "/{user_id:uuid}/active",
        summary="Allow or stop a person's logins; stopping ends their tokens within seconds",
        responses=_ERRORS,
    )
    async def set_active(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[ActiveUpdate],
        request: Request[Any, Any, Any],
        state: State,
    ) -> PersonOut:
        def change(actor: Principal, person: AppUser) -> tuple[str, Detail]:
            if actor.user_id == person.id and not data.active:
                raise Conflict("An administrator cannot deactivate themselves; ask another admin.")
            person.active = data.active
            return ("person.activate" if data.active else "person.deactivate"), {"active": data.active}

        return await _change_person(request, state, user_id, change)

    @post(
        "/{user_id:uuid}/assignments",
        summary="Assign a person to a practice (staff work there; an auditor may read its log)",
        responses=created_responses(AssignmentOut),
    )
    async def assign(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[AssignmentCreate],
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdemKey = None,
    ) -> Response[bytes]:
        return await assign_to_practice(
            request,
            state,
            user_id=user_id,
            tenant_slug=data.tenant,
            qa_reviewer=data.qa_reviewer,
            idempotency_key=idempotency_key,
        )

    @delete(
        "/{user_id:uuid}/assignments/{tenant_slug:str}",
        status_code=204,
        summary="End a person's assignment to a practice (applies to their next request)",
        responses=_ERRORS,
    )
    async def unassign(
        self,
        user_id: FromPath[uuid.UUID],
        tenant_slug: FromPath[str],
        request: Request[Any, Any, Any],
        state: State,
    ) -> None:
        await unassign_from_practice(request, state, user_id=user_id, tenant_slug=tenant_slug)


# Who else may assign: a check run inside the control transaction, after the practice is bound, before any
# change (the supervisors' routes: only practices they supervise, never themselves, never another supervisor).
AssignmentCheck = Callable[[AsyncSession, Principal, AppUser, Tenant], Awaitable[None]]


async def assign_to_practice(
    request: Request[Any, Any, Any],
    state: State,
    *,
    user_id: uuid.UUID,
    tenant_slug: str,
    qa_reviewer: bool,
    idempotency_key: str | None,
    access: str = "platform_admin",
    check: AssignmentCheck | None = None,
) -> Response[bytes]:
    """Assign a person to a practice through the control role, audited on the practice's chain, idempotent.

    The one path for admins and supervisors alike; ``check`` narrows who may do it for whom.
    """
    actor = current_principal(request)
    async with control_transaction(state) as session:
        person = await _person(session, user_id)
        tenant = await _tenant(session, tenant_slug, pointer="/tenant")
        if not parse_roles(person.roles) & ASSIGNABLE_ROLES:
            raise Conflict(
                "Only staff and auditors are assigned to practices.",
                errors=[FieldError("/tenant", "the person holds no role that is assigned to practices")],
            )
        # Idempotency records live per tenant: the scope binds this transaction to the practice.
        scope = await _system_tenant_scope(session, request, state, tenant, access=access)
        if check is not None:
            await check(session, actor, person, tenant)

        async def produce() -> tuple[int, AssignmentOut]:
            assignment = await assignment_of(session, tenant.id, person.id)
            created = assignment is None
            if assignment is None:
                assignment = StaffAssignment(
                    tenant_id=tenant.id, user_id=person.id, assigned_by=actor.user_id, qa_reviewer=qa_reviewer
                )
            else:
                assignment.qa_reviewer = qa_reviewer
            await save_assignment(session, assignment)
            await _audit_assignment(
                session,
                request,
                actor,
                tenant,
                person,
                Action.CREATE,
                detail={"created": created, "qa_reviewer": qa_reviewer, "access": access},
            )
            return 201, _assignment_out(assignment, tenant)

        response = await run_idempotent(
            scope, request, key=idempotency_key, resource_type="staff_assignment", produce=produce
        )
    status_changed()  # an auditor's live scope follows their assignments
    return response


async def unassign_from_practice(
    request: Request[Any, Any, Any],
    state: State,
    *,
    user_id: uuid.UUID,
    tenant_slug: str,
    access: str = "platform_admin",
    check: AssignmentCheck | None = None,
) -> None:
    """End a person's assignment to a practice (control role, audited); 404 when there is none."""
    actor = current_principal(request)
    async with control_transaction(state) as session:
        person = await _person(session, user_id)
        tenant = await _tenant(session, tenant_slug)
        await apply_tenant_context(session, TenantContext.single(TenantId(tenant.id)))
        if check is not None:
            await check(session, actor, person, tenant)
        if not await delete_assignment(session, TenantId(tenant.id), person.id):
            raise NotFound()
        await _audit_assignment(
            session, request, actor, tenant, person, Action.DELETE, detail={"access": access}
        )
    status_changed()  # an auditor's live scope follows their assignments


async def create_person(
    session: AsyncSession, settings: Settings, data: PersonCreate
) -> tuple[AppUser, bool]:
    """Add a person (as the control role); returns (person, created). Shared by the admin API and the CLI.

    Their subject at the issuer is unknown until they first log in: they are found then by the email that
    issuer verified, and the subject is linked (``rcm.identity.server``). The same email again with the same
    attributes is the same person (``created`` False); with other attributes it is a 409.
    """
    issuers = trusted_issuers(settings)
    issuer = data.issuer
    if issuer is None and len(issuers) == 1:
        issuer = next(iter(issuers))
    if issuer is None or issuer not in issuers:
        detail = "is required: several issuers are trusted" if issuer is None else "is not a trusted issuer"
        raise InvalidInput("The person's issuer is invalid.", errors=[FieldError("/issuer", detail)])
    home = await _tenant(session, data.home_tenant, pointer="/home_tenant") if data.home_tenant else None
    roles = frozenset(data.roles)
    _check_roles(home.id if home else None, roles)
    stored_roles = sorted(str(r) for r in roles)
    existing = await person_by_email(session, data.email)
    if existing is not None:
        same = (
            existing.issuer == issuer
            and existing.display_name == data.display_name
            and sorted(existing.roles) == stored_roles
            and existing.home_tenant_id == (home.id if home else None)
        )
        if not same:
            raise Conflict(
                "A different person has this email.", errors=[FieldError("/email", "is already in use")]
            )
        return existing, False
    person = AppUser(
        id=uuid.uuid4(),
        issuer=issuer,
        subject=f"pending:{uuid.uuid4().hex}",
        email=data.email,
        display_name=data.display_name,
        roles=stored_roles,
        home_tenant_id=home.id if home else None,
        active=True,
    )
    return await add_person(session, person), True


async def _change_person(
    request: Request[Any, Any, Any],
    state: State,
    user_id: uuid.UUID,
    change: Callable[[Principal, AppUser], tuple[str, Detail]],
) -> PersonOut:
    """Apply ``change`` to the person as the control role, audit it in the same transaction, and make this
    process's status cache forget them (the change applies to their next request)."""
    actor = current_principal(request)
    async with control_transaction(state) as session:
        person = await _person(session, user_id)
        event_type, detail = change(actor, person)
        await session.flush()
        await audit_hooks.admin_action(
            session,
            request=audit_hooks.request_info(request),
            principal=actor,
            event_type=event_type,
            action=Action.UPDATE,
            resource_type="app_user",
            resource_ids=(person.id,),
            detail=detail,
        )
    status_changed()
    return _person_out(person)


async def _person(session: AsyncSession, user_id: uuid.UUID) -> AppUser:
    person = await person_for_update(session, user_id)
    if person is None:
        raise NotFound()
    return person


async def _tenant(session: AsyncSession, slug: str, *, pointer: str | None = None) -> Tenant:
    tenant = await tenant_by_slug(session, slug)
    if tenant is None or tenant.status == TenantStatus.OFFBOARDED:
        if pointer is not None:
            raise InvalidInput("No such practice.", errors=[FieldError(pointer, "names no practice")])
        raise NotFound()
    return tenant


def _check_roles(home_tenant_id: uuid.UUID | None, roles: frozenset[Role]) -> None:
    """People hold people's roles; a practice owner belongs to one practice and is nothing else."""
    errors: list[FieldError] = []
    if Role.PRACTICE_CLIENT in roles:
        errors.append(FieldError("/roles", "practice_client is the role of an API client, not of a person"))
    if Role.PRACTICE_OWNER in roles:
        if home_tenant_id is None:
            errors.append(FieldError("/roles", "practice_owner needs a home practice (home_tenant)"))
        if roles - PRACTICE_ROLES:
            errors.append(FieldError("/roles", "practice_owner cannot be combined with company roles"))
    if errors:
        raise InvalidInput("The roles are invalid.", errors=errors)


async def _audit_assignment(  # noqa: PLR0917 - one call shape, two callers
    session: AsyncSession,
    request: Request[Any, Any, Any],
    actor: Principal,
    tenant: Tenant,
    person: AppUser,
    action: Action,
    *,
    detail: Detail | None = None,
) -> None:
    """On the practice's own chain: its owner and auditors see who was given access to it, and when."""
    await audit_hooks.admin_action(
        session,
        request=audit_hooks.request_info(request),
        principal=actor,
        event_type="staff_assignment.create" if action is Action.CREATE else "staff_assignment.delete",
        action=action,
        tenant_id=TenantId(tenant.id),
        resource_type="app_user",
        resource_ids=(person.id,),
        detail=detail,
    )


def _person_out(person: AppUser) -> PersonOut:
    return PersonOut(
        id=person.id,
        email=person.email,
        display_name=person.display_name,
        roles=sorted(parse_roles(person.roles)),
        home_tenant_id=person.home_tenant_id,
        active=person.active,
    )


def _assignment_out(assignment: StaffAssignment, tenant: Tenant) -> AssignmentOut:
    return AssignmentOut(
        user_id=assignment.user_id,
        tenant_id=assignment.tenant_id,
        tenant=tenant.slug,
        assigned_by=assignment.assigned_by,
        created_at=assignment.created_at,
        qa_reviewer=assignment.qa_reviewer,
    )
