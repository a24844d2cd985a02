"""Cash forecast per week: what the practice's open claims are expected to bring in, by payer, and how wrong
the same method was on past weeks (a backtest).

The forecast is made at the end of its day ``as_of`` (everything posted through that day, UTC): its weeks
start the next day (``F``). Times are taken to their UTC day: a claim's first submission, its first 835
adjudication and a payment's posting count on their UTC date, so lags and ages are whole days. The model,
per payer, from claims adjudicated before ``F``:

- paid ratio = payer payments posted on those claims (ledger account ``payments``) / their gross charges
  (ledger account ``charges``): denials count, as zero paid;
- lag = days from the day of a claim's first submission to the day of its first 835 adjudication
  (``claim_event``).

An open claim (submitted before ``F``, not adjudicated by then, not closed unpaid) of age ``A`` days is
expected to bring ``charges x paid ratio``, spread over the weeks ahead by the lag distribution conditioned
on ``lag >= A``: week ``k`` (``[F + 7k, F + 7k + 7)``) gets the share of past lags in
``[A + 7k, A + 7k + 7)`` among those ``>= A``. A claim older than every past lag, or whose lags ``>= A`` all
fall after the forecast's last week, is ``unscheduled``. A payer with fewer than ``MIN_HISTORY`` adjudicated
claims borrows the practice's pooled history. History is the year of claims submitted before ``F``.

Backtest: for each past week starting ``d``, the forecast made as of ``d`` (only data before ``d``) for its
first week, beside the payer payments actually posted that week on claims submitted before ``d``.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import msgspec

from rcm.audit.events import Action
from rcm.kit.errors import FieldError, InvalidInput
from rcm.reporting.kpi_repository import ClaimGroup, ForecastHistory, KpiRepository, PaymentGroup
from rcm.tenancy.scope import TenantScope

MIN_HISTORY = 5
# History read: claims first submitted in the year before the forecast's date, the oldest backtest week's
# included (and every older claim still unanswered, which can only be unscheduled).
HISTORY_DAYS = 365
MAX_WEEKS = 26
POOLED = "*"  # the practice's history over every payer


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
    median_lag_days: int | None  # whole days
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
    unscheduled_cents: int  # open claims older than every past lag of their payer, or due after the weeks
    payers: list[PayerModel]
    backtest: list[BacktestWeek]
    mean_absolute_error_cents: int | None
    mean_absolute_percentage_error: float | None
    method: str


METHOD = (__doc__ or "").split("\n\n", 1)[1].strip()


@dataclass(slots=True)
class _Lags:
    """Past lags in whole days, as a multiset: the distinct values ascending and, for each, how many lags
    are shorter (``below`` is one longer: its last entry counts them all)."""

    values: list[int]
    below: list[int]

    @classmethod
    def of(cls, counts: Mapping[int, int]) -> _Lags:
        values = sorted(counts)
        return cls(values, [0, *itertools.accumulate(counts[v] for v in values)])

    @property
    def total(self) -> int:
        return self.below[-1]

    def shorter(self, days: int) -> int:
        """How many lags are shorter than ``days``."""
        return self.below[bisect.bisect_left(self.values, days)]

    def median(self) -> int:
        """The lag at index ``total // 2`` of the sorted lags."""
        return self.values[bisect.bisect_right(self.below, self.total // 2) - 1]


@dataclass(slots=True)
class _History:
    claims: int = 0
    charged: int = 0
    paid: int = 0
    lags: _Lags | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.charged else self.paid / self.charged


class _Timeline:
    """The model's history at each of several ascending moments (the starts of their days), from one pass over
    the grouped rows: per payer (and pooled), claims, charges and payer payments bucketed by the first moment
    that sees them, and the lags' counts with the first moment that sees them."""

    def __init__(self, history: ForecastHistory, moments: Sequence[date]) -> None:
        n = len(moments)
        last = moments[-1]
        self._claims: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self._charged: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self._paid: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        self._lags: dict[str, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
        for group in history.claims:
            adjudicated = group.adjudicated_on
            if adjudicated is None or adjudicated >= last:
                continue
            k = bisect.bisect_right(moments, adjudicated)  # adjudicated before moments[k:]
            lag = (adjudicated - group.submitted_on).days
            for key in (group.payer_id, POOLED):
                self._claims[key][k] += group.claims
                self._charged[key][k] += group.charge_cents
                self._lags[key][lag, k] += group.claims
        for payment in history.payments:
            adjudicated = payment.adjudicated_on
            if adjudicated is None or adjudicated >= last or payment.posted_on >= last:
                continue
            # Both the payment and its claim's 835 before the moment.
            k = bisect.bisect_right(moments, max(adjudicated, payment.posted_on))
            for key in (payment.payer_id, POOLED):
                self._paid[key][k] += payment.cents

    def at(self, index: int) -> dict[str, _History]:
        """The history as of ``moments[index]``: claims adjudicated before it, payments posted before it."""
        out = {}
        for key, counts in self._claims.items():
            claims = sum(counts[: index + 1])
            if not claims:
                continue
            lags: dict[int, int] = defaultdict(int)
            for (lag, k), count in self._lags[key].items():
                if k <= index:
                    lags[lag] += count
            out[key] = _History(
                claims=claims,
                charged=sum(self._charged[key][: index + 1]),
                paid=sum(self._paid[key][: index + 1]) if key in self._paid else 0,
                lags=_Lags.of(lags),
            )
        return out


def _model(histories: dict[str, _History], payer_id: str) -> tuple[_History | None, bool]:
    own = histories.get(payer_id)
    if own is not None and own.claims >= MIN_HISTORY:
        return own, False
    pooled = histories.get(POOLED)
    return (pooled, True) if pooled is not None else (own, False)


def _open_claims(groups: Iterable[ClaimGroup], day: date) -> dict[tuple[str, date], tuple[int, int]]:
    """The claims open at the start of ``day`` (submitted before it, not adjudicated before it, not closed
    unpaid): how many and their charges, per payer and submission day."""
    out: dict[tuple[str, date], tuple[int, int]] = {}
    for group in groups:
        if group.submitted_on >= day or group.closed:
            continue
        if group.adjudicated_on is not None and group.adjudicated_on < day:
            continue
        key = (group.payer_id, group.submitted_on)
        claims, charges = out.get(key, (0, 0))
        out[key] = (claims + group.claims, charges + group.charge_cents)
    return out


@dataclass(slots=True)
class _Projection:
    weekly: list[dict[str, Fraction]]  # per week, per payer, expected cents (exact)
    unscheduled: Fraction
    open_claims: dict[str, int]
    open_charges: dict[str, int]


def project(
    open_claims: Mapping[tuple[str, date], tuple[int, int]],
    histories: dict[str, _History],
    as_of: date,
    weeks: int,
) -> _Projection:
    """The forecast as of the start of ``as_of`` from the history known before it (pure: the backtest reruns
    it). Exact: per payer and week, the charges times the lag counts are summed per conditioning count (the
    lags ``>= age``), and divided and multiplied by the paid ratio once, as fractions, so the rounded cents do
    not depend on how the claims were grouped."""
    projection = _Projection([{} for _ in range(weeks)], Fraction(0), defaultdict(int), defaultdict(int))
    models: dict[str, _History | None] = {}  # per payer: its model, None when it has no paid ratio
    # Per week and payer: charges x lags in the week, per count of lags >= the claims' age.
    weighted: list[dict[str, dict[int, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in range(weeks)]
    unscheduled: dict[str, int] = defaultdict(int)  # per payer: charges
    for (payer_id, submitted_on), (claims, charges) in open_claims.items():
        projection.open_claims[payer_id] += claims
        projection.open_charges[payer_id] += charges
        if payer_id not in models:
            model = _model(histories, payer_id)[0]
            models[payer_id] = model if model is not None and model.charged else None
        found = models[payer_id]
        if found is None or found.lags is None:
            continue
        lags = found.lags
        age = (as_of - submitted_on).days
        shorter = lags.shorter(age)
        remaining = lags.total - shorter
        counts = []
        for k in range(weeks):
            longer = lags.shorter(age + 7 * (k + 1))
            counts.append(longer - shorter)
            shorter = longer
        if not remaining or not any(counts):
            unscheduled[payer_id] += charges
            continue
        for k, count in enumerate(counts):
            if count:
                weighted[k][payer_id][remaining] += charges * count
    ratios = {p: Fraction(m.paid, m.charged) for p, m in models.items() if m is not None}
    for k, per_payer in enumerate(weighted):
        for payer_id, sums in per_payer.items():
            projection.weekly[k][payer_id] = ratios[payer_id] * sum(
                (Fraction(total, remaining) for remaining, total in sums.items()), Fraction(0)
            )
    projection.unscheduled = sum((ratios[p] * charges for p, charges in unscheduled.items()), Fraction(0))
    return projection


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
                median_lag_days=lags.median() if lags is not None else None,
                pooled=pooled,
                open_claims=projection.open_claims.get(payer_id, 0),
                open_charges_cents=projection.open_charges.get(payer_id, 0),
            )
        )
    return out


def _actuals(payments: Iterable[PaymentGroup], starts: Sequence[date], end: date) -> list[int]:
    """Per backtest week (consecutive, from each of ``starts``; the last ends before ``end``): payer payments
    posted in it on claims submitted before it started."""
    out = [0] * len(starts)
    if not starts:
        return out
    for payment in payments:
        if not starts[0] <= payment.posted_on < end:
            continue
        j = bisect.bisect_right(starts, payment.posted_on) - 1
        if payment.submitted_on < starts[j]:
            out[j] += payment.cents
    return out


def forecast_from(
    history: ForecastHistory, *, tenant: str, as_of: date, weeks: int, backtest_weeks: int
) -> CashForecast:
    """The forecast and its backtest from the repository's grouped rows (pure)."""
    first = as_of + timedelta(days=1)  # the forecast's first day: it is made at the end of ``as_of``
    starts = [first - timedelta(days=7 * j) for j in range(backtest_weeks, 0, -1)]
    moments = [*starts, first]  # ascending: the backtest's, then the forecast's
    timeline = _Timeline(history, moments)
    # Claims that may be open at one of the moments.
    candidates = [
        g
        for g in history.claims
        if not g.closed and (g.adjudicated_on is None or g.adjudicated_on >= moments[0])
    ]
    histories = timeline.at(len(moments) - 1)
    projection = project(_open_claims(candidates, first), histories, first, weeks)
    forecast_weeks = [
        ForecastWeek(
            week_start=first + timedelta(days=7 * k),
            week_end=first + timedelta(days=7 * k + 6),
            expected_cents=round(sum(per_payer.values(), Fraction(0))),
            by_payer=[PayerAmount(p, round(c)) for p, c in sorted(per_payer.items()) if round(c)],
        )
        for k, per_payer in enumerate(projection.weekly)
    ]
    actuals = _actuals(history.payments, starts, first)
    backtest = []
    for j, start in enumerate(starts):
        # Only the first week's total is read.
        past = project(_open_claims(candidates, start), timeline.at(j), start, 1)
        forecast = round(sum(past.weekly[0].values(), Fraction(0)))
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
        mean_absolute_error_cents=round(Fraction(sum(errors), len(errors))) if errors else None,
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
    before = day + timedelta(days=1)
    since = before - timedelta(days=HISTORY_DAYS + 7 * backtest_weeks)
    history = await repo.forecast_history(before=before, since=since)
    scope.audit(
        "report.forecast",
        Action.READ,
        resource_type="report",
        detail={"as_of": day.isoformat(), "weeks": weeks, "backtest_weeks": backtest_weeks},
    )
    return forecast_from(
        history, tenant=scope.manifest.slug, as_of=day, weeks=weeks, backtest_weeks=backtest_weeks
    )
