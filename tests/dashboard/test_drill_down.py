"""The claims behind a figure: every AR-aging cell and KPI of the constructed March (tests/reporting) drills
down to exactly the claims it counts, with numbers, dates, payers, amounts and statuses and no patient."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.reporting.scenario import Scenario
from tests.reporting.test_kpis import BCX, MCR, march, noise
from tests.support import Api

CLAIMS = "/reports/claims"
MARCH = {"period_from": "2025-03-01", "period_to": "2025-03-31"}
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


def dates(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["service_date"] for i in items)


async def test_kpis_drill_down_to_the_claims_they_count(
    practice_api: Api, other_practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    kpis = {k["key"]: k for k in (await owner.get("/reports/kpis", MARCH)).json()["current"]["kpis"]}

    adjudicated = await every(owner, {"set": "adjudicated", **MARCH})
    assert len(adjudicated) == kpis["denial_rate"]["denominator"] == 3
    assert set(adjudicated[0]) == ROW_FIELDS  # no patient field of any kind
    denied = await every(owner, {"set": "adjudicated", "outcome": "denied", **MARCH})
    assert len(denied) == kpis["denial_rate"]["numerator"] == 1
    assert (denied[0]["service_date"], denied[0]["payer_id"], denied[0]["status"]) == (
        "2025-03-05",
        BCX,
        "denied",
    )
    first_pass = await every(owner, {"set": "adjudicated", "outcome": "first_pass", **MARCH})
    assert len(first_pass) == kpis["first_pass_resolution_rate"]["numerator"] == 1
    paid = await every(owner, {"set": "adjudicated", "outcome": "paid", **MARCH})
    assert len(paid) == kpis["days_to_payment"]["denominator"] == 2
    assert dates(paid) == ["2025-03-01", "2025-03-03"]

    submitted = await every(owner, {"set": "submitted", **MARCH})
    assert len(submitted) == kpis["clean_claim_rate"]["denominator"] == 4
    clean = await every(owner, {"set": "submitted", "outcome": "clean", **MARCH})
    assert len(clean) == kpis["clean_claim_rate"]["numerator"] == 2
    assert dates(clean) == ["2025-03-01", "2025-03-05"]
    only_bcx = await every(owner, {"set": "submitted", "payer": BCX, **MARCH})
    assert [c["payer_id"] for c in only_bcx] == [BCX]

    # Claim A's amounts from the ledger: charged 10000, paid 8000 + the patient's 500, CO 1500, nothing open.
    a = next(c for c in paid if c["service_date"] == "2025-03-01")
    assert (a["charge_cents"], a["paid_cents"], a["adjusted_cents"], a["balance_cents"]) == (
        10000,
        8500,
        1500,
        0,
    )
    assert a["payer_id"] == MCR


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
                params = {"set": "open", "as_of": "2025-03-31", "basis": basis, "bucket": cell["bucket"]}
                items = await every(owner, {**params, "payer": row["payer_id"]})
                assert len(items) == cell["claims"], (basis, row["payer_id"], cell)
                assert sum(i["figure_cents"] for i in items) == cell["balance_cents"]
        for total in report["totals"]:
            items = await every(
                owner, {"set": "open", "as_of": "2025-03-31", "basis": basis, "bucket": total["bucket"]}
            )
            assert sum(i["figure_cents"] for i in items) == total["balance_cents"]
    # Every open claim, and AR over 90 days (D alone: DOS 2024-11-15).
    everything = await every(owner, {"set": "open", "as_of": "2025-03-31"})
    assert sum(i["balance_cents"] for i in everything) == 45000
    over_90 = await every(owner, {"set": "open", "as_of": "2025-03-31", "bucket": "91+"})
    assert [(i["service_date"], i["payer_id"], i["figure_cents"]) for i in over_90] == [
        ("2024-11-15", BCX, 30000)
    ]


async def test_drill_down_is_audited_and_checks_its_parameters(
    practice_api: Api, owner: Api, other_owner: Api, owner_engine: AsyncEngine
) -> None:
    await march(Scenario(owner_engine, practice_api))
    listed = await every(owner, {"set": "open", "as_of": "2025-03-31"}, limit=50)
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
        {"set": "open", "outcome": "denied"},
        {"set": "adjudicated", "bucket": "0-30"},
        {"set": "open", "bucket": "45-50"},
        {"set": "open", "bucket": "unsubmitted"},  # the service-date basis has no such bucket
        {"set": "adjudicated", "period_from": "2025-03-31", "period_to": "2025-03-01"},
        {"set": "open", "cursor": "not-a-cursor"},
    ]
    for params in wrong:
        answer = await owner.get(CLAIMS, params)
        assert answer.status_code == 422, (params, answer.text)
    assert (await owner.get(CLAIMS, {"set": "everything"})).status_code in (400, 422)
    # Another practice's owner: the route of this practice is a 404; their own practice lists nothing of it.
    assert (await other_owner.get(CLAIMS, {"set": "open"}, slug=owner.slug)).status_code == 404
    assert (await other_owner.get(CLAIMS, {"set": "open", "as_of": "2025-03-31"})).json()["items"] == []
