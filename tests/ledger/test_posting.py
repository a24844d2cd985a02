"""835s posted to the ledger end to end: a claim built has its charges on the ledger; our writer's 835 for it
is kept and applied (``apply_file``) and posts payment, contractual adjustment and patient responsibility
to the cent; the same payment again (another file) is refused as a duplicate and posts nothing; an unbalanced
set is held whole with its reason; a void reverses the charges; the ledger refuses UPDATE and DELETE; the
routes show a claim's ledger to its practice and staff only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims import schemas as claim_schemas
from rcm.claims import service as claim_service
from rcm.claims.acknowledgments import apply_file
from rcm.claims.applying import Outcome
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.tenancy.models import Tenant
from rcm.x12.remittance_model import Claim, ServiceLine
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.ledger.support import apply_era, era_file, paid_in_part, submitted_claim
from tests.support import Api
from tests.x12 import remittances as rm


def _balance_is_the_sum(ledger: dict[str, Any]) -> None:
    receivable = ledger["receivable_accounts"]
    assert ledger["balance_cents"] == sum(
        e["amount_cents"] for e in ledger["entries"] if e["account"] in receivable
    )


async def test_charges_payment_duplicate_and_hold(
    *,
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    charge = sum(line.charge_cents for line in lines)
    built = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    assert built["balance_cents"] == built["insurance_balance_cents"] == charge
    assert {e["source"] for e in built["entries"]} == {"claim_built"}
    _balance_is_the_sum(built)

    paid = paid_in_part(claim, lines)
    outcome = await apply_era(sessions, settings, practice, era_file(paid))
    assert (outcome.posted, outcome.held, outcome.duplicates, outcome.matched) == (1, 0, 0, 1)
    assert outcome.posted_cents == paid.paid
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    _balance_is_the_sum(ledger)
    patient = sum(a.amount for line in paid.lines for a in line.adjustments if a.group == "PR")
    assert (ledger["insurance_balance_cents"], ledger["patient_balance_cents"]) == (0, patient)
    assert ledger["balance_cents"] == patient
    co = [e for e in ledger["entries"] if e["account"] == "adjustments"]
    assert {(e["adjustment_group"], e["reason_code"]) for e in co} == {("CO", "45")}
    assert {e["line_number"] for e in co} == {line.line_number for line in lines}
    assert all(e["remark_codes"] == ["N130"] for e in co)
    # Cash reconciles: the payments of the remittance are BPR02, to the cent.
    cash = await rows(
        owner_engine,
        "SELECT r.total_paid_cents, r.state, sum(e.amount_cents) AS payments FROM rcm.remittance r"
        " JOIN rcm.ledger_posting p ON (p.tenant_id, p.remittance_id) = (r.tenant_id, r.id)"
        " JOIN rcm.ledger_entry e ON (e.tenant_id, e.posting_id) = (p.tenant_id, p.id)"
        " WHERE r.tenant_id = :t AND e.account = 'payments' GROUP BY r.tenant_id, r.id",
        t=practice.id,
    )
    assert [(c.total_paid_cents, c.state, c.payments) for c in cash] == [(paid.paid, "posted", paid.paid)]

    # The same payment in another file (another envelope): refused, nothing posted twice.
    count = "SELECT count(*) AS n FROM rcm.ledger_entry WHERE tenant_id = :t"
    before = (await rows(owner_engine, count, t=practice.id))[0].n
    again = await apply_era(sessions, settings, practice, era_file(paid, control=2))
    assert (again.posted, again.duplicates) == (0, 1)
    assert (await rows(owner_engine, count, t=practice.id))[0].n == before

    # An unbalanced payment (BPR02 off by a cent): held whole with the reason, nothing posted.
    held = await apply_era(sessions, settings, practice, era_file(paid, trace="EFT0002", off_by=1, control=3))
    assert (held.posted, held.held, held.matched) == (0, 1, 0)
    reasons = await rows(
        owner_engine,
        "SELECT held_reason FROM rcm.remittance WHERE tenant_id = :t AND state = 'held'",
        t=practice.id,
    )
    assert [r.held_reason for r in reasons] == [
        f"BPR02 ({paid.paid + 1} cents) is not the claim payments ({paid.paid} cents) minus the provider "
        "adjustments (0 cents): off by 1 cents"
    ]
    assert (await rows(owner_engine, count, t=practice.id))[0].n == before

    # Another practice sees nothing; staff of the practice see the same ledger; others get 404.
    assert (await other_intake.get(f"/claims/{claim.id}/ledger")).status_code == 404
    biller = await make_staff(Role.BILLER, practice)
    seen = await biller.get(f"/billing/claims/{claim.id}/ledger")
    assert seen.status_code == 200, seen.text
    assert seen.json()["balance_cents"] == patient
    stranger = await make_staff(Role.BILLER)
    assert (await stranger.get(f"/billing/claims/{claim.id}/ledger")).status_code == 404


async def test_a_void_reverses_the_charges(
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    claim_id = await claims.new(intake, practice)
    async with practice_scope(sessions, settings, practice) as scope:
        await claim_service.void(scope, claim_id, claim_schemas.VoidClaim(reason="entered in error"))
    ledger = (await intake.get(f"/claims/{claim_id}/ledger")).json()
    assert ledger["balance_cents"] == 0
    assert {e["source"] for e in ledger["entries"]} == {"claim_built", "claim_voided"}
    _balance_is_the_sum(ledger)


@pytest.mark.parametrize(
    "statement", ["UPDATE rcm.ledger_entry SET amount_cents = 0", "DELETE FROM rcm.ledger_entry"]
)
async def test_the_ledger_is_append_only(
    statement: str,
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(intake, practice)
    with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
        async with practice_scope(sessions, settings, practice) as scope:
            await scope.session.execute(text(statement))
    # Not even the owner: the trigger fires for every role.
    with pytest.raises(DBAPIError, match="append-only"):
        async with owner_engine.begin() as conn:
            await conn.execute(text(statement + " WHERE tenant_id = :t"), {"t": practice.id})


async def test_an_unbalanced_posting_is_refused(
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    claim_id = await claims.new(intake, practice)
    posting = uuid.uuid4()
    entry = (
        "INSERT INTO rcm.ledger_entry (tenant_id, id, posting_id, account, amount_cents, remark_codes)"
        " VALUES (:t, :i, :p, 'charges', -100, '{}')"
    )

    async def unbalanced() -> None:
        async with practice_scope(sessions, settings, practice) as scope:
            await scope.session.execute(
                text(
                    "INSERT INTO rcm.ledger_posting (tenant_id, id, source, claim_id)"
                    " VALUES (:t, :p, 'claim_built', :c)"
                ),
                {"t": practice.id, "p": posting, "c": claim_id},
            )
            await scope.session.execute(text(entry), {"t": practice.id, "i": uuid.uuid4(), "p": posting})

    with pytest.raises(DBAPIError, match="does not balance"):
        await unbalanced()


async def test_an_entry_names_a_posting_and_a_claim_of_its_practice_and_keeps_the_claim(
    *,
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """What the entries' foreign keys guaranteed, checked per statement (``ledger_entry_checked``): a posting
    of the practice, a claim of the practice; and a claim with entries is never deleted, even by the owner."""
    claim_id = await claims.new(intake, practice)
    elsewhere = await claims.new(other_intake, other_practice)
    pair = (
        "INSERT INTO rcm.ledger_entry (tenant_id, id, posting_id, account, amount_cents, claim_id,"
        " remark_codes) VALUES (:t, gen_random_uuid(), :p, 'charges', -100, :c, '{}'),"
        " (:t, gen_random_uuid(), :p, 'insurance_receivable', 100, :c, '{}')"
    )

    async def post(*, posting: bool, claim: uuid.UUID) -> None:
        posting_id = uuid.uuid4()
        async with practice_scope(sessions, settings, practice) as scope:
            if posting:
                await scope.session.execute(
                    text(
                        "INSERT INTO rcm.ledger_posting (tenant_id, id, source)"
                        " VALUES (:t, :p, 'claim_built')"
                    ),
                    {"t": practice.id, "p": posting_id},
                )
            await scope.session.execute(text(pair), {"t": practice.id, "p": posting_id, "c": claim})

    with pytest.raises(DBAPIError, match="not in the ledger"):
        await post(posting=False, claim=claim_id)
    for claim in (elsewhere, uuid.uuid4()):
        with pytest.raises(DBAPIError, match="not in its practice"):
            await post(posting=True, claim=claim)
    await post(posting=True, claim=claim_id)  # a balanced posting of the practice, on its claim
    assert await _entries(owner_engine, practice, claim_id) > 0
    for statement in (
        "DELETE FROM rcm.claim WHERE tenant_id = :t AND id = :c",
        "UPDATE rcm.claim SET id = gen_random_uuid() WHERE tenant_id = :t AND id = :c",
    ):
        with pytest.raises(DBAPIError, match="has ledger entries"):
            async with owner_engine.begin() as conn:
                await conn.execute(text(statement), {"t": practice.id, "c": claim_id})


async def _entries(owner_engine: AsyncEngine, practice: Tenant, claim_id: uuid.UUID) -> int:
    found = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.ledger_entry WHERE tenant_id = :t AND claim_id = :c",
        t=practice.id,
        c=claim_id,
    )
    return int(found[0].n)


async def test_two_workers_posting_one_payment_post_it_once(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """The same payment in two files (two envelopes) applied at once: the unique trace key makes the second
    wait for the first's commit, then find it: one posts, the other reports a duplicate."""
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    store = BlobStore()
    kept = []
    async with practice_scope(sessions, settings, practice) as scope:
        for control in (11, 12):
            row, _ = await files.keep(
                scope, store, era_file(paid, control=control), direction=Direction.INBOUND, connector="test"
            )
            kept.append(row.id)

    async def worker(file_id: uuid.UUID) -> Outcome:
        async with practice_scope(sessions, settings, practice) as scope:
            return await apply_file(scope, store, file_id)

    outcomes = await asyncio.gather(*(worker(file_id) for file_id in kept))
    assert sorted((o.posted, o.duplicates) for o in outcomes) == [(0, 1), (1, 0)]
    posted = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.ledger_posting WHERE tenant_id = :t AND source = 'remittance_claim'",
        t=practice.id,
    )
    assert posted[0].n == 1
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    assert ledger["insurance_balance_cents"] == 0


async def test_a_reversal_and_its_correction_post_negative_then_new_entries(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """Paid, then the payer takes the payment back (CLP02 22, every amount negated) and pays it again in
    full (the correction) in one later 835: the claim ends paid in full, its balance the sum of entries."""
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    first = await apply_era(sessions, settings, practice, era_file(paid, trace="EFT-R1", control=21))
    assert first.posted == 1
    reversal = rm.reversal_of(paid)
    reversal = Claim(
        patient_control_number=claim.patient_control_number,
        status="22",
        charge=reversal.charge,
        paid=reversal.paid,
        filing_indicator=reversal.filing_indicator,
        payer_claim_control_number=reversal.payer_claim_control_number,
        patient=reversal.patient,
        lines=reversal.lines,
    )
    full = Claim(
        patient_control_number=claim.patient_control_number,
        status="1",
        charge=paid.charge,
        paid=paid.charge,
        filing_indicator=paid.filing_indicator,
        payer_claim_control_number=paid.payer_claim_control_number,
        patient=paid.patient,
        lines=tuple(
            ServiceLine(
                qualifier=line.qualifier,
                code=line.code,
                modifiers=line.modifiers,
                charge=line.charge,
                paid=line.charge,
                service_start=line.service_start,
                control_number=line.control_number,
            )
            for line in paid.lines
        ),
    )
    second = await apply_era(
        sessions, settings, practice, era_file(reversal, full, trace="EFT-R2", control=22)
    )
    assert (second.posted, second.held, second.reversals) == (1, 0, 1)
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    _balance_is_the_sum(ledger)
    assert (ledger["insurance_balance_cents"], ledger["patient_balance_cents"]) == (0, 0)
    payments = [
        e
        for e in ledger["entries"]
        if e["source"] == "remittance_claim" and e["segment"] in ("CLP", "SVC") and e["account"] == "payments"
    ]
    # payment, its reversal (negative), the correction: each posted per line (SVC03 on its claim line)
    per_posting: dict[str, int] = {}
    for e in payments:
        per_posting[e["posting_id"]] = per_posting.get(e["posting_id"], 0) + e["amount_cents"]
    assert sorted(per_posting.values()) == sorted([-paid.paid, paid.paid, paid.charge])
    assert {e["line_number"] for e in payments} == {line.line_number for line in lines}
    assert all(e["segment"] == "SVC" and e["segment_index"] for e in payments)


async def test_a_biller_uploads_an_835_routed_to_the_practice_its_payee_names(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    data = era_file(paid, trace="EFT-UP1", control=31, npi=practice.manifest.billing_provider.npi)
    biller = await make_staff(Role.BILLER, practice)
    headers = biller.headers() | {"Content-Type": "application/edi-x12"}
    url = "/api/v1/billing/remittances"
    first = await biller.client.post(url, content=data, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["posted"], body["claims_matched"], body["posted_cents"]) == (1, 1, paid.paid)
    assert body["practices"] == {practice.slug: 1}
    assert (await intake.get(f"/claims/{claim.id}/ledger")).json()["insurance_balance_cents"] == 0
    # Retried: nothing posted twice.
    again = (await biller.client.post(url, content=data, headers=headers)).json()
    assert (again["posted"], [d["trace_number"] for d in again["duplicates"]]) == (0, ["EFT-UP1"])
    # A biller of two practices under one NPI: the payee names several, the payment is left unassigned.
    both = await make_staff(Role.BILLER, practice, other_practice)
    other = era_file(paid, trace="EFT-UP2", control=32, npi=practice.manifest.billing_provider.npi)
    split = (await both.client.post(url, content=other, headers=both.headers())).json()
    assert (split["posted"], len(split["unassigned"]), split["practices"]) == (0, 1, {})
    # The payments received in the biller's practices; another practice's biller sees none of them.
    listed = (await biller.get("/billing/remittances", remittance_state="posted")).json()
    assert [(r["trace_number"], r["total_paid_cents"], r["state"]) for r in listed["items"]] == [
        ("EFT-UP1", paid.paid, "posted")
    ]
    assert (await biller.get("/billing/remittances", remittance_state="held")).json()["items"] == []
    theirs = await make_staff(Role.BILLER, other_practice)
    assert (await theirs.get("/billing/remittances")).json()["items"] == []
    # Not an 835: 400 naming the segment and position, nothing kept.
    bad = await biller.client.post(url, content=b"ISA*00*", headers=headers)
    assert bad.status_code == 400, bad.text
    assert "segment" in bad.json()["detail"]
