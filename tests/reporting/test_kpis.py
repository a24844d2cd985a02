"""The KPIs on a constructed March 2025 (and the 31 days before it), every expected figure worked by hand.

Claims of practice A (charges posted when built, 835s with CO and PR adjustments, a patient payment):

- A, Medicare, DOS 2025-03-01, 10000: built and sent 03-02, accepted 03-03, paid 03-12 (8000, CO 1500,
  PR 500); the patient pays 500 on 03-20.
- B, Medicare, DOS 2025-03-03, 20000: sent 03-04, rejected 03-05, sent again 03-06, accepted 03-07, paid
  03-20 (15000, CO 5000).
- C, Blue Cross, DOS 2025-03-05, 5000: sent 03-06, accepted 03-07, denied 03-15 (nothing posted).
- D, Blue Cross, DOS 2024-11-15, 30000: sent 2024-11-20, accepted 11-22, never paid (aged).
- E, Medicare, DOS 2025-02-10, 8000: sent 02-11, accepted 02-12, paid 02-25 (8000; previous period).
- F, Medicare, DOS 2025-03-25, 4000: sent 03-25, no answer yet.
- G, Medicare, DOS 2025-03-08, 6000: scrub failed 03-08, clean 03-09; sent 03-09, accepted 03-10.

Practice B has a large March of its own, which must not show anywhere in A's figures.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.reporting.kpis import DEFINITIONS, KpiKey
from rcm.tenancy.models import Tenant
from tests.reporting.scenario import Scenario, at
from tests.support import Api

MCR, BCX = "DEMO-MCR", "DEMO-BCX"


async def march(s: Scenario) -> None:
    a = await s.claim(
        service_date=date(2025, 3, 1), charge=10000, charged_at=at(date(2025, 3, 2), 9), state="paid"
    )
    await s.event(a, "submitted", at(date(2025, 3, 2)))
    await s.event(a, "accepted", at(date(2025, 3, 3)))
    await s.remit(a, at(date(2025, 3, 12)), paid=8000, contractual=1500, patient=500, state="paid")
    await s.post(
        a, at(date(2025, 3, 20)), "patient_payment", [("patient_payments", 500), ("patient_receivable", -500)]
    )

    b = await s.claim(
        service_date=date(2025, 3, 3), charge=20000, charged_at=at(date(2025, 3, 4), 9), state="paid"
    )
    await s.event(b, "submitted", at(date(2025, 3, 4)))
    await s.event(b, "rejected", at(date(2025, 3, 5)))
    await s.event(b, "ready", at(date(2025, 3, 5), 15))
    await s.event(b, "submitted", at(date(2025, 3, 6)))
    await s.event(b, "accepted", at(date(2025, 3, 7)))
    await s.remit(b, at(date(2025, 3, 20)), paid=15000, contractual=5000)

    c = await s.claim(
        service_date=date(2025, 3, 5),
        charge=5000,
        payer=BCX,
        charged_at=at(date(2025, 3, 6), 9),
        state="denied",
    )
    await s.event(c, "submitted", at(date(2025, 3, 6)))
    await s.event(c, "accepted", at(date(2025, 3, 7)))
    await s.remit(c, at(date(2025, 3, 15)), paid=0)

    d = await s.claim(
        service_date=date(2024, 11, 15), charge=30000, payer=BCX, charged_at=at(date(2024, 11, 20), 9)
    )
    await s.event(d, "submitted", at(date(2024, 11, 20)))
    await s.event(d, "accepted", at(date(2024, 11, 22)))

    e = await s.claim(
        service_date=date(2025, 2, 10), charge=8000, charged_at=at(date(2025, 2, 11), 9), state="paid"
    )
    await s.event(e, "submitted", at(date(2025, 2, 11)))
    await s.event(e, "accepted", at(date(2025, 2, 12)))
    await s.remit(e, at(date(2025, 2, 25)), paid=8000)

    f = await s.claim(
        service_date=date(2025, 3, 25), charge=4000, charged_at=at(date(2025, 3, 25), 9), state="submitted"
    )
    await s.event(f, "submitted", at(date(2025, 3, 25)))

    g = await s.claim(service_date=date(2025, 3, 8), charge=6000, charged_at=at(date(2025, 3, 9), 9))
    await s.scrub(g, at(date(2025, 3, 8)), outcome="failed")
    await s.scrub(g, at(date(2025, 3, 9), 8), outcome="clean")
    await s.event(g, "submitted", at(date(2025, 3, 9)))
    await s.event(g, "accepted", at(date(2025, 3, 10)))


async def noise(s: Scenario) -> None:
    """Practice B: a big March that would change every one of A's figures if it leaked."""
    x = await s.claim(
        service_date=date(2025, 3, 2), charge=900000, charged_at=at(date(2025, 3, 2), 9), state="denied"
    )
    await s.event(x, "submitted", at(date(2025, 3, 2)))
    await s.event(x, "rejected", at(date(2025, 3, 3)))
    await s.remit(x, at(date(2025, 3, 10)), paid=0)
    await s.post(
        x, at(date(2025, 3, 11)), "patient_payment", [("patient_payments", 7), ("patient_receivable", -7)]
    )


def values(period: dict[str, Any]) -> dict[str, tuple[int, int, float | None]]:
    return {k["key"]: (k["numerator"], k["denominator"], k["value"]) for k in period["kpis"]}


async def test_kpis_of_a_constructed_month_match_the_hand_computation(
    practice_api: Api, other_practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))

    response = await owner.get("/reports/kpis", {"period_from": "2025-03-01", "period_to": "2025-03-31"})
    assert response.status_code == 200, response.text
    body = response.json()
    current = values(body["current"])
    # Charges in March: A 10000 + B 20000 + C 5000 + F 4000 + G 6000. Payments: A 8000 + B 15000 + the
    # patient's 500. Contractual (CO): A 1500 + B 5000.
    assert current["gross_collection_rate"] == (23500, 45000, round(23500 / 45000, 6))
    assert current["net_collection_rate"] == (23500, 38500, round(23500 / 38500, 6))
    # AR at March's end: C 5000 + D 30000 + F 4000 + G 6000 (A, B and E settled). Charges of the 90 days
    # ending 03-31 (from 2025-01-01): March's 45000 + E's 8000.
    assert current["days_in_ar"] == (45000, 53000, round(45000 * 90 / 53000, 6))
    # D's date of service (2024-11-15) is more than 90 days before 03-31; nothing else is.
    assert current["ar_over_90_days"] == (30000, 45000, round(30000 / 45000, 6))
    # First adjudicated in March: A (paid), B (paid), C (denied). First pass: A only (B went twice).
    assert current["denial_rate"] == (1, 3, round(1 / 3, 6))
    assert current["first_pass_resolution_rate"] == (1, 3, round(1 / 3, 6))
    # First sent in March and answered: A, B, C, G (F still waits). Clean: A and C (B rejected, G's
    # encounter failed a scrub edit first).
    assert current["clean_claim_rate"] == (2, 4, 0.5)
    # Paying first adjudications: A 10 days (03-02 to 03-12), B 16 days (03-04 to 03-20), both Medicare.
    assert current["days_to_payment"] == (26, 2, 13.0)
    assert body["current"]["days_to_payment_by_payer"] == [
        {"payer_id": MCR, "claims": 2, "total_days": 26, "mean_days": 13.0}
    ]

    # The previous period: 2025-01-29 .. 2025-02-28 (31 days).
    assert (body["previous"]["period_from"], body["previous"]["period_to"]) == ("2025-01-29", "2025-02-28")
    previous = values(body["previous"])
    assert previous["gross_collection_rate"] == (8000, 8000, 1.0)
    assert previous["net_collection_rate"] == (8000, 8000, 1.0)
    # AR at February's end: D's 30000; charges of the 90 days from 2024-12-01: E's 8000.
    assert previous["days_in_ar"] == (30000, 8000, 337.5)
    assert previous["ar_over_90_days"] == (30000, 30000, 1.0)
    assert previous["denial_rate"] == (0, 1, 0.0)
    assert previous["first_pass_resolution_rate"] == (1, 1, 1.0)
    assert previous["clean_claim_rate"] == (1, 1, 1.0)
    assert previous["days_to_payment"] == (14, 1, 14.0)

    changes = {c["key"]: c for c in body["changes"]}
    assert changes["denial_rate"]["change"] == round(round(1 / 3, 6) - 0.0, 6)
    assert changes["days_in_ar"]["previous"] == 337.5
    # Definitions: every KPI, with numerator, denominator and source, in the response and the OpenAPI.
    assert {d["key"] for d in body["definitions"]} == {k.value for k in KpiKey}
    assert all(d["numerator"] and d["denominator"] and d["source"] for d in body["definitions"])


async def test_kpi_definitions_are_in_the_openapi_description(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/docs/openapi.json")).json()
    operation = schema["paths"]["/api/v1/tenants/{tenant_slug}/reports/kpis"]["get"]
    for definition in DEFINITIONS:
        assert definition.name in operation["description"]
        assert definition.source in operation["description"]


async def test_empty_practice_has_zero_denominators_and_no_values(owner: Api) -> None:
    response = await owner.get("/reports/kpis", {"period_from": "2025-03-01", "period_to": "2025-03-31"})
    assert response.status_code == 200, response.text
    assert values(response.json()["current"]) == {d.key.value: (0, 0, None) for d in DEFINITIONS}


async def test_a_reversed_period_is_refused(owner: Api) -> None:
    response = await owner.get("/reports/kpis", {"period_from": "2025-03-31", "period_to": "2025-03-01"})
    assert response.status_code == 422, response.text


async def test_the_read_is_audited_without_phi(owner: Api, owner_engine: AsyncEngine, tenant: Tenant) -> None:
    assert (await owner.get("/reports/kpis")).status_code == 200
    async with owner_engine.connect() as conn:
        count = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM rcm.audit_event WHERE tenant_id = :t AND event_type = 'report.kpis'"
                    " AND cardinality(patient_ids) = 0"
                ),
                {"t": tenant.id},
            )
        ).scalar_one()
    assert count == 1


async def test_drill_down_lists_the_claims_behind_each_kpi(
    practice_api: Api, other_practice_api: Api, owner: Api, owner_engine: AsyncEngine, tenant: Tenant
) -> None:
    await march(Scenario(owner_engine, practice_api))
    await noise(Scenario(owner_engine, other_practice_api))
    period = {"period_from": "2025-03-01", "period_to": "2025-03-31"}

    async def drill(key: str, **params: Any) -> list[tuple[str, int, bool, int | None]]:
        response = await owner.get(f"/reports/kpis/{key}/claims", {**period, **params})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert all(set(i) == DRILL_FIELDS for i in items)
        return sorted((i["payer_id"], i["charge_cents"], i["in_numerator"], i["measure"]) for i in items)

    # Denial rate: A, B and C were first adjudicated in March; C was denied.
    assert await drill("denial_rate") == [
        (BCX, 5000, True, None),
        (MCR, 10000, False, None),
        (MCR, 20000, False, None),
    ]
    assert await drill("denial_rate", numerator="true") == [(BCX, 5000, True, None)]
    assert await drill("days_to_payment") == [(MCR, 10000, True, 10), (MCR, 20000, True, 16)]
    assert await drill("clean_claim_rate", numerator="true") == [
        (BCX, 5000, True, None),
        (MCR, 10000, True, None),
    ]
    # AR at March's end: C, D, F, G; only D is aged.
    assert await drill("ar_over_90_days") == [
        (BCX, 5000, False, 5000),
        (BCX, 30000, True, 30000),
        (MCR, 4000, False, 4000),
        (MCR, 6000, False, 6000),
    ]
    # Collection: every claim with a posting in March; payments posted on A (8000 + 500) and B.
    assert await drill("gross_collection_rate", numerator="true") == [
        (MCR, 10000, True, 8500),
        (MCR, 20000, True, 15000),
    ]

    # Paged by claim id: two, then the rest.
    first = (await owner.get("/reports/kpis/ar_over_90_days/claims", {**period, "limit": 2})).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    rest = (
        await owner.get(
            "/reports/kpis/ar_over_90_days/claims", {**period, "limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    assert len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    assert {i["claim_id"] for i in first["items"]}.isdisjoint(i["claim_id"] for i in rest["items"])

    # An unknown KPI is the usual 404; each page named its claims in the practice's trail.
    assert (await owner.get("/reports/kpis/happiness/claims", period)).status_code == 404
    async with owner_engine.connect() as conn:
        named = (
            await conn.execute(
                text(
                    "SELECT sum(cardinality(resource_ids)), bool_and(cardinality(patient_ids) > 0)"
                    " FROM rcm.audit_event WHERE tenant_id = :t AND event_type = 'report.kpi_claims'"
                ),
                {"t": tenant.id},
            )
        ).one()
    assert named[0] == 3 + 1 + 2 + 2 + 4 + 2 + 2 + 2
    assert named[1] is True


DRILL_FIELDS = {
    "claim_id",
    "claim_number",
    "service_date",
    "payer_id",
    "state",
    "charge_cents",
    "in_numerator",
    "measure",
}


async def test_first_submission_and_adjudication_before_the_period_keep_a_claim_out_of_it(
    practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    """The rates read the period's events only: a claim counts where its first submission (or first
    adjudication) falls, not where a later one does, and its days to payment run from the first submission
    even when that was before the period.

    - H, Medicare: sent 02-20, rejected 02-21, sent again 03-02, accepted 03-03, paid 03-10.
    - I, Medicare: sent 02-01, accepted 02-02, denied 02-15, paid on appeal 03-05.
    """
    s = Scenario(owner_engine, practice_api)
    h = await s.claim(
        service_date=date(2025, 2, 18), charge=7000, charged_at=at(date(2025, 2, 20), 9), state="paid"
    )
    await s.event(h, "submitted", at(date(2025, 2, 20)))
    await s.event(h, "rejected", at(date(2025, 2, 21)))
    await s.event(h, "ready", at(date(2025, 2, 21), 15))
    await s.event(h, "submitted", at(date(2025, 3, 2)))
    await s.event(h, "accepted", at(date(2025, 3, 3)))
    await s.remit(h, at(date(2025, 3, 10)), paid=7000)
    i = await s.claim(
        service_date=date(2025, 1, 30), charge=3000, charged_at=at(date(2025, 2, 1), 9), state="paid"
    )
    await s.event(i, "submitted", at(date(2025, 2, 1)))
    await s.event(i, "accepted", at(date(2025, 2, 2)))
    await s.remit(i, at(date(2025, 2, 15)), paid=0)
    await s.remit(i, at(date(2025, 3, 5)), paid=3000)

    response = await owner.get("/reports/kpis", {"period_from": "2025-03-01", "period_to": "2025-03-31"})
    assert response.status_code == 200, response.text
    current, previous = values(response.json()["current"]), values(response.json()["previous"])
    # March: H first adjudicated (paid, sent twice: not first pass), 18 days from 02-20; I was first
    # adjudicated in February. Nothing was first sent in March.
    assert current["denial_rate"] == (0, 1, 0.0)
    assert current["first_pass_resolution_rate"] == (0, 1, 0.0)
    assert current["days_to_payment"] == (18, 1, 18.0)
    assert current["clean_claim_rate"] == (0, 0, None)
    # 01-29 .. 02-28: I first adjudicated (denied); H and I first sent and answered, only I clean.
    assert previous["denial_rate"] == (1, 1, 1.0)
    assert previous["first_pass_resolution_rate"] == (0, 1, 0.0)
    assert previous["days_to_payment"] == (0, 0, None)
    assert previous["clean_claim_rate"] == (1, 2, 0.5)
