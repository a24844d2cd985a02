"""``claim_parties``: a claim's subscriber, dependent patient, referring provider, service facility and prior
authorization, read from its encounter and coverage into the 837 writer's model (audited), and what the
writer makes of them passes pyx12 with zero errors."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.models import Claim
from rcm.claims.parties import ClaimParties, claim_parties
from rcm.claims.repository import ClaimRepository
from rcm.config import Settings
from rcm.tenancy.models import Tenant
from rcm.x12.claims import Payer, SubscriberLoop
from rcm.x12.claims837 import write_837
from rcm.x12.model import PersonName
from tests.claims.conftest import Claims, practice_scope, rows
from tests.encounters.test_parties import dependent_payload
from tests.support import Api
from tests.x12 import claimdata as data
from tests.x12.pyx12check import pyx12_errors


async def _parties(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant, claim_id: uuid.UUID
) -> tuple[Claim, ClaimParties]:
    async with practice_scope(sessions, settings, tenant) as scope:
        claim = await scope.repo(ClaimRepository).get_or_404(claim_id)
        return claim, (await claim_parties(scope, [claim]))[claim_id]


def _837(claim: Claim, parties: ClaimParties) -> str:
    """The claim in a batch as a renderer would write it (the envelope and billing provider of the X12
    tests; the parties from the database)."""
    assert parties.subscriber is not None
    x12_claim = data.claim(
        claim.patient_control_number,
        prior_authorization=parties.prior_authorization,
        referring=parties.referring,
        service_facility=parties.service_facility,
    )
    loop = SubscriberLoop(
        payer=Payer(name="DEMO MEDICARE", payer_id="DEMOMCR"),
        subscriber=parties.subscriber,
        patient=parties.patient,
        claims=(x12_claim,),
    )
    return write_837(data.batch(data.billing_provider((loop,))))


async def test_dependent_claim_names_subscriber_patient_referring_facility_and_authorization(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice, **dependent_payload())
    claim, parties = await _parties(sessions, settings, practice, claim_id)

    assert parties.missing == ()
    assert parties.relationship == "19"
    assert parties.subscriber is not None
    assert parties.subscriber.name == PersonName(last="Parentfake", first="Patrick", middle="Quincy")
    assert parties.subscriber.birth_date is not None
    assert parties.subscriber.birth_date.isoformat() == "1975-06-15"
    assert parties.subscriber.sex == "M"
    assert parties.subscriber.address is not None
    assert parties.subscriber.address.postal_code == "616021234"
    assert parties.subscriber.responsibility == "P"
    assert parties.patient is not None
    assert parties.patient.relationship == "19"
    assert parties.patient.sex == "F"
    assert parties.referring is not None
    assert (parties.referring.npi, parties.referring.last, parties.referring.first) == (
        "1245319599",
        "Referfake",
        "Rita",
    )
    assert parties.service_facility is not None
    assert parties.service_facility.npi == "1679576722"
    assert parties.prior_authorization == "AUTH-2026/0042"

    content = _837(claim, parties)
    assert pyx12_errors(content) == []
    segments = [s.strip() for s in content.split("~")]
    assert "SBR*P**" in content  # SBR02 empty: the patient is not the subscriber
    assert any(s.startswith("PAT*19") for s in segments)
    assert any(s.startswith("NM1*IL*1*Parentfake*Patrick*Quincy") for s in segments)
    assert any(s.startswith("NM1*QC*1*") for s in segments)
    assert any(s.startswith("NM1*DN*1*Referfake*Rita") for s in segments)
    assert any(s.startswith("NM1*77*2*Fake Ambulatory Center") for s in segments)
    assert "REF*G1*AUTH-2026/0042" in segments

    # The read of the patient's and the subscriber's demographics is audited, naming claim and patient.
    events = await rows(
        owner_engine,
        "SELECT resource_ids, patient_ids FROM rcm.audit_event WHERE tenant_id = :t"
        " AND event_type = 'claim.parties.read'",
        t=practice.id,
    )
    assert [(list(e.resource_ids), list(e.patient_ids)) for e in events] == [([claim_id], [claim.patient_id])]


async def test_self_claim_puts_the_patient_in_2010ba_and_names_no_others(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    claim_id = await claims.new(intake, practice)
    claim, parties = await _parties(sessions, settings, practice, claim_id)
    assert parties.missing == ()
    assert parties.relationship == "18"
    assert parties.patient is None
    assert parties.referring is None
    assert parties.service_facility is None
    assert parties.prior_authorization is None
    assert parties.subscriber is not None
    assert parties.subscriber.name.last.startswith("Fakename")
    content = _837(claim, parties)
    assert pyx12_errors(content) == []
    assert "SBR*P*18*" in content


async def test_a_patient_without_address_is_named_missing(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    payload = dependent_payload()
    del payload["patient"]["address"]
    claim_id = await claims.new(intake, practice, **payload)
    _, parties = await _parties(sessions, settings, practice, claim_id)
    assert parties.missing == ("patient address (2010CA N3/N4)",)
    assert parties.patient is None
