"""Supervisors' productivity report and the operator's roll-up, on constructed work, worked by hand.

Window 2025-03-10..2025-03-11. In practice A (the supervisor's):

- coder I, idle in the window, has one QA sample reviewed on 03-11 agreeing on every code.
- coder C completes three coding items: 03-10 09:10 and 09:40 (one clock hour), 03-11 14:05 (after its due
  time: one SLA breach); a fourth on 03-12 is outside the window. Two QA samples of C's work reviewed on
  03-10 agree on 2 of 3 + 1 of 1 and 1 of 2 + 0 of 1 codes: 4 of 7.
- biller L completes a billing item 03-10 10:00, moves claim X at 10:05 and 10:20 and claim Y on 03-11
  11:00, and posts a patient payment at 11:30: hours 03-10 10h and 03-11 11h.
- live items: a coding item past its due time (open), a billing item waiting, due in the future.
- C and L are in the people directory (shown by name beside their id); I is not (shown by id alone).

In practice B (not the supervisor's): C completes five items and has a QA sample agreeing on 0 of 10.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.oidc import DEV_ISSUER
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.tenancy.models import AppUser, Tenant
from tests.coding.conftest import Staff, assign
from tests.identity.conftest import make_user
from tests.reporting.scenario import Scenario, Work
from tests.reporting.test_kpis import march, noise, values
from tests.support import Api
from tests.web.support import browser_login

MakePerson = Callable[..., Awaitable[Staff]]
CODER = str(uuid.uuid4())
BILLER = str(uuid.uuid4())
IDLE = str(uuid.uuid4())  # a coder with a QA review in the window and no work in it


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


async def person(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control: async_sessionmaker[AsyncSession],
    settings: Settings,
    role: Role,
    *tenants: Tenant,
) -> Staff:
    user = await make_user(control, [role.value])
    await assign(control, user, *tenants)
    token = await mint_access_token(
        user_principal(role, user_id=user.id), sessions=sessions, settings=settings
    )
    return Staff(client, token, user)


@pytest.fixture
def people(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> MakePerson:
    async def make(role: Role, *tenants: Tenant) -> Staff:
        return await person(client, sessions, control_sessions, settings, role, *tenants)

    return make


async def a_week_of_work(a: Work, b: Work) -> None:
    for done, due in ((t(10, 9, 10), t(11, 0)), (t(10, 9, 40), t(11, 0)), (t(11, 14, 5), t(11, 12))):
        await a.item(
            kind="coding", status="done", created=t(9, 8), due=due, completed_by=CODER, completed_at=done
        )
    await a.item(
        kind="coding", status="done", created=t(9, 8), due=t(20, 0), completed_by=CODER, completed_at=t(12, 9)
    )
    await a.item(
        kind="billing",
        status="done",
        created=t(9, 8),
        due=t(20, 0),
        completed_by=BILLER,
        completed_at=t(10, 10),
    )
    x = await a.claim(service_date=date(2025, 3, 1), charge=1000)
    y = await a.claim(service_date=date(2025, 3, 1), charge=1000)
    await a.event(x, "ready", t(10, 10, 5), actor=BILLER)
    await a.event(x, "closed", t(10, 10, 20), actor=BILLER)
    await a.event(y, "ready", t(11, 11), actor=BILLER)
    await a.post(
        y,
        t(11, 11, 30),
        "patient_payment",
        [("patient_payments", 100), ("patient_receivable", -100)],
        actor=BILLER,
    )
    await a.sample(CODER, t(10, 16), dx=(2, 3), px=(1, 1))
    await a.sample(CODER, t(10, 17), dx=(1, 2), px=(0, 1))
    await a.sample(IDLE, t(11, 9), dx=(2, 2), px=(1, 1))
    now = datetime.now(UTC)
    await a.item(kind="coding", status="open", created=now - timedelta(hours=5), due=now - timedelta(hours=1))
    await a.item(
        kind="billing", status="waiting", created=now - timedelta(hours=2), due=now + timedelta(days=10)
    )
    for minute in range(5):
        await b.item(
            kind="coding",
            status="done",
            created=t(9, 8),
            due=t(9, 9),
            completed_by=CODER,
            completed_at=t(10, 12, minute),
        )
    await b.sample(CODER, t(10, 16), dx=(0, 5), px=(0, 5))
    await b.item(kind="coding", status="open", created=t(9, 8), due=t(9, 9))


async def test_productivity_over_the_supervisors_practices(
    *,
    client: AsyncTestClient[Litestar],
    control_sessions: async_sessionmaker[AsyncSession],
    practice_api: Api,
    other_practice_api: Api,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
    people: MakePerson,
) -> None:
    await a_week_of_work(Work(owner_engine, practice_api), Work(owner_engine, other_practice_api))
    async with platform_transaction(control_sessions) as session:
        for subject, name in ((CODER, "Casey Coder"), (BILLER, "Lee Biller")):
            email = f"{subject}@test.invalid"
            session.add(
                AppUser(
                    id=uuid.UUID(subject),
                    issuer=DEV_ISSUER,
                    subject=email,
                    email=email,
                    display_name=name,
                    roles=[Role.CODER.value],
                )
            )
    boss = await people(Role.SUPERVISOR, tenant)
    response = await boss.get("/billing/reports/productivity", since="2025-03-10", until="2025-03-11")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["practices"] == [tenant.slug]
    staff = {s["staff"]: s for s in body["staff"]}
    assert set(staff) == {CODER, BILLER, IDLE}
    assert staff[IDLE]["qa_samples"] == 1
    assert staff[IDLE]["qa_accuracy"] == 1.0
    assert staff[IDLE]["items_coded"] == staff[IDLE]["active_hours"] == 0
    assert staff[IDLE]["actions_per_hour"] is None
    assert staff[IDLE]["name"] is None  # not in the directory: the id alone
    assert staff[CODER] == {
        "staff": CODER,
        "name": "Casey Coder",
        "items_coded": 3,
        "billing_items_completed": 0,
        "claims_worked": 0,
        "postings": 0,
        "sla_breaches": 1,
        "active_hours": 2,
        "active_days": 2,
        "actions_per_hour": 1.5,
        "actions_per_day": 1.5,
        "qa_samples": 2,
        "qa_accuracy": round(4 / 7, 4),
    }
    assert staff[BILLER] == {
        "staff": BILLER,
        "name": "Lee Biller",
        "items_coded": 0,
        "billing_items_completed": 1,
        "claims_worked": 2,
        "postings": 1,
        "sla_breaches": 0,
        "active_hours": 2,
        "active_days": 2,
        "actions_per_hour": 2.0,
        "actions_per_day": 2.0,
        "qa_samples": 0,
        "qa_accuracy": None,
    }
    queues = {q["kind"]: q for q in body["queues"]}
    assert {q["tenant"] for q in body["queues"]} == {tenant.slug}
    # Open coding items: the overdue one, and one per encounter the scenario sent (claims X and Y, the three
    # sampled codings), due by the practice's SLA later.
    assert (queues["coding"]["open"], queues["coding"]["overdue"]) == (6, 1)
    assert (queues["billing"]["waiting"], queues["billing"]["overdue"]) == (1, 0)
    assert queues["coding"]["oldest_age_seconds"] >= 5 * 3600 - 60
    assert str(other_tenant.id) not in response.text
    assert other_tenant.slug not in response.text
    # The supervisor's page shows each person's name beside the id.
    browser = await browser_login(client, boss.user.email, mfa=True)
    shown = await browser.get("/app/supervisor?since=2025-03-10&until=2025-03-11")
    assert shown.status_code == 200, shown.text
    assert f'Casey Coder <span class="muted">{CODER}</span>' in shown.text
    assert f'<th scope="row">{IDLE}</th>' in shown.text


async def test_productivity_is_for_supervisors_only(
    *,
    practice_api: Api,
    tenant: Tenant,
    people: MakePerson,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    coder = await people(Role.CODER, tenant)
    assert (await coder.get("/billing/reports/productivity")).status_code == 403
    owner = await mint_access_token(
        user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id),
        sessions=sessions,
        settings=settings,
    )
    response = await client.get(
        "/api/v1/billing/reports/productivity", headers={"Authorization": f"Bearer {owner}"}
    )
    assert response.status_code == 403
    # A supervisor assigned nowhere sees an empty report, not someone else's practices.
    lonely = await people(Role.SUPERVISOR)
    body = (await lonely.get("/billing/reports/productivity")).json()
    assert (body["practices"], body["staff"], body["queues"]) == ([], [], [])


async def test_operator_sees_every_practice_side_by_side_and_each_trail_records_it(
    *,
    practice_api: Api,
    other_practice_api: Api,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    user = await make_user(control_sessions, ["operator"])
    token = await mint_access_token(
        user_principal(Role.OPERATOR, user_id=user.id), sessions=sessions, settings=settings
    )
    response = await client.get(
        "/api/v1/operator/reports/kpis",
        params={"period_from": "2025-03-01", "period_to": "2025-03-31"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    practices = {p["tenant"]: p for p in response.json()["practices"]}
    a, b = values(practices[tenant.slug]["current"]), values(practices[other_tenant.slug]["current"])
    # The same figures as the owner's own report (test_kpis), and B's own.
    assert a["gross_collection_rate"] == (23500, 45000, round(23500 / 45000, 6))
    assert a["clean_claim_rate"] == (2, 4, 0.5)
    assert a["days_to_payment"] == (26, 2, 13.0)
    assert b["gross_collection_rate"] == (7, 900000, round(7 / 900000, 6))
    assert b["denial_rate"] == (1, 1, 1.0)
    assert b["clean_claim_rate"] == (0, 1, 0.0)
    assert {d["key"] for d in response.json()["definitions"]} == set(a)
    async with owner_engine.connect() as conn:
        trails = (
            await conn.execute(
                text(
                    "SELECT tenant_id, detail->>'job' FROM rcm.audit_event"
                    " WHERE event_type = 'report.operator_kpis' AND actor_subject = :who"
                    " AND tenant_id IN (:a, :b)"
                ),
                {"who": str(user.id), "a": tenant.id, "b": other_tenant.id},
            )
        ).all()
    assert sorted((str(r[0]), r[1]) for r in trails) == sorted(
        [(str(tenant.id), "reports.operator_kpis"), (str(other_tenant.id), "reports.operator_kpis")]
    )


@pytest.mark.parametrize("role", [Role.PRACTICE_OWNER, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR])
async def test_operator_roll_up_refuses_everyone_else(
    *,
    role: Role,
    tenant: Tenant,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    principal = user_principal(role, home_tenant=tenant.id if role is Role.PRACTICE_OWNER else None, mfa=True)
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    response = await client.get("/api/v1/operator/reports/kpis", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    assert tenant.slug not in response.text
    async with owner_engine.connect() as conn:
        denied = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM rcm.audit_event"
                    " WHERE event_type = 'access.denied' AND actor_subject = :s"
                ),
                {"s": principal.subject},
            )
        ).scalar_one()
    assert denied == 1
