"""The break-glass repository's reads, at their edges: which grant is in force, what the review report's
filters select, and what the daily limit counts. Grants are written as the control role writes them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.break_glass import PENDING_LAPSES_AFTER, approve_grant, revoke_grant
from rcm.identity.break_glass_store import BreakGlassStore, GrantFilter
from rcm.identity.models import BreakGlassCategory, BreakGlassGrant, BreakGlassStatus
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.errors import NotFound
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.identity.conftest import make_user

Sessions = async_sessionmaker[AsyncSession]
MINUTE = timedelta(minutes=1)


def _grant(tenant: Tenant, user_id: uuid.UUID, created: datetime, **window: object) -> BreakGlassGrant:
    return BreakGlassGrant(
        tenant_id=tenant.id,
        id=uuid.uuid4(),
        user_id=user_id,
        category=BreakGlassCategory.SYSTEM_OUTAGE,
        reason="Clearinghouse outage; the assigned coder cannot reach the chart",
        minutes=30,
        requires_approval=False,
        created_at=created,
        **window,
    )


@pytest.fixture
async def grants(
    control_sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> tuple[datetime, uuid.UUID, dict[str, BreakGlassGrant]]:
    """One grant in each state for one person in ``tenant``, plus a colleague's and one next door."""
    now = utcnow().replace(microsecond=0)
    person = (await make_user(control_sessions, ["biller"])).id
    colleague = (await make_user(control_sessions, ["biller"])).id
    made = {
        "active": _grant(
            tenant, person, now - 10 * MINUTE, starts_at=now - 10 * MINUTE, expires_at=now + 20 * MINUTE
        ),
        "expired": _grant(
            tenant, person, now - 120 * MINUTE, starts_at=now - 120 * MINUTE, expires_at=now - 90 * MINUTE
        ),
        "revoked": _grant(
            tenant,
            person,
            now - 5 * MINUTE,
            starts_at=now - 5 * MINUTE,
            expires_at=now + 25 * MINUTE,
            revoked_at=now - MINUTE,
            revoked_by=person,
        ),
        "pending": _grant(tenant, person, now - 9 * MINUTE),
        "lapsed": _grant(tenant, person, now - PENDING_LAPSES_AFTER),
        "colleague": _grant(
            tenant, colleague, now - 30 * MINUTE, starts_at=now - 30 * MINUTE, expires_at=now
        ),
    }
    next_door = _grant(
        other_tenant, person, now - 20 * MINUTE, starts_at=now - 20 * MINUTE, expires_at=now + MINUTE
    )
    async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        session.add_all(made.values())
    async with tenant_transaction(
        control_sessions, TenantContext.single(TenantId(other_tenant.id))
    ) as session:
        session.add(next_door)
    made["next_door"] = next_door
    return now, person, made


async def test_the_grant_in_force_is_started_unexpired_unrevoked_and_the_persons_own(
    sessions: Sessions,
    tenant: Tenant,
    grants: tuple[datetime, uuid.UUID, dict[str, BreakGlassGrant]],
) -> None:
    now, person, made = grants
    active = made["active"]
    assert active.starts_at is not None
    assert active.expires_at is not None
    async with platform_transaction(sessions) as session:
        store = BreakGlassStore(session)
        await store.bind(TenantId(tenant.id))

        async def in_force(at: datetime, user_id: uuid.UUID = person) -> uuid.UUID | None:
            found = await store.active_grant(TenantId(tenant.id), user_id, at)
            return found.id if found else None

        assert await in_force(now) == active.id  # not the revoked one, which would expire later
        assert await in_force(active.starts_at) == active.id
        assert await in_force(active.starts_at - timedelta(seconds=1)) is None
        assert await in_force(active.expires_at - timedelta(seconds=1)) == active.id
        assert await in_force(active.expires_at) is None
        assert await in_force(now, uuid.uuid4()) is None  # nobody else's grant serves a stranger


async def test_the_report_filters_select_exactly(
    sessions: Sessions,
    tenant: Tenant,
    other_tenant: Tenant,
    grants: tuple[datetime, uuid.UUID, dict[str, BreakGlassGrant]],
) -> None:
    now, person, made = grants
    mine = (TenantId(tenant.id),)

    async def report(**wanted: object) -> list[uuid.UUID]:
        async with platform_transaction(sessions) as session:
            rows = await BreakGlassStore(session).report(
                GrantFilter(**{"tenant_ids": mine, **wanted}),  # type: ignore[arg-type]
                now=now,
                pending_for=PENDING_LAPSES_AFTER,
            )
        return [row.grant.id for row in rows]

    for status in BreakGlassStatus:
        expected = [made[str(status)].id] + (
            [made["colleague"].id] if status is BreakGlassStatus.EXPIRED else []
        )
        assert sorted(await report(status=status)) == sorted(expected), status
    newest_first = ["revoked", "pending", "active", "colleague", "lapsed", "expired"]
    assert (await report())[:3] == [made["revoked"].id, made["pending"].id, made["active"].id]
    assert set(await report()) == {made[name].id for name in newest_first}
    assert set(await report(user_id=person)) == {made[name].id for name in newest_first} - {
        made["colleague"].id
    }
    # since is inclusive, until exclusive.
    since = now - 10 * MINUTE
    assert set(await report(since=since)) == {made[n].id for n in ("revoked", "active", "pending")}
    assert set(await report(until=since)) == {made[n].id for n in ("colleague", "lapsed", "expired")}
    both = (TenantId(tenant.id), TenantId(other_tenant.id))
    assert made["next_door"].id in await report(tenant_ids=both)
    assert await report(tenant_ids=()) == []


async def test_the_daily_count_is_per_person_across_tenants(
    sessions: Sessions, grants: tuple[datetime, uuid.UUID, dict[str, BreakGlassGrant]]
) -> None:
    now, person, _ = grants
    async with platform_transaction(sessions) as session:
        store = BreakGlassStore(session)
        # Every grant of the person (six, one next door) was asked for within the last three hours.
        assert await store.requests_since(person, now - timedelta(hours=3)) == 6
        # Strictly after ``since``: the grant made exactly at it is not counted.
        assert await store.requests_since(person, now - 10 * MINUTE) == 2
        assert await store.requests_since(uuid.uuid4(), now - timedelta(hours=3)) == 0


async def test_approving_and_revoking_bind_the_grants_practice_themselves(
    control_sessions: Sessions, tenant: Tenant, grants: tuple[datetime, uuid.UUID, dict[str, BreakGlassGrant]]
) -> None:
    """Called on a transaction bound to no practice, the rules still find the grant (and only in its own)."""
    _, _, made = grants
    approver = await make_user(control_sessions, ["admin"])
    actor = user_principal(Role.ADMIN, user_id=approver.id, mfa=True)
    async with platform_transaction(control_sessions) as session:
        approved = await approve_grant(
            BreakGlassStore(session), actor=actor, tenant_id=TenantId(tenant.id), grant_id=made["pending"].id
        )
    assert approved.approved_by == approver.id
    with pytest.raises(NotFound):  # an unknown grant is not found, never a crash
        async with platform_transaction(control_sessions) as session:
            await approve_grant(
                BreakGlassStore(session), actor=actor, tenant_id=TenantId(tenant.id), grant_id=uuid.uuid4()
            )
    async with platform_transaction(control_sessions) as session:
        revoked, changed = await revoke_grant(
            BreakGlassStore(session), actor=actor, tenant_id=TenantId(tenant.id), grant_id=made["active"].id
        )
    assert (changed, revoked.revoked_by) == (True, approver.id)
