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


class _Timeline:
    """The model's history at each of several ascending moments, from one pass over the rows: per payer (and
    pooled), claims, charges and payer payments bucketed by the first moment that sees them, and each lag
    with the first moment that sees it."""

    def __init__(
        self,
        claims: Sequence[ClaimHistory],
        payments: Iterable[tuple[uuid.UUID, datetime, int]],
        moments: Sequence[datetime],
    ) -> None:
        self.moments = moments
        n = len(moments)
        last = moments[-1]
        self._claims: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self._charged: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self._paid: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        lags: dict[str, list[tuple[float, int]]] = defaultdict(list)
        seen: dict[
            int, tuple[str, int]
        ] = {}  # adjudicated claim (id as an integer): payer, first moment after
        for claim in claims:
            adjudicated = claim.adjudicated_at
            if adjudicated is None or adjudicated >= last:
                continue
            k = bisect.bisect_right(moments, adjudicated)  # adjudicated_at < moments[k:]
            lag = (adjudicated - claim.submitted_at).total_seconds() / _DAY
            seen[claim.claim_id.int] = (claim.payer_id, k)
            for key in (claim.payer_id, POOLED):
                self._claims[key][k] += 1
                self._charged[key][k] += claim.charge_cents
                lags[key].append((lag, k))
        for claim_id, at, cents in payments:
            if at >= last or (hit := seen.get(claim_id.int)) is None:
                continue
            k = max(hit[1], bisect.bisect_right(moments, at))  # both the payment and its claim's 835 before
            for key in (hit[0], POOLED):
                self._paid[key][k] += cents
        self._lags = {key: sorted(values) for key, values in lags.items()}

    def at(self, index: int) -> dict[str, _History]:
        """The history as of ``moments[index]``: claims adjudicated before it, payments posted before it."""
        out = {}
        for key, counts in self._claims.items():
            claims = sum(counts[: index + 1])
            if not claims:
                continue
            out[key] = _History(
                claims=claims,
                charged=sum(self._charged[key][: index + 1]),
                paid=sum(self._paid[key][: index + 1]) if key in self._paid else 0,
                lags=[lag for lag, k in self._lags[key] if k <= index],
            )
        return out


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
    claims: Iterable[ClaimHistory], histories: dict[str, _History], as_of: datetime, weeks: int
) -> _Projection:
    """The forecast as of ``as_of`` from the history known before it (pure: the backtest reruns it)."""
    projection = _Projection(
        [defaultdict(float) for _ in range(weeks)], 0.0, defaultdict(int), defaultdict(int)
    )
    open_claims, open_charges, weekly = projection.open_claims, projection.open_charges, projection.weekly
    models: dict[str, tuple[float, list[float]] | None] = {}  # per payer: its model's ratio and lags
    # Per payer and submission instant: the weeks' shares, or None when the claim is unscheduled.
    shared: dict[tuple[str, datetime], list[tuple[int, float]] | None] = {}
    for claim in claims:
        if claim.submitted_at >= as_of or claim.closed:
            continue
        if claim.adjudicated_at is not None and claim.adjudicated_at < as_of:
            continue
        payer_id = claim.payer_id
        open_claims[payer_id] += 1
        open_charges[payer_id] += claim.charge_cents
        if payer_id not in models:
            model = _model(histories, payer_id)[0]
            ratio = None if model is None else model.ratio
            models[payer_id] = (ratio, model.lags) if model and ratio is not None and model.lags else None
        found = models[payer_id]
        if found is None:
            continue
        expected = claim.charge_cents * found[0]
        key = (payer_id, claim.submitted_at)
        if key in shared:
            shares = shared[key]
        else:
            age = (as_of - claim.submitted_at).total_seconds() / _DAY
            every = _shares(found[1], age, weeks)
            shares = shared[key] = [(k, share) for k, share in enumerate(every) if share] or None
        if shares is None:
            projection.unscheduled += expected
            continue
        for k, share in shares:
            weekly[k][payer_id] += expected * share
    return projection


def _near(
    claims: Sequence[ClaimHistory], histories: dict[str, _History], as_of: datetime, weeks: int
) -> list[ClaimHistory]:
    """The claims (in order) whose age at ``as_of`` is, give or take a day, within ``weeks`` of a past lag:
    the only ones a projection can put into one of its weeks (the others are unscheduled or not open)."""
    lags = [h.lags for h in histories.values() if h.lags]
    if not lags:
        return []
    oldest = as_of - timedelta(days=max(values[-1] for values in lags) + 1)
    youngest = as_of - timedelta(days=min(values[0] for values in lags) - 7 * weeks - 1)
    return [c for c in claims if oldest <= c.submitted_at < youngest]


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


def _actuals(
    payments: Iterable[tuple[uuid.UUID, datetime, int]],
    submitted: dict[int, datetime],  # by claim id (as an integer: hashed in C)
    starts: Sequence[datetime],
    end: datetime,
) -> list[int]:
    """Per backtest week (consecutive, from each of ``starts``; the last ends at ``end``): payer payments
    posted in it on claims submitted before it started."""
    out = [0] * len(starts)
    if not starts:
        return out
    for claim_id, at, cents in payments:
        if not starts[0] <= at < end:
            continue
        j = bisect.bisect_right(starts, at) - 1
        sent = submitted.get(claim_id.int)
        if sent is not None and sent < starts[j]:
            out[j] += cents
    return out


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
    first = as_of + timedelta(days=1)  # the forecast's first day: it is made at the end of ``as_of``
    now = _instant(first)
    starts = [first - timedelta(days=7 * j) for j in range(backtest_weeks, 0, -1)]
    moments = [*(_instant(start) for start in starts), now]  # ascending: the backtest's, then the forecast's
    timeline = _Timeline(claims, payments, moments)
    # Claims that may be open at one of the moments, in the rows' order (the sums' order stays the same).
    candidates = [
        c for c in claims if not c.closed and (c.adjudicated_at is None or c.adjudicated_at >= moments[0])
    ]
    histories = timeline.at(len(moments) - 1)
    projection = project(candidates, histories, now, weeks)
    forecast_weeks = [
        ForecastWeek(
            week_start=first + timedelta(days=7 * k),
            week_end=first + timedelta(days=7 * k + 6),
            expected_cents=round(sum(per_payer.values())),
            by_payer=[PayerAmount(p, round(c)) for p, c in sorted(per_payer.items()) if round(c)],
        )
        for k, per_payer in enumerate(projection.weekly)
    ]
    actuals = _actuals(payments, {c.claim_id.int: c.submitted_at for c in claims}, moments[:-1], now)
    backtest = []
    for j, start in enumerate(starts):
        moment = moments[j]
        history = timeline.at(j)  # only the first week's total is read: the claims it can hold suffice
        past = project(_near(candidates, history, moment, 1), history, moment, 1)
        forecast = round(sum(past.weekly[0].values()))
        actual = actuals[j]
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
