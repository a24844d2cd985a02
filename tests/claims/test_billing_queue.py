"""The billing queue: items leased fairly across a biller's practices (the workqueue's lease), opened with
their claim, finished with an action and a reason; supervisors see depth and age per practice and reason."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.building import open_billing_item
from rcm.claims.follow_up import open_follow_ups
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.payers.service import sync_enrollments
from rcm.tenancy.models import Tenant
from rcm.workqueue.models import BillingReason
from tests.claims.conftest import Claims, practice_scope, rows
from tests.claims.test_batches import operator_scope
from tests.coding.conftest import MakeStaff
from tests.support import Api


async def test_a_rejection_is_leased_worked_and_resubmitted(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    rejected = await claims.new(intake, practice)
    await claims.walk(practice, rejected, ClaimState.SUBMITTED, ClaimState.REJECTED)
    theirs = await claims.new(other_intake, other_practice)
    async with practice_scope(sessions, settings, practice) as scope:
        item_id = await open_billing_item(scope, rejected, BillingReason.REJECTION, now=datetime.now(UTC))
        # The claim's one live item: a second problem reported meanwhile is the same item.
        assert (
            await open_billing_item(scope, rejected, BillingReason.FOLLOW_UP, now=datetime.now(UTC))
            == item_id
        )
    async with practice_scope(sessions, settings, other_practice) as scope:
        await open_billing_item(scope, theirs, BillingReason.FOLLOW_UP, now=datetime.now(UTC))

    biller = await make_staff(Role.BILLER, practice)
    leased = await biller.post("/billing/next")
    assert leased.status_code == 200, leased.text
    task = leased.json()
    assert task["item"]["id"] == str(item_id)
    assert task["item"]["reason"] == "rejection"
    assert task["claim"]["id"] == str(rejected)
    assert task["claim"]["state"] == "rejected"
    # Asking again hands back the item held; the other practice's item is never offered.
    assert (await biller.post("/billing/next")).json()["item"]["id"] == str(item_id)
    assert (await biller.get(f"/billing/items/{item_id}")).status_code == 200

    # An encounter action on a claim item, or a claim action the state refuses: nothing changes.
    refused = await biller.post(f"/billing/items/{item_id}/complete", {"action": "replace", "reason": "x"})
    assert refused.status_code == 409
    assert refused.json()["errors"] == [{"pointer": "/state", "detail": "is rejected"}]
    done = await biller.post(
        f"/billing/items/{item_id}/complete", {"action": "resubmit", "reason": "fixed NPI"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["item"]["status"] == "done"
    assert done.json()["claim"]["state"] == "ready"
    assert (await biller.post("/billing/next")).status_code == 204
    again = await biller.post(f"/billing/items/{item_id}/complete", {"action": "close", "reason": "late"})
    assert again.status_code == 409  # no longer held
    assert await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = :c", c=rejected) == [("ready",)]


async def test_an_enrollment_item_resolves_once_the_practice_enrolls(
    *,
    practice_api: Api,
    tenant: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    claim_id = await claims.new(practice_api, tenant)  # tests/conftest's practice: never enrolled
    biller = await make_staff(Role.BILLER, tenant)
    task = (await biller.post("/billing/next")).json()
    assert (task["item"]["reason"], task["claim"]["state"]) == ("enrollment", "created")
    item = task["item"]["id"]
    still = await biller.post(f"/billing/items/{item}/complete", {"action": "resubmit", "reason": "check"})
    assert still.status_code == 409
    assert still.json()["errors"][0]["pointer"] == "/payer_id"

    async with platform_transaction(control_sessions) as session:
        await sync_enrollments(session, TenantId(tenant.id), tenant.manifest)
    done = await biller.post(f"/billing/items/{item}/complete", {"action": "resubmit", "reason": "enrolled"})
    assert done.status_code == 200, done.text
    assert done.json()["claim"]["id"] == str(claim_id)
    assert done.json()["claim"]["state"] == "ready"


async def test_supervisors_see_depth_and_age_per_practice_and_reason(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    now = datetime.now(UTC)
    mine = [await claims.new(intake, practice) for _ in range(3)]
    theirs = await claims.new(other_intake, other_practice)
    async with practice_scope(sessions, settings, practice) as scope:
        await open_billing_item(scope, mine[0], BillingReason.REJECTION, now=now)
        await open_billing_item(scope, mine[1], BillingReason.REJECTION, now=now)
        await open_billing_item(scope, mine[2], BillingReason.FOLLOW_UP, now=now)
    async with practice_scope(sessions, settings, other_practice) as scope:
        await open_billing_item(scope, theirs, BillingReason.DEAD_LETTER, now=now)

    supervisor = await make_staff(Role.SUPERVISOR, practice)
    report = await supervisor.get("/supervision/billing")
    assert report.status_code == 200, report.text
    body = report.json()
    assert [(p["tenant_id"], p["open"]) for p in body["practices"]] == [(str(practice.id), 3)]
    reasons = {(r["tenant_id"], r["reason"]): r["live"] for r in body["reasons"]}
    assert reasons == {(str(practice.id), "rejection"): 2, (str(practice.id), "follow_up"): 1}
    assert all(r["oldest_age_seconds"] >= 0 for r in body["reasons"])
    biller = await make_staff(Role.BILLER, practice)
    assert (await biller.get("/supervision/billing")).status_code == 403


async def test_acting_on_a_claim_by_its_route_resolves_its_item(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice)
    await claims.walk(practice, claim_id, ClaimState.SUBMITTED, ClaimState.REJECTED)
    async with practice_scope(sessions, settings, practice) as scope:
        item_id = await open_billing_item(scope, claim_id, BillingReason.REJECTION, now=datetime.now(UTC))
    biller = await make_staff(Role.BILLER, practice)
    closed = await biller.post(f"/billing/claims/{claim_id}/close", {"reason": "written off"})
    assert closed.status_code == 200, closed.text
    events = await rows(
        owner_engine,
        "SELECT event, actor FROM rcm.work_item_event WHERE work_item_id = :i ORDER BY created_at, id",
        i=item_id,
    )
    assert [e for e, _ in events] == ["created", "completed"]
    assert (await biller.post("/billing/next")).status_code == 204


async def test_claims_without_an_answer_past_the_payers_days_get_one_follow_up(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    late, recent = await claims.new(intake, practice), await claims.new(intake, practice)
    for claim_id in (late, recent):
        await claims.walk(practice, claim_id, ClaimState.SUBMITTED)
    async with owner_engine.begin() as conn:  # Demo Medicare waits 30 days before a status inquiry
        await conn.execute(
            text("UPDATE rcm.claim SET state_changed_at = now() - interval '31 days' WHERE id = :c"),
            {"c": late},
        )
    # Demo Medicare answers 276s: its claims are the status job's, never a follow-up of this sweep.
    async with operator_scope(sessions, settings, practice) as scope:
        assert await open_follow_ups(scope) == 0
    # Without its status service (as a payer that answers only by phone), a person follows up.
    await _status_service(owner_engine, "DEMO-MCR", None)
    try:
        for expected in (1, 0):  # the second run finds the item open: no second one
            async with operator_scope(sessions, settings, practice) as scope:
                assert await open_follow_ups(scope) == expected
    finally:
        await _status_service(owner_engine, "DEMO-MCR", "sandbox:claims")
    items = await rows(
        owner_engine,
        "SELECT subject_id, reason, status FROM rcm.work_item WHERE subject_id = ANY(:c)",
        c=[late, recent],
    )
    assert items == [(late, "follow_up", "open")]


async def test_a_claim_whose_item_another_biller_holds_is_theirs_to_act_on(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice)
    await claims.walk(practice, claim_id, ClaimState.SUBMITTED, ClaimState.REJECTED)
    async with practice_scope(sessions, settings, practice) as scope:
        item_id = await open_billing_item(scope, claim_id, BillingReason.REJECTION, now=datetime.now(UTC))
    holder = await make_staff(Role.BILLER, practice)
    other = await make_staff(Role.BILLER, practice)
    assert (await holder.post("/billing/next")).json()["item"]["id"] == str(item_id)

    refused = await other.post(f"/billing/claims/{claim_id}/close", {"reason": "written off"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["pointer"] == "/work_item"
    # Nothing moved: the claim is still rejected and the item still the holder's.
    assert (await intake.get(f"/claims/{claim_id}")).json()["state"] == "rejected"
    status = await rows(owner_engine, "SELECT status FROM rcm.work_item WHERE id = :i", i=item_id)
    assert [s for (s,) in status] == ["leased"]

    done = await holder.post(f"/billing/items/{item_id}/complete", {"action": "close", "reason": "late"})
    assert done.status_code == 200, done.text
    assert done.json()["claim"]["state"] == "closed"


async def _status_service(owner_engine: AsyncEngine, payer_id: str, endpoint: str | None) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.payer SET status_endpoint = :e WHERE id = :p"), {"e": endpoint, "p": payer_id}
        )
