"""Supervisors: assignment through the admins' privileged path (only practices they supervise, never
themselves, never another supervisor), the queue report, reassigning and re-prioritising; QA: blind review
and agreement per coder."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.coding.conftest import MakeStaff, Staff
from tests.coding.test_coding_api import CODING, _encounter
from tests.identity.conftest import audit_rows, make_user
from tests.support import Api


async def test_supervisor_assigns_only_staff_to_practices_they_supervise(
    tenant: Tenant,
    other_tenant: Tenant,
    make_staff: MakeStaff,
    control_sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    boss = await make_staff(Role.SUPERVISOR, tenant, mfa=True)
    coder = await make_user(control_sessions, ["coder"])
    peer = await make_user(control_sessions, ["supervisor"])

    made = await boss.post(f"/supervision/staff/{coder.id}/assignments", {"tenant": tenant.slug})
    assert made.status_code == 201, made.text
    assert made.json()["assigned_by"] == boss.subject
    events = await audit_rows(owner_engine, "staff_assignment.create", tenant_id=tenant.id)
    assert [e["detail"]["access"] for e in events] == ["supervisor"]

    # A practice they do not supervise is not theirs to staff: the same answer as no practice at all.
    elsewhere = await boss.post(f"/supervision/staff/{coder.id}/assignments", {"tenant": other_tenant.slug})
    nowhere = await boss.post(f"/supervision/staff/{coder.id}/assignments", {"tenant": "no-such-practice"})
    assert elsewhere.status_code == nowhere.status_code == 422, elsewhere.text
    assert (
        elsewhere.json()["errors"]
        == nowhere.json()["errors"]
        == [{"pointer": "/tenant", "detail": "names no practice"}]
    )
    assert (
        await boss.delete(f"/supervision/staff/{coder.id}/assignments/{other_tenant.slug}")
    ).status_code == 404
    # Never themselves (that would skip break-glass), never another supervisor (a trade would do the same).
    own = await boss.post(f"/supervision/staff/{boss.user.id}/assignments", {"tenant": tenant.slug})
    assert own.status_code == 409, own.text
    trade = await boss.post(f"/supervision/staff/{peer.id}/assignments", {"tenant": tenant.slug})
    assert trade.status_code == 409, trade.text
    assert (
        await boss.delete(f"/supervision/staff/{boss.user.id}/assignments/{tenant.slug}")
    ).status_code == 409

    gone = await boss.delete(f"/supervision/staff/{coder.id}/assignments/{tenant.slug}")
    assert gone.status_code == 204, gone.text
    assert await audit_rows(owner_engine, "staff_assignment.delete", tenant_id=tenant.id)


async def test_assignment_needs_a_second_factor_and_the_supervisor_role(
    tenant: Tenant, make_staff: MakeStaff, control_sessions: async_sessionmaker[AsyncSession]
) -> None:
    coder = await make_user(control_sessions, ["coder"])
    no_mfa = await make_staff(Role.SUPERVISOR, tenant)
    assert (
        await no_mfa.post(f"/supervision/staff/{coder.id}/assignments", {"tenant": tenant.slug})
    ).status_code == 403
    a_coder = await make_staff(Role.CODER, tenant, mfa=True)
    assert (
        await a_coder.post(f"/supervision/staff/{coder.id}/assignments", {"tenant": tenant.slug})
    ).status_code == 403
    assert (await a_coder.get("/supervision/queue")).status_code == 403


async def test_queue_report_reassign_and_reprioritise(
    practice_api: Api, other_practice_api: Api, tenant: Tenant, make_staff: MakeStaff
) -> None:
    for _ in range(3):
        await _encounter(practice_api)
    await _encounter(other_practice_api)  # not supervised: not in the report
    boss = await make_staff(Role.SUPERVISOR, tenant)
    alice = await make_staff(Role.CODER, tenant)
    bob = await make_staff(Role.CODER, tenant)
    item_id = (await alice.post("/coding/next")).json()["id"]

    report = (await boss.get("/supervision/queue")).json()
    assert [p["tenant_id"] for p in report["practices"]] == [str(tenant.id)]
    assert report["practices"][0] | {"oldest_age_seconds": 0} == {
        "tenant_id": str(tenant.id),
        "open": 2,
        "leased": 1,
        "waiting": 0,
        "overdue": 0,
        "oldest_age_seconds": 0,
    }
    assert [(c["coder"], c["held"]) for c in report["coders"]] == [(alice.subject, 1)]

    moved = await boss.post(f"/supervision/items/{item_id}/reassign", {"coder": str(bob.user.id)})
    assert moved.status_code == 200, moved.text
    assert moved.json()["leased_by"] == bob.subject
    assert (await alice.post(f"/coding/items/{item_id}/complete", CODING)).status_code == 409
    assert (await bob.post("/coding/next")).json()["id"] == item_id
    # Only to a coder of the item's practice.
    stranger = await make_staff(Role.CODER)
    refused = await boss.post(f"/supervision/items/{item_id}/reassign", {"coder": str(stranger.user.id)})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "/coder"

    urgent = await boss.put(f"/supervision/items/{item_id}/priority", {"priority": 1})
    assert urgent.status_code == 200, urgent.text
    assert urgent.json()["priority"] == 1


async def _complete_one(coder: Staff, coding: dict[str, object]) -> str:
    item_id = str((await coder.post("/coding/next")).json()["id"])
    response = await coder.post(f"/coding/items/{item_id}/complete", coding)
    assert response.status_code == 200, response.text
    return item_id


async def test_blind_review_scores_agreement_per_coder(
    practice_api: Api, tenant: Tenant, make_staff: MakeStaff
) -> None:
    await _encounter(practice_api)
    coder = await make_staff(Role.CODER, tenant)
    await _complete_one(coder, CODING)
    boss = await make_staff(Role.SUPERVISOR, tenant)
    reviewer = await make_staff(Role.CODER, tenant, qa_reviewer=True)
    not_reviewer = await make_staff(Role.CODER, tenant)

    drawn = await boss.post("/supervision/qa/samples", {"tenant": tenant.slug, "count": 5})
    assert drawn.status_code == 201, drawn.text
    samples = drawn.json()["samples"]
    assert [s["coder"] for s in samples] == [coder.subject]
    sample_id = samples[0]["id"]
    # Sampling again finds nothing new: a coding is sampled once.
    assert (await boss.post("/supervision/qa/samples", {"tenant": tenant.slug})).json()["samples"] == []

    assert (await not_reviewer.get(f"/coding/qa/samples/{sample_id}")).status_code == 403
    assert (await coder.get(f"/coding/qa/samples/{sample_id}")).status_code == 403  # not their own work
    listed = (await reviewer.get("/coding/qa/samples")).json()["samples"]
    assert [s["id"] for s in listed] == [sample_id]
    task = await reviewer.get(f"/coding/qa/samples/{sample_id}")
    assert task.status_code == 200, task.text
    # Blind: the documentation, never the coding under review.
    assert set(task.json()) == {
        "id",
        "tenant_id",
        "encounter_id",
        "patient_id",
        "service_date",
        "place_of_service",
        "documentation",
    }

    # The reviewer agrees on one of two diagnoses (1 of 3 given) and one of two lines (99213 without -25).
    review = {
        "diagnoses": ["E11.9", "E78.5"],
        "lines": [
            {"procedure_code": "99213", "diagnosis_pointers": [1], "charge_cents": 100},
            {"procedure_code": "36415", "diagnosis_pointers": [1], "charge_cents": 100},
        ],
    }
    scored = await reviewer.post(f"/coding/qa/samples/{sample_id}/review", review)
    assert scored.status_code == 200, scored.text
    assert scored.json()["dx_agreement"] == round(1 / 3, 4)
    assert scored.json()["px_agreement"] == round(1 / 3, 4)
    assert (await reviewer.post(f"/coding/qa/samples/{sample_id}/review", review)).status_code == 409

    report = await boss.get("/supervision/qa/agreement", period="day")
    assert report.status_code == 200, report.text
    rows = report.json()["rows"]
    assert [(r["coder"], r["samples"], r["dx_agreement"]) for r in rows] == [
        (coder.subject, 1, round(1 / 3, 4))
    ]
