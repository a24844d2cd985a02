"""Round trips of a scrub: a stored run writes its run, results, billing item, audit event and idempotent
answer in one statement, whatever the number of rules; nothing is compiled afresh on a warm path."""

from __future__ import annotations

import uuid

from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.kit.db import RoundTrips
from tests.support import Api, encounter_payload

# BEGIN, bind the tenant, the staff assignment, reserve the Idempotency-Key, read the encounter (locked),
# the code check, the live billing item, ONE write (run, results, item and its event, audit event, stored
# answer), COMMIT. Plus one round trip for each edit table with a release loaded for the date (NCCI PTP,
# MUE, sex/age: whether one is depends on what this database holds, e.g. the demo's releases).
MAX_STORED_ROUND_TRIPS = 9
# BEGIN, bind, the staff assignment, read, code check, the audit event (at commit), COMMIT.
MAX_DRY_RUN_ROUND_TRIPS = 7
EDIT_TABLES = ("rcm.ncci_ptp_edit", "rcm.mue_limit", "rcm.sex_age_edit")


def _edit_lookups(statements: list[str]) -> int:
    return sum(1 for s in statements if any(table in s for table in EDIT_TABLES))


async def test_round_trips_per_stored_scrub_and_dry_run(
    app: Litestar, intake: Api, biller: Api, owner_engine: AsyncEngine
) -> None:
    # A rendering NPI failing its check digit: the scrub fails and opens a billing item.
    ids = []
    for _ in range(3):
        created = await intake.post(
            "/encounters", encounter_payload(rendering_provider={"npi": "1234567890", "name": "Dr Digit"})
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    assert (await biller.post(f"/encounters/{ids[0]}/scrub")).status_code == 201  # warm: compiled, caches
    assert (await biller.post(f"/encounters/{ids[0]}/scrub?dry_run=true", key=None)).status_code == 200
    with RoundTrips(app.state.engine) as counter:
        stored = await biller.post(f"/encounters/{ids[1]}/scrub", key="hot-path-scrub")
        assert stored.status_code == 201, stored.text
        stored_trips, statements, compiled = (
            counter.round_trips,
            list(counter.statements),
            list(counter.compiled),
        )
        counter.reset()
        dry = await biller.post(f"/encounters/{ids[2]}/scrub?dry_run=true", key=None)
        assert dry.status_code == 200, dry.text
        dry_trips = counter.round_trips
        dry_statements = list(counter.statements)
        dry_compiled = list(counter.compiled)
    print(f"\nround trips: stored scrub {stored_trips}, dry run {dry_trips}")
    assert _edit_lookups(statements) <= len(EDIT_TABLES)
    assert stored_trips - _edit_lookups(statements) <= MAX_STORED_ROUND_TRIPS
    assert dry_trips - _edit_lookups(dry_statements) <= MAX_DRY_RUN_ROUND_TRIPS
    assert compiled == dry_compiled == []
    writes = [s for s in statements if "INSERT INTO rcm.scrub_result" in s]
    assert len(writes) == 1
    assert "INSERT INTO rcm.audit_event" in writes[0]
    assert "INSERT INTO rcm.work_item " in writes[0]
    assert not any(s.startswith("UPDATE rcm.idempotency_record") for s in statements)  # stored along

    # What the one statement wrote: the run, its fired rule, the billing item and its event, the audit
    # event, and the answer a replay gives.
    report = stored.json()
    assert report["outcome"] == "failed"
    async with owner_engine.connect() as conn:
        fired = (
            await conn.execute(
                text("SELECT rule_id FROM rcm.scrub_result WHERE scrub_run_id = :r AND status = 'fired'"),
                {"r": uuid.UUID(report["id"])},
            )
        ).scalars()
        item = (
            await conn.execute(
                text(
                    "SELECT i.status, e.event FROM rcm.work_item i JOIN rcm.work_item_event e"
                    " ON e.tenant_id = i.tenant_id AND e.work_item_id = i.id WHERE i.id = :i"
                ),
                {"i": uuid.UUID(report["work_item_id"])},
            )
        ).all()
        audited = (
            await conn.execute(
                text(
                    "SELECT resource_ids FROM rcm.audit_event WHERE event_type = 'encounter.scrub'"
                    " AND :r = ANY(resource_ids)"
                ),
                {"r": uuid.UUID(report["id"])},
            )
        ).all()
    assert "NPI-CHECK" in set(fired)
    assert [tuple(row) for row in item] == [("open", "created")]
    assert len(audited) == 1
    replay = await biller.post(f"/encounters/{ids[1]}/scrub", key="hot-path-scrub")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == report
