"""Submission batches rendered as the 837P their payer receives: valid for pyx12, read back by our reader
with the same claims, kept once (the same bytes every time), audited, refused by name when the practice or
a claim lacks what X12 needs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims import schemas
from rcm.claims.batches import build_batches
from rcm.claims.models import SubmissionBatch
from rcm.claims.rendering import render_batch
from rcm.claims.service import replace, void
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.kit.errors import Conflict, NotFound
from rcm.kit.secrets import SecretResolver
from rcm.tenancy.models import Tenant
from rcm.x12 import claims as x12
from rcm.x12.claims837_read import read_batch
from tests.claims.conftest import DEMO_CODED, Claims, practice_scope, rows
from tests.encounters.test_parties import dependent_payload
from tests.support import Api, patient_payload
from tests.x12.pyx12check import pyx12_errors

S = ClaimState
SEVERAL_LINES: dict[str, Any] = {
    "diagnoses": [{"code": "E11.9"}, {"code": "I10"}, {"code": "R51.9"}],
    "charges": [
        {
            "procedure_code": "99214",
            "modifiers": ["25"],
            "charge_cents": 18500,
            "units": 1,
            "diagnosis_pointers": [1, 2, 3],
        },
        {
            "procedure_code": "96372",
            "modifiers": ["59", "RT"],
            "charge_cents": 4575,
            "units": 2,
            "diagnosis_pointers": [3],
        },
        {"procedure_code": "36415", "charge_cents": 1500, "units": 1, "diagnosis_pointers": [1]},
    ],
}


class Renderer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions, self.settings = sessions, settings
        self.store = BlobStore.from_settings(settings)

    async def batches(self, tenant: Tenant) -> dict[str, SubmissionBatch]:
        async with practice_scope(self.sessions, self.settings, tenant) as scope:
            return {b.payer_id: b for b in await build_batches(scope)}

    async def render(self, tenant: Tenant, batch_id: uuid.UUID) -> tuple[uuid.UUID, bytes]:
        async with practice_scope(self.sessions, self.settings, tenant) as scope:
            row = await render_batch(scope, self.store, batch_id, secrets=SecretResolver())
            return row.id, await files.read(scope, self.store, row)


@pytest.fixture
def renderer(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Renderer:
    return Renderer(sessions, settings)


def claims_of(batch: x12.ClaimBatch) -> dict[str, x12.Claim]:
    return {
        claim.patient_control_number: claim
        for provider in batch.billing_providers
        for loop in provider.subscribers
        for claim in loop.claims
    }


async def pcns(owner_engine: AsyncEngine, claim_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    found = await rows(
        owner_engine, "SELECT id, patient_control_number FROM rcm.claim WHERE id = ANY(:c)", c=claim_ids
    )
    return {row.id: row.patient_control_number for row in found}


async def test_batches_render_valid_837p_per_payer_read_back_the_same_and_kept_once(
    *,
    billing_intake: Api,
    billing_practice: Tenant,
    claims: Claims,
    renderer: Renderer,
    owner_engine: AsyncEngine,
) -> None:
    simple = await claims.new(billing_intake, billing_practice)
    several = await claims.new(billing_intake, billing_practice, **SEVERAL_LINES)
    # Two claims of one patient and coverage (intake matches the MRN and member id): one subscriber loop.
    patient = {**patient_payload(), "mrn": f"SAME-{uuid.uuid4().hex[:8]}"}
    cover = {"payer_id": "DEMO-MCR", "member_id": "MEMBER42", "group_number": "GRP-7"}
    same_patient = [
        await claims.new(billing_intake, billing_practice, patient=patient, coverage=cover) for _ in range(2)
    ]
    blue = await claims.new(billing_intake, billing_practice, payer_id="DEMO-BCX")

    batches = await renderer.batches(billing_practice)
    assert set(batches) == {"DEMO-MCR", "DEMO-BCX"}  # one practice, two payers: two batches
    mcr, bcx = batches["DEMO-MCR"], batches["DEMO-BCX"]
    file_id, data = await renderer.render(billing_practice, mcr.id)
    content = data.decode()
    assert pyx12_errors(content) == []
    assert content.startswith("ISA*")
    assert f"*{mcr.interchange_control_number:09d}*" in content.split("~")[0]  # ISA13
    assert f"GS*HC*SUBMIT01*{mcr.receiver_id}*" in content
    assert "ST*837*0001*005010X222A1~" in content

    read = read_batch(data)
    assert read.envelope.interchange_control_number == mcr.interchange_control_number
    assert read.envelope.group_control_number == mcr.group_control_number
    assert read.submitter.identifier == "SUBMIT01"
    assert read.submitter.phone == "5550100100"
    assert read.reference == mcr.id.hex
    [provider] = read.billing_providers
    assert (provider.npi, provider.tin, provider.address.postal_code) == (
        "1003000126",
        "123456789",
        "627011234",
    )
    mcr_ids = [simple, several, *same_patient]
    numbers = await pcns(owner_engine, mcr_ids)
    claims_read = claims_of(read)
    assert set(claims_read) == set(numbers.values())
    # Rendering provider (not the billing NPI) on the claim; patient = subscriber (SBR02 18, no 2000C).
    written = claims_read[numbers[several]]
    assert written.total_charge == 18500 + 4575 + 1500
    assert [(line.procedure, line.modifiers, line.units, line.charge) for line in written.lines] == [
        ("99214", ("25",), "1", 18500),
        ("96372", ("59", "RT"), "2", 4575),
        ("36415", (), "1", 1500),
    ]
    assert [line.diagnosis_pointers for line in written.lines] == [(1, 2, 3), (3,), (1,)]
    assert written.diagnoses == ("E119", "I10", "R519")
    assert written.frequency == "1"
    assert written.rendering is not None
    assert (written.rendering.npi, written.rendering.last, written.rendering.first) == (
        "1234567893",
        "Fake",
        "Example",
    )
    assert claims_read[numbers[simple]].total_charge == 12500 + 1650
    loops = provider.subscribers
    assert all(loop.patient is None for loop in loops)
    assert all(loop.subscriber.claim_filing_indicator == "MB" for loop in loops)
    shared = [loop for loop in loops if loop.subscriber.member_id == "MEMBER42"]
    assert len(shared) == 1
    assert len(shared[0].claims) == 2
    assert shared[0].subscriber.birth_date is not None
    assert shared[0].subscriber.group_number == "GRP-7"

    # Idempotent: the same row, the same bytes; kept encrypted, linked to the batch.
    again_id, again_data = await renderer.render(billing_practice, mcr.id)
    assert (again_id, again_data) == (file_id, data)
    kept = await rows(
        owner_engine,
        "SELECT kind, direction, submission_batch_id, interchange_control_number FROM rcm.x12_file"
        " WHERE tenant_id = :t",
        t=billing_practice.id,
    )
    assert [tuple(k) for k in kept] == [("837P", "outbound", mcr.id, mcr.interchange_control_number)]
    created = await rows(
        owner_engine,
        "SELECT patient_ids FROM rcm.audit_event WHERE tenant_id = :t AND event_type = 'x12_file.create'",
        t=billing_practice.id,
    )
    assert len(created) == 1
    patients = await rows(owner_engine, "SELECT patient_id FROM rcm.claim WHERE id = ANY(:c)", c=mcr_ids)
    assert set(created[0].patient_ids) == {p.patient_id for p in patients}
    read_events = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'submission_batch.read'",
        t=billing_practice.id,
    )
    assert read_events[0].n == 1  # the PHI read of the one render that wrote

    _, blue_data = await renderer.render(billing_practice, bcx.id)
    assert pyx12_errors(blue_data.decode()) == []
    blue_read = read_batch(blue_data)
    assert set(claims_of(blue_read)) == set((await pcns(owner_engine, [blue])).values())
    assert blue_read.envelope.receiver_id == "BCX-RECEIVER"
    assert blue_read.billing_providers[0].subscribers[0].payer.payer_id == "DEMO-BCX"


async def test_replacement_and_void_carry_the_payers_claim_number(
    *,
    billing_intake: Api,
    billing_practice: Tenant,
    claims: Claims,
    renderer: Renderer,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    replaced = await claims.new(billing_intake, billing_practice, **DEMO_CODED)
    voided = await claims.new(billing_intake, billing_practice, **DEMO_CODED)
    await renderer.batches(billing_practice)  # the originals go out in a first batch
    await claims.walk(billing_practice, replaced, S.SUBMITTED, S.ACCEPTED, S.PAID, icn="ICN7000000001")
    await claims.walk(billing_practice, voided, S.SUBMITTED, S.ACCEPTED, icn="ICN8000000002")
    async with practice_scope(sessions, settings, billing_practice) as scope:
        replacement = await replace(
            scope, replaced, schemas.ReplaceClaim(reason="corrected units"), secrets=SecretResolver()
        )
        void_claim = await void(scope, voided, schemas.VoidClaim(reason="billed in error"))
    assert (replacement.frequency, void_claim.frequency) == (7, 8)
    batches = await renderer.batches(billing_practice)
    _, data = await renderer.render(billing_practice, batches["DEMO-MCR"].id)
    content = data.decode()
    assert pyx12_errors(content) == []
    assert "REF*F8*ICN7000000001~" in content
    assert "REF*F8*ICN8000000002~" in content
    written = claims_of(read_batch(data))
    assert written[replacement.patient_control_number].frequency == "7"
    assert written[replacement.patient_control_number].payer_claim_control_number == "ICN7000000001"
    assert written[void_claim.patient_control_number].frequency == "8"
    assert written[void_claim.patient_control_number].payer_claim_control_number == "ICN8000000002"
    assert written[void_claim.patient_control_number].total_charge == void_claim.total_charge_cents


async def test_what_an_837_needs_is_refused_by_name_and_nothing_is_kept(
    *,
    intake: Api,
    practice: Tenant,
    billing_intake: Api,
    billing_practice: Tenant,
    other_practice: Tenant,
    claims: Claims,
    renderer: Renderer,
    owner_engine: AsyncEngine,
) -> None:
    # A practice without an address, a TIN or a submitter contact in its manifest.
    await claims.new(intake, practice)
    [bare] = (await renderer.batches(practice)).values()
    with pytest.raises(Conflict) as refused:
        await renderer.render(practice, bare.id)
    assert sorted(e.pointer for e in refused.value.errors) == [
        "/address",
        "/submitter_contact",
        "/tin_reference",
    ]

    # A value X12 cannot carry (a delimiter in the group number) is refused naming the element.
    await claims.new(
        billing_intake,
        billing_practice,
        coverage={"payer_id": "DEMO-MCR", "member_id": "STAR01", "group_number": "GRP*1"},
    )
    [starred] = (await renderer.batches(billing_practice)).values()
    with pytest.raises(Conflict) as delimiter:
        await renderer.render(billing_practice, starred.id)
    assert [e.pointer for e in delimiter.value.errors] == ["/x12/SBR03"]
    assert "GRP" not in str(delimiter.value.errors)

    # Another practice's batch is not found.
    with pytest.raises(NotFound):
        await renderer.render(other_practice, starred.id)
    kept = await rows(
        owner_engine,
        "SELECT id FROM rcm.x12_file WHERE tenant_id IN (:a, :b)",
        a=practice.id,
        b=billing_practice.id,
    )
    assert kept == []

    # A dependent's claim names its subscriber (2010BA) and the patient apart (2000C, PAT01 19 child).
    await claims.new(billing_intake, billing_practice, **dependent_payload())
    [family] = (await renderer.batches(billing_practice)).values()
    _, sent = await renderer.render(billing_practice, family.id)
    assert b"PAT*19~" in sent
    assert pyx12_errors(sent.decode()) == []


async def test_concurrent_renders_of_one_batch_keep_one_file(
    *,
    billing_intake: Api,
    billing_practice: Tenant,
    claims: Claims,
    renderer: Renderer,
    owner_engine: AsyncEngine,
) -> None:
    await claims.new(billing_intake, billing_practice)
    [batch] = (await renderer.batches(billing_practice)).values()
    results = await asyncio.gather(*(renderer.render(billing_practice, batch.id) for _ in range(3)))
    assert len({file_id for file_id, _ in results}) == 1
    assert len({data for _, data in results}) == 1
    kept = await rows(owner_engine, "SELECT id FROM rcm.x12_file WHERE submission_batch_id = :b", b=batch.id)
    assert len(kept) == 1
