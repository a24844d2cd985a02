"""The claims behind an AR-aging cell: every cell of the constructed March (tests/reporting), on both bases,
drills down to exactly the claims it counts, with numbers, dates, payers, amounts and statuses and no
patient."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.reporting.scenario import Scenario
from tests.reporting.test_kpis import BCX, MCR, march, noise
from tests.support import Api

CLAIMS = "/reports/ar-aging/claims"
ROW_FIELDS = {
    "claim_id",
    "claim_number",
    "service_date",
    "payer_id",
    "status",
    "charge_cents",
    "paid_cents",
    "adjusted_cents",
    "balance_cents",
    "figure_cents",
}


async def every(api: Api, params: dict[str, Any], *, limit: int = 2) -> list[dict[str, Any]]:
    """All pages of a drill-down, ``limit`` at a time (so paging is exercised)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.get(CLAIMS, {**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_ar_aging_cells_drill_down_to_their_claims(
    practice_api: Api, other_practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    for basis in ("service_date", "submission_date"):
        report = (await owner.get("/reports/ar-aging", {"as_of": "2025-03-31", "basis": basis})).json()
        assert report["balance_cents"] == 45000
        for row in report["rows"]:
            for cell in row["buckets"]:
                params = {"as_of": "2025-03-31", "basis": basis, "bucket": cell["bucket"]}
                items = await every(owner, {**params, "payer": row["payer_id"]})
                assert len(items) == cell["claims"], (basis, row["payer_id"], cell)
                assert sum(i["figure_cents"] for i in items) == cell["balance_cents"]
        for total in report["totals"]:
            items = await every(owner, {"as_of": "2025-03-31", "basis": basis, "bucket": total["bucket"]})
            assert sum(i["figure_cents"] for i in items) == total["balance_cents"]
    # Every open claim, and AR over 90 days (D alone: DOS 2024-11-15).
    everything = await every(owner, {"as_of": "2025-03-31"})
    assert sum(i["balance_cents"] for i in everything) == 45000
    assert set(everything[0]) == ROW_FIELDS  # no patient field of any kind
    assert {i["payer_id"] for i in everything} == {BCX, MCR}
    over_90 = await every(owner, {"as_of": "2025-03-31", "bucket": "91+"})
    assert [(i["service_date"], i["payer_id"], i["figure_cents"]) for i in over_90] == [
        ("2024-11-15", BCX, 30000)
    ]
    d = over_90[0]
    assert (d["charge_cents"], d["paid_cents"], d["adjusted_cents"], d["balance_cents"]) == (
        30000,
        0,
        0,
        30000,
    )
    assert d["status"] == "accepted"


async def test_drill_down_is_audited_and_checks_its_parameters(
    practice_api: Api, owner: Api, other_owner: Api, owner_engine: AsyncEngine
) -> None:
    await march(Scenario(owner_engine, practice_api))
    listed = await every(owner, {"as_of": "2025-03-31"}, limit=50)
    async with owner_engine.connect() as conn:
        event = (
            await conn.execute(
                text(
                    "SELECT resource_type, resource_ids FROM rcm.audit_event WHERE tenant_id = :t"
                    " AND event_type = 'report.drilled' ORDER BY occurred_at DESC LIMIT 1"
                ),
                {"t": uuid.UUID(owner.tenant_id)},
            )
        ).one()
    assert event.resource_type == "claim"
    assert sorted(str(i) for i in event.resource_ids) == sorted(i["claim_id"] for i in listed)

    wrong = [
        {"bucket": "45-50"},
        {"bucket": "unsubmitted"},  # the service-date basis has no such bucket
        {"cursor": "not-a-cursor"},
    ]
    for params in wrong:
        answer = await owner.get(CLAIMS, params)
        assert answer.status_code == 422, (params, answer.text)
    assert (await owner.get(CLAIMS, {"basis": "yesterday"})).status_code in (400, 422)
    # Another practice's owner: the route of this practice is a 404; their own practice lists nothing of it.
    assert (await other_owner.get(CLAIMS, {}, slug=owner.slug)).status_code == 404
    assert (await other_owner.get(CLAIMS, {"as_of": "2025-03-31"})).json()["items"] == []
