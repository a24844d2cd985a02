"""Eligibility checks against the sandbox payer: a 270 built from the coverage, the 271 read into a stored
result per service type, refusals kept with their reason, raw files kept encrypted and linked, an inactive
coverage holding its claim back, and nothing of it visible to another practice."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.building import claims_for_clean_scrub
from rcm.config import Settings
from rcm.eligibility.models import CheckStatus
from rcm.eligibility.reading import REFUSED_999, read_answer
from rcm.eligibility.schemas import EligibilityCheckCreate
from rcm.eligibility.service import check_eligibility
from rcm.identity.principal import Role
from rcm.kit.errors import ServiceUnavailable
from rcm.kit.secrets import SecretResolver
from rcm.payers.breaker import MemoryBreaker, breaker_key
from rcm.scrub.service import load_scrub_input
from rcm.tenancy.models import Tenant
from rcm.x12.model import Envelope
from sandbox_payer import payer as sandbox
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.support import Api, encounter_payload


async def _coverage(api: Api, claims: Claims, member_id: str) -> tuple[dict[str, Any], str]:
    payload = encounter_payload(
        coverage={"payer_id": "DEMO-MCR", "member_id": member_id, "relationship": "self"}
    )
    encounter = await claims.encounter(api, **{k: v for k, v in payload.items() if k != "external_id"})
    listed = await api.get(f"/patients/{encounter['patient_id']}/coverages")
    assert listed.status_code == 200, listed.text
    return encounter, listed.json()[0]["id"]


def _path(encounter: dict[str, Any], coverage_id: str) -> str:
    return f"/patients/{encounter['patient_id']}/coverages/{coverage_id}/eligibility-checks"


async def test_an_active_coverage_is_read_per_service_type_and_kept_encrypted(
    *,
    intake: Api,
    other_intake: Api,
    claims: Claims,
    practice: Tenant,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    encounter, coverage_id = await _coverage(intake, claims, f"M{uuid.uuid4().hex[:10]}")
    path = _path(encounter, coverage_id)
    created = await intake.post(path, {"service_types": ["98", "30"]})
    assert created.status_code == 201, created.text
    check = created.json()
    assert check["status"] == "active"
    assert check["coverage_id"] == coverage_id
    assert check["plan_begin"] == date(datetime.now(UTC).year, 1, 1).isoformat()
    benefits = {(b["service_type"], b["network"]): b for b in check["benefits"]}
    # The sandbox's defaults: office visit (98) copay $25, others $30, 20 % coinsurance, $1,500 deductible.
    assert benefits[("98", "in")]["copay_cents"] == 2500
    assert benefits[("98", "in")]["coinsurance_basis_points"] == 2000
    assert benefits[("30", "in")]["copay_cents"] == 3000
    assert benefits[("30", "in")]["deductible_cents"] == 150000
    assert benefits[("98", "in")]["deductible_cents"] is None

    # The 270 and the 271, kept as encrypted blobs and linked from the check.
    files = await rows(
        owner_engine,
        "SELECT id, direction, kind, blob_id FROM rcm.x12_file WHERE tenant_id = :t ORDER BY direction",
        t=practice.id,
    )
    kept = {str(f.id): f for f in files}
    assert kept[check["request_file_id"]].kind == "270"
    assert kept[check["request_file_id"]].direction == "outbound"
    assert kept[check["response_file_id"]].kind == "271"
    chunks = await rows(
        owner_engine,
        "SELECT data FROM rcm.blob_chunk WHERE tenant_id = :t AND blob_id = ANY (:b)",
        t=practice.id,
        b=[f.blob_id for f in files],
    )
    assert chunks
    assert all(b"ISA" not in bytes(c.data) and b"Fakename" not in bytes(c.data) for c in chunks)
    audited = await rows(
        owner_engine,
        "SELECT event_type FROM rcm.audit_event WHERE tenant_id = :t AND :c = ANY (resource_ids)",
        t=practice.id,
        c=uuid.UUID(check["id"]),
    )
    assert "eligibility_check.create" in {a.event_type for a in audited}

    # Read back by the practice and by a biller assigned to it; another practice sees nothing.
    listed = await intake.get(path)
    assert [c["id"] for c in listed.json()] == [check["id"]]
    one = await intake.get(f"{path}/{check['id']}")
    assert one.status_code == 200
    assert one.json() == check
    biller = await make_staff(Role.BILLER, practice)
    staff_read = await biller.get(f"/tenants/{practice.slug}{path}/{check['id']}")
    assert staff_read.status_code == 200, staff_read.text
    by_id = await biller.get(f"/tenants/{practice.slug}/eligibility-checks/{check['id']}")
    assert by_id.status_code == 200, by_id.text
    assert by_id.json() == check
    assert (await other_intake.get(f"/eligibility-checks/{check['id']}")).status_code == 404
    theirs = await other_intake.get(f"{path}/{check['id']}", slug=practice.slug)
    assert theirs.status_code == 404
    theirs_own_path = await other_intake.get(f"{path}/{check['id']}")
    assert theirs_own_path.status_code == 404


async def test_a_member_the_payer_does_not_know_is_refused_with_its_aaa_reason(
    intake: Api, claims: Claims
) -> None:
    encounter, coverage_id = await _coverage(intake, claims, "NOTFOUND77")
    created = await intake.post(_path(encounter, coverage_id), {})
    assert created.status_code == 201, created.text
    check = created.json()
    assert check["status"] == "refused"
    assert check["reject_reason"] == "75"
    assert check["reject_text"] == "Subscriber/insured not found"
    assert check["benefits"] == []
    assert check["response_file_id"]


def test_a_999_refusing_the_270_reads_as_refused() -> None:
    now = datetime.now(UTC)
    fallback = Envelope(
        sender_id="PAYER", receiver_id="US", interchange_control_number=1, group_control_number=1, created=now
    )
    refusal = sandbox.refusal_999(
        b"not x12 at all", functional_id="HS", control=7, now=now, fallback=fallback
    )
    result = read_answer(refusal.encode())
    assert result.status is CheckStatus.REFUSED
    assert result.reject_reason == REFUSED_999
    assert read_answer(b"ISA*garbage").status is CheckStatus.UNKNOWN


async def test_an_inactive_coverage_holds_its_claim_back_with_an_eligibility_item(
    *,
    intake: Api,
    claims: Claims,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    encounter, coverage_id = await _coverage(intake, claims, "INACT42")
    created = await intake.post(_path(encounter, coverage_id), {})
    assert created.status_code == 201, created.text
    check = created.json()
    assert check["status"] == "inactive"
    for _ in range(2):  # a second clean scrub joins the same item
        async with practice_scope(sessions, settings, practice) as scope:
            data = await load_scrub_input(scope, uuid.UUID(encounter["id"]), lock=True)
            assert await claims_for_clean_scrub(scope, data, now=datetime.now(UTC)) is None
    built = await rows(
        owner_engine,
        "SELECT id FROM rcm.claim WHERE tenant_id = :t AND encounter_id = :e",
        t=practice.id,
        e=uuid.UUID(encounter["id"]),
    )
    assert built == []
    items = await rows(
        owner_engine,
        "SELECT subject_type, subject_id, reason, status FROM rcm.work_item"
        " WHERE tenant_id = :t AND kind = 'billing'",
        t=practice.id,
    )
    assert [(i.subject_type, str(i.subject_id), i.reason, i.status) for i in items] == [
        ("eligibility_check", check["id"], "eligibility", "open")
    ]


async def test_a_coverage_never_checked_is_billed_as_before(
    intake: Api, claims: Claims, practice: Tenant, owner_engine: AsyncEngine
) -> None:
    claim_id = await claims.new(intake, practice)
    assert isinstance(claim_id, uuid.UUID)
    # No check, no hold: nothing waits on an eligibility work item.
    items = await rows(
        owner_engine,
        "SELECT id FROM rcm.work_item WHERE tenant_id = :t AND subject_type = 'eligibility_check'",
        t=practice.id,
    )
    assert items == []


async def test_a_connector_that_cannot_be_configured_is_a_502_and_stores_nothing(
    intake: Api, claims: Claims, practice: Tenant, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    encounter, coverage_id = await _coverage(intake, claims, f"M{uuid.uuid4().hex[:10]}")
    monkeypatch.delenv("DEMO_MCR_CREDENTIALS")
    refused = await intake.post(_path(encounter, coverage_id), {})
    assert refused.status_code == 502, refused.text
    assert "DEMO_MCR" not in refused.text
    assert "DEMO-MCR" in refused.json()["detail"]
    stored = await rows(
        owner_engine, "SELECT id FROM rcm.eligibility_check WHERE tenant_id = :t", t=practice.id
    )
    assert stored == []


async def test_a_payer_whose_circuit_is_open_is_a_503_and_is_not_asked(
    *,
    intake: Api,
    claims: Claims,
    practice: Tenant,
    owner_engine: AsyncEngine,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    encounter, coverage_id = await _coverage(intake, claims, f"M{uuid.uuid4().hex[:10]}")
    breaker = MemoryBreaker(failures=1, cooldown_seconds=600.0)
    await breaker.record_failure(breaker_key("sandbox", "sandbox:eligibility"))  # the payer failed just now

    async def check() -> object:
        async with practice_scope(sessions, settings, practice) as scope:
            return await check_eligibility(
                scope,
                uuid.UUID(encounter["patient_id"]),
                uuid.UUID(coverage_id),
                EligibilityCheckCreate(),
                store=BlobStore.from_settings(settings),
                secrets=SecretResolver(None),
                deadline_seconds=10.0,
                breaker=breaker,
            )

    with pytest.raises(ServiceUnavailable, match="DEMO-MCR is not answering at the moment"):
        await check()
    stored = await rows(
        owner_engine, "SELECT id FROM rcm.eligibility_check WHERE tenant_id = :t", t=practice.id
    )
    assert stored == []
    await breaker.record_success(breaker_key("sandbox", "sandbox:eligibility"))
    assert await check() is not None  # closed again: the payer is asked


async def test_a_bad_service_type_is_a_422_naming_the_field(intake: Api, claims: Claims) -> None:
    encounter, coverage_id = await _coverage(intake, claims, f"M{uuid.uuid4().hex[:10]}")
    refused = await intake.post(_path(encounter, coverage_id), {"service_types": ["not a code"]})
    assert refused.status_code in (400, 422), refused.text
    assert "service_types" in refused.text
