"""The weekly cash forecast and its backtest on a constructed history, worked by hand.

Made at the end of 2025-06-01, so from Monday 2025-06-02 (``T``), all Medicare, every claim charged 10000:

- H1..H5 sent at T-80, adjudicated after 10, 10, 17, 17 and 24 days; four paid 8000, one denied.
- Z sent at T-12, paid 7000 at T-3 (a 9-day lag).
- X sent at T-5 and Y sent at T-30: open. V sent at T-10 and voided unpaid: never expected.

Model as of T: 6 adjudicated claims, 39000 paid of 60000 charged (ratio 0.65), lags [9, 10, 10, 17, 17, 24].
X (age 5, every lag >= 5): 6500 spread 3/6, 2/6, 1/6 over the weeks [5,12), [12,19), [19,26) days.
Y (age 30, older than every lag): 6500 unscheduled.

Backtest: as of T-14 only H1..H5 are history (ratio 0.64); Y is open at age 16, lags >= 16 are [17, 17,
24], two in [16, 23): 6400 x 2/3 = 4267 forecast, nothing paid that week. As of T-7: Y (age 23: [24] in
[23, 30)) 6400 and Z (age 5: [10, 10] of five in [5, 12)) 2560, 8960 forecast against Z's 7000.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.reporting.scenario import Scenario, at
from tests.support import Api

T = date(2025, 6, 2)


def day(offset: int) -> date:
    return T + timedelta(days=offset)


async def sent(s: Scenario, offset: int, *, state: str = "accepted", charge: int = 10000) -> uuid.UUID:
    claim = await s.claim(
        service_date=day(offset - 1), charge=charge, charged_at=at(day(offset), 0), state=state
    )
    await s.event(claim, "submitted", at(day(offset), 0))
    return claim


async def history(s: Scenario) -> None:
    for lag, paid in ((10, 8000), (10, 8000), (17, 8000), (17, 8000), (24, 0)):
        claim = await sent(s, -80, state="paid" if paid else "denied")
        await s.remit(claim, at(day(-80 + lag), 0), paid=paid, contractual=10000 - paid if paid else 0)
    z = await sent(s, -12, state="partially_paid")
    await s.remit(z, at(day(-3), 0), paid=7000, patient=3000)
    await sent(s, -5)
    await sent(s, -30)
    await sent(s, -10, state="voided")


async def test_forecast_and_backtest_match_the_hand_computation(
    practice_api: Api, other_practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    await history(Scenario(owner_engine, practice_api))
    other = Scenario(owner_engine, other_practice_api)  # practice B: an open claim of a million, never A's
    await sent(other, -5, charge=100_000_000)

    # Made at the end of the day before T: everything posted through 2025-06-01, weeks from T.
    as_of = (T - timedelta(days=1)).isoformat()
    response = await owner.get("/reports/forecast", {"as_of": as_of, "weeks": 3, "backtest_weeks": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(w["week_start"], w["expected_cents"]) for w in body["weeks"]] == [
        ("2025-06-02", 3250),
        ("2025-06-09", 2167),
        ("2025-06-16", 1083),
    ]
    assert body["weeks"][0]["by_payer"] == [{"payer_id": "DEMO-MCR", "expected_cents": 3250}]
    assert body["weeks"][0]["week_end"] == "2025-06-08"
    assert body["unscheduled_cents"] == 6500
    assert body["payers"] == [
        {
            "payer_id": "DEMO-MCR",
            "adjudicated_claims": 6,
            "charged_cents": 60000,
            "paid_cents": 39000,
            "paid_ratio": 0.65,
            "median_lag_days": 17.0,
            "pooled": False,
            "open_claims": 2,
            "open_charges_cents": 20000,
        }
    ]
    assert body["backtest"] == [
        {
            "week_start": "2025-05-19",
            "forecast_cents": 4267,
            "actual_cents": 0,
            "error_cents": 4267,
            "absolute_percentage_error": None,
        },
        {
            "week_start": "2025-05-26",
            "forecast_cents": 8960,
            "actual_cents": 7000,
            "error_cents": 1960,
            "absolute_percentage_error": 0.28,
        },
    ]
    assert body["mean_absolute_error_cents"] == 3114
    assert body["mean_absolute_percentage_error"] == 0.28
    assert "paid ratio" in body["method"]


async def test_forecast_parameters_are_bounded(owner: Api) -> None:
    assert (await owner.get("/reports/forecast", {"weeks": 0})).status_code == 422
    assert (await owner.get("/reports/forecast", {"backtest_weeks": 27})).status_code == 422
    empty = await owner.get("/reports/forecast", {"weeks": 2, "backtest_weeks": 1})
    assert empty.status_code == 200, empty.text
    assert [w["expected_cents"] for w in empty.json()["weeks"]] == [0, 0]
    assert empty.json()["payers"] == []
