"""Cash forecast per week: what the practice's open claims are expected to bring in, by payer, and how wrong
the same method was on past weeks (a backtest).

The forecast is made at the end of its day ``as_of`` (everything posted through that day, UTC): its weeks
start the next day (``F``). The model, per payer, from claims adjudicated before ``F``:

- paid ratio = payer payments posted on those claims (ledger account ``payments``) / their gross charges
  (ledger account ``charges``): denials count, as zero paid;
- lag = days from a claim's first submission to its first 835 adjudication (``claim_event``).

An open claim (submitted before ``F``, not adjudicated by then, not closed unpaid) of age ``A`` days is
expected to bring ``charges x paid ratio``, spread over the weeks ahead by the lag distribution conditioned
on ``lag >= A``: week ``k`` (``[F + 7k, F + 7k + 7)``) gets the share of past lags in
``[A + 7k, A + 7k + 7)`` among those ``>= A``. A claim older than every past lag is ``unscheduled``. A payer
with fewer than ``MIN_HISTORY`` adjudicated claims borrows the practice's pooled history. History is the
year of claims submitted before ``F``.

Backtest: for each past week starting ``d``, the forecast made as of ``d`` (only data before ``d``) for its
first week, beside the payer payments actually posted that week on claims submitted before ``d``.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import msgspec

from rcm.audit.events import Action
from rcm.kit.errors import FieldError, InvalidInput
from rcm.reporting.kpi_repository import ClaimHistory, KpiRepository
from rcm.tenancy.scope import TenantScope

MIN_HISTORY = 5
# History read: claims first submitted in the year before the forecast's date, the oldest backtest week's
# included (and every older claim still unanswered, which can only be unscheduled).
HISTORY_DAYS = 365
MAX_WEEKS = 26
POOLED = "*"  # the practice's history over every payer
_DAY = 86_400


class PayerAmount(msgspec.Struct):
    payer_id: str
    expected_cents: int


class ForecastWeek(msgspec.Struct):
    week_start: date
    week_end: date  # included
    expected_cents: int
    by_payer: list[PayerAmount]


class PayerModel(msgspec.Struct):
    payer_id: str
    adjudicated_claims: int  # history the model is built from
    charged_cents: int
    paid_cents: int
    paid_ratio: float | None  # paid / charged; None without history
    median_lag_days: float | None
    pooled: bool  # fewer than MIN_HISTORY claims: the practice's pooled history was used
    open_claims: int
    open_charges_cents: int


class BacktestWeek(msgspec.Struct):
    week_start: date
    forecast_cents: int
    actual_cents: int
    error_cents: int  # forecast - actual
    absolute_percentage_error: float | None  # |error| / actual; None when nothing was paid


class CashForecast(msgspec.Struct):
    tenant: str
    as_of: date
    weeks: list[ForecastWeek]
    unscheduled_cents: int  # open claims older than every observed lag of their payer
    payers: list[PayerModel]
    backtest: list[BacktestWeek]
    mean_absolute_error_cents: int | None
    mean_absolute_percentage_error: float | None
    method: str


METHOD = (__doc__ or "").split("\n\n", 1)[1].strip()


@dataclass(slots=True)
class _History:
    claims: int = 0
    charged: int = 0
    paid: int = 0
    lags: list[float] | None = None  # sorted, in days

    @property
    def ratio(self) -> float | None:
        return None if not self.charged else self.paid / self.charged


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _histories(
    claims: Sequence[ClaimHistory], paid_by_claim: dict[uuid.UUID, int], as_of: datetime
) -> dict[str, _History]:
    lags: dict[str, list[float]] = defaultdict(list)
    out: dict[str, _History] = defaultdict(_History)
    for claim in claims:
        if claim.adjudicated_at is None or claim.adjudicated_at >= as_of:
            continue
        lag = (claim.adjudicated_at - claim.submitted_at).total_seconds() / _DAY
        for key in (claim.payer_id, POOLED):
            history = out[key]
            history.claims += 1
            history.charged += claim.charge_cents
            history.paid += paid_by_claim.get(claim.claim_id, 0)
            lags[key].append(lag)
    for key, values in lags.items():
        out[key].lags = sorted(values)
    return dict(out)


def _model(histories: dict[str, _History], payer_id: str) -> tuple[_History | None, bool]:
    own = histories.get(payer_id)
    if own is not None and own.claims >= MIN_HISTORY:
        return own, False
    pooled = histories.get(POOLED)
    return (pooled, True) if pooled is not None else (own, False)


def _shares(lags: list[float], age: float, weeks: int) -> list[float]:
    """P(lag in week k | lag >= age) for k < weeks, from sorted past lags."""
    first = bisect.bisect_left(lags, age)
    remaining = len(lags) - first
    if remaining == 0:
        return [0.0] * weeks
    out = []
    for k in range(weeks):
        low = bisect.bisect_left(lags, age + 7 * k)
        high = bisect.bisect_left(lags, age + 7 * (k + 1))
        out.append((high - low) / remaining)
    return out


@dataclass(slots=True)
class _Projection:
    weekly: list[dict[str, float]]  # per week, per payer, expected cents
    unscheduled: float
    open_claims: dict[str, int]
    open_charges: dict[str, int]


def project(
    claims: Sequence[ClaimHistory], paid_by_claim: dict[uuid.UUID, int], as_of: datetime, weeks: int
) -> tuple[_Projection, dict[str, _History]]:
    """The forecast as of ``as_of`` from claims and payments known before it (pure: the backtest
    reruns it)."""
    histories = _histories(claims, paid_by_claim, as_of)
    projection = _Projection(
        [defaultdict(float) for _ in range(weeks)], 0.0, defaultdict(int), defaultdict(int)
    )
    for claim in claims:
        if claim.submitted_at >= as_of or claim.closed:
            continue
        if claim.adjudicated_at is not None and claim.adjudicated_at < as_of:
            continue
        projection.open_claims[claim.payer_id] += 1
        projection.open_charges[claim.payer_id] += claim.charge_cents
        model, _ = _model(histories, claim.payer_id)
        if model is None or model.ratio is None or not model.lags:
            continue
        expected = claim.charge_cents * model.ratio
        age = (as_of - claim.submitted_at).total_seconds() / _DAY
        shares = _shares(model.lags, age, weeks)
        if not any(shares):
            projection.unscheduled += expected
            continue
        for k, share in enumerate(shares):
            if share:
                projection.weekly[k][claim.payer_id] += expected * share
    return projection, histories


def _payers(histories: dict[str, _History], projection: _Projection) -> list[PayerModel]:
    out = []
    for payer_id in sorted({*histories, *projection.open_claims} - {POOLED}):
        model, pooled = _model(histories, payer_id)
        own = histories.get(payer_id, _History())
        lags = model.lags if model is not None else None
        out.append(
            PayerModel(
                payer_id=payer_id,
                adjudicated_claims=own.claims,
                charged_cents=own.charged,
                paid_cents=own.paid,
                paid_ratio=None if model is None or model.ratio is None else round(model.ratio, 6),
                median_lag_days=round(lags[len(lags) // 2], 2) if lags else None,
                pooled=pooled,
                open_claims=projection.open_claims.get(payer_id, 0),
                open_charges_cents=projection.open_charges.get(payer_id, 0),
            )
        )
    return out


def _actual(
    payments: Iterable[tuple[uuid.UUID, datetime, int]],
    submitted: dict[uuid.UUID, datetime],
    start: datetime,
    end: datetime,
) -> int:
    return sum(
        cents
        for claim_id, at, cents in payments
        if start <= at < end and claim_id in submitted and submitted[claim_id] < start
    )


def forecast_from(
    claims: Sequence[ClaimHistory],
    payments: Sequence[tuple[uuid.UUID, datetime, int]],
    *,
    tenant: str,
    as_of: date,
    weeks: int,
    backtest_weeks: int,
) -> CashForecast:
    """The forecast and its backtest from the repository's rows (pure)."""

    def paid_before(moment: datetime) -> dict[uuid.UUID, int]:
        out: dict[uuid.UUID, int] = defaultdict(int)
        for claim_id, at, cents in payments:
            if at < moment:
                out[claim_id] += cents
        return out

    first = as_of + timedelta(days=1)  # the forecast's first day: it is made at the end of ``as_of``
    now = _instant(first)
    projection, histories = project(claims, paid_before(now), now, weeks)
    forecast_weeks = [
        ForecastWeek(
            week_start=first + timedelta(days=7 * k),
            week_end=first + timedelta(days=7 * k + 6),
            expected_cents=round(sum(per_payer.values())),
            by_payer=[PayerAmount(p, round(c)) for p, c in sorted(per_payer.items()) if round(c)],
        )
        for k, per_payer in enumerate(projection.weekly)
    ]
    submitted = {c.claim_id: c.submitted_at for c in claims}
    backtest = []
    for j in range(backtest_weeks, 0, -1):
        start = first - timedelta(days=7 * j)
        moment = _instant(start)
        past, _ = project(claims, paid_before(moment), moment, 1)
        forecast = round(sum(past.weekly[0].values()))
        actual = _actual(payments, submitted, moment, moment + timedelta(days=7))
        error = forecast - actual
        backtest.append(
            BacktestWeek(
                week_start=start,
                forecast_cents=forecast,
                actual_cents=actual,
                error_cents=error,
                absolute_percentage_error=round(abs(error) / actual, 6) if actual else None,
            )
        )
    errors = [abs(b.error_cents) for b in backtest]
    pct = [b.absolute_percentage_error for b in backtest if b.absolute_percentage_error is not None]
    return CashForecast(
        tenant=tenant,
        as_of=as_of,
        weeks=forecast_weeks,
        unscheduled_cents=round(projection.unscheduled),
        payers=_payers(histories, projection),
        backtest=backtest,
        mean_absolute_error_cents=round(sum(errors) / len(errors)) if errors else None,
        mean_absolute_percentage_error=round(sum(pct) / len(pct), 6) if pct else None,
        method=METHOD,
    )


async def cash_forecast(
    scope: TenantScope, *, as_of: date | None = None, weeks: int = 8, backtest_weeks: int = 8
) -> CashForecast:
    """The practice's weekly cash forecast made at the end of ``as_of`` (default today, UTC), for the
    ``weeks`` weeks from the next day, with ``backtest_weeks`` past weeks backtested. Aggregates only;
    audited as a report read."""
    day = as_of or datetime.now(UTC).date()
    for name, value in (("weeks", weeks), ("backtest_weeks", backtest_weeks)):
        if not 0 <= value <= MAX_WEEKS or (name == "weeks" and value == 0):
            raise InvalidInput(
                f"{name} must be between {int(name == 'weeks')} and {MAX_WEEKS}.",
                errors=[FieldError(f"/{name}", f"is {value}")],
            )
    repo = scope.repo(KpiRepository)
    before = _instant(day + timedelta(days=1))
    since = before - timedelta(days=HISTORY_DAYS + 7 * backtest_weeks)
    claims = await repo.claim_histories(before=before, since=since)
    payments = await repo.payer_payments(before=before, since=since)
    scope.audit(
        "report.forecast",
        Action.READ,
        resource_type="report",
        detail={"as_of": day.isoformat(), "weeks": weeks, "backtest_weeks": backtest_weeks},
    )
    return forecast_from(
        claims, payments, tenant=scope.manifest.slug, as_of=day, weeks=weeks, backtest_weeks=backtest_weeks
    )
