"""The 835's third match rule: a CLP whose CLP01 and CLP07 find nothing is matched by its patient (NM1*QC
member id through the coverage's blind index, the name checked), date of service and billed amount (CLP03),
a unique match only; several candidates leave it unmatched (posted as unapplied) with the reason."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.tenancy.models import Tenant
from rcm.x12.remittance_model import Adjustment, Claim, Person, ServiceLine
from tests.claims.conftest import Claims, rows
from tests.ledger.support import apply_era, era_file, submitted_claim
from tests.support import Api, patient_payload

DOS = date.today() - timedelta(days=3)


def _by_patient(lines: list[Any], *, family: str, given: str, member_id: str, pcn: str = "NOTOURS1") -> Claim:
    """A CLP naming none of our numbers: 80% paid, the rest CO-45, per line."""
    paid_lines = tuple(
        ServiceLine(
            qualifier="HC",
            code=line.procedure_code,
            modifiers=tuple(line.modifiers),
            charge=line.charge_cents,
            paid=line.charge_cents * 80 // 100,
            service_start=line.service_date,
            service_end=line.service_date,
            adjustments=(
                Adjustment(group="CO", reason="45", amount=line.charge_cents - line.charge_cents * 80 // 100),
            ),
        )
        for line in lines
    )
    return Claim(
        patient_control_number=pcn,
        status="1",
        charge=sum(line.charge for line in paid_lines),
        paid=sum(line.paid for line in paid_lines),
        filing_indicator="MB",
        payer_claim_control_number=f"ICN{pcn}",
        patient=Person(
            last=family.upper(), first=given.upper()[:1], identifier_qualifier="MI", identifier=member_id
        ),
        service_start=DOS,
        lines=paid_lines,
    )


async def test_a_clp_is_matched_by_patient_date_and_amount(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    patient = patient_payload()
    member_id = "MX0011223"
    coverage = {"payer_id": "DEMO-MCR", "member_id": member_id, "relationship": "self"}
    claim, lines = await submitted_claim(
        claims, intake, practice, patient=patient, coverage=coverage, service_date=DOS.isoformat()
    )
    paid = _by_patient(lines, family=patient["family_name"], given=patient["given_name"], member_id=member_id)
    outcome = await apply_era(sessions, settings, practice, era_file(paid, trace="EFT-PM1"))
    assert (outcome.posted, outcome.matched, outcome.unmatched, outcome.unmatched_reasons) == (1, 1, 0, ())
    assert outcome.posted_cents == paid.paid
    ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
    assert (ledger["insurance_balance_cents"], ledger["patient_balance_cents"]) == (0, 0)
    # The patients' names opened to check the match were audited as a read.
    audited = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event WHERE tenant_id = :t AND event_type = :e",
        t=practice.id,
        e="claim.remittance_patient_match",
    )
    assert audited[0].n == 1

    # Another name under the same member id, or another billed amount: not this claim.
    stranger = _by_patient(lines, family="Othername", given="Testy", member_id=member_id, pcn="NOTOURS2")
    other_amount = _by_patient(
        lines, family=patient["family_name"], given=patient["given_name"], member_id=member_id, pcn="NOTOURS3"
    )
    other_amount = Claim(
        patient_control_number=other_amount.patient_control_number,
        status="1",
        charge=other_amount.charge + 100,
        paid=other_amount.paid,
        filing_indicator="MB",
        payer_claim_control_number="ICNUNKNOWN3",
        patient=other_amount.patient,
        adjustments=(Adjustment(group="CO", reason="45", amount=100),),
        service_start=DOS,
        lines=other_amount.lines,
    )
    missed = await apply_era(sessions, settings, practice, era_file(stranger, other_amount, trace="EFT-PM2"))
    assert (missed.posted, missed.matched, missed.unmatched) == (1, 0, 2)
    assert missed.unapplied_cents == stranger.paid + other_amount.paid
    assert all("nor its patient, date of service and billed amount" in r for r in missed.unmatched_reasons)
    assert [r.split(":")[0] for r in missed.unmatched_reasons] == ["set 0001 CLP 1", "set 0001 CLP 2"]


async def test_two_claims_of_the_patient_alike_leave_the_clp_unmatched(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    patient = patient_payload()
    member_id = "MX0099887"
    coverage = {"payer_id": "DEMO-MCR", "member_id": member_id, "relationship": "self"}
    first, lines = await submitted_claim(
        claims, intake, practice, patient=patient, coverage=coverage, service_date=DOS.isoformat()
    )
    second, _ = await submitted_claim(
        claims, intake, practice, patient=patient, coverage=coverage, service_date=DOS.isoformat()
    )
    paid = _by_patient(lines, family=patient["family_name"], given=patient["given_name"], member_id=member_id)
    outcome = await apply_era(sessions, settings, practice, era_file(paid, trace="EFT-PM3"))
    assert (outcome.posted, outcome.matched, outcome.unmatched) == (1, 0, 1)
    assert outcome.unapplied_cents == paid.paid
    assert outcome.unmatched_reasons == (
        "set 0001 CLP 1: no claim has its CLP01 or CLP07, and its patient, date of service and billed amount"
        " (CLP03) match 2 claims: left unmatched",
    )
    for claim in (first, second):
        ledger = (await intake.get(f"/claims/{claim.id}/ledger")).json()
        assert ledger["insurance_balance_cents"] == claim.total_charge_cents
