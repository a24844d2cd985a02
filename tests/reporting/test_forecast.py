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

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.reporting.scenario import Scenario, at, forecast_rollups_rebuilt_alike
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
            "median_lag_days": 17,
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


# -- the SQL-grouped forecast against a per-claim computation ----------------------------------------------


@dataclass
class Sent:
    """A claim of the random ledger as the test wrote it."""

    payer: str
    submitted: datetime  # first submission
    charge: int
    adjudicated: datetime | None = None  # first 835 adjudication
    closed: bool = False  # voided, never adjudicated
    payments: list[tuple[datetime, int]] = field(default_factory=list)


async def random_ledger(s: Scenario, rng: random.Random) -> list[Sent]:
    """Claims of three payers (one with too little history of its own) submitted, adjudicated and paid at
    random instants within their days, some resubmitted, re-adjudicated, paid in two parts, voided (at once
    or later, by a state change) or still open; one sent before the history's year and never answered, one
    sent then and adjudicated (out). Submission days and lags come from short lists, so several claims
    share a payer, a submission day and an adjudication day: the rollups' groups sum them."""
    claims = []
    for n in range(36):
        payer = "DEMO-SLIM" if n % 12 == 0 else rng.choice(["DEMO-MCR", "DEMO-BCX"])
        offset = -500 if n == 1 else -rng.choice(range(5, 111, 7))
        submitted = at(day(offset), 0) + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
        fate = "open" if n == 1 else rng.choice(["paid", "paid", "paid", "denied", "open", "voided"])
        if n == 2:
            offset, fate = -480, "paid"
            submitted = at(day(offset), 3)
        charge = rng.randint(10, 500) * 100 + rng.randint(0, 99)
        voided_later = fate == "voided" and rng.random() < 0.5
        state = "accepted" if fate == "open" or voided_later else {"voided": "voided"}.get(fate, fate)
        claim_id = await s.claim(
            service_date=day(offset - 1), charge=charge, charged_at=submitted, state=state, payer=payer
        )
        await s.event(claim_id, "submitted", submitted)
        if rng.random() < 0.2:  # a resubmission: the first submission counts
            await s.event(claim_id, "submitted", submitted + timedelta(days=rng.randint(1, 5)))
        sent = Sent(payer, submitted, charge, closed=fate == "voided")
        if voided_later:
            await s.set_state(claim_id, "voided")
        if fate in ("paid", "denied"):
            lag = rng.choice([3, 10, 17, 24, 31, 38])
            sent.adjudicated = at(day(offset + lag), 0) + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
            paid = rng.randint(charge // 3, charge) if fate == "paid" else 0
            first = paid if rng.random() < 0.7 else paid // 2
            await s.remit(claim_id, sent.adjudicated, paid=first, contractual=charge - paid, state=fate)
            if first:
                sent.payments.append((sent.adjudicated, first))
            if paid > first:  # the rest on a later 835, adjudicating it again: the first 835 counts
                later = sent.adjudicated + timedelta(minutes=rng.randint(60, 20 * 24 * 60))
                await s.remit(claim_id, later, paid=paid - first)
                sent.payments.append((later, paid - first))
        claims.append(sent)
    return claims


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def per_claim(claims: list[Sent], as_of: date, weeks: int, backtest_weeks: int) -> dict[str, Any]:
    """The method text worked claim by claim, in exact fractions (times taken to their UTC day)."""
    first = as_of + timedelta(days=1)
    since = first - timedelta(days=365 + 7 * backtest_weeks)
    read = [
        c
        for c in claims
        if _day(c.submitted) < first and (_day(c.submitted) >= since or c.adjudicated is None)
    ]

    def history(moment: date) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for c in read:
            if c.adjudicated is None or _day(c.adjudicated) >= moment:
                continue
            paid = sum(cents for when, cents in c.payments if since <= _day(when) < moment)
            for key in (c.payer, "*"):
                h = out.setdefault(key, {"claims": 0, "charged": 0, "paid": 0, "lags": []})
                h["claims"] += 1
                h["charged"] += c.charge
                h["paid"] += paid
                h["lags"].append((_day(c.adjudicated) - _day(c.submitted)).days)
        return out

    def model(h: dict[str, dict[str, Any]], payer: str) -> tuple[dict[str, Any] | None, bool]:
        own = h.get(payer)
        if own is not None and own["claims"] >= 5:
            return own, False
        return (h["*"], True) if "*" in h else (own, False)

    def forecast(moment: date, n: int) -> tuple[list[dict[str, Fraction]], Fraction, dict[str, list[int]]]:
        h = history(moment)
        weekly: list[dict[str, Fraction]] = [{} for _ in range(n)]
        unscheduled = Fraction(0)
        opened: dict[str, list[int]] = {}
        for c in read:
            if _day(c.submitted) >= moment or c.closed:
                continue
            if c.adjudicated is not None and _day(c.adjudicated) < moment:
                continue
            counts = opened.setdefault(c.payer, [0, 0])
            counts[0] += 1
            counts[1] += c.charge
            m = model(h, c.payer)[0]
            if m is None or not m["charged"]:
                continue
            expected = c.charge * Fraction(m["paid"], m["charged"])
            age = (moment - _day(c.submitted)).days
            later = [lag for lag in m["lags"] if lag >= age]
            shares = [
                Fraction(sum(age + 7 * k <= lag < age + 7 * k + 7 for lag in later), len(later) or 1)
                for k in range(n)
            ]
            if not any(shares):
                unscheduled += expected
                continue
            for k, share in enumerate(shares):
                if share:
                    weekly[k][c.payer] = weekly[k].get(c.payer, Fraction(0)) + expected * share
        return weekly, unscheduled, opened

    weekly, unscheduled, opened = forecast(first, weeks)
    h = history(first)
    payers = []
    for payer in sorted({*h, *opened} - {"*"}):
        m, pooled = model(h, payer)
        own = h.get(payer, {"claims": 0, "charged": 0, "paid": 0})
        lags = sorted(m["lags"]) if m else []
        payers.append(
            {
                "payer_id": payer,
                "adjudicated_claims": own["claims"],
                "charged_cents": own["charged"],
                "paid_cents": own["paid"],
                "paid_ratio": round(m["paid"] / m["charged"], 6) if m and m["charged"] else None,
                "median_lag_days": lags[len(lags) // 2] if lags else None,
                "pooled": pooled,
                "open_claims": opened.get(payer, [0, 0])[0],
                "open_charges_cents": opened.get(payer, [0, 0])[1],
            }
        )
    backtest = []
    for j in range(backtest_weeks, 0, -1):
        start = first - timedelta(days=7 * j)
        forecast_cents = round(sum(forecast(start, 1)[0][0].values(), Fraction(0)))
        actual = sum(
            cents
            for c in read
            if _day(c.submitted) < start
            for when, cents in c.payments
            if start <= _day(when) < start + timedelta(days=7)
        )
        backtest.append((start.isoformat(), forecast_cents, actual))
    return {
        "weeks": [
            (
                (first + timedelta(days=7 * k)).isoformat(),
                round(sum(w.values(), Fraction(0))),
                [{"payer_id": p, "expected_cents": round(c)} for p, c in sorted(w.items()) if round(c)],
            )
            for k, w in enumerate(weekly)
        ],
        "unscheduled_cents": round(unscheduled),
        "payers": payers,
        "backtest": backtest,
    }


@pytest.mark.parametrize("seed", [7, 2026])
async def test_grouped_forecast_equals_the_per_claim_computation(
    seed: int, practice_api: Api, owner: Api, owner_engine: AsyncEngine
) -> None:
    rng = random.Random(seed)
    claims = await random_ledger(Scenario(owner_engine, practice_api), rng)
    as_of = T - timedelta(days=1)
    response = await owner.get(
        "/reports/forecast", {"as_of": as_of.isoformat(), "weeks": 6, "backtest_weeks": 6}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = per_claim(claims, as_of, 6, 6)
    groups = await forecast_rollups_rebuilt_alike(owner_engine, practice_api.tenant_id)
    assert max(claims for *_, claims, _ in groups[0]) > 1  # claims summed in a group
    assert [(w["week_start"], w["expected_cents"], w["by_payer"]) for w in body["weeks"]] == expected["weeks"]
    assert body["unscheduled_cents"] == expected["unscheduled_cents"]
    assert body["payers"] == expected["payers"]
    assert [(b["week_start"], b["forecast_cents"], b["actual_cents"]) for b in body["backtest"]] == expected[
        "backtest"
    ]
    # Not vacuous: something paid in the backtest's weeks, something expected in the coming ones.
    assert any(b["actual_cents"] for b in body["backtest"])
    assert any(w["expected_cents"] for w in body["weeks"])
