"""The auditor console over HTTP with real tokens: accounting of disclosures, timelines, anomaly flags (each
rule raised in a constructed scenario and not in its control), and the practice an auditor may read."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import Action, AuditEvent, Outcome
from rcm.config import Settings
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow
from rcm.tenancy.models import AppUser, Tenant
from tests.audit.conftest import MakeEvent, write_together
from tests.support import Api, patient_payload

Client = AsyncTestClient[Litestar]
ZONE = ZoneInfo("America/New_York")  # the default practice time zone (RCM_AUDIT_BUSINESS_TIMEZONE)


def auditor_of(*tenants: Tenant) -> Principal:
    return user_principal(Role.AUDITOR, auditor_tenants=tuple(t.id for t in tenants))


@pytest.fixture
def call(client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Any:
    async def _call(who: Principal, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        token = await mint_access_token(who, sessions=sessions, settings=settings)
        return await client.get(
            f"/api/v1/audit{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )

    return _call


async def person(control_sessions: async_sessionmaker[AsyncSession], display_name: str) -> Principal:
    """A person of the directory (the anomaly rules read their name) acting as a coder."""
    user_id = uuid.uuid4()
    email = f"p-{user_id.hex[:10]}@test.invalid"
    async with platform_transaction(control_sessions) as session:
        session.add(
            AppUser(
                id=user_id,
                issuer="https://dev.invalid",
                subject=email,
                email=email,
                display_name=display_name,
                roles=["coder"],
            )
        )
    return Principal(
        kind=PrincipalKind.USER,
        subject=str(user_id),
        roles=frozenset({Role.CODER}),
        scopes=frozenset(),
        token_id=uuid.uuid4().hex,
        user_id=user_id,
    )


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


def recent_weekday() -> date:
    today = utcnow().astimezone(ZONE).date()
    return next(d for d in (today - timedelta(days=n) for n in range(2, 9)) if d.weekday() < 5)


# --- accounting of disclosures ------------------------------------------------------------------------------


async def test_accounting_of_disclosures(  # noqa: PLR0917 - fixtures
    call: Any,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    patient = uuid.uuid4()
    reader = await person(control_sessions, "Sam Reader")
    now = utcnow()
    mine = (patient,)
    eligibility = make_event(
        tenant.id,
        event_type="eligibility_check.create",
        action=Action.CREATE,
        patient_ids=mine,
        detail={"payer": "DEMO-MCR", "status": "active"},
        occurred_at=now - timedelta(days=3),
    )
    download = make_event(
        tenant.id,
        event_type="statement.download",
        actor=reader,
        resource_type="statement",
        patient_ids=mine,
        detail={"format": "pdf"},
        occurred_at=now - timedelta(days=2),
    )
    emergency = make_event(
        tenant.id,
        actor=reader,
        patient_ids=mine,
        detail={"access": "break_glass", "break_glass_grant": str(uuid.uuid4())},
        occurred_at=now - timedelta(days=1),
    )
    not_disclosures = [
        make_event(tenant.id, patient_ids=mine, occurred_at=now - timedelta(days=2)),  # an ordinary read
        make_event(  # refused: nothing left RCM
            tenant.id,
            event_type="eligibility_check.create",
            outcome=Outcome.MINOR_FAILURE,
            patient_ids=mine,
            occurred_at=now - timedelta(days=2),
        ),
        make_event(
            tenant.id, event_type="appeal.submit", occurred_at=now - timedelta(days=2)
        ),  # another patient
    ]
    older = make_event(
        tenant.id,
        event_type="encounter_document.download",
        patient_ids=mine,
        occurred_at=now - timedelta(days=10),
    )
    await write_together(sessions, tenant.id, [eligibility, download, emergency, older, *not_disclosures])
    auditor = auditor_of(tenant)

    body = (await call(auditor, f"/patients/{patient}/disclosures")).json()
    assert "164.528" in body["definition"]
    since = datetime.fromisoformat(body["since"])
    assert timedelta(days=6 * 365) < now - since < timedelta(days=6 * 367)  # six years by default
    items = body["items"]
    assert [i["event_id"] for i in items] == [str(e.id) for e in (older, eligibility, download, emergency)]
    by_id = {i["event_id"]: i for i in items}
    payer = by_id[str(eligibility.id)]
    assert (payer["category"], payer["recipient_kind"], payer["recipient"], payer["purpose"]) == (
        "payer_exchange",
        "payer",
        "DEMO-MCR",
        "eligibility_check.create",
    )
    assert payer["accountable"] is False
    assert "164.528(a)(1)(i)" in payer["exemption"]
    taken = by_id[str(download.id)]
    assert (taken["category"], taken["recipient_kind"], taken["recipient"], taken["recipient_name"]) == (
        "file_download",
        "user",
        reader.subject,
        "Sam Reader",
    )
    assert (taken["what"], taken["action"]) == ("statement", "R")
    glass = by_id[str(emergency.id)]
    assert (glass["category"], glass["accountable"], glass["exemption"]) == ("break_glass", True, None)

    accountable = (
        await call(auditor, f"/patients/{patient}/disclosures", {"accountable_only": "true"})
    ).json()
    assert [i["event_id"] for i in accountable["items"]] == [str(emergency.id)]
    window = {"since": (now - timedelta(days=5)).isoformat(), "until": (now - timedelta(days=2)).isoformat()}
    in_window = (await call(auditor, f"/patients/{patient}/disclosures", window)).json()["items"]
    assert [i["event_id"] for i in in_window] == [str(eligibility.id)]

    # Another practice's auditor finds nothing of it; an owner or a coder may not ask at all.
    theirs = (await call(auditor_of(other_tenant), f"/patients/{patient}/disclosures")).json()
    assert theirs["items"] == []
    for who in (user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), user_principal(Role.CODER)):
        assert (await call(who, f"/patients/{patient}/disclosures")).status_code == 403


async def test_the_accounting_is_itself_audited(call: Any, tenant: Tenant, owner_engine: AsyncEngine) -> None:
    patient = uuid.uuid4()
    response = await call(auditor_of(tenant), f"/patients/{patient}/disclosures")
    assert response.status_code == 200
    async with owner_engine.connect() as conn:
        [event] = (
            await conn.execute(
                text("SELECT * FROM rcm.audit_event WHERE request_id = :r"),
                {"r": response.headers["x-request-id"]},
            )
        ).mappings()
    assert (event["event_type"], event["tenant_id"], event["patient_ids"]) == (
        "audit.disclosures",
        tenant.id,
        [patient],
    )


# --- timelines ---------------------------------------------------------------------------------------------


async def test_patient_and_user_timelines(  # noqa: PLR0917 - fixtures
    call: Any,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    patient, elsewhere = uuid.uuid4(), uuid.uuid4()
    dana = await person(control_sessions, "Dana Coder")
    lee = await person(control_sessions, "Lee Biller")
    now = utcnow()
    dana_events = [
        make_event(tenant.id, actor=dana, patient_ids=(patient,), occurred_at=now - timedelta(hours=3)),
        make_event(
            tenant.id,
            actor=dana,
            event_type="encounter.correct",
            action=Action.UPDATE,
            patient_ids=(patient,),
            occurred_at=now - timedelta(hours=2),
        ),
        make_event(tenant.id, actor=dana, patient_ids=(elsewhere,), occurred_at=now - timedelta(hours=1)),
    ]
    lee_event = make_event(
        tenant.id, actor=lee, patient_ids=(patient,), occurred_at=now - timedelta(minutes=30)
    )
    await write_together(sessions, tenant.id, [*dana_events, lee_event])
    await write_together(
        sessions, other_tenant.id, [make_event(other_tenant.id, actor=dana, patient_ids=(uuid.uuid4(),))]
    )
    auditor = auditor_of(tenant)

    body = (await call(auditor, f"/patients/{patient}/timeline", {"limit": 2})).json()
    actors = {a["actor"]: a for a in body["actors"]}
    assert set(actors) == {dana.subject, lee.subject}
    assert (actors[dana.subject]["name"], actors[dana.subject]["events"]) == ("Dana Coder", 2)
    assert actors[dana.subject]["actions"] == ["R", "U"]
    assert actors[lee.subject]["events"] == 1
    # Newest first, paged.
    assert [i["id"] for i in body["items"]] == [str(lee_event.id), str(dana_events[1].id)]
    rest = (
        await call(auditor, f"/patients/{patient}/timeline", {"limit": 2, "cursor": body["next_cursor"]})
    ).json()
    assert [i["id"] for i in rest["items"]] == [str(dana_events[0].id)]
    assert rest["next_cursor"] is None

    user = (await call(auditor, f"/users/{dana.subject}/timeline")).json()
    touched = {p["patient_id"]: p["events"] for p in user["patients"]}
    assert touched == {str(patient): 2, str(elsewhere): 1}  # nothing of the other practice
    assert [i["id"] for i in user["items"]] == [str(e.id) for e in reversed(dana_events)]
    assert {i["tenant_id"] for i in user["items"]} == {str(tenant.id)}

    theirs = (await call(auditor_of(other_tenant), f"/patients/{patient}/timeline")).json()
    assert (theirs["actors"], theirs["items"]) == ([], [])
    for who in (user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), user_principal(Role.CODER)):
        assert (await call(who, f"/users/{dana.subject}/timeline")).status_code == 403


# --- anomaly flags -----------------------------------------------------------------------------------------


def _flags(body: dict[str, Any], rule: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for flag in body["flags"]:
        if flag["rule"] == rule:
            found.setdefault(flag["actor_subject"], []).append(flag)
    return found


async def test_each_anomaly_rule_flags_its_scenario_and_not_its_control(  # noqa: PLR0917 - fixtures
    call: Any,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    practice_api: Api,
    tenant: Tenant,
    other_tenant: Tenant,
    make_event: MakeEvent,
    owner_engine: AsyncEngine,
) -> None:
    noon = time(12, 0)
    weekday = recent_weekday()
    spike_day = weekday
    events: list[AuditEvent] = []

    # Volume spike: 1 a day for four weeks, then 10 (flagged); the control does 8 or 12 a day, then 10.
    spiker = await person(control_sessions, "Sue Spike")
    steady = await person(control_sessions, "Stan Steady")
    for n in range(1, 29):
        day = spike_day - timedelta(days=n)
        events.append(make_event(tenant.id, actor=spiker, occurred_at=local(day, noon)))
        events += [
            make_event(tenant.id, actor=steady, occurred_at=local(day, noon) + timedelta(minutes=m))
            for m in range(8 if n % 2 else 12)
        ]
    for m in range(10):
        events.append(
            make_event(tenant.id, actor=spiker, occurred_at=local(spike_day, noon) + timedelta(minutes=m))
        )
        events.append(
            make_event(tenant.id, actor=steady, occurred_at=local(spike_day, noon) + timedelta(minutes=m))
        )

    # After hours: 23:30 on a weekday in the practice's zone (flagged); the control reads at 10:00.
    owl = await person(control_sessions, "Olga Owl")
    lark = await person(control_sessions, "Larry Lark")
    late = make_event(tenant.id, actor=owl, occurred_at=local(weekday, time(23, 30)))
    events += [late, make_event(tenant.id, actor=lark, occurred_at=local(weekday, time(10, 0)))]

    # Break-glass: the grant's use and a read under it (one flag); the control reads through an assignment.
    glass = await person(control_sessions, "Gina Glass")
    plain = await person(control_sessions, "Paul Plain")
    grant = uuid.uuid4()
    day_time = local(weekday, time(11, 0))
    used = make_event(
        tenant.id,
        actor=glass,
        event_type="break_glass.use",
        action=Action.EXECUTE,
        resource_type="break_glass_grant",
        resource_ids=(grant,),
        patient_ids=(),
        detail={"route": "/api/v1/tenants/x/patients"},
        occurred_at=day_time,
    )
    under = make_event(
        tenant.id,
        actor=glass,
        detail={"access": "break_glass", "break_glass_grant": str(grant)},
        occurred_at=day_time + timedelta(minutes=1),
    )
    events += [
        used,
        under,
        make_event(tenant.id, actor=plain, detail={"access": "assignment"}, occurred_at=day_time),
    ]

    # Same family name: a patient "Fakename<x>" read by "Dana FAKENAME<x>" (flagged) and by someone else.
    created = (await practice_api.post("/patients", patient_payload())).json()
    family = (await practice_api.get(f"/patients/{created['id']}")).json()["family_name"]
    relative = await person(control_sessions, f"Dana {family.upper()}")
    stranger = await person(control_sessions, "Dana Unrelated")
    patient = uuid.UUID(created["id"])
    events += [
        make_event(tenant.id, actor=relative, patient_ids=(patient,), occurred_at=day_time),
        make_event(tenant.id, actor=stranger, patient_ids=(patient,), occurred_at=day_time),
    ]
    await write_together(sessions, tenant.id, events)

    window = {
        "since": local(weekday - timedelta(days=1), noon).isoformat(),
        "until": local(weekday + timedelta(days=1), noon).isoformat(),
        "spike_minimum": "5",
    }
    response = await call(auditor_of(tenant), "/anomalies", window)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {r["rule"] for r in body["rules"]} == {
        "volume_spike",
        "after_hours",
        "break_glass",
        "same_family_name",
    }

    spikes = _flags(body, "volume_spike")
    assert steady.subject not in spikes
    [spike] = spikes[spiker.subject]
    assert (spike["day"], spike["count"], spike["actor_name"]) == (spike_day.isoformat(), 10, "Sue Spike")
    assert spike["evidence"]["baseline_mean"] == 1.0
    assert ">= 5" in spike["rule_text"]

    after = _flags(body, "after_hours")
    assert lark.subject not in after
    [owl_flag] = after[owl.subject]
    assert (owl_flag["day"], owl_flag["count"], owl_flag["event_ids"]) == (
        weekday.isoformat(),
        1,
        [str(late.id)],
    )
    assert "America/New_York" in owl_flag["rule_text"]

    glass_flags = _flags(body, "break_glass")
    assert plain.subject not in glass_flags
    [glass_flag] = glass_flags[glass.subject]
    assert (glass_flag["grant_id"], glass_flag["count"]) == (str(grant), 2)
    assert set(glass_flag["event_ids"]) == {str(used.id), str(under.id)}

    same = _flags(body, "same_family_name")
    assert stranger.subject not in same
    [kin] = same[relative.subject]
    assert (kin["patient_id"], kin["count"]) == (str(patient), 1)
    assert family not in response.text  # the patient's name is compared, never shown
    # The family names were opened inside RCM, and that read is on the practice's trail, naming the patient.
    async with owner_engine.connect() as conn:
        scans = (
            (
                await conn.execute(
                    text(
                        "SELECT * FROM rcm.audit_event"
                        " WHERE request_id = :r AND event_type = 'audit.anomaly_scan'"
                    ),
                    {"r": response.headers["x-request-id"]},
                )
            )
            .mappings()
            .all()
        )
    [scan] = scans
    assert (scan["tenant_id"], scan["action"], scan["resource_type"]) == (tenant.id, "R", "patient")
    assert patient in scan["patient_ids"]

    # The other practice's auditor sees none of these flags; owners and coders may not ask.
    theirs = (await call(auditor_of(other_tenant), "/anomalies", window)).json()
    assert {f["tenant_id"] for f in theirs["flags"]} <= {str(other_tenant.id)}
    for who in (user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), user_principal(Role.CODER)):
        assert (await call(who, "/anomalies")).status_code == 403


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"timezone": "Mars/Olympus"}, "query:timezone"),
        ({"business_hours": "19:00-07:00"}, "query:business_hours"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "query:since"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "query:since"),  # > 92 days
    ],
)
async def test_bad_rule_parameters_are_422(
    call: Any, tenant: Tenant, params: dict[str, str], pointer: str
) -> None:
    response = await call(auditor_of(tenant), "/anomalies", params)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
