"""Every way an encounter arrives announces it to the practice's subscribed systems: the JSON API, a FHIR
bundle and a bulk file each write an ``encounter.status_changed`` (status ``needs_coding``) in the intake's
own statement, posted signed to a real receiver on loopback; coding it announces ``coded``. A practice that
subscribes to nothing gets no row, and an intake refused writes none."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.bulk.conftest import ndjson, run, upload
from tests.claims.conftest import Claims
from tests.coding.conftest import MakeStaff, code_sets  # noqa: F401 - ICD-10-CM and CPT to code with
from tests.fhir import bundles
from tests.fhir.conftest import Fhir
from tests.support import Api, encounter_payload, patient_payload
from tests.webhooks.conftest import DELIVERED, Receiver, run_due, subscribe
from tests.webhooks.test_webhooks import count_deliveries, verify

pytestmark = pytest.mark.usefixtures("jobs")


def _created(receiver: Receiver) -> dict[str, dict[str, Any]]:
    """The ``needs_coding`` announcements received, by encounter id."""
    return {
        b["data"]["encounter_id"]: b
        for b in receiver.bodies()
        if b["type"] == "encounter.status_changed" and b["data"]["status"] == "needs_coding"
    }


async def test_json_fhir_and_bulk_intake_each_announce_the_new_encounter(
    *,
    intake: Api,
    other_intake: Api,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
) -> None:
    secret = (await subscribe(intake, receiver.url, "encounter.status_changed"))["secret"]

    created = await intake.post("/encounters", encounter_payload())
    assert created.status_code == 201, created.text
    json_id = created.json()["id"]

    posted = await Fhir(intake).post(bundles.ehr_visit_bundle())
    assert posted.status_code == 200, posted.text

    # A bulk file: two encounter lines, a FHIR bundle line and a refused line.
    lines = ndjson(encounter_payload(), encounter_payload(), bundles.ehr_visit_bundle(), {"not": "one"})
    uploaded = await upload(intake, lines)
    assert uploaded.status_code == 202, uploaded.text
    assert await run(intake, uploaded.json()["id"]) == "done"

    listed = await intake.get("/encounters", {"limit": 100})
    assert listed.status_code == 200, listed.text
    every = {e["id"] for e in listed.json()["items"]}
    assert json_id in every
    assert len(every) > 4  # the JSON one, the FHIR bundle's and the bulk file's

    outcomes = await run_due(sessions, intake)
    assert set(outcomes) == {DELIVERED}
    announced = _created(receiver)
    assert set(announced) == every
    assert len(outcomes) == len(every)  # one announcement each, nothing twice
    for received in receiver.received:
        assert verify(secret, received.headers, received.body)
    assert announced[json_id]["data"] == {"encounter_id": json_id, "status": "needs_coding", "note": None}

    # The other practice subscribes to nothing: its intake writes no delivery at all.
    theirs = await other_intake.post("/encounters", encounter_payload())
    assert theirs.status_code == 201, theirs.text
    assert await count_deliveries(owner_engine, other_intake.tenant_id) == 0


async def test_a_refused_intake_announces_nothing(
    *, intake: Api, receiver: Receiver, owner_engine: AsyncEngine
) -> None:
    await subscribe(intake, receiver.url, "encounter.status_changed")
    refused = await intake.post(
        "/encounters", encounter_payload(patient=patient_payload(birth_date="1980-13-45"))
    )
    assert refused.status_code == 422, refused.text
    assert await count_deliveries(owner_engine, intake.tenant_id) == 0


async def test_coding_an_encounter_announces_coded(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
    make_staff: MakeStaff,
) -> None:
    await subscribe(intake, receiver.url, "encounter.status_changed")
    encounter = await claims.encounter(intake)
    coder = await make_staff(Role.CODER, practice)
    item = (await coder.post("/coding/next")).json()
    done = await coder.post(
        f"/coding/items/{item['id']}/complete",
        {
            "diagnoses": ["E11.9", "I10"],
            "lines": [{"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1, 2]}],
        },
    )
    assert done.status_code == 200, done.text
    assert set(await run_due(sessions, intake)) == {DELIVERED}
    # Deliveries run concurrently and may arrive in either order; the events' own timestamps order them.
    announced = sorted(
        (b["timestamp"], b["data"]["status"])
        for b in receiver.bodies()
        if b["type"] == "encounter.status_changed" and b["data"]["encounter_id"] == encounter["id"]
    )
    assert [status for _, status in announced] == ["needs_coding", "coded"]
