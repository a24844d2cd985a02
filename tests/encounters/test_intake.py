from __future__ import annotations

import asyncio
import json
import threading
import uuid

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.idempotency.service import request_fingerprint
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.providers.npi import npi_check_digit_valid
from tests.support import Api, encounter_payload, patient_payload


async def _count(owner_engine: AsyncEngine, table: str, tenant_id: uuid.UUID) -> int:
    async with owner_engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(f"SELECT count(*) FROM rcm.{table} WHERE tenant_id = :t"),  # noqa: S608 - constant names
                    {"t": tenant_id},
                )
            ).scalar_one()
        )


async def test_encounter_with_inline_patient_coverage_and_provider(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    payload = encounter_payload()
    created = await practice_api.post("/encounters", payload)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "needs_coding"
    assert body["external_id"] == payload["external_id"]
    assert body["total_charge_cents"] == 12500 + 1650
    assert [d["code"] for d in body["diagnoses"]] == ["E119", "I10"]
    assert body["charges"][0]["diagnosis_pointers"] == [1, 2]
    assert body["documentation"] == payload["documentation"]
    assert body["coverage_id"] is not None

    read = await practice_api.get(f"/encounters/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body

    patient = (await practice_api.get(f"/patients/{body['patient_id']}")).json()
    assert patient["mrn"] == payload["patient"]["mrn"]
    assert patient["birth_date"] == "1980-02-29"
    assert patient["address"]["city"] == "Springfield"

    status = (await practice_api.get(f"/encounters/{body['id']}/status")).json()
    assert status["status"] == "needs_coding"
    assert [h["status"] for h in status["history"]] == ["needs_coding"]

    tenant_id = uuid.UUID(practice_api.tenant_id)
    async with owner_engine.connect() as conn:
        queue = (
            await conn.execute(
                text(
                    "SELECT kind, status, subject_type FROM rcm.work_item"
                    " WHERE tenant_id = :t AND subject_id = :e"
                ),
                {"t": tenant_id, "e": uuid.UUID(body["id"])},
            )
        ).all()
        events = (
            await conn.execute(
                text(
                    "SELECT e.event, e.status FROM rcm.work_item_event e JOIN rcm.work_item i"
                    " ON (i.tenant_id, i.id) = (e.tenant_id, e.work_item_id)"
                    " WHERE i.tenant_id = :t AND i.subject_id = :e"
                ),
                {"t": tenant_id, "e": uuid.UUID(body["id"])},
            )
        ).all()
    assert queue == [("coding", "open", "encounter")]
    assert events == [("created", "open")]


async def test_second_encounter_matches_existing_patient_by_mrn(practice_api: Api) -> None:
    first = encounter_payload()
    second = encounter_payload(patient=first["patient"])
    a = (await practice_api.post("/encounters", first)).json()
    b = (await practice_api.post("/encounters", second)).json()
    assert a["patient_id"] == b["patient_id"]
    assert a["rendering_provider_id"] == b["rendering_provider_id"]


async def test_separate_resources_then_encounter_by_reference(practice_api: Api) -> None:
    patient = await practice_api.post("/patients", patient_payload())
    assert patient.status_code == 201, patient.text
    patient_id = patient.json()["id"]
    coverage = await practice_api.post(
        f"/patients/{patient_id}/coverages", {"payer_id": "DEMO-MCR", "member_id": "XYZ123456"}
    )
    assert coverage.status_code == 201, coverage.text
    provider = await practice_api.post("/providers", {"npi": "1245319599", "name": "Dr Ref Fake"})
    assert provider.status_code == 201, provider.text
    payload = encounter_payload()
    for name in ("patient", "coverage", "rendering_provider"):
        payload.pop(name)
    payload |= {
        "patient_id": patient_id,
        "coverage_id": coverage.json()["id"],
        "rendering_provider_id": provider.json()["id"],
    }
    created = await practice_api.post("/encounters", payload)
    assert created.status_code == 201, created.text
    assert created.json()["patient_id"] == patient_id
    coverages = (await practice_api.get(f"/patients/{patient_id}/coverages")).json()
    assert [c["member_id"] for c in coverages] == ["XYZ123456"]


async def test_idempotent_retry_returns_first_response_and_writes_once(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    payload = encounter_payload()
    key = uuid.uuid4().hex
    tenant_id = uuid.UUID(practice_api.tenant_id)
    first = await practice_api.post("/encounters", payload, key=key)
    # Same JSON, different key order and whitespace: still the same request.
    retry = await practice_api.post(
        "/encounters", content=json.dumps(dict(reversed(payload.items())), indent=2).encode(), key=key
    )
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers.get("Idempotent-Replayed") == "true"
    async with owner_engine.connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM rcm.encounter WHERE tenant_id = :t AND external_id = :x"),
                {"t": tenant_id, "x": payload["external_id"]},
            )
        ).scalar_one()
    assert n == 1


async def test_same_key_with_another_body_is_422(practice_api: Api) -> None:
    key = uuid.uuid4().hex
    assert (await practice_api.post("/encounters", encounter_payload(), key=key)).status_code == 201
    other = await practice_api.post("/encounters", encounter_payload(), key=key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["pointer"] == "header:Idempotency-Key"


async def test_post_without_idempotency_key_is_refused(practice_api: Api) -> None:
    response = await practice_api.post("/encounters", encounter_payload(), key=None)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "header:Idempotency-Key", "detail": "is required"}]


async def test_concurrent_duplicates_have_one_side_effect(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    payload = encounter_payload()
    key = uuid.uuid4().hex
    tenant_id = uuid.UUID(practice_api.tenant_id)
    responses = await asyncio.gather(*[practice_api.post("/encounters", payload, key=key) for _ in range(6)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert await _count(owner_engine, "encounter", tenant_id) == 1
    assert await _count(owner_engine, "patient", tenant_id) == 1


async def test_external_id_is_unique_per_tenant(practice_api: Api, other_practice_api: Api) -> None:
    payload = encounter_payload()
    assert (await practice_api.post("/encounters", payload)).status_code == 201
    again = await practice_api.post("/encounters", encounter_payload(external_id=payload["external_id"]))
    assert again.status_code == 409
    assert again.json()["errors"] == [{"pointer": "/external_id", "detail": "already exists"}]
    # Another practice may use the same external id.
    assert (
        await other_practice_api.post("/encounters", encounter_payload(external_id=payload["external_id"]))
    ).status_code == 201


async def test_invalid_input_names_every_field_and_writes_nothing(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    tenant_id = uuid.UUID(practice_api.tenant_id)
    payload = encounter_payload()
    payload["place_of_service"] = "office"
    payload["patient"]["birth_date"] = "not-a-date"
    payload["charges"][0]["charge_cents"] = 125.5
    payload["charges"][1]["procedure_code"] = "ABC"
    payload["diagnoses"][1]["code"] = "not icd"
    del payload["service_date"]
    response = await practice_api.post("/encounters", payload)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers >= {
        "/place_of_service",
        "/patient/birth_date",
        "/charges/0/charge_cents",
        "/charges/1/procedure_code",
        "/diagnoses/1/code",
        "/service_date",
    }
    # No PHI echoed back.
    assert payload["patient"]["family_name"] not in response.text
    assert await _count(owner_engine, "encounter", tenant_id) == 0
    assert await _count(owner_engine, "patient", tenant_id) == 0


async def test_semantic_errors_are_collected(practice_api: Api, owner_engine: AsyncEngine) -> None:
    tenant_id = uuid.UUID(practice_api.tenant_id)
    payload = encounter_payload(service_date="2999-01-01")
    payload["charges"][0]["diagnosis_pointers"] = [1, 5]
    payload["coverage"]["payer_id"] = "NOT-A-PAYER"
    payload["patient_id"] = str(uuid.uuid4())
    response = await practice_api.post("/encounters", payload)
    assert response.status_code == 422, response.text
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/service_date",
        "/charges/0/diagnosis_pointers/1",
        "/coverage/payer_id",
        "/patient",
    }
    assert await _count(owner_engine, "patient", tenant_id) == 0


async def test_unknown_reference_is_422_and_nothing_is_written(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    tenant_id = uuid.UUID(practice_api.tenant_id)
    payload = encounter_payload()
    payload.pop("rendering_provider")
    payload["rendering_provider_id"] = str(uuid.uuid4())
    response = await practice_api.post("/encounters", payload)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "/rendering_provider_id", "detail": "does not exist"}]
    # The inline patient resolved before the failure was rolled back with it.
    assert await _count(owner_engine, "patient", tenant_id) == 0


async def test_malformed_json_is_400(practice_api: Api) -> None:
    response = await practice_api.post("/encounters", content=b'{"external_id": ')
    assert response.status_code == 400


async def test_oversized_body_is_413(practice_api: Api) -> None:
    payload = encounter_payload(documentation="x" * (3 * 1024 * 1024))
    response = await practice_api.post("/encounters", payload)
    assert response.status_code == 413


async def test_lists_are_cursor_paginated_and_filterable(practice_api: Api) -> None:
    created = [(await practice_api.post("/encounters", encounter_payload())).json() for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await practice_api.get("/encounters", params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in created]
    only = (await practice_api.get("/encounters", {"external_id": created[2]["external_id"]})).json()
    assert [i["id"] for i in only["items"]] == [created[2]["id"]]
    by_patient = (await practice_api.get("/encounters", {"patient_id": created[0]["patient_id"]})).json()
    assert [i["id"] for i in by_patient["items"]] == [created[0]["id"]]
    bad = await practice_api.get("/encounters", {"cursor": "garbage!"})
    assert bad.status_code in (400, 422)


async def test_patient_search_by_blind_index(practice_api: Api) -> None:
    payload = patient_payload()
    created = (await practice_api.post("/patients", payload)).json()
    await practice_api.post("/patients", patient_payload())
    by_mrn = (await practice_api.post("/patients/search", {"mrn": payload["mrn"]}, key=None)).json()
    assert [p["id"] for p in by_mrn["items"]] == [created["id"]]
    # Normalised: case and surrounding spaces do not matter for the name.
    by_name = (
        await practice_api.post(
            "/patients/search",
            {"family_name": f"{payload['family_name'].upper()} ", "birth_date": payload["birth_date"]},
            key=None,
        )
    ).json()
    assert [p["id"] for p in by_name["items"]] == [created["id"]]
    half = await practice_api.post("/patients/search", {"family_name": payload["family_name"]}, key=None)
    assert half.status_code == 422


async def test_duplicate_mrn_is_409(practice_api: Api) -> None:
    payload = patient_payload()
    assert (await practice_api.post("/patients", payload)).status_code == 201
    again = await practice_api.post("/patients", patient_payload(mrn=payload["mrn"]))
    assert again.status_code == 409


async def test_charge_is_the_line_total_not_a_unit_price(practice_api: Api) -> None:
    payload = encounter_payload()
    payload["charges"] = [
        {"procedure_code": "97110", "charge_cents": 30000, "units": 3, "diagnosis_pointers": [1]}
    ]
    body = (await practice_api.post("/encounters", payload)).json()
    assert body["total_charge_cents"] == 30000
    assert body["charges"][0]["units"] == 3


async def test_mrn_of_another_person_is_refused_not_merged(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    first = encounter_payload()
    assert (await practice_api.post("/encounters", first)).status_code == 201
    impostor = encounter_payload(
        patient=patient_payload(mrn=first["patient"]["mrn"], birth_date="1990-01-01")
    )
    response = await practice_api.post("/encounters", impostor)
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"pointer": "/patient/mrn", "detail": "belongs to a patient with another name or birth date"}
    ]
    assert await _count(owner_engine, "encounter", uuid.UUID(practice_api.tenant_id)) == 1


async def test_every_unknown_reference_is_named(practice_api: Api) -> None:
    payload = encounter_payload()
    for name in ("patient", "coverage", "rendering_provider"):
        payload.pop(name)
    payload |= {
        "patient_id": str(uuid.uuid4()),
        "coverage_id": str(uuid.uuid4()),
        "rendering_provider_id": str(uuid.uuid4()),
        "billing_provider_id": str(uuid.uuid4()),
    }
    response = await practice_api.post("/encounters", payload)
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {
        "/patient_id",
        "/coverage_id",
        "/rendering_provider_id",
        "/billing_provider_id",
    }


async def test_duplicate_coverage_is_409_and_inline_coverage_is_audited(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    created = (await practice_api.post("/encounters", encounter_payload())).json()
    coverage = (await practice_api.get(f"/patients/{created['patient_id']}/coverages")).json()[0]
    again = await practice_api.post(
        f"/patients/{created['patient_id']}/coverages",
        {"payer_id": coverage["payer_id"], "member_id": coverage["member_id"]},
    )
    assert again.status_code == 409
    async with owner_engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    text(
                        "SELECT event_type FROM rcm.audit_event"
                        " WHERE tenant_id = :t AND :c = ANY(resource_ids)"
                    ),
                    {"t": uuid.UUID(practice_api.tenant_id), "c": uuid.UUID(coverage["id"])},
                )
            )
            .scalars()
            .all()
        )
    assert "coverage.create" in events


async def test_nul_in_provider_name_is_a_422_naming_the_field(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    """Found by the OpenAPI fuzz run: NUL reached PostgreSQL text and the driver's refusal became a 500."""
    tenant_id = uuid.UUID(practice_api.tenant_id)
    before = await _count(owner_engine, "provider", tenant_id)
    response = await practice_api.post("/providers", {"npi": "1679576722", "name": "Dr\u0000Fake"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"pointer": "/name", "detail": "must match the pattern ^[^\\x00]*$"}]
    assert await _count(owner_engine, "provider", tenant_id) == before


async def test_nul_in_encounter_documentation_writes_nothing(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    tenant_id = uuid.UUID(practice_api.tenant_id)
    response = await practice_api.post("/encounters", encounter_payload(documentation="note\u0000"))
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/documentation"]
    for table in ("encounter", "patient", "provider"):
        assert await _count(owner_engine, table, tenant_id) == 0


async def test_encounter_list_refuses_a_malformed_external_id(practice_api: Api) -> None:
    """Found by the fuzz probe: a NUL in the external_id filter reached the driver and answered 500."""
    for bad in ("ENC\u00001", "has space", ""):
        response = await practice_api.get("/encounters", {"external_id": bad})
        assert response.status_code in (400, 422), (bad, response.text)
        assert [e["pointer"] for e in response.json()["errors"]] == ["query:external_id"]
    ok = await practice_api.get("/encounters", {"external_id": "ENC-1"})
    assert ok.status_code == 200
    assert ok.json()["items"] == []


async def test_a_stored_response_altered_beneath_the_api_is_never_replayed(
    practice_api: Api, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A leaked app credential may rewrite an idempotency record's clear columns; the response must not open.

    Re-keying another request's stored response to a request of one's own (principal, key and fingerprint
    rewritten) would hand its body to the wrong caller; clearing its patient ids would hide the replay from
    the audit trail. The ciphertext is bound to all of them.
    """
    context = TenantContext.single(TenantId(uuid.UUID(practice_api.tenant_id)))
    victim_key, mine = uuid.uuid4().hex, encounter_payload()
    assert (await practice_api.post("/encounters", encounter_payload(), key=victim_key)).status_code == 201
    route = f"POST {practice_api.url('/encounters')}"
    async with tenant_transaction(sessions, context) as session:
        await session.execute(
            text("UPDATE rcm.idempotency_record SET key = 'harvest', request_hash = :h WHERE key = :k"),
            {"h": request_fingerprint(route, json.dumps(mine).encode()), "k": victim_key},
        )
    harvested = await practice_api.post("/encounters", mine, key="harvest")
    assert harvested.status_code == 409, harvested.text
    assert harvested.json()["errors"] == [
        {"pointer": "header:Idempotency-Key", "detail": "its stored response cannot be verified"}
    ]

    key = uuid.uuid4().hex
    payload = encounter_payload()
    assert (await practice_api.post("/encounters", payload, key=key)).status_code == 201
    async with tenant_transaction(sessions, context) as session:
        await session.execute(
            text("UPDATE rcm.idempotency_record SET patient_ids = '{}' WHERE key = :k"), {"k": key}
        )
    assert (await practice_api.post("/encounters", payload, key=key)).status_code == 409


# One intake names a provider twice (rendering and billing): it is created once, whichever slot names it.
def _valid_npi(prefix: str) -> str:
    return next(f"{prefix}{digit}" for digit in "0123456789" if npi_check_digit_valid(f"{prefix}{digit}"))


async def test_the_same_new_npi_in_both_slots_is_one_provider(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    npi = _valid_npi("177" + str(uuid.uuid4().int)[:6])
    before = await _count(owner_engine, "provider", uuid.UUID(practice_api.tenant_id))
    provider = {"npi": npi, "name": "Dr Both Slots Fake"}
    created = await practice_api.post(
        "/encounters", encounter_payload(rendering_provider=provider, billing_provider=provider)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["rendering_provider_id"] == body["billing_provider_id"]
    assert await _count(owner_engine, "provider", uuid.UUID(practice_api.tenant_id)) == before + 1
    history = (await practice_api.get(f"/encounters/{body['id']}/status")).json()["history"]
    assert [h["note"] for h in history] == [None]


async def test_a_mistyped_billing_npi_of_the_new_rendering_provider_is_that_provider(
    practice_api: Api, owner_engine: AsyncEngine
) -> None:
    """The billing NPI fails its check digit and names the provider this same intake creates: that one,
    flagged, never a second provider of the name."""
    npi = _valid_npi("188" + str(uuid.uuid4().int)[:6])
    typo = next(f"{npi[:9]}{d}" for d in "0123456789" if f"{npi[:9]}{d}" != npi)
    before = await _count(owner_engine, "provider", uuid.UUID(practice_api.tenant_id))
    created = await practice_api.post(
        "/encounters",
        encounter_payload(
            rendering_provider={"npi": npi, "name": "Dr Pair Fake"},
            billing_provider={"npi": typo, "name": "dr pair fake"},
        ),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["billing_provider_id"] == body["rendering_provider_id"]
    assert await _count(owner_engine, "provider", uuid.UUID(practice_api.tenant_id)) == before + 1
    history = (await practice_api.get(f"/encounters/{body['id']}/status")).json()["history"]
    assert [h["note"] for h in history] == ["npi_check_digit_failed"]


def _hold_then_commit(
    admin_url: str, statement: str, args: tuple[object, ...], held: threading.Event, seconds: float
) -> None:
    """In a thread of its own (the test client blocks the test's loop while a request runs): run
    ``statement`` in a transaction, signal, keep it uncommitted for ``seconds``, commit."""

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            async with conn.transaction():
                await conn.execute(statement, *args)
                held.set()
                await asyncio.sleep(seconds)
        finally:
            await conn.close()

    asyncio.run(run())


async def test_an_external_id_taken_between_lookup_and_write_is_the_same_409(
    practice_api: Api, owner_engine: AsyncEngine, admin_url: str
) -> None:
    """A concurrent intake holds the external id uncommitted: the lookup cannot see it, the write waits on
    the unique constraint, and once the other commits the answer is the lookup's 409 naming /external_id."""
    first = await practice_api.post("/encounters", encounter_payload())
    assert first.status_code == 201, first.text
    external_id = f"ENC-race-{uuid.uuid4().hex[:8]}"
    tenant_id = uuid.UUID(practice_api.tenant_id)
    held = threading.Event()
    other = threading.Thread(
        target=_hold_then_commit,
        args=(
            admin_url,
            "UPDATE rcm.encounter SET external_id = $1 WHERE tenant_id = $2 AND id = $3",
            (external_id, tenant_id, uuid.UUID(first.json()["id"])),
            held,
            1.0,
        ),
    )
    other.start()
    try:
        assert held.wait(30)
        refused = await practice_api.post("/encounters", encounter_payload(external_id=external_id))
    finally:
        other.join(30)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"] == [{"pointer": "/external_id", "detail": "already exists"}]
    assert await _count(owner_engine, "encounter", tenant_id) == 1
    assert await _count(owner_engine, "patient", tenant_id) == 1  # the loser's patient was rolled back
