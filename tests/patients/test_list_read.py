"""The patient list writes its JSON straight from what was stored (``service.patient_page_json``): the same
document, item for item, as the single read that goes through the ``schemas.Patient`` DTO, on every shape
of the read (plain, next page, search by MRN, by name and birth date)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.kit.db import DriverStatement, RoundTrips, driver_fetch
from rcm.kit.pagination import Page
from rcm.patients import schemas
from rcm.tenancy.models import Tenant
from tests.support import Api, patient_payload


async def _single(practice_api: Api, item: dict[str, Any]) -> Any:
    read = await practice_api.get(f"/patients/{item['id']}")
    assert read.status_code == 200, read.text
    return read.json()


async def test_list_items_are_the_single_reads_on_every_shape(practice_api: Api) -> None:
    payloads = [
        patient_payload(),
        patient_payload(address=None, phone=None),
        patient_payload(
            address={
                "line1": '2 Rue "Quoted" \\ Way',
                "line2": "Apt 4 — ünïcode",
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701-1234",
            }
        ),
    ]
    for payload in payloads:
        created = await practice_api.post("/patients", payload)
        assert created.status_code == 201, created.text

    first = await practice_api.get("/patients?limit=2")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    page = msgspec.json.decode(first.content, type=Page[schemas.Patient])  # the documented schema
    assert len(page.items) == 2
    assert page.next_cursor
    rest = await practice_api.get(f"/patients?limit=2&cursor={page.next_cursor}")
    assert rest.status_code == 200, rest.text
    assert rest.json()["next_cursor"] is None
    items = first.json()["items"] + rest.json()["items"]
    assert [item["mrn"] for item in items] == [p["mrn"] for p in payloads]
    for item in items:
        assert item == await _single(practice_api, item)
    assert items[1]["address"] is None
    assert items[1]["phone"] is None
    assert items[2]["address"]["line2"] == "Apt 4 — ünïcode"

    by_mrn = await practice_api.post("/patients/search", {"mrn": payloads[2]["mrn"]}, key=None)
    assert by_mrn.status_code == 200, by_mrn.text
    assert by_mrn.json() == {"items": [items[2]], "next_cursor": None}
    by_name = await practice_api.post(
        "/patients/search",
        {"family_name": payloads[0]["family_name"], "birth_date": payloads[0]["birth_date"]},
        key=None,
    )
    assert by_name.status_code == 200, by_name.text
    assert by_name.json() == {"items": [items[0]], "next_cursor": None}


async def test_a_driver_statement_runs_only_inside_a_begun_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    statement = DriverStatement.compile(text("SELECT :value AS value, :fixed AS fixed").bindparams(fixed="f"))
    async with sessions() as session:
        with pytest.raises(RuntimeError, match="outside a begun transaction"):
            await driver_fetch(session, statement, {"value": 1})
        await session.rollback()
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT 1"))
        rows = await driver_fetch(session, statement, {"value": "x"})
    assert [(row["value"], row["fixed"]) for row in rows] == [("x", "f")]
    with pytest.raises(KeyError):
        statement.arguments({})


async def test_the_list_on_the_driver_audits_as_a_tenant_scope_does(
    app: Litestar, practice_api: Api, owner_engine: AsyncEngine, tenant: Tenant
) -> None:
    """With the practice's row and keys cached, the list runs on the driver (``provide_tenant_read``): its
    event is written with the read, and a refusal inside it (a cursor this API never issued) rolls the unit
    back and is recorded in the practice as ``request.refused``, as in a ``TenantScope``."""
    created = await practice_api.post("/patients", patient_payload())
    assert created.status_code == 201, created.text
    assert (await practice_api.get("/patients")).status_code == 200  # warm: tenant row and keys cached
    with RoundTrips(app.state.engine) as counter:
        listed = await practice_api.get("/patients?limit=5")
        on_driver = counter.driver_statements == len(counter.statements) > 0
        refused = await practice_api.get("/patients?cursor=not-one-of-ours")
    assert listed.status_code == 200, listed.text
    assert on_driver
    assert refused.status_code == 422
    assert "query:cursor" in refused.text
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type, resource_ids, detail FROM rcm.audit_event WHERE tenant_id = :t"
                    " AND event_type IN ('patient.search', 'request.refused') ORDER BY occurred_at, id"
                ),
                {"t": tenant.id},
            )
        ).all()
    searches = [row for row in rows if row.event_type == "patient.search"]
    assert len(searches) == 2  # the warm-up and the list: none for the refused one
    assert searches[-1].resource_ids == [uuid.UUID(created.json()["id"])]
    assert searches[-1].detail == {
        "by_mrn": False,
        "by_name_dob": False,
        "access": "home_tenant",
        "count": 1,
    }
    [refusal] = [row for row in rows if row.event_type == "request.refused"]
    assert refusal.detail == {"route": "GET /api/v1/tenants/{tenant_slug}/patients", "status": 422}
