"""SQL of identity on people: the login lookups of ``app_user`` and the admin API's writes of people and of
their staff assignments.

``app_user`` is a global table (no tenant context); the login path reads it as the app role, and only the
control role writes it (linking a subject, adding a person, changing one). Staff assignments are tenant-owned
rows: the functions that touch one expect the transaction bound to its practice (RLS). The reads shared with
the tenancy layer (a person by email or id, an assignment) live in ``rcm.tenancy.repository``.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, StaffAssignment


async def person_by_subject(session: AsyncSession, *, issuer: str, subject: str) -> AppUser | None:
    return (
        await session.execute(select(AppUser).where(AppUser.issuer == issuer, AppUser.subject == subject))
    ).scalar_one_or_none()


async def person_by_issuer_email(session: AsyncSession, *, issuer: str, email: str) -> AppUser | None:
    """The person of ``email`` provisioned for ``issuer``: never one of another issuer."""
    return (
        await session.execute(select(AppUser).where(AppUser.issuer == issuer, AppUser.email == email))
    ).scalar_one_or_none()


async def link_subject(session: AsyncSession, user_id: uuid.UUID, *, issuer: str, subject: str) -> bool:
    """Record the issuer's subject on a user first found by email; False when no such user of ``issuer``.

    The issuer condition repeats ``person_by_issuer_email``'s rule: a subject never lands on another
    issuer's person. Call only after the ID token was verified.
    """
    result = await session.execute(
        update(AppUser)
        .where(AppUser.id == user_id, AppUser.issuer == issuer)
        .values(subject=subject)
        .returning(AppUser.id)
    )
    return result.first() is not None


async def person_for_update(session: AsyncSession, user_id: uuid.UUID) -> AppUser | None:
    """The person, locked: two admins changing one person serialise instead of overwriting each other."""
    found: AppUser | None = await session.get(AppUser, user_id, with_for_update=True)
    return found


async def add_person(session: AsyncSession, person: AppUser) -> AppUser:
    session.add(person)
    await session.flush()
    return person


async def save_assignment(session: AsyncSession, assignment: StaffAssignment) -> StaffAssignment:
    """INSERT a new assignment or write a changed one (the transaction bound to its practice)."""
    session.add(assignment)
    await session.flush()
    return assignment


async def delete_assignment(session: AsyncSession, tenant_id: TenantId, user_id: uuid.UUID) -> bool:
    """End a person's assignment to the bound practice; False when there was none."""
    removed = await session.execute(
        delete(StaffAssignment)
        .where(StaffAssignment.tenant_id == tenant_id, StaffAssignment.user_id == user_id)
        .returning(StaffAssignment.user_id)
    )
    return removed.first() is not None
