"""The staff scope: exactly the practices a staff member is assigned to, audited in each practice's chain."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar, Router, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.audit.events import Action, RequestInfo
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.encounters.models import EncounterEvent
from rcm.encounters.repository import EncounterRepository
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.identity.testing import client_principal, mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.errors import Forbidden, NotFound
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.scope import StaffScope, Touched
from rcm.tenancy.service import assign_staff
from rcm.tenancy.staff import provide_staff_scope, staff_scope, system_scope
from tests.audit.conftest import seal_all
from tests.conftest import make_tenant, practice_api_for
from tests.identity.conftest import make_user
from tests.support import encounter_payload

REQUEST = RequestInfo(request_id="staff-scope-test", trace_id="")


def staff(user_id: uuid.UUID, *roles: Role) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        subject=str(user_id),
        roles=frozenset(roles or (Role.CODER,)),
        scopes=frozenset(),
        token_id=uuid.uuid4().hex,
        user_id=user_id,
    )


@pytest.fixture
def keystore(settings: Settings) -> KeyStore:
    return KeyStore(key_provider(settings))


async def _encounter(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> uuid.UUID:
    api = await practice_api_for(client, tenant, sessions, settings)
    response = await api.post("/encounters", encounter_payload())
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _assigned_coder(control_sessions: async_sessionmaker[AsyncSession], *tenants: Tenant) -> Principal:
    user = await make_user(control_sessions, ["coder"])
    for tenant in tenants:
        async with platform_transaction(control_sessions) as session:
            await assign_staff(session, TenantId(tenant.id), [user.email])
    return staff(user.id)


async def test_a_staff_scope_sees_exactly_the_assigned_practices(  # noqa: PLR0917 - pytest fixtures
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    third = await make_tenant(control_sessions, "c")
    mine = {
        await _encounter(client, tenant, sessions, settings),
        await _encounter(client, third, sessions, settings),
    }
    theirs = await _encounter(client, other_tenant, sessions, settings)
    coder = await _assigned_coder(control_sessions, tenant, third)

    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        assert set(scope.tenant_ids) == {tenant.id, third.id}
        repo = scope.repo(EncounterRepository)
        rows = await repo.page(limit=200, after=None)
        assert {row.tenant_id for row in rows} == {tenant.id, third.id}
        assert mine <= {row.id for row in rows}
        assert theirs not in {row.id for row in rows}
        # Not even by id: the unassigned practice's encounter is the standard 404.
        assert await repo.get(theirs) is None
        with pytest.raises(NotFound):
            await repo.get_or_404(theirs)
        # Row-level security agrees beneath the repository: a bare statement sees no other practice either.
        seen = set(
            (await scope.session.execute(text("SELECT DISTINCT tenant_id FROM rcm.encounter"))).scalars()
        )
        assert seen == {tenant.id, third.id}
        # The practice's PHI keys are there for its own practices only.
        assert (await scope.keyring(tenant.id)).tenant_id == tenant.id
        with pytest.raises(ValueError, match="outside"):
            await scope.keyring(other_tenant.id)


async def test_a_cross_practice_insert_names_one_of_its_practices(  # noqa: PLR0917 - pytest fixtures
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """A multi-practice unit of work never guesses a row's practice: a row must already name one of the
    scope's practices (another practice's is refused before any SQL), and the caller's object then holds the
    timestamps the database holds."""
    third = await make_tenant(control_sessions, "ins")
    encounter = await _encounter(client, tenant, sessions, settings)
    coder = await _assigned_coder(control_sessions, tenant, third)

    def event(tenant_id: uuid.UUID) -> EncounterEvent:
        return EncounterEvent(
            tenant_id=tenant_id, id=uuid.uuid4(), encounter_id=encounter, status="needs_coding", note=None
        )

    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        repo = scope.repo(EncounterRepository)
        with pytest.raises(ValueError, match="outside"):
            await repo.insert(event(other_tenant.id))
        mine = event(tenant.id)
        await repo.insert(mine)
        assert mine.created_at is not None
        stored = (
            await scope.session.execute(
                text("SELECT created_at FROM rcm.encounter_event WHERE tenant_id = :t AND id = :i"),
                {"t": tenant.id, "i": mine.id},
            )
        ).scalar_one()
        assert stored == mine.created_at


async def test_a_staff_scope_needs_a_staff_member_and_their_own_assignments(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenant: Tenant,
) -> None:
    await _assigned_coder(control_sessions, tenant)  # someone else's assignment grants nothing to me
    unassigned = await make_user(control_sessions, ["biller"])
    async with staff_scope(sessions, keystore, staff(unassigned.id, Role.BILLER), REQUEST) as scope:
        assert scope.tenant_ids == ()
        assert await scope.repo(EncounterRepository).page(limit=10, after=None) == []
    owner = staff(uuid.uuid4(), Role.PRACTICE_OWNER)
    with pytest.raises(Forbidden):
        async with staff_scope(sessions, keystore, owner, REQUEST):
            pass


async def test_an_offboarded_practice_leaves_the_staff_scope(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    coder = await _assigned_coder(control_sessions, tenant, other_tenant)
    async with platform_transaction(control_sessions) as session:
        await session.execute(
            text("UPDATE rcm.tenant SET status = 'suspended' WHERE id = :t"), {"t": other_tenant.id}
        )
    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        assert scope.tenant_ids == (tenant.id,)


async def _sealed_events(
    owner_engine: AsyncEngine, tenant_id: uuid.UUID, event_type: str
) -> list[tuple[object, ...]]:
    async with owner_engine.connect() as conn:
        await conn.execute(text("SELECT set_config('rcm.tenant_id', :t, false)"), {"t": str(tenant_id)})
        rows = await conn.execute(
            text(
                "SELECT e.resource_ids, e.actor_subject, e.detail->>'access', s.seq, e.patient_ids"
                " FROM rcm.audit_event e"
                " JOIN rcm.audit_seal s ON s.tenant_id = e.tenant_id AND s.event_id = e.id"
                " WHERE e.tenant_id = :t AND e.event_type = :type"
            ),
            {"t": tenant_id, "type": event_type},
        )
        return [tuple(row) for row in rows]


async def test_a_cross_practice_access_is_recorded_in_each_practices_chain(  # noqa: PLR0917 - pytest fixtures
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    settings: Settings,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    first = await _encounter(client, tenant, sessions, settings)
    second = await _encounter(client, other_tenant, sessions, settings)
    coder = await _assigned_coder(control_sessions, tenant, other_tenant)
    async with staff_scope(sessions, keystore, coder, REQUEST) as scope:
        rows = [
            r
            for r in await scope.repo(EncounterRepository).page(limit=200, after=None)
            if r.id in (first, second)
        ]
        scope.audit(
            "encounter.search",
            Action.READ,
            resource_type="encounter",
            touched=[Touched(r.tenant_id, r.id, r.patient_id) for r in rows],
        )
    await seal_all(audit_sessions)
    mine = await _sealed_events(owner_engine, tenant.id, "encounter.search")
    theirs = await _sealed_events(owner_engine, other_tenant.id, "encounter.search")
    # One event in each practice's chain, naming only that practice's row.
    assert [(ids, actor, access) for ids, actor, access, _, _ in mine] == [
        ([first], coder.subject, "staff_scope")
    ]
    assert [(ids, actor, access) for ids, actor, access, _, _ in theirs] == [
        ([second], coder.subject, "staff_scope")
    ]
    # Each practice's event names its own patient too (the access report by patient finds it).
    patients = {r.id: r.patient_id for r in rows}
    assert [p for *_, p in mine] == [[patients[first]]]
    assert [p for *_, p in theirs] == [[patients[second]]]


async def test_a_system_scope_names_its_job_in_each_practices_trail(
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    keystore: KeyStore,
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    operator = staff(uuid.uuid4(), Role.ADMIN)
    with pytest.raises(ValueError, match="names its job"):
        async with system_scope(
            sessions, keystore, job="", tenant_ids=(TenantId(tenant.id),), actor=operator, request=REQUEST
        ):
            pass
    tenants = (TenantId(tenant.id), TenantId(other_tenant.id))
    async with system_scope(
        sessions, keystore, job="remittance.route", tenant_ids=tenants, actor=operator, request=REQUEST
    ) as scope:
        scope.audit("remittance.route", Action.EXECUTE, resource_type="remittance")
    async with owner_engine.connect() as conn:
        await conn.execute(
            text("SELECT set_config('rcm.tenant_id', :t, false)"), {"t": f"{tenant.id},{other_tenant.id}"}
        )
        rows = await conn.execute(
            text(
                "SELECT tenant_id, detail->>'job' FROM rcm.audit_event WHERE event_type = 'remittance.route'"
            )
        )
        assert sorted(rows.all()) == sorted(
            [(tenant.id, "remittance.route"), (other_tenant.id, "remittance.route")]
        )


@get("/test-only/my-practices")
async def my_practices(staff: NamedDependency[StaffScope]) -> list[str]:
    return sorted(str(t) for t in staff.tenant_ids)


async def test_the_staff_scope_dependency_builds_the_callers_scope_from_a_real_token(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
) -> None:
    """Through the app's own authentication: a staff caller's routes get exactly their assignments; a
    practice's system is refused."""
    app = create_app(settings)
    app.register(
        Router("/", route_handlers=[my_practices], dependencies={"staff": Provide(provide_staff_scope)})
    )
    coder = await _assigned_coder(control_sessions, other_tenant)
    coder_token = await mint_access_token(
        user_principal(Role.CODER, user_id=coder.user_id), sessions=sessions, settings=settings
    )
    practice_token = await mint_access_token(
        client_principal(tenant.id), sessions=sessions, settings=settings
    )
    async with AsyncTestClient(app=app) as client:
        mine = await client.get("/test-only/my-practices", headers={"Authorization": f"Bearer {coder_token}"})
        assert mine.status_code == 200, mine.text
        assert mine.json() == [str(other_tenant.id)]
        refused = await client.get(
            "/test-only/my-practices", headers={"Authorization": f"Bearer {practice_token}"}
        )
        assert refused.status_code == 403
