"""Practice KPIs per period, with the previous period beside them and their definitions (HFMA MAP Key style).

Money figures come from the ledger only (``ledger_entry``: charges, payments, contractual adjustments,
receivables), so each traces to ledger entries; rates come from claim events (``claim_event``: 999/277CA
acknowledgments, 835 adjudications) and scrub runs. Every KPI carries its numerator and denominator (integer
cents or counts) beside its value, so a figure can be recomputed by hand. Aggregates only: no PHI is read.

Periods are UTC calendar dates, both ends included; the previous period is as long and ends the day before.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import msgspec

from rcm.audit.events import Action
from rcm.kit.errors import FieldError, InvalidInput, NotFound
from rcm.reporting.kpi_repository import KpiRepository, PeriodBounds, RateCounts
from rcm.reporting.kpi_vocabulary import KpiKey, KpiUnit
from rcm.tenancy.scope import TenantScope

AR_WINDOW_DAYS = 90  # days in AR divides by the average daily charges of the last 90 days
AGED_DAYS = 90  # AR over 90 days: claims whose date of service is more than 90 days before the period's end
MAX_PERIOD_DAYS = 366


class Kpi(msgspec.Struct):
    key: KpiKey
    numerator: int  # integer cents or a count (see the definition)
    denominator: int
    value: float | None  # numerator / denominator x scale; None when the denominator is 0
    unit: KpiUnit
    scale: int = 1  # days in AR: 90 (the window the denominator's charges cover)


class PayerDaysToPayment(msgspec.Struct):
    payer_id: str
    claims: int  # denominator
    total_days: int  # numerator
    mean_days: float | None


class KpiPeriod(msgspec.Struct):
    period_from: date
    period_to: date  # included
    kpis: list[Kpi]
    days_to_payment_by_payer: list[PayerDaysToPayment]

    def kpi(self, key: KpiKey) -> Kpi:
        return next(k for k in self.kpis if k.key is key)


class KpiChange(msgspec.Struct):
    key: KpiKey
    current: float | None
    previous: float | None
    change: float | None  # current - previous (same unit)


class KpiDefinition(msgspec.Struct):
    key: KpiKey
    name: str
    purpose: str
    numerator: str
    denominator: str
    formula: str
    source: str
    benchmark: str
    unit: KpiUnit


class KpiReport(msgspec.Struct):
    tenant: str  # the practice's slug
    current: KpiPeriod
    previous: KpiPeriod
    changes: list[KpiChange]
    definitions: list[KpiDefinition]


_LEDGER = "ledger_entry (double entry, integer cents; positive is a debit), by the entry's posting time"
_EVENTS = "claim_event (one row per claim transition: 999/277CA acknowledgments, 835 adjudications)"

DEFINITIONS: list[KpiDefinition] = [
    KpiDefinition(
        key=KpiKey.GROSS_COLLECTION_RATE,
        name="Gross collection rate",
        purpose="How much of what the practice bills it collects, before contractual allowances.",
        numerator="Payments posted in the period: payer payments applied to claims (account payments, "
        "CLP04) plus patient payments net of refunds (account patient_payments), in cents.",
        denominator="Gross charges posted in the period (credits to account charges, less reversals by "
        "voids and replacements), in cents.",
        formula="numerator / denominator",
        source=_LEDGER,
        benchmark="No fixed benchmark: it depends on the fee schedule; compare periods.",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.NET_COLLECTION_RATE,
        name="Net collection rate",
        purpose="How much of the collectible amount (charges less contractual allowances) is collected.",
        numerator="Payments posted in the period, as for the gross collection rate, in cents.",
        denominator="Gross charges posted in the period less contractual adjustments posted in the period "
        "(account adjustments, CAS group CO, reversals included), in cents.",
        formula="numerator / denominator",
        source=_LEDGER,
        benchmark=">= 95%",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.DAYS_IN_AR,
        name="Days in accounts receivable",
        purpose="How many days of average charges are outstanding.",
        numerator="Outstanding AR at the end of the period: the balance of accounts insurance_receivable "
        "and patient_receivable over every entry posted up to the period's end, in cents.",
        denominator="Gross charges posted in the 90 days ending with the period's last day, in cents.",
        formula="numerator / (denominator / 90), i.e. numerator / denominator x 90",
        source=_LEDGER,
        benchmark="< 40 days",
        unit=KpiUnit.DAYS,
    ),
    KpiDefinition(
        key=KpiKey.AR_OVER_90_DAYS,
        name="AR over 90 days",
        purpose="The share of outstanding AR that has aged past 90 days.",
        numerator="Outstanding AR at the end of the period on claims whose date of service is more than 90 "
        "days before the period's last day, in cents.",
        denominator="Outstanding AR at the end of the period (as for days in AR), in cents.",
        formula="numerator / denominator",
        source=_LEDGER + "; the claim's date of service",
        benchmark="< 15%",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.DENIAL_RATE,
        name="Initial denial rate",
        purpose="How often payers deny claims on their first adjudication.",
        numerator="Claims whose first 835 adjudication falls in the period and denied the claim "
        "(CLP02 = 4, or processed with nothing paid: CLP04 = 0).",
        denominator="Claims whose first 835 adjudication falls in the period (paid, partially paid or "
        "denied).",
        formula="numerator / denominator",
        source=_EVENTS,
        benchmark="< 5%",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.CLEAN_CLAIM_RATE,
        name="Clean claim rate",
        purpose="How many claims go through first time with no edit and no rejection.",
        numerator="Of the denominator's claims: originals (frequency 1) accepted (277CA A1/A2 or an 835) "
        "with no rejection (999 or 277CA) ever, whose encounter never failed a scrub edit.",
        denominator="Claims first submitted in the period that have been answered since (accepted, "
        "rejected or adjudicated); claims still awaiting an answer are left out.",
        formula="numerator / denominator",
        source=_EVENTS + "; scrub_run outcomes of the claim's encounter",
        benchmark=">= 95%",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.FIRST_PASS_RESOLUTION_RATE,
        name="First-pass resolution rate",
        purpose="How many claims are paid on their first submission, with no rework.",
        numerator="Of the denominator's claims: originals submitted exactly once (never rejected and sent "
        "again) whose first adjudication paid them (paid or partially paid).",
        denominator="Claims whose first 835 adjudication falls in the period (as for the denial rate).",
        formula="numerator / denominator",
        source=_EVENTS,
        benchmark=">= 90%",
        unit=KpiUnit.RATIO,
    ),
    KpiDefinition(
        key=KpiKey.DAYS_TO_PAYMENT,
        name="Days to payment",
        purpose="How long a payer takes from our submission to its payment (ERA); also given per payer.",
        numerator="Sum over the denominator's claims of the whole days from the claim's first submission "
        "to its first paying 835 (paid or partially paid).",
        denominator="Claims whose first adjudication falls in the period and paid them.",
        formula="numerator / denominator (mean days)",
        source=_EVENTS,
        benchmark="Payer-specific; Medicare pays clean electronic claims after 14 days.",
        unit=KpiUnit.DAYS,
    ),
]

KPI_DESCRIPTION = "\n".join(
    f"- **{d.name}** (`{d.key.value}`): {d.formula}. Numerator: {d.numerator} Denominator: {d.denominator} "
    f"Source: {d.source}. Benchmark: {d.benchmark}"
    for d in DEFINITIONS
)


def _ratio(numerator: int, denominator: int, scale: int = 1) -> float | None:
    return None if denominator == 0 else round(numerator * scale / denominator, 6)


def _kpi(key: KpiKey, numerator: int, denominator: int, unit: KpiUnit = KpiUnit.RATIO, scale: int = 1) -> Kpi:
    return Kpi(
        key=key,
        numerator=numerator,
        denominator=denominator,
        value=_ratio(numerator, denominator, scale),
        unit=unit,
        scale=scale,
    )


def bounds(period_from: date, period_to: date) -> PeriodBounds:
    """The period as half-open UTC instants, with the AR window and the aging cut-off."""
    start = datetime.combine(period_from, time(), tzinfo=UTC)
    end = datetime.combine(period_to + timedelta(days=1), time(), tzinfo=UTC)
    return PeriodBounds(
        start=start,
        end=end,
        window_start=end - timedelta(days=AR_WINDOW_DAYS),
        aged_before=period_to - timedelta(days=AGED_DAYS),
    )


def previous_period(period_from: date, period_to: date) -> tuple[date, date]:
    length = (period_to - period_from).days + 1
    return period_from - timedelta(days=length), period_from - timedelta(days=1)


def default_period(today: date | None = None) -> tuple[date, date]:
    """The 30 days ending today."""
    end = today or datetime.now(UTC).date()
    return end - timedelta(days=29), end


def build_period(period_from: date, period_to: date, money: dict[str, int], rates: RateCounts) -> KpiPeriod:
    """One period's KPIs from the repository's sums and counts (pure, shared with the operator roll-up)."""
    charges, payments = money["charges"], money["payments"]
    ar, aged, window = money["ar"], money["ar_aged"], money["window_charges"]
    kpis = [
        _kpi(KpiKey.GROSS_COLLECTION_RATE, payments, charges),
        _kpi(KpiKey.NET_COLLECTION_RATE, payments, charges - money["contractual"]),
        _kpi(KpiKey.DAYS_IN_AR, ar, window, KpiUnit.DAYS, AR_WINDOW_DAYS),
        _kpi(KpiKey.AR_OVER_90_DAYS, aged, ar),
        _kpi(KpiKey.DENIAL_RATE, rates.denied, rates.adjudicated),
        _kpi(KpiKey.CLEAN_CLAIM_RATE, rates.clean, rates.answered),
        _kpi(KpiKey.FIRST_PASS_RESOLUTION_RATE, rates.first_pass, rates.adjudicated),
        _kpi(
            KpiKey.DAYS_TO_PAYMENT,
            sum(p.total_days for p in rates.by_payer),
            sum(p.claims for p in rates.by_payer),
            KpiUnit.DAYS,
        ),
    ]
    payers = [
        PayerDaysToPayment(
            payer_id=p.payer_id,
            claims=p.claims,
            total_days=p.total_days,
            mean_days=_ratio(p.total_days, p.claims),
        )
        for p in rates.by_payer
    ]
    return KpiPeriod(period_from=period_from, period_to=period_to, kpis=kpis, days_to_payment_by_payer=payers)


def changes(current: KpiPeriod, previous: KpiPeriod) -> list[KpiChange]:
    out = []
    for kpi in current.kpis:
        before = previous.kpi(kpi.key).value
        delta = None if kpi.value is None or before is None else round(kpi.value - before, 6)
        out.append(KpiChange(key=kpi.key, current=kpi.value, previous=before, change=delta))
    return out


def empty_money() -> dict[str, int]:
    """The sums of a practice with no ledger entry at all."""
    return dict.fromkeys(("charges", "payments", "contractual", "ar", "ar_aged", "window_charges"), 0)


async def period_kpis(repo: KpiRepository, period_from: date, period_to: date) -> KpiPeriod:
    """One period of the repository's one practice (the operator's roll-up runs the same statements over
    every practice: ``rcm.reporting.productivity.operator_kpis``)."""
    span = bounds(period_from, period_to)
    tenant = repo.only_tenant()
    money = (await repo.money(span)).get(tenant, empty_money())
    rates = (await repo.rates(span)).get(tenant, RateCounts())
    return build_period(period_from, period_to, money, rates)


async def kpi_report(
    scope: TenantScope, *, period_from: date | None = None, period_to: date | None = None
) -> KpiReport:
    """The practice's KPIs for [period_from, period_to] (default: the 30 days ending today), the previous
    period of the same length, the changes and the definitions. Audited as a read of the practice's
    reports (aggregates: no patient is named)."""
    start, end = checked_period(period_from, period_to)
    before_from, before_to = previous_period(start, end)
    repo = scope.repo(KpiRepository)
    current = await period_kpis(repo, start, end)
    previous = await period_kpis(repo, before_from, before_to)
    scope.audit(
        "report.kpis",
        Action.READ,
        resource_type="report",
        detail={"period_from": start.isoformat(), "period_to": end.isoformat()},
    )
    slug = scope.manifest.slug
    return KpiReport(
        tenant=slug,
        current=current,
        previous=previous,
        changes=changes(current, previous),
        definitions=DEFINITIONS,
    )


def checked_period(period_from: date | None, period_to: date | None) -> tuple[date, date]:
    """The period asked for (defaults: the 30 days ending ``period_to`` or today), at most a year."""
    default_from, default_to = default_period(period_to)
    start, end = period_from or default_from, period_to or default_to
    if end < start:
        raise InvalidInput(
            "The period ends before it starts.", errors=[FieldError("/period_to", "is before period_from")]
        )
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(
            "The period is longer than a year.",
            errors=[FieldError("/period_from", "is over 366 days before")],
        )
    return start, end


# -- drill-down: the claims behind a KPI (claim number, date of service, payer, amounts, state: no PHI)

MAX_PAGE = 200


class KpiClaim(msgspec.Struct):
    claim_id: uuid.UUID
    claim_number: str  # CLM01, the patient control number (random, never derived from the patient)
    service_date: date
    payer_id: str
    state: str
    charge_cents: int
    in_numerator: bool
    # The claim's own figure: whole days to payment (days_to_payment), receivable balance at the period's
    # end in cents (days_in_ar, ar_over_90_days), payments posted in the period in cents (collection rates).
    measure: int | None


class KpiClaimsPage(msgspec.Struct):
    key: KpiKey
    period_from: date
    period_to: date
    population: str  # which claims the list holds
    items: list[KpiClaim]
    next_cursor: uuid.UUID | None  # pass as ``cursor`` for the next page


POPULATIONS: dict[KpiKey, str] = {
    KpiKey.GROSS_COLLECTION_RATE: "claims with charges, payments or contractual adjustments posted in the "
    "period; in the numerator when payments were posted",
    KpiKey.NET_COLLECTION_RATE: "as for the gross collection rate",
    KpiKey.DAYS_IN_AR: "claims with a receivable balance at the period's end (the numerator's AR)",
    KpiKey.AR_OVER_90_DAYS: "claims with a receivable balance at the period's end; in the numerator when "
    "their date of service is more than 90 days before the period's last day",
    KpiKey.DENIAL_RATE: "claims first adjudicated in the period; in the numerator when denied",
    KpiKey.CLEAN_CLAIM_RATE: "claims first submitted in the period and answered since; in the numerator "
    "when clean",
    KpiKey.FIRST_PASS_RESOLUTION_RATE: "claims first adjudicated in the period; in the numerator when paid "
    "on their only submission",
    KpiKey.DAYS_TO_PAYMENT: "claims whose first adjudication in the period paid them, with their days",
}


def kpi_key(value: str) -> KpiKey:
    """The KPI a path names; an unknown one is the usual 404."""
    if value not in KpiKey._value2member_map_:
        raise NotFound
    return KpiKey(value)


async def kpi_claims(
    scope: TenantScope,
    key: KpiKey,
    *,
    period_from: date | None = None,
    period_to: date | None = None,
    numerator_only: bool = False,
    cursor: uuid.UUID | None = None,
    limit: int = 50,
) -> KpiClaimsPage:
    """The claims behind one KPI of the period, by claim id, ``limit`` at a time. The claims (and, for the
    accounting of disclosures, their patients) are named in the practice's audit trail."""
    start, end = checked_period(period_from, period_to)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_PAGE}.", errors=[FieldError("/limit", "is out of range")]
        )
    rows = await scope.repo(KpiRepository).kpi_claims(
        key, bounds(start, end), numerator_only=numerator_only, after=cursor, limit=limit + 1
    )
    page = rows[:limit]
    scope.audit(
        "report.kpi_claims",
        Action.READ,
        resource_type="claim",
        resource_ids=[row.id for row in page],
        patient_ids=[row.patient_id for row in page],
        detail={"kpi": key.value, "period_from": start.isoformat(), "period_to": end.isoformat()},
    )
    return KpiClaimsPage(
        key=key,
        period_from=start,
        period_to=end,
        population=POPULATIONS[key],
        items=[
            KpiClaim(
                claim_id=row.id,
                claim_number=row.patient_control_number,
                service_date=row.service_date,
                payer_id=row.payer_id,
                state=str(row.state),
                charge_cents=int(row.total_charge_cents),
                in_numerator=bool(row.in_numerator),
                measure=None if row.measure is None else int(row.measure),
            )
            for row in page
        ],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )
