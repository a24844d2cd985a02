"""Bulk intake through the API: 202 and a job, per-line results, resubmission, CSV, resume after a crash."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.bulk.models import BulkStatus
from rcm.bulk.service import run_job
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.bulk.conftest import ndjson, run, upload
from tests.fhir import bundles
from tests.identity.conftest import make_user
from tests.support import Api, encounter_payload

pytestmark = pytest.mark.usefixtures("jobs")


async def _count(owner_engine: AsyncEngine, table: str, tenant_id: str) -> int:
    async with owner_engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(f"SELECT count(*) FROM rcm.{table} WHERE tenant_id = :t"),  # noqa: S608 - constant
                    {"t": uuid.UUID(tenant_id)},
                )
            ).scalar_one()
        )


def _broken_bundle() -> dict[str, Any]:
    """An EHR visit whose encounter names a patient that was never sent."""
    bundle = bundles.ehr_visit_bundle()
    encounter = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert bundle["entry"].index(encounter) == 2
    encounter["resource"]["subject"] = {"reference": "Patient/never-sent"}
    return bundle


async def test_ndjson_job_reports_each_line(practice_api: Api, owner_engine: AsyncEngine) -> None:
    bad = encounter_payload()
    bad["place_of_service"] = "XX"
    body = ndjson(
        encounter_payload(),
        bad,
        b"",
        b"{not json",
        bundles.ehr_visit_bundle(),
        encounter_payload(),
        _broken_bundle(),
    )
    created = await upload(practice_api, body)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] == "queued"
    assert (job["lines_read"], job["accepted"], job["rejected"]) == (0, 0, 0)

    assert await run(practice_api, job["id"]) == "done"
    done = (await practice_api.get(f"/bulk-intakes/{job['id']}")).json()
    assert done["status"] == "done"
    # The blank line 3 is not a record.
    assert (done["lines_read"], done["accepted"], done["rejected"]) == (6, 3, 3)

    results = (await practice_api.get(f"/bulk-intakes/{job['id']}/results")).json()
    by_line = {item["line"]: item for item in results["items"]}
    assert sorted(by_line) == [1, 2, 4, 5, 6, 7]
    assert by_line[1]["outcome"] == "accepted"
    assert by_line[1]["encounter_id"]
    assert by_line[2]["outcome"] == "rejected"
    assert [e["pointer"] for e in by_line[2]["errors"]] == ["/place_of_service"]
    assert by_line[4]["errors"][0]["pointer"] == ""
    # A FHIR Bundle line goes through the FHIR intake: its encounter is created like any other, and a refused
    # bundle names the entry and element (FHIRPath) and writes nothing of itself.
    assert by_line[5]["outcome"] == "accepted", by_line[5]
    bundled = await practice_api.get(f"/encounters/{by_line[5]['encounter_id']}")
    assert bundled.status_code == 200
    assert by_line[7]["outcome"] == "rejected"
    assert "Bundle.entry[2].resource.subject" in [e["pointer"] for e in by_line[7]["errors"]]
    encounter = await practice_api.get(f"/encounters/{by_line[6]['encounter_id']}")
    assert encounter.status_code == 200
    assert await _count(owner_engine, "encounter", practice_api.tenant_id) == 3

    # Paged results: one at a time, in line order.
    page = (await practice_api.get(f"/bulk-intakes/{job['id']}/results", {"limit": 2})).json()
    assert [i["line"] for i in page["items"]] == [1, 2]
    page = (
        await practice_api.get(
            f"/bulk-intakes/{job['id']}/results", {"limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    assert [i["line"] for i in page["items"]] == [4, 5]

    # Running the job again (a redelivered message) changes nothing.
    assert await run(practice_api, job["id"]) == "done"
    assert await _count(owner_engine, "encounter", practice_api.tenant_id) == 3
    assert await _count(owner_engine, "bulk_intake_line", practice_api.tenant_id) == 6


async def test_same_file_again_answers_the_first_job(practice_api: Api, owner_engine: AsyncEngine) -> None:
    body = ndjson(encounter_payload())
    first = await upload(practice_api, body, key="k1")
    assert first.status_code == 202
    replay = await upload(practice_api, body, key="k1")
    assert replay.status_code == 202
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    again = await upload(practice_api, body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    # One job, one stored copy of the file.
    assert await _count(owner_engine, "bulk_intake", practice_api.tenant_id) == 1
    assert await _count(owner_engine, "blob", practice_api.tenant_id) == 1
    other = await upload(practice_api, ndjson(encounter_payload()), key="k1")
    assert other.status_code == 422  # the key with another file


async def test_wrong_media_type_and_missing_key(practice_api: Api) -> None:
    refused = await upload(practice_api, b"x", media="application/json")
    assert refused.status_code == 415
    assert refused.json()["errors"][0]["pointer"] == "header:Content-Type"
    headers = {**practice_api.headers, "Content-Type": "text/csv"}
    missing = await practice_api.client.post(practice_api.url("/bulk-intakes"), content=b"a", headers=headers)
    assert missing.status_code == 422
    assert "Idempotency-Key" in missing.text


CSV_HEADER = (
    "external_id,service_date,place_of_service,patient_mrn,patient_given_name,patient_family_name,"
    "patient_birth_date,patient_sex,coverage_payer_id,coverage_member_id,rendering_npi,rendering_name,"
    "diagnosis_codes,line1_procedure_code,line1_charge_cents,line1_units,line1_modifiers,"
    "line1_diagnosis_pointers,line2_procedure_code,line2_charge_cents"
)


def _csv_row(*, birth: str = "1980-02-29", cents: str = "12500") -> str:
    day = (date.today() - timedelta(days=2)).isoformat()
    suffix = uuid.uuid4().hex[:8]
    return (
        f'ENC-{suffix},{day},11,MRN-{suffix},Testy,"Fakename, Jr",{birth},female,DEMO-MCR,M{suffix},'
        f"1234567893,Dr Example Fake,E11.9|I10,99213,{cents},1,25,1|2,85025,1650"
    )


async def test_csv_job_names_line_and_column(practice_api: Api) -> None:
    body = "\n".join([CSV_HEADER, _csv_row(), _csv_row(birth="1980-13-45"), _csv_row(cents="12.50")]) + "\n"
    created = await upload(practice_api, body.encode(), media="text/csv")
    assert created.status_code == 202, created.text
    assert await run(practice_api, created.json()["id"]) == "done"
    results = (await practice_api.get(f"/bulk-intakes/{created.json()['id']}/results")).json()["items"]
    assert [(r["line"], r["outcome"]) for r in results] == [(2, "accepted"), (3, "rejected"), (4, "rejected")]
    assert results[1]["errors"][0]["column"] == "patient_birth_date"
    assert results[2]["errors"][0]["column"] == "line1_charge_cents"
    encounter = (await practice_api.get(f"/encounters/{results[0]['encounter_id']}")).json()
    assert [c["procedure_code"] for c in encounter["charges"]] == ["99213", "85025"]
    assert encounter["charges"][0]["modifiers"] == ["25"]
    assert encounter["total_charge_cents"] == 12500 + 1650


async def test_csv_with_unknown_columns_fails_the_job(practice_api: Api) -> None:
    created = await upload(practice_api, b"external_id,ssn\nX,1\n", media="text/csv")
    assert await run(practice_api, created.json()["id"]) == "failed"
    job = (await practice_api.get(f"/bulk-intakes/{created.json()['id']}")).json()
    assert job["failure"] == "unknown CSV columns: ssn"


async def test_resume_after_a_crash_never_duplicates(
    practice_api: Api,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    lines = [encounter_payload() for _ in range(7)]
    created = await upload(practice_api, ndjson(*lines))
    job_id = uuid.UUID(created.json()["id"])
    tenant_id = TenantId(uuid.UUID(practice_api.tenant_id))
    keystore, store = KeyStore(key_provider(settings)), BlobStore()

    async def go(stop: int | None) -> BulkStatus:
        return await run_job(
            sessions,
            keystore,
            store,
            tenant_id,
            job_id,
            batch_lines=3,
            skew=timedelta(days=1),
            stop_after_batches=stop,
        )

    # The worker dies after its first batch committed.
    assert await go(1) == BulkStatus.RUNNING
    partial = (await practice_api.get(f"/bulk-intakes/{job_id}")).json()
    assert (partial["status"], partial["lines_read"], partial["accepted"]) == ("running", 3, 3)
    assert await _count(owner_engine, "encounter", practice_api.tenant_id) == 3
    # Redelivered: it resumes after line 3.
    assert await go(None) == BulkStatus.DONE
    done = (await practice_api.get(f"/bulk-intakes/{job_id}")).json()
    assert (done["status"], done["lines_read"], done["accepted"], done["rejected"]) == ("done", 7, 7, 0)
    assert await _count(owner_engine, "encounter", practice_api.tenant_id) == 7
    assert await _count(owner_engine, "bulk_intake_line", practice_api.tenant_id) == 7


async def test_other_practice_sees_no_job(practice_api: Api, other_practice_api: Api) -> None:
    created = await upload(practice_api, ndjson(encounter_payload()))
    job_id = created.json()["id"]
    assert (await other_practice_api.get(f"/bulk-intakes/{job_id}")).status_code == 404
    assert (await other_practice_api.get(f"/bulk-intakes/{job_id}/results")).status_code == 404


async def test_assigned_staff_see_the_job_and_others_do_not(
    practice_api: Api,
    control_sessions: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
) -> None:
    created = await upload(practice_api, ndjson(encounter_payload()))
    job_id = created.json()["id"]
    await run(practice_api, job_id)

    async def coder(assigned: bool) -> Api:
        user = await make_user(control_sessions, ["coder"])
        if assigned:
            async with platform_transaction(control_sessions) as session:
                await assign_staff(session, TenantId(tenant.id), [user.email])
        principal = user_principal(Role.CODER, user_id=user.id)
        token = await mint_access_token(principal, sessions=sessions, settings=settings)
        return Api(practice_api.client, token, tenant.slug, tenant_id=str(tenant.id))

    staff = await coder(assigned=True)
    seen = await staff.get(f"/bulk-intakes/{job_id}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["accepted"] == 1
    assert (await staff.get(f"/bulk-intakes/{job_id}/results")).status_code == 200
    stranger = await coder(assigned=False)
    assert (await stranger.get(f"/bulk-intakes/{job_id}")).status_code == 404


async def test_the_job_acts_for_its_submitter_on_record(practice_api: Api, owner_engine: AsyncEngine) -> None:
    created = await upload(practice_api, ndjson(encounter_payload()))
    await run(practice_api, created.json()["id"])
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT actor_kind, client_id, detail->>'access' FROM rcm.audit_event"
                    " WHERE tenant_id = :t AND event_type = 'encounter.create'"
                ),
                {"t": uuid.UUID(practice_api.tenant_id)},
            )
        ).all()
    assert len(rows) == 1
    kind, client_id, access = rows[0]
    assert kind == "client"
    assert client_id.startswith("rcm_c_")
    assert access == "job:bulk.run_intake"
