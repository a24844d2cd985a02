"""Institutional practices (manifest ``claim_type: institutional``): their encounters carry the 837I facts
(type of bill, statement period, admission, patient status, attending provider) and revenue codes, pass
the institutional scrub edits, are built into claims typed institutional, batched apart from professional
claims, and rendered as an 837I that pyx12 validates with zero errors."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.batches import build_batches
from rcm.claims.rendering import render_batch
from rcm.claims.schemas import ReplaceClaim, VoidClaim
from rcm.claims.service import replace, void
from rcm.claims.states import ClaimState as S
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.kit.errors import Conflict
from rcm.kit.secrets import SecretResolver
from rcm.scrub.schemas import ScrubReport
from rcm.scrub.service import scrub_encounter
from rcm.tenancy.models import Tenant
from rcm.x12.claims837_read import read_batch
from tests.claims.conftest import Claims, practice_scope, rows
from tests.support import Api, encounter_payload
from tests.x12.pyx12check import pyx12_errors

ATTENDING = {"npi": "1245319599", "family_name": "Attendfake", "given_name": "Alma"}


def institutional_payload(**overrides: Any) -> dict[str, Any]:
    """An outpatient hospital visit (type of bill 131) with revenue-coded lines the demo code sets know."""
    day = date.today() - timedelta(days=3)
    fields: dict[str, Any] = {
        "service_date": day.isoformat(),
        "place_of_service": "22",
        "institutional": {
            "type_of_bill": "0131",
            "statement_start": day.isoformat(),
            "statement_end": day.isoformat(),
            "admission_date": day.isoformat(),
            "admission_hour": 9,
            "admission_type": "3",
            "admission_source": "1",
            "patient_status": "01",
            "attending_provider": ATTENDING,
            "admitting_diagnosis": "E11.9",
        },
        "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
        "charges": [
            {
                "procedure_code": "99213",
                "revenue_code": "0510",
                "charge_cents": 12500,
                "units": 1,
                "diagnosis_pointers": [1, 2],
            }
        ],
        **overrides,
    }
    return encounter_payload(**fields)


async def test_an_institutional_encounter_round_trips_its_facts(
    institutional_api: Api, owner_engine: AsyncEngine
) -> None:
    created = await institutional_api.post("/encounters", institutional_payload())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["claim_type"] == "institutional"
    facts = body["institutional"]
    assert facts["type_of_bill"] == "131"  # the form's leading zero dropped
    assert facts["attending_provider"] == ATTENDING
    assert facts["admitting_diagnosis"] == "E119"
    assert body["charges"][0]["revenue_code"] == "0510"
    [stored] = await rows(
        owner_engine,
        "SELECT claim_type, type_of_bill, patient_status, attending_npi FROM rcm.encounter WHERE id = :id",
        id=body["id"],
    )
    assert tuple(stored) == ("institutional", "131", "01", "1245319599")


async def test_bad_institutional_facts_are_a_422_naming_the_field(institutional_api: Api) -> None:
    payload = institutional_payload()
    payload["charges"][0]["revenue_code"] = "510"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/charges/0/revenue_code"]

    payload = institutional_payload()
    payload["institutional"]["statement_end"] = "2020-01-01"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/institutional/statement_end"]

    payload = institutional_payload()
    payload["institutional"]["type_of_bill"] = "9X1"
    refused = await institutional_api.post("/encounters", payload)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/institutional/type_of_bill"]


async def test_a_professional_encounter_refuses_institutional_facts(practice_api: Api) -> None:
    refused = await practice_api.post("/encounters", institutional_payload())
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/charges/0/revenue_code", "/institutional"]
    # Naming the claim type on the encounter overrides the practice's.
    created = await practice_api.post("/encounters", institutional_payload(claim_type="institutional"))
    assert created.status_code == 201, created.text
    assert created.json()["claim_type"] == "institutional"


INSTITUTIONAL_RULES = {
    "BILL-TYPE@2026.1",
    "REVENUE-CODES@2026.1",
    "ATTENDING-NPI@2026.1",
    "ADMISSION@2026.1",
    "STATEMENT-PERIOD@2026.1",
}


async def _scrub(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    encounter_id: str,
    *,
    dry_run: bool = False,
) -> ScrubReport:
    async with practice_scope(sessions, settings, tenant) as scope:
        return await scrub_encounter(
            scope, uuid.UUID(encounter_id), dry_run=dry_run, secrets=SecretResolver()
        )


async def _render_all(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tenant: Tenant
) -> list[tuple[str, str]]:
    """Every batch the practice's ready claims make: (claim type, the 837 as rendered)."""
    store = BlobStore.from_settings(settings)
    async with practice_scope(sessions, settings, tenant) as scope:
        batches = await build_batches(scope)
    out = []
    for batch in batches:
        async with practice_scope(sessions, settings, tenant) as scope:
            row = await render_batch(scope, store, batch.id, secrets=SecretResolver())
            out.append((batch.claim_type.value, (await files.read(scope, store, row)).decode()))
    return out


async def test_an_institutional_encounter_goes_from_intake_to_a_valid_837i(
    *,
    institutional_api: Api,
    institutional_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    created = await institutional_api.post("/encounters", institutional_payload())
    assert created.status_code == 201, created.text
    report = await _scrub(sessions, settings, institutional_practice, created.json()["id"])
    statuses = {r.rule: r.status.value for r in report.rules}
    assert {rule: statuses[rule] for rule in INSTITUTIONAL_RULES} == dict.fromkeys(
        INSTITUTIONAL_RULES, "passed"
    )
    assert report.outcome.value == "clean", report.fired
    assert report.claim_id is not None
    [claim] = await rows(
        owner_engine,
        "SELECT c.claim_type, l.revenue_code FROM rcm.claim c JOIN rcm.claim_line l"
        " ON l.tenant_id = c.tenant_id AND l.claim_id = c.id WHERE c.id = :id",
        id=report.claim_id,
    )
    assert tuple(claim) == ("institutional", "0510")

    [(claim_type, content)] = await _render_all(sessions, settings, institutional_practice)
    assert claim_type == "institutional"
    assert pyx12_errors(content) == []
    segments = [s.strip() for s in content.split("~")]
    assert "005010X223A2" in content
    assert "005010X222A1" not in content
    [clm] = [s for s in segments if s.startswith("CLM*")]
    assert clm.split("*")[5] == "13:A:1"  # facility type 13 (hospital outpatient), claim frequency 1
    assert any(s.startswith("SV2*0510*HC:99213*125*UN*1") for s in segments)
    assert "CL1*3*1*01" in segments
    assert "HI*ABJ:E119" in segments
    assert any(s.startswith("NM1*71*1*Attendfake*Alma") for s in segments)
    assert any(s.startswith("DTP*434*RD8*") for s in segments)
    kept = await rows(
        owner_engine,
        "SELECT f.kind, b.claim_type FROM rcm.x12_file f JOIN rcm.submission_batch b"
        " ON b.tenant_id = f.tenant_id AND b.id = f.submission_batch_id WHERE f.tenant_id = :t",
        t=institutional_practice.id,
    )
    assert [tuple(k) for k in kept] == [("837I", "institutional")]  # downloaded as 837I-<ISA13>.x12
    # Our reader gives the same facts back.
    [read] = [c for p in read_batch(content).billing_providers for loop in p.subscribers for c in loop.claims]
    assert read.institutional is not None
    assert read.institutional.patient_status == "01"
    assert [line.revenue_code for line in read.lines] == ["0510"]


async def test_a_practice_billing_both_types_gets_one_batch_per_type(
    *,
    institutional_api: Api,
    institutional_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await claims.new(institutional_api, institutional_practice, **institutional_payload())
    await claims.new(institutional_api, institutional_practice, **institutional_payload())
    # An encounter of the same practice naming its own claim type: billed on an 837P.
    await claims.new(institutional_api, institutional_practice, claim_type="professional")

    rendered = await _render_all(sessions, settings, institutional_practice)
    assert sorted(claim_type for claim_type, _ in rendered) == ["institutional", "professional"]
    for claim_type, content in rendered:
        assert pyx12_errors(content) == []
        assert content.count("~GS*") + content.startswith("GS*") == 1  # one functional group: one guide
        guide = "005010X223A2" if claim_type == "institutional" else "005010X222A1"
        assert guide in content
        assert content.count("CLM*") == (2 if claim_type == "institutional" else 1)


async def test_the_scrub_names_what_an_institutional_claim_lacks(
    *,
    institutional_api: Api,
    institutional_practice: Tenant,
    practice_api: Api,
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    day = date.today() - timedelta(days=3)
    payload = institutional_payload()
    facts = payload["institutional"]
    facts["type_of_bill"] = "0137"  # a replacement: the claims workflow's, not an encounter's
    del facts["patient_status"]
    facts["attending_provider"] = {**ATTENDING, "npi": "1245319598"}  # fails its check digit
    facts["statement_start"] = facts["admission_date"] = day.isoformat()
    payload["charges"] = [
        {**payload["charges"][0], "service_date": (day - timedelta(days=1)).isoformat()},
        {"procedure_code": "36415", "charge_cents": 1500, "diagnosis_pointers": [1]},
    ]
    created = await institutional_api.post("/encounters", payload)
    assert created.status_code == 201, created.text
    report = await _scrub(sessions, settings, institutional_practice, created.json()["id"], dry_run=True)
    assert report.outcome.value == "failed"
    assert set(report.fired) >= INSTITUTIONAL_RULES
    messages = {r.rule: " ".join(f.message for f in r.findings) for r in report.rules}
    assert "frequency 7" in messages["BILL-TYPE@2026.1"]
    assert "Line 2 (36415) has no revenue code (charges/revenue_code)" in messages["REVENUE-CODES@2026.1"]
    assert "1245319598 fails its check digit" in messages["ATTENDING-NPI@2026.1"]
    assert "no patient status (institutional/patient_status)" in messages["ADMISSION@2026.1"]
    assert "outside the statement period" in messages["STATEMENT-PERIOD@2026.1"]
    assert "Testy" not in str(messages)
    assert "Fakename" not in str(messages)

    # A professional practice's scrub runs none of the 837I edits (its rules are as before).
    created = await practice_api.post("/encounters", encounter_payload())
    assert created.status_code == 201, created.text
    report = await _scrub(sessions, settings, tenant, created.json()["id"], dry_run=True)
    assert not INSTITUTIONAL_RULES & {r.rule for r in report.rules}


async def test_institutional_replacement_and_void_go_out_as_837i(
    *,
    institutional_api: Api,
    institutional_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    replaced = await claims.new(institutional_api, institutional_practice, **institutional_payload())
    voided = await claims.new(institutional_api, institutional_practice, **institutional_payload())
    await _render_all(sessions, settings, institutional_practice)  # the originals go out first
    await claims.walk(institutional_practice, replaced, S.SUBMITTED, S.ACCEPTED, icn="ICN7000000001")
    await claims.walk(institutional_practice, voided, S.SUBMITTED, S.ACCEPTED, icn="ICN8000000002")
    async with practice_scope(sessions, settings, institutional_practice) as scope:
        await replace(scope, replaced, ReplaceClaim(reason="corrected charges"), secrets=SecretResolver())
        await void(scope, voided, VoidClaim(reason="billed in error"))
    [(claim_type, content)] = await _render_all(sessions, settings, institutional_practice)
    assert claim_type == "institutional"
    assert pyx12_errors(content) == []
    frequencies = sorted(s.split("*")[5] for s in content.split("~") if s.strip().startswith("CLM*"))
    assert frequencies == ["13:A:7", "13:A:8"]  # the type of bill's facility code, the claim's frequency
    assert "REF*F8*ICN7000000001" in content
    assert "REF*F8*ICN8000000002" in content


async def test_an_institutional_claim_without_its_facts_is_not_rendered(
    *,
    institutional_api: Api,
    institutional_practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    """Built without the scrub (which would have named the gaps first), the renderer refuses by name."""
    payload = institutional_payload()
    del payload["institutional"]
    await claims.new(institutional_api, institutional_practice, **payload)
    with pytest.raises(Conflict) as refused:
        await _render_all(sessions, settings, institutional_practice)
    details = sorted(e.detail for e in refused.value.errors)
    assert details == [
        "lacks attending provider (837I 2310A)",
        "lacks patient status (837I CL103)",
        "lacks type of bill (837I CLM05)",
    ]
