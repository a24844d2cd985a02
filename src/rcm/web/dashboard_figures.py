"""What the dashboard pages show, built from the reports' DTOs: KPI tiles, the charts (server-made SVG) and
the drill-down link of every figure. Pure functions, no I/O: the page handlers fetch, these arrange.

Every figure links to the claims behind it (``/app/t/{slug}/claims?...``): a cash-flow cell to its ledger
entries (``set=entries``), an AR-aging cell and the AR KPIs to the open claims (``set=open``), the rates to
the claims they count (``set=adjudicated`` or ``submitted``, ``outcome`` for the numerator).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from rcm.reporting.forecast import CashForecast
from rcm.reporting.kpi_vocabulary import KpiKey, KpiUnit
from rcm.reporting.kpis import AR_WINDOW_DAYS, Kpi, KpiDefinition, KpiReport
from rcm.reporting.schemas import (
    BUCKETS,
    PATIENT_PAYER,
    UNSUBMITTED,
    AgingBasis,
    ArAgingReport,
    CashFlowFigures,
    CashFlowReport,
    Grain,
)
from rcm.web import charts

Params = dict[str, str | date | None]  # a drill-down's query parameters
OTHER_PAYERS = "Other payers"
MAX_PAYER_SERIES = 6  # the AR-aging chart stacks this many payers, the rest as one "other" segment


def claims_href(slug: str, **params: str | date | None) -> str:
    """The drill-down page with ``params`` (None values left out) in its query string."""
    query = urlencode(
        [(k, v.isoformat() if isinstance(v, date) else v) for k, v in params.items() if v is not None]
    )
    return f"/app/t/{slug}/claims?{query}"


def period_label(start: date, grain: Grain) -> str:
    if grain is Grain.MONTH:
        return start.strftime("%b %Y")
    if grain is Grain.WEEK:
        return f"Wk {start.strftime('%b')} {start.day}"
    return f"{start.strftime('%b')} {start.day}"


def day_label(day: date) -> str:
    return f"{day.strftime('%b')} {day.day}"


# -- KPI tiles ------------------------------------------------------------------------------------------


class Direction(enum.StrEnum):
    BETTER = "better"
    WORSE = "worse"
    SAME = "same"


# Whether a higher value is the better one (collections, clean claims) or the worse (days, denials).
_HIGHER_IS_BETTER = {
    KpiKey.GROSS_COLLECTION_RATE: True,
    KpiKey.NET_COLLECTION_RATE: True,
    KpiKey.DAYS_IN_AR: False,
    KpiKey.AR_OVER_90_DAYS: False,
    KpiKey.DENIAL_RATE: False,
    KpiKey.CLEAN_CLAIM_RATE: True,
    KpiKey.FIRST_PASS_RESOLUTION_RATE: True,
    KpiKey.DAYS_TO_PAYMENT: False,
}
# KPIs whose numerator and denominator are cents (the others count claims or days).
_MONEY = {KpiKey.GROSS_COLLECTION_RATE, KpiKey.NET_COLLECTION_RATE, KpiKey.DAYS_IN_AR, KpiKey.AR_OVER_90_DAYS}


@dataclass(frozen=True)
class Part:
    """A numerator or denominator as the tile shows it: what it is, its figure, the claims behind it."""

    label: str
    text: str
    href: str


@dataclass(frozen=True)
class Tile:
    key: str
    name: str
    value: str  # "95.3%", "37.2 days", or "No data"
    previous: str
    change: str  # "+1.2 pts", "-3.0 days", "" when either period has no value
    direction: Direction | None
    benchmark: str
    href: str  # the tile's own drill-down (its numerator's claims)
    numerator: Part
    denominator: Part
    definition: KpiDefinition


def kpi_value(kpi_value: float | None, unit: KpiUnit) -> str:
    if kpi_value is None:
        return "No data"
    if unit is KpiUnit.RATIO:
        return charts.percent(kpi_value)
    return f"{kpi_value:,.1f} days"


def _change(current: Kpi, previous: Kpi) -> tuple[str, Direction | None]:
    if current.value is None or previous.value is None:
        return "", None
    delta = current.value - previous.value
    if current.unit is KpiUnit.RATIO:
        text = f"{delta * 100:+.1f} pts"
        same = abs(delta) < 0.0005
    else:
        text = f"{delta:+.1f} days"
        same = abs(delta) < 0.05
    if same:
        return text, Direction.SAME
    better = (delta > 0) == _HIGHER_IS_BETTER[current.key]
    return text, Direction.BETTER if better else Direction.WORSE


def _figure(kpi_key: KpiKey, value: int) -> str:
    return charts.money_exact(value) if kpi_key in _MONEY else f"{value:,}"


# What each KPI's numerator and denominator are called on its tile.
_PART_LABELS = {
    KpiKey.GROSS_COLLECTION_RATE: ("Payments", "Charges"),
    KpiKey.NET_COLLECTION_RATE: ("Payments", "Charges less contractual adjustments"),
    KpiKey.DAYS_IN_AR: ("Outstanding AR", f"Charges of the last {AR_WINDOW_DAYS} days"),
    KpiKey.AR_OVER_90_DAYS: ("AR over 90 days", "Outstanding AR"),
    KpiKey.DENIAL_RATE: ("Claims denied", "Claims adjudicated"),
    KpiKey.CLEAN_CLAIM_RATE: ("Clean claims", "Claims submitted and answered"),
    KpiKey.FIRST_PASS_RESOLUTION_RATE: ("Claims paid on first pass", "Claims adjudicated"),
    KpiKey.DAYS_TO_PAYMENT: ("Days, summed", "Claims paid"),
}


def _parts(slug: str, kpi: Kpi, period_from: date, period_to: date) -> tuple[Part, Part]:
    """The numerator and denominator of ``kpi``, each linking to the claims the KPI counts (the KPIs' own
    drill-down: the whole population, or the numerator's claims)."""
    base: Params = {"set": "kpi", "key": kpi.key.value, "period_from": period_from, "period_to": period_to}
    numerator, denominator = _PART_LABELS[kpi.key]
    return (
        Part(numerator, _figure(kpi.key, kpi.numerator), claims_href(slug, **base, numerator="true")),
        Part(denominator, _figure(kpi.key, kpi.denominator), claims_href(slug, **base)),
    )


def kpi_tiles(slug: str, report: KpiReport) -> list[Tile]:
    definitions = {d.key: d for d in report.definitions}
    tiles = []
    for kpi in report.current.kpis:
        previous = report.previous.kpi(kpi.key)
        change, direction = _change(kpi, previous)
        numerator, denominator = _parts(slug, kpi, report.current.period_from, report.current.period_to)
        definition = definitions[kpi.key]
        tiles.append(
            Tile(
                key=kpi.key.value,
                name=definition.name,
                value=kpi_value(kpi.value, kpi.unit),
                previous=kpi_value(previous.value, previous.unit),
                change=change,
                direction=direction,
                benchmark=definition.benchmark,
                href=numerator.href,
                numerator=numerator,
                denominator=denominator,
                definition=definition,
            )
        )
    return tiles


# -- cash flow ------------------------------------------------------------------------------------------

# The chart's series: the figure, its name, and the ledger kind its entries are drilled by.
_CASH_SERIES = (
    ("charges_cents", "Charges", "charge"),
    ("payments_cents", "Payer payments", "payment"),
    ("patient_payments_cents", "Patient payments", "patient_payment"),
    ("adjustments_cents", "Adjustments", "adjustment"),
    ("refunds_cents", "Refunds", "refund"),
)
# Always drawn, even at zero; the others only when some period has them.
_CORE_SERIES = {"charges_cents", "payments_cents", "adjustments_cents"}


@dataclass(frozen=True)
class Period:
    start: date  # clipped to the report's first day
    end: date  # clipped to its last
    label: str
    figures: CashFlowFigures


def cash_periods(report: CashFlowReport) -> list[Period]:
    """The report's periods in order, the groups of a grouped report summed (the chart draws periods)."""
    out: dict[date, Period] = {}
    for row in report.rows:
        period = out.get(row.period_start)
        if period is None:
            period = out[row.period_start] = Period(
                start=max(row.period_start, report.date_from),
                end=min(row.period_end, report.date_to),
                label=period_label(row.period_start, report.grain),
                figures=CashFlowFigures(),
            )
        for field, _, _ in _CASH_SERIES:
            setattr(period.figures, field, getattr(period.figures, field) + getattr(row.figures, field))
    return [out[start] for start in sorted(out)]


def cash_flow_chart(slug: str, report: CashFlowReport) -> str:
    periods = cash_periods(report)
    series = []
    for field, name, kind in _CASH_SERIES:
        values = [getattr(p.figures, field) for p in periods]
        if field not in _CORE_SERIES and not any(values):
            continue
        hrefs = [
            claims_href(slug, set="entries", date_from=p.start, date_to=p.end, kind=kind) for p in periods
        ]
        series.append(charts.Series(name, values, hrefs))
    grain = report.grain.value
    return charts.bar_chart(
        chart_id="cash-flow-chart",
        title=f"Cash flow by {grain}, {report.date_from.isoformat()} to {report.date_to.isoformat()}",
        description=(
            f"Charges, payments and adjustments posted per {grain}, from the ledger. "
            "Each bar links to the ledger entries behind it."
        ),
        categories=[p.label for p in periods],
        series=series,
        x_label=grain.capitalize(),
        y_label="Dollars",
    )


@dataclass(frozen=True)
class Comparison:
    """One line of the period-over-period table."""

    label: str
    current: str
    previous: str
    change: str
    current_href: str
    previous_href: str


def _percent_change(current: int, previous: int) -> str:
    if previous == 0:
        return "new" if current else "no change"
    return f"{(current - previous) / abs(previous) * 100:+.1f}%"


def comparisons(slug: str, report: CashFlowReport) -> list[Comparison]:
    out = []
    for field, name, kind in _CASH_SERIES:
        now, before = getattr(report.total, field), getattr(report.previous_total, field)
        out.append(
            Comparison(
                label=name,
                current=charts.money_exact(now),
                previous=charts.money_exact(before),
                change=_percent_change(now, before),
                current_href=claims_href(
                    slug, set="entries", date_from=report.date_from, date_to=report.date_to, kind=kind
                ),
                previous_href=claims_href(
                    slug, set="entries", date_from=report.previous_from, date_to=report.previous_to, kind=kind
                ),
            )
        )
    return out


@dataclass(frozen=True)
class GroupLine:
    group: str
    charges: str
    payments: str
    adjustments: str
    previous_payments: str
    charges_href: str
    payments_href: str
    adjustments_href: str


def group_lines(slug: str, report: CashFlowReport, names: Mapping[str, str]) -> list[GroupLine]:
    """The grouped report's groups over the whole period, each figure drilling into its entries."""
    out = []
    for g in report.groups:
        key = g.group or ""
        base: Params = {
            "set": "entries",
            "date_from": report.date_from,
            "date_to": report.date_to,
            "group_by": report.group_by.value,
            "group": key,
        }
        out.append(
            GroupLine(
                group=names.get(key, key) or "(none)",
                charges=charts.money_exact(g.current.charges_cents),
                payments=charts.money_exact(g.current.payments_cents),
                adjustments=charts.money_exact(g.current.adjustments_cents),
                previous_payments=charts.money_exact(g.previous.payments_cents),
                charges_href=claims_href(slug, **base, kind="charge"),
                payments_href=claims_href(slug, **base, kind="payment"),
                adjustments_href=claims_href(slug, **base, kind="adjustment"),
            )
        )
    return out


# -- AR aging -------------------------------------------------------------------------------------------


def aging_buckets(basis: AgingBasis) -> tuple[str, ...]:
    return (*BUCKETS, UNSUBMITTED) if basis is AgingBasis.SUBMISSION_DATE else BUCKETS


def payer_name(payer_id: str, names: Mapping[str, str]) -> str:
    if payer_id == PATIENT_PAYER:
        return "Patients"
    return names.get(payer_id, payer_id)


def aging_chart(slug: str, report: ArAgingReport, names: Mapping[str, str]) -> str:
    """Open AR per age bucket, stacked by payer (the largest balances first, the rest as one segment that
    drills into the whole bucket)."""
    buckets = aging_buckets(report.basis)
    rows = sorted(report.rows, key=lambda r: -r.balance_cents)
    shown, rest = rows[:MAX_PAYER_SERIES], rows[MAX_PAYER_SERIES:]
    base: Params = {"set": "open", "as_of": report.as_of, "basis": report.basis.value}
    series = []
    for row in shown:
        cells = {b.bucket: b.balance_cents for b in row.buckets}
        series.append(
            charts.Series(
                payer_name(row.payer_id, names),
                [cells.get(b, 0) for b in buckets],
                [claims_href(slug, **base, bucket=b, payer=row.payer_id) for b in buckets],
            )
        )
    if rest:
        values = [sum(c.balance_cents for r in rest for c in r.buckets if c.bucket == b) for b in buckets]
        series.append(
            charts.Series(OTHER_PAYERS, values, [claims_href(slug, **base, bucket=b) for b in buckets])
        )
    basis = "date of service" if report.basis is AgingBasis.SERVICE_DATE else "submission date"
    return charts.bar_chart(
        chart_id="ar-aging-chart",
        title=f"Accounts receivable aging as of {report.as_of.isoformat()}, by {basis}",
        description=(
            "Open balances by age in days and payer, stacked. Each segment links to the open claims behind"
            " it."
        ),
        categories=list(buckets),
        series=series or [charts.Series("Open AR", [0] * len(buckets))],
        x_label=f"Days since {basis}",
        y_label="Open balance",
        stacked=True,
    )


@dataclass(frozen=True)
class AgingCell:
    text: str
    claims: int
    href: str


@dataclass(frozen=True)
class AgingLine:
    payer: str
    cells: list[AgingCell]
    total: AgingCell
    previous: str


def aging_lines(slug: str, report: ArAgingReport, names: Mapping[str, str]) -> list[AgingLine]:
    buckets = aging_buckets(report.basis)
    base: Params = {"set": "open", "as_of": report.as_of, "basis": report.basis.value}
    out = []
    for row in report.rows:
        cells = {b.bucket: b for b in row.buckets}
        out.append(
            AgingLine(
                payer=payer_name(row.payer_id, names),
                cells=[
                    AgingCell(
                        charts.money_exact(cells[b].balance_cents) if b in cells else charts.money_exact(0),
                        cells[b].claims if b in cells else 0,
                        claims_href(slug, **base, bucket=b, payer=row.payer_id),
                    )
                    for b in buckets
                ],
                total=AgingCell(
                    charts.money_exact(row.balance_cents),
                    row.claims,
                    claims_href(slug, **base, payer=row.payer_id),
                ),
                previous=(
                    charts.money_exact(row.previous_balance_cents)
                    if row.previous_balance_cents is not None
                    else ""
                ),
            )
        )
    return out


# -- forecast -------------------------------------------------------------------------------------------


def forecast_chart(slug: str, forecast: CashForecast) -> str:
    """Past weeks: what the model would have forecast beside what was collected (its error); coming weeks:
    the forecast. A past week's points drill into its payments; a coming week's into the open claims."""
    past = forecast.backtest
    ahead = forecast.weeks
    categories = [day_label(w.week_start) for w in past] + [day_label(w.week_start) for w in ahead]
    past_hrefs = [
        claims_href(
            slug,
            set="entries",
            date_from=w.week_start,
            date_to=w.week_start + timedelta(days=6),
            kind="payment",
        )
        for w in past
    ]
    open_href = claims_href(slug, set="open", as_of=forecast.as_of)
    predicted: list[float | None] = [float(w.forecast_cents) for w in past]
    predicted += [float(w.expected_cents) for w in ahead]
    collected: list[float | None] = [float(w.actual_cents) for w in past]
    collected += [None] * len(ahead)
    return charts.line_chart(
        chart_id="forecast-chart",
        title=f"Cash forecast per week from {forecast.as_of.isoformat()}, and its error on past weeks",
        description=(
            f"{len(past)} past weeks: forecast beside payments collected; {len(ahead)} coming weeks: "
            "expected collections from open claims by payer lag and paid ratio."
        ),
        categories=categories,
        series=[
            charts.Series("Forecast", predicted, [*past_hrefs, *[open_href] * len(ahead)], dashed=True),
            charts.Series("Collected", collected, past_hrefs),
        ],
        x_label="Week starting",
        y_label="Dollars",
    )


@dataclass(frozen=True)
class ErrorLine:
    week: str
    forecast: str
    actual: str
    error: str
    percentage: str
    href: str


def forecast_errors(slug: str, forecast: CashForecast) -> list[ErrorLine]:
    return [
        ErrorLine(
            week=w.week_start.isoformat(),
            forecast=charts.money_exact(w.forecast_cents),
            actual=charts.money_exact(w.actual_cents),
            error=charts.money_exact(w.error_cents),
            percentage=charts.percent(w.absolute_percentage_error)
            if w.absolute_percentage_error is not None
            else "",
            href=claims_href(
                slug,
                set="entries",
                date_from=w.week_start,
                date_to=w.week_start + timedelta(days=6),
                kind="payment",
            ),
        )
        for w in forecast.backtest
    ]
