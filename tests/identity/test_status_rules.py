"""The live status check (``PrincipalStatus.check``), through its public API with a controllable clock: what
it refuses, how it narrows an auditor, and that its short cache holds no longer than its TTL."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.principal import Principal, Role
from rcm.identity.status import PrincipalStatus, RevokedToken, status_changed
from rcm.identity.testing import client_principal, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import make_client, make_user

Sessions = async_sessionmaker[AsyncSession]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def set_active(control: Sessions, user_id: uuid.UUID, active: bool) -> None:
    """Changed beneath the app, as another process would: this process's caches are not told."""
    async with platform_transaction(control) as session:
        await session.execute(update(AppUser).where(AppUser.id == user_id).values(active=active))


async def test_a_cached_status_lasts_its_ttl_and_no_longer(
    sessions: Sessions, control_sessions: Sessions
) -> None:
    clock = Clock()
    status = PrincipalStatus(10, clock=clock)
    first, second = await make_user(control_sessions, ["coder"]), await make_user(control_sessions, ["coder"])
    one, two = user_principal(Role.CODER, user_id=first.id), user_principal(Role.CODER, user_id=second.id)
    assert await status.check(sessions, one) == one
    assert await status.check(sessions, two) == two

    await set_active(control_sessions, first.id, False)
    clock.now += 9  # within the TTL: the cached status stands, for each person separately
    assert await status.check(sessions, one) == one
    assert await status.check(sessions, two) == two
    clock.now += 2  # past it: reloaded
    with pytest.raises(RevokedToken):
        await status.check(sessions, one)
    assert await status.check(sessions, two) == two

    # A change made in this process forgets the cache at once.
    await set_active(control_sessions, first.id, True)
    status_changed()
    assert await status.check(sessions, one) == one

    # A TTL under a second still caches (for that fraction of a second).
    brief = PrincipalStatus(0.5, clock=clock)
    assert await brief.check(sessions, one) == one
    await set_active(control_sessions, first.id, False)
    assert await brief.check(sessions, one) == one
    clock.now += 0.5
    with pytest.raises(RevokedToken):
        await brief.check(sessions, one)

    # Without a TTL nothing is cached.
    uncached = PrincipalStatus(0, clock=clock)
    assert await uncached.check(sessions, two) == two
    await set_active(control_sessions, second.id, False)
    with pytest.raises(RevokedToken):
        await uncached.check(sessions, two)


async def test_unknown_callers_are_revoked(sessions: Sessions, tenant: Tenant) -> None:
    status = PrincipalStatus(0)
    made_up_person = user_principal(Role.CODER)  # no app_user row
    no_user_id = dataclasses.replace(user_principal(Role.CODER), user_id=None)
    made_up_client = client_principal(tenant.id)  # no api_client row
    for principal in (made_up_person, no_user_id, made_up_client):
        with pytest.raises(RevokedToken):
            await status.check(sessions, principal)


async def test_a_client_token_must_match_its_row(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    issued = (await make_client(control_sessions, tenant)).client
    genuine = dataclasses.replace(
        client_principal(tenant.id), client_id=issued.client_id, subject=str(issued.id)
    )
    status = PrincipalStatus(0)
    assert await status.check(sessions, genuine) == genuine  # a client's token is used as it is
    for forged in (
        dataclasses.replace(genuine, subject=str(uuid.uuid4())),
        dataclasses.replace(genuine, home_tenant=TenantId(other_tenant.id)),
    ):
        with pytest.raises(RevokedToken):
            await status.check(sessions, forged)


async def test_a_persons_home_tenant_must_match(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    status = PrincipalStatus(0)
    mine = user_principal(Role.PRACTICE_OWNER, user_id=owner.id, home_tenant=tenant.id)
    assert await status.check(sessions, mine) == mine
    with pytest.raises(RevokedToken):
        await status.check(sessions, dataclasses.replace(mine, home_tenant=TenantId(other_tenant.id)))


async def test_an_auditors_reach_is_what_their_rows_say_now(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    status = PrincipalStatus(0)
    company = await make_user(control_sessions, ["auditor"])
    everywhere = user_principal(Role.AUDITOR, user_id=company.id)
    assert everywhere.all_tenants
    assert await status.check(sessions, everywhere) == everywhere  # no practices: still company-wide

    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [company.email])
    narrowed = await status.check(sessions, everywhere)
    assert (narrowed.all_tenants, narrowed.auditor_tenants) == (False, (TenantId(tenant.id),))

    # A token naming two practices, of which only one is still assigned, reads that one.
    both: Principal = user_principal(
        Role.AUDITOR, user_id=company.id, auditor_tenants=(tenant.id, other_tenant.id)
    )
    kept = await status.check(sessions, both)
    assert (kept.all_tenants, kept.auditor_tenants) == (False, (TenantId(tenant.id),))
    only = user_principal(Role.AUDITOR, user_id=company.id, auditor_tenants=(tenant.id,))
    assert await status.check(sessions, only) == only

    # An auditor with a home practice (and no home claim in the token) is scoped to it.
    resident = await make_user(control_sessions, ["auditor"], home_tenant=other_tenant)
    at_home = await status.check(sessions, user_principal(Role.AUDITOR, user_id=resident.id))
    assert (at_home.all_tenants, at_home.auditor_tenants) == (False, (TenantId(other_tenant.id),))


async def test_roles_are_narrowed_to_the_live_ones(sessions: Sessions, control_sessions: Sessions) -> None:
    person = await make_user(control_sessions, ["coder"])
    status = PrincipalStatus(0)
    claimed = user_principal(Role.CODER, Role.SUPERVISOR, user_id=person.id)
    live = await status.check(sessions, claimed)
    assert live.roles == {Role.CODER}
    assert live.scopes == user_principal(Role.CODER).scopes
