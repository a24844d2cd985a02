"""A practice reads its claims' status; a biller replaces, voids, closes and resubmits claims across the
practices they are assigned to; every refusal names the state; another practice's claims are a 404."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.claims.states import ClaimState
from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.claims.conftest import DEMO_CODED, Claims, rows
from tests.coding.conftest import MakeStaff
from tests.support import Api

S = ClaimState


async def test_practice_lists_and_reads_its_claims(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    owner_engine: AsyncEngine,
) -> None:
    ids = [await claims.new(intake, practice) for _ in range(3)]
    theirs = await claims.new(other_intake, other_practice)
    await claims.walk(practice, ids[0], S.SUBMITTED, S.REJECTED)

    first = await intake.get("/claims", {"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [c["id"] for c in page["items"]] == [str(i) for i in ids[:2]]
    assert page["next_cursor"]
    rest = (await intake.get("/claims", {"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [c["id"] for c in rest["items"]] == [str(ids[2])]
    assert rest["next_cursor"] is None
    rejected = (await intake.get("/claims", {"claim_state": "rejected"})).json()["items"]
    assert [c["id"] for c in rejected] == [str(ids[0])]
    assert (await intake.get("/claims", {"claim_state": "nonsense"})).status_code == 422

    read = await intake.get(f"/claims/{ids[0]}")
    assert read.status_code == 200, read.text
    claim = read.json()
    assert claim["state"] == "rejected"
    assert claim["frequency"] == 1
    assert len(claim["patient_control_number"]) <= 20
    assert [(e["from_state"], e["to_state"]) for e in claim["events"]] == [
        (None, "created"),
        ("created", "ready"),
        ("ready", "submitted"),
        ("submitted", "rejected"),
    ]
    assert [line["procedure_code"] for line in claim["lines"]] == ["99213", "G2211"]

    # Another practice's claim: the same 404 as none at all, on the path and in the list.
    unknown = await intake.get(f"/claims/{uuid.uuid4()}")
    other = await intake.get(f"/claims/{theirs}")
    assert other.status_code == unknown.status_code == 404
    assert str(theirs) not in {c["id"] for c in page["items"] + rest["items"]}
    # Each read is in the practice's audit trail, naming the patient.
    audited = await rows(
        owner_engine,
        "SELECT event_type, cardinality(patient_ids) FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type IN ('claim.read', 'claim.list') ORDER BY occurred_at",
        t=practice.id,
    )
    assert ("claim.read", 1) in audited
    assert ("claim.list", 2) in audited


async def _biller(make_staff: MakeStaff, *practices: Tenant) -> Any:
    return await make_staff(Role.BILLER, *practices)


async def test_replace_needs_the_payer_to_hold_the_claim_and_its_number(
    *,
    intake: Api,
    practice: Tenant,
    clean_intake: Api,
    clean_practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
) -> None:
    biller = await _biller(make_staff, practice, clean_practice)
    claim_id = await claims.new(intake, practice)
    reason = {"reason": "corrected the diagnosis pointer"}

    early = await biller.post(f"/billing/claims/{claim_id}/replace", reason)
    assert early.status_code == 409, early.text
    assert early.json()["errors"] == [{"pointer": "/state", "detail": "is ready"}]

    await claims.walk(practice, claim_id, S.SUBMITTED, S.ACCEPTED)  # accepted, no number learnt yet
    unnumbered = await biller.post(f"/billing/claims/{claim_id}/replace", reason)
    assert unnumbered.status_code == 409
    assert unnumbered.json()["errors"][0]["pointer"] == "/payer_claim_control_number"

    await claims.walk(practice, claim_id, S.DENIED)
    unchecked = await claims.new(intake, practice)
    await claims.walk(practice, unchecked, S.SUBMITTED, S.ACCEPTED, S.PAID, icn="ICN2026000122")
    # The encounter as coded now must pass the scrubber: this practice has no TIN and no code sets are
    # known for it, so the correction is refused naming what fired and what could not run.
    refused = await biller.post(f"/billing/claims/{unchecked}/replace", reason)
    assert refused.status_code == 409, refused.text
    details = [e["detail"] for e in refused.json()["errors"] if e["pointer"] == "/scrub"]
    assert any(d.startswith("TIN-PRESENT@") and d.endswith("fired") for d in details)
    assert (await intake.get(f"/claims/{unchecked}")).json()["state"] == "paid"  # nothing changed

    numbered = await claims.new(clean_intake, clean_practice, **DEMO_CODED)
    await claims.walk(clean_practice, numbered, S.SUBMITTED, S.ACCEPTED, S.PAID, icn="ICN2026000123")
    key = uuid.uuid4().hex
    headers = biller.headers() | {"Idempotency-Key": key}
    replaced = await biller.client.post(
        f"/api/v1/billing/claims/{numbered}/replace", json=reason, headers=headers
    )
    assert replaced.status_code == 201, replaced.text
    body = replaced.json()
    assert body["frequency"] == 7
    assert body["original_claim_id"] == str(numbered)
    assert body["original_payer_claim_control_number"] == "ICN2026000123"
    assert body["state"] == "ready"
    assert body["patient_control_number"] != ""
    assert body["events"][0]["cause"] == "biller"
    assert body["events"][0]["reason"] == reason["reason"]
    # A retry with the same key is the first answer, not a second replacement.
    again = await biller.client.post(
        f"/api/v1/billing/claims/{numbered}/replace", json=reason, headers=headers
    )
    assert again.status_code == 201
    assert again.json()["id"] == body["id"]
    original = (await clean_intake.get(f"/claims/{numbered}")).json()
    assert original["state"] == "closed"
    assert original["closed_reason"] == f"replaced by {body['patient_control_number']}"
    # The ledger: the original's charges reversed, the replacement's posted.
    was = (await biller.get(f"/billing/claims/{numbered}/ledger")).json()
    assert was["balance_cents"] == 0
    assert {e["source"] for e in was["entries"]} == {"claim_built", "claim_replaced"}
    now = (await biller.get(f"/billing/claims/{body['id']}/ledger")).json()
    assert now["balance_cents"] == now["insurance_balance_cents"] == body["total_charge_cents"] > 0
    # Closed: it cannot be replaced a second time.
    twice = await biller.post(f"/billing/claims/{numbered}/replace", reason)
    assert twice.status_code == 409
    assert twice.json()["errors"] == [{"pointer": "/state", "detail": "is closed"}]


async def test_void_in_place_before_the_payer_holds_it_and_by_frequency_8_after(
    intake: Api, practice: Tenant, claims: Claims, make_staff: MakeStaff
) -> None:
    biller = await _biller(make_staff, practice)
    reason = {"reason": "billed to the wrong practice"}
    unsent = await claims.new(intake, practice)
    voided = await biller.post(f"/billing/claims/{unsent}/void", reason)
    assert voided.status_code == 200, voided.text
    assert voided.json()["id"] == str(unsent)
    assert voided.json()["state"] == "voided"

    held = await claims.new(intake, practice)
    await claims.walk(practice, held, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_PAID, icn="ICN-77")
    void_claim = await biller.post(f"/billing/claims/{held}/void", reason)
    assert void_claim.status_code == 200, void_claim.text
    body = void_claim.json()
    assert body["frequency"] == 8
    assert body["original_payer_claim_control_number"] == "ICN-77"
    assert [line["procedure_code"] for line in body["lines"]] == ["99213", "G2211"]
    assert (await intake.get(f"/claims/{held}")).json()["state"] == "voided"
    # The ledger: the original's charges reversed; the void claim bills nothing.
    assert (await biller.get(f"/billing/claims/{held}/ledger")).json()["balance_cents"] == 0
    assert (await biller.get(f"/billing/claims/{body['id']}/ledger")).json()["entries"] == []
    assert (await biller.get(f"/billing/claims/{unsent}/ledger")).json()["balance_cents"] == 0

    submitted = await claims.new(intake, practice)
    await claims.walk(practice, submitted, S.SUBMITTED)
    refused = await biller.post(f"/billing/claims/{submitted}/void", reason)
    assert refused.status_code == 409
    assert refused.json()["errors"] == [{"pointer": "/state", "detail": "is submitted"}]


async def test_close_and_resubmit(
    intake: Api, practice: Tenant, claims: Claims, make_staff: MakeStaff
) -> None:
    biller = await _biller(make_staff, practice)
    claim_id = await claims.new(intake, practice)
    await claims.walk(practice, claim_id, S.SUBMITTED, S.REJECTED)
    resubmitted = await biller.post(f"/billing/claims/{claim_id}/resubmit", {"reason": "fixed the member id"})
    assert resubmitted.status_code == 200, resubmitted.text
    assert resubmitted.json()["state"] == "ready"
    assert (await biller.post(f"/billing/claims/{claim_id}/resubmit", {"reason": "again"})).status_code == 409

    closed = await biller.post(f"/billing/claims/{claim_id}/close", {"reason": "patient paid in full"})
    assert closed.status_code == 200
    assert closed.json()["closed_reason"] == "patient paid in full"
    again = await biller.post(f"/billing/claims/{claim_id}/close", {"reason": "again"})
    assert again.status_code == 409
    assert again.json()["errors"] == [{"pointer": "/state", "detail": "is closed"}]
    assert (await biller.post(f"/billing/claims/{claim_id}/close", {})).status_code in {400, 422}


async def test_billers_reach_only_their_practices_claims(
    *,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    make_staff: MakeStaff,
    owner_engine: AsyncEngine,
) -> None:
    biller = await _biller(make_staff, practice)
    mine = await claims.new(intake, practice)
    theirs = await claims.new(other_intake, other_practice)
    listed = await biller.get("/billing/claims")
    assert listed.status_code == 200, listed.text
    ids = {c["id"] for c in listed.json()["items"]}
    assert str(mine) in ids
    assert str(theirs) not in ids
    assert (await biller.get(f"/billing/claims/{mine}")).status_code == 200
    for call in (
        biller.get(f"/billing/claims/{theirs}"),
        biller.post(f"/billing/claims/{theirs}/close", {"reason": "not mine"}),
        biller.post(f"/billing/claims/{theirs}/void", {"reason": "not mine"}),
    ):
        assert (await call).status_code == 404
    assert await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = :c", c=theirs) == [("ready",)]
    # A practice's own caller has no business on the staff routes.
    assert (await intake.client.get("/api/v1/billing/claims", headers=intake.headers)).status_code == 403
