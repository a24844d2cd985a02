"""Lines of a batch share one lookup and one write, and still come out as a line-by-line run would: the same
per-line results, the same records, nothing doubled after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.bulk.models import BulkStatus
from rcm.bulk.repository import BulkIntakeRepository
from rcm.bulk.service import run_job
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.kit.tenant import TenantId
from rcm.providers.npi import npi_check_digit_valid
from tests.bulk.conftest import ndjson, upload
from tests.support import Api, encounter_payload, patient_payload

pytestmark = pytest.mark.usefixtures("jobs")

Sessions = async_sessionmaker[AsyncSession]


def _npi(prefix: str, *, valid: bool) -> str:
    """A ten-digit NPI starting with ``prefix`` whose check digit passes (or fails)."""
    return next(
        npi for npi in (f"{prefix}{digit}" for digit in "0123456789") if npi_check_digit_valid(npi) is valid
    )


def _mixed_file() -> list[dict[str, Any]]:
    """Lines that depend on each other the way a real export does: the same new patient twice, an external
    id twice, new providers named again, and refusals in between."""
    patient = patient_payload()
    member = {"payer_id": "DEMO-MCR", "member_id": f"M{uuid.uuid4().hex[:10]}", "relationship": "self"}
    new_provider = {"npi": _npi("198765432", valid=True), "name": "Dr Batch Fake"}
    first = encounter_payload(patient=patient, coverage=member, rendering_provider=new_provider)
    refused = encounter_payload(place_of_service="XX")
    return [
        first,
        # The same new patient, coverage and provider: found, not created again.
        encounter_payload(patient=patient, coverage=member, rendering_provider=new_provider),
        # The external id of line 1: taken by then.
        encounter_payload(external_id=first["external_id"]),
        refused,
        # The MRN of line 1's patient, another family name: refused, as against a stored patient.
        encounter_payload(patient={**patient, "family_name": "Someoneelse"}),
        # A typo of the new provider's NPI (its check digit fails): the provider of that name.
        encounter_payload(rendering_provider={**new_provider, "npi": _npi("198765432", valid=False)}),
        encounter_payload(patient_id=str(uuid.uuid4()), patient=None),
        # A refused line reserves nothing: its external id is free for a later line.
        encounter_payload(external_id=refused["external_id"]),
        # Two new patients named by one new billing provider.
        encounter_payload(billing_provider={"npi": _npi("176543210", valid=True), "name": "Batch Group"}),
        encounter_payload(billing_provider={"npi": _npi("176543210", valid=True), "name": "Batch Group"}),
    ]


async def _run(
    sessions: Sessions, settings: Settings, api: Api, job_id: str, *, batch_lines: int
) -> BulkStatus:
    return await run_job(
        sessions,
        KeyStore(key_provider(settings)),
        BlobStore(),
        TenantId(uuid.UUID(api.tenant_id)),
        uuid.UUID(job_id),
        batch_lines=batch_lines,
        skew=timedelta(days=1),
    )


async def _results(api: Api, job_id: str) -> list[dict[str, Any]]:
    page = (await api.get(f"/bulk-intakes/{job_id}/results", {"limit": 100})).json()
    return list(page["items"])


async def _counts(owner_engine: AsyncEngine, tenant_id: str) -> dict[str, int]:
    tables = ("patient", "coverage", "provider", "encounter", "diagnosis", "work_item", "bulk_intake_line")
    async with owner_engine.connect() as conn:
        return {
            table: int(
                (
                    await conn.execute(
                        text(f"SELECT count(*) FROM rcm.{table} WHERE tenant_id = :t"),  # noqa: S608 - constant
                        {"t": uuid.UUID(tenant_id)},
                    )
                ).scalar_one()
            )
            for table in tables
        }


async def _encounters_per_create_event(owner_engine: AsyncEngine, tenant_id: str) -> list[int]:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT cardinality(resource_ids) FROM rcm.audit_event"
                " WHERE tenant_id = :t AND event_type = 'encounter.create'"
            ),
            {"t": uuid.UUID(tenant_id)},
        )
        return [int(n) for n in found.scalars()]


async def test_a_batch_gives_what_a_line_by_line_run_gives(
    practice_api: Api,
    other_practice_api: Api,
    owner_engine: AsyncEngine,
    sessions: Sessions,
    settings: Settings,
) -> None:
    lines = _mixed_file()
    # The same lines in two practices: one line per batch (each line sees the committed ones before it)
    # and all of them in one batch.
    one_by_one = await upload(practice_api, ndjson(*lines))
    together = await upload(other_practice_api, ndjson(*copy.deepcopy(lines)))
    assert await _run(sessions, settings, practice_api, one_by_one.json()["id"], batch_lines=1) == "done"
    assert await _run(sessions, settings, other_practice_api, together.json()["id"], batch_lines=50) == "done"

    sequential = await _results(practice_api, one_by_one.json()["id"])
    batched = await _results(other_practice_api, together.json()["id"])
    assert [(r["line"], r["outcome"], r["errors"]) for r in batched] == [
        (r["line"], r["outcome"], r["errors"]) for r in sequential
    ]
    assert await _counts(owner_engine, other_practice_api.tenant_id) == await _counts(
        owner_engine, practice_api.tenant_id
    )

    # The batch was written whole (a line it resolved wrongly would have failed the write, and the lines
    # been taken again one by one, each with an event of its own): one event for its six encounters.
    events = await _encounters_per_create_event(owner_engine, other_practice_api.tenant_id)
    assert events == [6]

    by_line = {r["line"]: r for r in batched}
    assert [n for n, r in by_line.items() if r["outcome"] == "rejected"] == [3, 4, 5, 7]
    assert by_line[3]["errors"] == [{"pointer": "/external_id", "detail": "already exists"}]
    assert [e["pointer"] for e in by_line[4]["errors"]] == ["/place_of_service"]
    assert [e["pointer"] for e in by_line[5]["errors"]] == ["/patient/mrn"]
    assert by_line[7]["errors"] == [{"pointer": "/patient_id", "detail": "does not exist"}]

    async def encounter(line: int) -> dict[str, Any]:
        found = await other_practice_api.get(f"/encounters/{by_line[line]['encounter_id']}")
        assert found.status_code == 200
        return dict(found.json())

    first, second, typo = await encounter(1), await encounter(2), await encounter(6)
    assert second["patient_id"] == first["patient_id"]
    assert second["coverage_id"] == first["coverage_id"]
    assert second["rendering_provider_id"] == first["rendering_provider_id"]
    assert typo["rendering_provider_id"] == first["rendering_provider_id"]
    assert (await encounter(9))["billing_provider_id"] == (await encounter(10))["billing_provider_id"]
    # The typo is accepted and flagged for the scrub, in the batch as on its own.
    status = (await other_practice_api.get(f"/encounters/{by_line[6]['encounter_id']}/status")).json()
    assert status["history"][0]["note"] == "npi_check_digit_failed"


async def test_a_batch_prepared_while_the_one_before_is_written_finds_what_that_one_creates(
    practice_api: Api, owner_engine: AsyncEngine, sessions: Sessions, settings: Settings
) -> None:
    """Two lines per batch: each batch is looked up and resolved while the batch before it is still being
    written (not committed, so not found by the lookup), and comes out as a line-by-line run would."""
    created = (await upload(practice_api, ndjson(*_mixed_file()))).json()
    before = await _counts(owner_engine, practice_api.tenant_id)
    assert await _run(sessions, settings, practice_api, created["id"], batch_lines=2) == "done"

    by_line = {r["line"]: r for r in await _results(practice_api, created["id"])}
    assert [n for n, r in by_line.items() if r["outcome"] == "rejected"] == [3, 4, 5, 7]
    # Line 3 names line 1's external id from the next batch (line 1 written, not yet committed).
    assert by_line[3]["errors"] == [{"pointer": "/external_id", "detail": "already exists"}]
    assert [e["pointer"] for e in by_line[5]["errors"]] == ["/patient/mrn"]

    async def encounter(line: int) -> dict[str, Any]:
        return dict((await practice_api.get(f"/encounters/{by_line[line]['encounter_id']}")).json())

    first, typo = await encounter(1), await encounter(6)
    assert typo["rendering_provider_id"] == first["rendering_provider_id"]
    assert (await encounter(9))["billing_provider_id"] == (await encounter(10))["billing_provider_id"]
    after = await _counts(owner_engine, practice_api.tenant_id)
    assert after["encounter"] - before["encounter"] == 6
    assert after["coverage"] - before["coverage"] == 5  # lines 1-2 share one; 6, 8, 9, 10 have their own
    # Every batch wrote what it had prepared ahead (a fallback would record one event per line): batches
    # (1, 2), (3, 4), (5, 6), (7, 8), (9, 10) accept 2, 0, 1, 1 and 2 encounters.
    assert sorted(await _encounters_per_create_event(owner_engine, practice_api.tenant_id)) == [1, 1, 2, 2]


async def test_a_crash_inside_a_batch_leaves_nothing_and_the_rerun_doubles_nothing(
    practice_api: Api,
    owner_engine: AsyncEngine,
    sessions: Sessions,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patient = patient_payload()
    lines = [encounter_payload(patient=patient) for _ in range(4)] + [encounter_payload(place_of_service="X")]
    created = (await upload(practice_api, ndjson(*lines))).json()
    before = await _counts(owner_engine, practice_api.tenant_id)
    record_lines = BulkIntakeRepository.add_lines

    async def dies(self: BulkIntakeRepository, job: Any, rows: list[dict[str, Any]]) -> None:
        raise RuntimeError("the worker died")  # after the batch's records were written, before its commit

    # The worker dies in the middle of its first batch (records written, line outcomes not yet).
    monkeypatch.setattr(BulkIntakeRepository, "add_lines", dies)
    with pytest.raises(RuntimeError):
        await _run(sessions, settings, practice_api, created["id"], batch_lines=3)
    assert await _counts(owner_engine, practice_api.tenant_id) == before
    # Redelivered: it starts the batch again from its first line.
    monkeypatch.setattr(BulkIntakeRepository, "add_lines", record_lines)
    assert await _run(sessions, settings, practice_api, created["id"], batch_lines=3) == "done"
    assert await _run(sessions, settings, practice_api, created["id"], batch_lines=3) == "done"
    after = await _counts(owner_engine, practice_api.tenant_id)
    assert after["encounter"] - before["encounter"] == 4
    assert after["patient"] - before["patient"] == 1  # one new patient, named by four lines
    assert after["bulk_intake_line"] - before["bulk_intake_line"] == 5
    job = (await practice_api.get(f"/bulk-intakes/{created['id']}")).json()
    assert (job["status"], job["lines_read"], job["accepted"], job["rejected"]) == ("done", 5, 4, 1)
    events = sum(await _encounters_per_create_event(owner_engine, practice_api.tenant_id))
    assert events == 4  # the rolled-back batch's audit events went with it


@contextlib.asynccontextmanager
async def _rival_holding(owner_engine: AsyncEngine, stored_id: str, external_id: str) -> AsyncIterator[None]:
    """Another writer: an encounter (a copy of ``stored_id``) with ``external_id``, not committed until the
    block ends."""
    async with owner_engine.connect() as rival:
        await rival.execute(
            text("CREATE TEMP TABLE copied AS SELECT * FROM rcm.encounter WHERE id = :id"),
            {"id": uuid.UUID(stored_id)},
        )
        await rival.execute(
            text("UPDATE copied SET id = gen_random_uuid(), external_id = :x"), {"x": external_id}
        )
        await rival.execute(text("INSERT INTO rcm.encounter SELECT * FROM copied"))
        yield
        await rival.commit()


async def _blocked_write(owner_engine: AsyncEngine, job: asyncio.Task[BulkStatus]) -> bool:
    """The job's write waits on the external id's unique index (until the rival ends)."""
    for _ in range(400):
        async with owner_engine.connect() as watcher:
            blocked = (
                await watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query LIKE 'WITH w0%'"
                    )
                )
            ).scalar_one()
        if blocked:
            return True
        if job.done():
            return False
        await asyncio.sleep(0.05)
    return False


async def test_a_concurrent_write_sends_the_batch_line_by_line(
    practice_api: Api, owner_engine: AsyncEngine, sessions: Sessions, settings: Settings
) -> None:
    """Another writer takes an external id of the batch between its lookup and its write: the write fails
    whole, and the lines are taken again one by one, each finding what is committed by then."""
    stored = await practice_api.post("/encounters", encounter_payload())
    assert stored.status_code == 201, stored.text
    raced, other = encounter_payload(), encounter_payload()
    created = (await upload(practice_api, ndjson(raced, other))).json()
    before = await _counts(owner_engine, practice_api.tenant_id)
    async with _rival_holding(owner_engine, stored.json()["id"], raced["external_id"]):
        job = asyncio.create_task(_run(sessions, settings, practice_api, created["id"], batch_lines=10))
        assert await _blocked_write(owner_engine, job)  # then it fails whole and falls back to line by line
    assert await job == "done"
    by_line = {r["line"]: r for r in await _results(practice_api, created["id"])}
    assert by_line[1]["errors"] == [{"pointer": "/external_id", "detail": "already exists"}]
    assert by_line[2]["outcome"] == "accepted"
    after = await _counts(owner_engine, practice_api.tenant_id)
    assert after["encounter"] - before["encounter"] == 2  # the rival's and line 2's
    assert after["patient"] - before["patient"] == 1  # line 1's patient went with its refusal


async def test_a_batch_prepared_against_one_that_fell_back_is_prepared_again(
    practice_api: Api, owner_engine: AsyncEngine, sessions: Sessions, settings: Settings
) -> None:
    """Batch (1, 2) meets a concurrent writer and is taken line by line: line 2's new patient is stored
    under another id than the one batch (3, 4) was prepared against, so that batch is prepared again and
    finds it."""
    stored = await practice_api.post("/encounters", encounter_payload())
    assert stored.status_code == 201, stored.text
    patient = patient_payload()
    member = {"payer_id": "DEMO-MCR", "member_id": f"M{uuid.uuid4().hex[:10]}", "relationship": "self"}
    raced = encounter_payload()
    lines = [
        raced,
        encounter_payload(patient=patient, coverage=member),
        encounter_payload(patient=patient, coverage=member),
        encounter_payload(),
    ]
    created = (await upload(practice_api, ndjson(*lines))).json()
    before = await _counts(owner_engine, practice_api.tenant_id)
    async with _rival_holding(owner_engine, stored.json()["id"], raced["external_id"]):
        job = asyncio.create_task(_run(sessions, settings, practice_api, created["id"], batch_lines=2))
        assert await _blocked_write(owner_engine, job)
    assert await job == "done"
    by_line = {r["line"]: r for r in await _results(practice_api, created["id"])}
    assert [by_line[n]["outcome"] for n in (1, 2, 3, 4)] == ["rejected", "accepted", "accepted", "accepted"]

    async def encounter(line: int) -> dict[str, Any]:
        return dict((await practice_api.get(f"/encounters/{by_line[line]['encounter_id']}")).json())

    second, third = await encounter(2), await encounter(3)
    assert (third["patient_id"], third["coverage_id"]) == (second["patient_id"], second["coverage_id"])
    after = await _counts(owner_engine, practice_api.tenant_id)
    assert after["patient"] - before["patient"] == 2  # line 2's (found by line 3) and line 4's
    assert after["coverage"] - before["coverage"] == 2
