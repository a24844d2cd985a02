"""SQL of the tenancy layer that units of work stand on: which practices a staff member may work in."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Text, bindparam, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, StaffAssignment, Tenant
from rcm.tenancy.vocabulary import TenantStatus


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    if "\x00" in slug:
        # PostgreSQL text cannot hold NUL, so no tenant has this slug; the driver would refuse the query.
        return None
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def tenant_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.id == tenant_id))).scalar_one_or_none()


async def tenants_by_slugs(session: AsyncSession, slugs: list[str]) -> list[Tenant]:
    return list(
        (await session.execute(select(Tenant).where(Tenant.slug.in_(slugs)).order_by(Tenant.slug))).scalars()
    )


async def tenants_by_ids(session: AsyncSession, ids: list[TenantId]) -> list[Tenant]:
    """Registry rows of ``ids`` (the registry is global: no tenant context needed), by slug."""
    if not ids:
        return []
    return list(
        (await session.execute(select(Tenant).where(Tenant.id.in_(ids)).order_by(Tenant.slug))).scalars()
    )


async def active_tenants(session: AsyncSession) -> list[Tenant]:
    """Every practice whose status is ``active`` (not suspended or offboarded), by slug."""
    return list(
        (
            await session.execute(select(Tenant).where(Tenant.status == "active").order_by(Tenant.slug))
        ).scalars()
    )


async def person_by_email(session: AsyncSession, email: str) -> AppUser | None:
    return (await session.execute(select(AppUser).where(AppUser.email == email))).scalar_one_or_none()


async def people_by_emails(session: AsyncSession, emails: list[str]) -> list[AppUser]:
    return list((await session.execute(select(AppUser).where(AppUser.email.in_(emails)))).scalars())


async def assigned_user_ids(session: AsyncSession, tenant_id: TenantId) -> set[uuid.UUID]:
    """The people assigned to ``tenant_id`` (the transaction must be bound to it: RLS)."""
    return set(
        (
            await session.execute(
                select(StaffAssignment.user_id).where(StaffAssignment.tenant_id == tenant_id)
            )
        ).scalars()
    )


async def tenant_ids(session: AsyncSession) -> tuple[uuid.UUID, ...]:
    """Every practice's id; the tenant registry is global: no tenant context needed."""
    return tuple((await session.execute(select(Tenant.id).order_by(Tenant.id))).scalars())


async def not_offboarded_tenants(
    session: AsyncSession, *, slug: str | None = None
) -> list[tuple[uuid.UUID, str]]:
    """(id, slug) of every practice whose keys still exist (or of the one named ``slug``), by slug."""
    stmt = select(Tenant.id, Tenant.slug).where(Tenant.status != "offboarded").order_by(Tenant.slug)
    if slug is not None:
        stmt = stmt.where(Tenant.slug == slug)
    return [(row.id, row.slug) for row in await session.execute(stmt)]


async def set_tenant_status(session: AsyncSession, tenant_id: TenantId, status: str) -> None:
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(status=status))


_COMMA: ColumnElement[str] = literal_column("','")


def _assignments_statement(*, live_only: bool, bind: bool) -> Select[Any]:
    """One statement: bind the transaction to every (live) practice, read one person's assignments in it,
    and leave the transaction bound to exactly those practices (``bind``) or to none.

    Staff assignments are tenant-owned rows under forced RLS, and whose they are is what we are looking
    for, so the read needs a binding that covers them. Three steps, in an order the executor fixes rather
    than the planner:
    1. the registry's practices are bound by an uncorrelated scalar subquery (an InitPlan) that the
       ``WHERE`` tests; a condition without columns is a one-time filter, checked before the node beneath
       it runs at all, so no row of ``staff_assignment`` is read (nor its RLS condition evaluated) before
       the binding;
    2. the person's assignments are read under that binding, RLS as the backstop of the statement's own
       filters (their person, their practices' status);
    3. the aggregate over them binds the answer (or nothing): an aggregate projects its one row only once
       every input row is read, so the wide binding ends with the statement.
    Were the order ever different, the read would see no tenant at all and answer no practice: it fails
    closed (and the staff-scope tests, which expect the practices, fail).
    """
    registry = aliased(Tenant, name="registry")
    every_binding = (
        select(
            func.set_config(
                "rcm.tenant_id", func.coalesce(func.string_agg(cast(registry.id, Text), _COMMA), ""), True
            )
        )
        .where(*([registry.status == TenantStatus.ACTIVE.value] if live_only else []))
        .correlate(None)
        .scalar_subquery()
    )
    tenant = StaffAssignment.tenant_id
    answer = (
        func.coalesce(func.string_agg(cast(tenant, Text), aggregate_order_by(_COMMA, tenant)), "")
        if bind
        else literal_column("''")
    )
    conditions: list[ColumnElement[bool]] = [
        StaffAssignment.user_id == bindparam("user_id"),
        every_binding.is_not(None),
    ]
    stmt = select(
        func.array_agg(aggregate_order_by(tenant, tenant)).label("tenants"),
        func.set_config("rcm.tenant_id", answer, True).label("bound"),
    ).join_from(StaffAssignment, Tenant, Tenant.id == tenant)
    if live_only:
        # A live assignment: to a practice that is active, of a person who is (revoked at once). The
        # person's status is asked once (another one-time filter), not joined to every assignment.
        active = select(AppUser.id).where(AppUser.id == bindparam("user_id"), AppUser.active.is_(True))
        conditions += [Tenant.status == TenantStatus.ACTIVE.value, active.exists()]
    return stmt.where(*conditions)


_SENTINEL = uuid.UUID(int=0)


@functools.cache
def _binding_text() -> tuple[str, ...]:
    stmt = _ASSIGNED[True, True].params(user_id=_SENTINEL)
    dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]
    text = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return tuple(text.split(str(_SENTINEL)))


def bind_live_assignments_text(user_id: uuid.UUID) -> str:
    """``bind_live_assignments``'s statement as plain SQL text with the person's id written in (a UUID, so
    nothing to quote): for a driver-level unit of work that sends it with its ``BEGIN`` in one simple-query
    message (one round trip, no parameters). Its answer is not read: the binding is what it leaves."""
    return str(uuid.UUID(str(user_id))).join(_binding_text())


_ASSIGNED = {
    (live_only, bind): _assignments_statement(live_only=live_only, bind=bind)
    for live_only in (False, True)
    for bind in (False, True)
}


async def _assigned(
    session: AsyncSession, user_id: uuid.UUID, *, live_only: bool, bind: bool
) -> tuple[TenantId, ...]:
    row = (await session.execute(_ASSIGNED[live_only, bind], {"user_id": user_id})).one()
    return tuple(TenantId(t) for t in row.tenants or ())


async def system_assigned_tenants(
    session: AsyncSession, user_id: uuid.UUID, *, active_only: bool = False
) -> tuple[TenantId, ...]:
    """Every tenant (or, ``active_only``, every live tenant) a person is assigned to, read across tenants:
    the loudly named system path of the auth layer.

    One statement (``_assignments_statement``) that names the person: one's own assignments only. The
    transaction is left bound to no tenant, so nothing after this sees any until the caller binds one.
    """
    return await _assigned(session, user_id, live_only=active_only, bind=False)


async def bind_live_assignments(session: AsyncSession, user_id: uuid.UUID) -> tuple[TenantId, ...]:
    """The practices a staff member is live-assigned to (an active practice, an active person), and the
    transaction bound to exactly those, in one statement: what a ``StaffScope`` stands on. Read afresh in
    every unit of work, so a revoked assignment or a suspended practice is gone from the next one."""
    return await _assigned(session, user_id, live_only=True, bind=True)


async def person_status(
    session: AsyncSession, user_id: uuid.UUID
) -> Row[tuple[bool, list[str], uuid.UUID | None]] | None:
    """A person's live status (active, roles, home tenant): read on every request of theirs (revocation)."""
    stmt = select(AppUser.active, AppUser.roles, AppUser.home_tenant_id).where(AppUser.id == user_id)
    return (await session.execute(stmt)).first()


# Only ever the one row of the slug: set_config runs for that row alone (no row, no binding).
_LOOKUP_AND_BIND = select(
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.status,
    Tenant.manifest,
    func.set_config("rcm.tenant_id", cast(Tenant.id, Text), True).label("bound"),
).where(Tenant.slug == bindparam("slug"))


async def lookup_and_bind(session: AsyncSession, slug: str) -> Row[Any] | None:
    """The tenant of ``slug``, and the transaction bound to it in the same statement (one round trip)."""
    return (await session.execute(_LOOKUP_AND_BIND, {"slug": slug})).first()


async def assignment_of(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> StaffAssignment | None:
    """A person's assignment to a practice, read in a transaction bound to that practice (RLS)."""
    return (
        await session.execute(
            select(StaffAssignment).where(
                StaffAssignment.tenant_id == tenant_id, StaffAssignment.user_id == user_id
            )
        )
    ).scalar_one_or_none()


async def person_by_id(session: AsyncSession, user_id: uuid.UUID) -> AppUser | None:
    return (await session.execute(select(AppUser).where(AppUser.id == user_id))).scalar_one_or_none()


_LOOKUP_AND_BIND_BY_ID = select(
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.status,
    Tenant.manifest,
    func.set_config("rcm.tenant_id", cast(Tenant.id, Text), True).label("bound"),
).where(Tenant.id == bindparam("tenant_id"))


async def lookup_and_bind_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Row[Any] | None:
    """The tenant of ``tenant_id``, and the transaction bound to it in the same statement."""
    return (await session.execute(_LOOKUP_AND_BIND_BY_ID, {"tenant_id": tenant_id})).first()


async def people_by_subject(
    session: AsyncSession, subjects: Iterable[str | None]
) -> dict[str, tuple[str, str]]:
    """(display name, email) of each person among ``subjects``, from the global directory, keyed by the
    subject as given. Principal subjects are app_user ids for people; an API client's id, or an id no
    longer in the directory, is left out. Staff names and emails are not PHI."""
    by_id: dict[uuid.UUID, str] = {}
    for subject in subjects:
        try:
            by_id[uuid.UUID(subject or "")] = subject or ""
        except ValueError:
            continue
    if not by_id:
        return {}
    rows = await session.execute(
        select(AppUser.id, AppUser.display_name, AppUser.email).where(AppUser.id.in_(list(by_id)))
    )
    return {by_id[row[0]]: (row[1], row[2]) for row in rows}
