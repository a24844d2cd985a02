"""The statements behind the KPIs, the cash forecast and staff productivity: set-based, one statement per
figure family, grouped by practice so the operator's roll-up runs the same statements over every practice.

Money from ``ledger_entry`` only; rates from ``claim_event`` (and ``scrub_run``); productivity from the work
items' events, the claims' events and the ledger's postings. Codes, ids, counts and cents: no PHI.

Why the KPIs' money does not read the day rollup (``report_ledger_day``) as the cash-flow report does: the
two count a different day. The KPIs (HFMA-style: what was posted in the period) place an entry at its
posting instant, ``created_at``, in half-open UTC bounds; the cash-flow rollup places it on its report day,
which is the 835's payment date (BPR16) for a remittance's entries, moved forward past any closed month. So
the flows read their own rollup, per UTC posting day (``report_posted_day``, migration 0056; a period is
whole UTC days), and the drill-down, which needs the claims, reads the ledger bounded to the period (and the
90-day charge window) through ``ix_ledger_entry_created_at``. The AR at the period's end reads a rollup too:
the receivable entries per UTC posting day and date of service (``report_receivable_day``, migration 0057),
summed over the days before the end (and over dates of service before the aging bound for the AR over 90
days). The drill-down's per-claim balances at the end are each claim's open balance now
(``report_claim_balance``) less the receivable entries posted since the end: the same sum to the cent as
every receivable entry before the end (receivables always name a claim:
``ck_ledger_entry_receivable_claim``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    join,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from rcm.claims.models import Claim, ClaimEvent
from rcm.claims.states import Cause, ClaimState
from rcm.coding.models import QaSample, SampleStatus
from rcm.kit.db import DriverStatement
from rcm.kit.repository import TenantRowRepository
from rcm.ledger.models import RECEIVABLES, Account, LedgerEntry, LedgerPosting, Source
from rcm.reporting.kpi_vocabulary import KpiKey
from rcm.reporting.models import (
    ReportClaimBalance,
    ReportForecastClaims,
    ReportForecastPayments,
    ReportPostedDay,
    ReportReceivableDay,
)
from rcm.scrub.models import ScrubOutcome, ScrubRun
from rcm.workqueue.models import ItemEventType, QueueKind, WorkItem, WorkItemEvent

_PAID = (ClaimState.PAID.value, ClaimState.PARTIALLY_PAID.value)
_ADJUDICATED = (*_PAID, ClaimState.DENIED.value)
_ANSWERED = (ClaimState.ACCEPTED.value, ClaimState.REJECTED.value, *_ADJUDICATED)
_PAYMENTS = (Account.PAYMENTS.value, Account.PATIENT_PAYMENTS.value)
_MONEY_KEYS = ("charges", "payments", "contractual", "window_charges", "ar", "ar_aged")


@dataclass(frozen=True, slots=True)
class PeriodBounds:
    start: datetime  # included
    end: datetime  # excluded
    window_start: datetime  # the 90-day charge window of days in AR ends at ``end``
    aged_before: date  # AR over 90: a date of service before this


@dataclass(slots=True)
class PayerDays:
    payer_id: str
    claims: int = 0
    total_days: int = 0


@dataclass(slots=True)
class RateCounts:
    adjudicated: int = 0
    denied: int = 0
    first_pass: int = 0
    answered: int = 0
    clean: int = 0
    by_payer: list[PayerDays] = field(default_factory=list)


class ClaimGroup(NamedTuple):
    """Submitted claims of one payer alike to the forecast, at its grain (the UTC day): how many, and their
    gross charges (ledger) in cents."""

    payer_id: str
    submitted_on: date  # first submission
    adjudicated_on: date | None  # first 835 adjudication (any outcome)
    closed: bool  # voided or closed without ever being adjudicated: never expected to pay
    claims: int
    charge_cents: int


class PaymentGroup(NamedTuple):
    """Payer payments (835 CLP04, account payments) posted on one day on claims of a ``ClaimGroup``'s payer,
    submission and adjudication days, in cents."""

    payer_id: str
    submitted_on: date
    adjudicated_on: date | None
    posted_on: date
    cents: int


@dataclass(frozen=True, slots=True)
class ForecastHistory:
    claims: list[ClaimGroup]
    payments: list[PaymentGroup]


def _adjudication(ev: Any) -> list[Any]:
    """A payer's adjudication of a claim (any outcome), as conditions on a claim event entity."""
    return [ev.cause == Cause.REMITTANCE, ev.to_state.in_(_ADJUDICATED)]


def _day_of(instant: datetime) -> date | None:
    """A period's bound as its UTC day when it is midnight UTC, else None."""
    if instant.utcoffset() != timedelta(0) or instant.timetz().replace(tzinfo=None) != time():
        return None
    return instant.date()


def _utc_date(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


@cache
def _forecast_history_statement() -> DriverStatement:
    """``KpiRepository.forecast_history``'s statement, compiled once."""
    tenant = TenantRowRepository.tenant_param_filter
    c, p = ReportForecastClaims, ReportForecastPayments
    since_p, before_p = bindparam("since", type_=Date), bindparam("before", type_=Date)

    def adjudicated(column: Any) -> Any:  # 'infinity' in the rollups' key: not adjudicated
        return func.nullif(column, literal_column("'infinity'::date"))

    def in_history(t: Any) -> Any:
        return and_(
            t.submitted_on < before_p,
            or_(t.submitted_on >= since_p, t.adjudicated_on == literal_column("'infinity'::date")),
        )

    closed = and_(c.ended, c.adjudicated_on == literal_column("'infinity'::date"))
    claim_keys = [c.payer_id, c.submitted_on, adjudicated(c.adjudicated_on), closed]
    per_claims = (
        select(
            literal(True).label("claim_rows"),
            *claim_keys,
            cast(null(), Date).label("posted_on"),
            func.sum(c.claims).label("claims"),
            func.sum(c.charged_cents).label("cents"),
        )
        .where(tenant(c.tenant_id), in_history(c), c.claims != 0)
        .group_by(*claim_keys)
    )
    per_payments = select(
        literal(False),
        p.payer_id,
        p.submitted_on,
        adjudicated(p.adjudicated_on),
        literal(False),
        p.posted_on,
        literal(0),
        p.cents,
    ).where(
        tenant(p.tenant_id),
        in_history(p),
        p.posted_on >= since_p,
        p.posted_on < before_p,
        p.cents != 0,
    )
    return DriverStatement.compile(union_all(per_claims, per_payments))


class KpiRepository(TenantRowRepository[LedgerEntry]):
    model = LedgerEntry
    _custom_plans = False  # ``_planned_per_call`` sent in this repository's transaction

    def only_tenant(self) -> uuid.UUID:
        return self.context.tenant_ids[0]

    # -- money (ledger) ---------------------------------------------------------------------------------

    def _flows(self, span: PeriodBounds, *, by_claim: bool) -> Any:
        """Charges, payments and contractual adjustments posted in the period and charges of the 90 days
        ending with it, per practice (and per claim when ``by_claim``), from the ledger's entries."""
        e = LedgerEntry
        in_period = and_(e.created_at >= span.start, e.created_at < span.end)
        keys = [e.tenant_id, e.claim_id] if by_claim else [e.tenant_id]
        earliest = min(span.start, span.window_start)  # every figure below is posted on or after it
        return (
            select(
                *keys,
                func.coalesce(
                    -func.sum(e.amount_cents).filter(e.account == Account.CHARGES, in_period), 0
                ).label("charges"),
                func.coalesce(
                    func.sum(e.amount_cents).filter(
                        e.account.in_(_PAYMENTS), e.claim_id.is_not(None), in_period
                    ),
                    0,
                ).label("payments"),
                func.coalesce(
                    func.sum(e.amount_cents).filter(
                        e.account == Account.ADJUSTMENTS, e.adjustment_group == "CO", in_period
                    ),
                    0,
                ).label("contractual"),
                func.coalesce(
                    -func.sum(e.amount_cents).filter(
                        e.account == Account.CHARGES, e.created_at >= span.window_start
                    ),
                    0,
                ).label("window_charges"),
            )
            .where(self.tenant_filter(e.tenant_id), e.created_at >= earliest, e.created_at < span.end)
            .group_by(*keys)
        )

    def _day_flows(self, span: PeriodBounds) -> Any:
        """``_flows`` per practice, summed from the posting days' rollup: for a span of whole UTC days (a
        KPI period always is); another span reads the ledger."""
        start, end, window = (_day_of(t) for t in (span.start, span.end, span.window_start))
        if start is None or end is None or window is None:
            return self._flows(span, by_claim=False)
        d = ReportPostedDay
        in_period = and_(d.day >= start, d.day < end)
        return (
            select(
                d.tenant_id,
                func.coalesce(func.sum(d.charges_cents).filter(in_period), 0).label("charges"),
                func.coalesce(func.sum(d.payments_cents).filter(in_period), 0).label("payments"),
                func.coalesce(func.sum(d.contractual_cents).filter(in_period), 0).label("contractual"),
                func.coalesce(func.sum(d.charges_cents).filter(d.day >= window), 0).label("window_charges"),
            )
            .where(self.tenant_filter(d.tenant_id), d.day >= min(start, window), d.day < end)
            .group_by(d.tenant_id)
        )

    def flow_claims(self, span: PeriodBounds) -> Any:
        """One row per claim with charges, payments or contractual adjustments posted in the period."""
        flows = self._flows(span, by_claim=True).subquery("flows")
        return (
            select(flows)
            .where(
                flows.c.claim_id.is_not(None),
                or_(flows.c.charges != 0, flows.c.payments != 0, flows.c.contractual != 0),
            )
            .subquery("flow_claims")
        )

    def _ar_parts(self, span: PeriodBounds) -> Any:
        """The amounts making up each claim's receivable balance at the period's end, each with whether the
        claim is aged (its date of service, as the rollup holds it from the claim, before
        ``aged_before``): the claim's open balance now (``report_claim_balance``) and, negated, its
        receivable entries posted since the end. A claim settled since then has no open balance now and
        enters through those entries alone."""
        e, b = LedgerEntry, ReportClaimBalance
        aged = (b.service_date < span.aged_before).label("aged")
        open_now = select(
            b.tenant_id, b.claim_id, (b.insurance_cents + b.patient_cents).label("amount"), aged
        ).where(self.tenant_filter(b.tenant_id), or_(b.insurance_cents != 0, b.patient_cents != 0))
        since_end = self._receivable_entries(e.claim_id, -e.amount_cents, aged).where(
            e.created_at >= span.end
        )
        return union_all(open_now, since_end).subquery("ar_parts")

    def _receivable_entries(self, *columns: Any) -> Any:
        """``columns`` of the receivable entries (accounts insurance_receivable and patient_receivable), per
        practice, with their claim's rollup row (``report_claim_balance``, for its date of service)."""
        e, b = LedgerEntry, ReportClaimBalance
        return (
            select(e.tenant_id, *columns)
            .select_from(join(e, b, and_(b.tenant_id == e.tenant_id, b.claim_id == e.claim_id)))
            .where(self.tenant_filter(e.tenant_id), e.account.in_([a.value for a in RECEIVABLES]))
        )

    def _ar_at_end(self, span: PeriodBounds) -> Any:
        """Receivables outstanding at the period's end per practice, all and on claims whose date of service
        is before ``aged_before``, without a per-claim step: the receivable days' rollup
        (``report_receivable_day``) before the end's UTC day, plus the entries of that day up to the end
        from the ledger (none when the end is midnight UTC, as a KPI period's always is)."""
        r, e, b = ReportReceivableDay, LedgerEntry, ReportClaimBalance
        end_day = span.end.astimezone(UTC).date()
        days = select(
            r.tenant_id, r.amount_cents.label("amount"), (r.service_date < span.aged_before).label("aged")
        ).where(self.tenant_filter(r.tenant_id), r.day < end_day)
        end_day_so_far = self._receivable_entries(e.amount_cents, b.service_date < span.aged_before).where(
            e.created_at >= datetime.combine(end_day, time(), tzinfo=UTC), e.created_at < span.end
        )
        parts = union_all(days, end_day_so_far).subquery("ar_parts")
        return select(
            parts.c.tenant_id,
            func.sum(parts.c.amount),
            func.coalesce(func.sum(parts.c.amount).filter(parts.c.aged), 0),
        ).group_by(parts.c.tenant_id)

    def balance_claims(self, span: PeriodBounds) -> Any:
        """One row per claim with a receivable balance at the period's end, and whether it is aged."""
        parts = self._ar_parts(span)
        balance = func.sum(parts.c.amount)
        return (
            select(
                parts.c.tenant_id,
                parts.c.claim_id,
                balance.label("balance"),
                func.bool_or(parts.c.aged).label("aged"),
            )
            .group_by(parts.c.tenant_id, parts.c.claim_id)
            .having(balance != 0)
            .subquery("balance_claims")
        )

    async def money(self, span: PeriodBounds) -> dict[uuid.UUID, dict[str, int]]:
        """Per practice: charges, payments and contractual adjustments posted in the period, charges of the
        90 days ending with it, and the receivables outstanding at its end (all, and on claims aged > 90)."""
        out: dict[uuid.UUID, dict[str, int]] = {}
        for row in await self._rows(self._day_flows(span)):
            out[row.tenant_id] = {
                "charges": int(row.charges),
                "payments": int(row.payments),
                "contractual": int(row.contractual),
                "window_charges": int(row.window_charges),
                "ar": 0,
                "ar_aged": 0,
            }
        for tenant_id, ar, ar_aged in await self._rows(self._ar_at_end(span)):
            figures = out.setdefault(tenant_id, dict.fromkeys(_MONEY_KEYS, 0))
            figures["ar"], figures["ar_aged"] = int(ar or 0), int(ar_aged or 0)
        return out

    # -- rates (claim events) ---------------------------------------------------------------------------

    def _first_in_period(self, span: PeriodBounds, moves: Callable[[Any], list[Any]]) -> Any:
        """Whether a claim event is of the period and one of ``moves`` (conditions on the claim event entity
        given) on a claim with none of them before the period's start: the period's events through
        ``ix_claim_event_state_time``, an earlier one by a probe per claim of ``ix_claim_event_claim``."""
        ev, earlier = ClaimEvent, aliased(ClaimEvent)
        return and_(
            self.tenant_filter(ev.tenant_id),
            *moves(ev),
            ev.created_at >= span.start,
            ev.created_at < span.end,
            ~exists().where(
                earlier.tenant_id == ev.tenant_id,
                earlier.claim_id == ev.claim_id,
                *moves(earlier),
                earlier.created_at < span.start,
            ),
        )

    def _first_adjudications_in(self, span: PeriodBounds) -> Any:
        """The claims first adjudicated in the period, with that first adjudication (the earliest, the
        lowest id among those at the same instant), read from the period's events alone: the first
        adjudication of a claim falls in the period exactly when the claim has one in it and none before its
        start (its first one in the period is then its first ever, ties on the instant included: they are in
        the period too). The period's events through ``ix_claim_event_state_time``, the earlier one by a
        probe per claim."""
        ev = ClaimEvent
        return (
            select(ev.tenant_id, ev.claim_id, ev.to_state, ev.created_at)
            .where(self._first_in_period(span, _adjudication))
            .distinct(ev.tenant_id, ev.claim_id)
            .order_by(ev.tenant_id, ev.claim_id, ev.created_at, ev.id)
            .subquery("first_adjudication")
        )

    def adjudicated_claims(self, span: PeriodBounds) -> Any:
        """One row per claim first adjudicated in the period: its payer and patient, whether the payer
        denied it, paid it on its first submission, and the whole days from first submission to a paying
        835 (None unless it paid). Each claim's submissions are summed for that claim alone (a lateral
        aggregate through ``ix_claim_event_claim``; no row, so NULLs, when it has none, as an outer join to
        the grouped submissions gave)."""
        adj = self._first_adjudications_in(span)
        ev = ClaimEvent
        subs = (
            select(func.min(ev.created_at).label("first_at"), func.count().label("times"))
            .where(
                ev.tenant_id == adj.c.tenant_id,
                ev.claim_id == adj.c.claim_id,
                ev.to_state == ClaimState.SUBMITTED,
            )
            .group_by(ev.tenant_id, ev.claim_id)
            .lateral("submissions")
        )
        paid = adj.c.to_state.in_(_PAID)
        days = _utc_date(adj.c.created_at) - _utc_date(subs.c.first_at)
        return (
            select(
                adj.c.tenant_id,
                adj.c.claim_id,
                Claim.payer_id,
                (adj.c.to_state == ClaimState.DENIED).label("denied"),
                and_(paid, Claim.frequency == 1, subs.c.times == 1).label("first_pass"),
                case((and_(paid, subs.c.first_at.is_not(None)), days), else_=None).label("days"),
            )
            .select_from(
                adj.join(
                    Claim, and_(Claim.tenant_id == adj.c.tenant_id, Claim.id == adj.c.claim_id)
                ).outerjoin(subs, true())
            )
            .subquery("adjudicated")
        )

    def submitted_claims(self, span: PeriodBounds) -> Any:
        """One row per claim first submitted in the period and answered since (accepted, rejected or
        adjudicated), and whether it was clean: an original, never rejected, its encounter never failing
        a scrub edit. First submitted in the period: submitted in it and never before its start (the
        period's submissions through ``ix_claim_event_state_time``, an earlier one by a probe per claim)."""
        ev, answer = ClaimEvent, aliased(ClaimEvent)
        # Answered: in the same statement as the period's submissions, so it can narrow them before the
        # probe for an earlier one (a range of ix_claim_event_state_time per answer state).
        answered = exists().where(
            self.tenant_filter(answer.tenant_id),
            answer.tenant_id == ev.tenant_id,
            answer.claim_id == ev.claim_id,
            answer.to_state.in_(_ANSWERED),
        )
        subs = (
            select(ev.tenant_id, ev.claim_id)
            .where(self._first_in_period(span, lambda e: [e.to_state == ClaimState.SUBMITTED]), answered)
            .group_by(ev.tenant_id, ev.claim_id)
            .subquery("submissions")
        )
        rejected = exists().where(
            ev.tenant_id == subs.c.tenant_id,
            ev.claim_id == subs.c.claim_id,
            ev.to_state == ClaimState.REJECTED,
        )
        edited = exists().where(
            ScrubRun.tenant_id == Claim.tenant_id,
            ScrubRun.encounter_id == Claim.encounter_id,
            ScrubRun.outcome != ScrubOutcome.CLEAN,
        )
        return (
            select(
                subs.c.tenant_id,
                subs.c.claim_id,
                and_(~rejected, ~edited, Claim.frequency == 1).label("clean"),
            )
            .select_from(
                subs.join(Claim, and_(Claim.tenant_id == subs.c.tenant_id, Claim.id == subs.c.claim_id))
            )
            .subquery("submitted")
        )

    async def _planned_per_call(self) -> None:
        """The rest of this transaction (a report's) plans each statement for its parameters, never with the
        generic plan the server caches for a prepared statement after five runs: the rates' statements
        read a practice's claim events, whose number ranges from none to millions across practices and
        periods, and the generic plan, made for an average practice, scanned every event of a practice with
        a million claims (0.4-0.5 s a statement, where the plan for the parameters takes milliseconds).
        Planning them costs about a millisecond. Sent once per repository (a repository lives in one
        transaction): the dashboard reads the rates of two periods."""
        if not self._custom_plans:
            await self._execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            self._custom_plans = True

    async def rates(self, span: PeriodBounds) -> dict[uuid.UUID, RateCounts]:
        """Per practice: the first adjudications of the period (denied, paid first time, days from first
        submission per payer) and the first submissions of the period (answered, clean)."""
        await self._planned_per_call()
        adj = self.adjudicated_claims(span)
        adjudications = (
            select(
                adj.c.tenant_id,
                adj.c.payer_id,
                func.count(),
                func.count().filter(adj.c.denied),
                func.count().filter(adj.c.first_pass),
                func.count(adj.c.days),
                func.coalesce(func.sum(adj.c.days), 0),
            )
            .group_by(adj.c.tenant_id, adj.c.payer_id)
            .order_by(adj.c.tenant_id, adj.c.payer_id)
        )
        out: dict[uuid.UUID, RateCounts] = {}
        for tenant_id, payer_id, total, denied, first_pass, paid_claims, paid_days in await self._rows(
            adjudications
        ):
            counts = out.setdefault(tenant_id, RateCounts())
            counts.adjudicated += int(total)
            counts.denied += int(denied)
            counts.first_pass += int(first_pass)
            if paid_claims:
                counts.by_payer.append(PayerDays(payer_id, int(paid_claims), int(paid_days)))
        sub = self.submitted_claims(span)
        submissions = select(sub.c.tenant_id, func.count(), func.count().filter(sub.c.clean)).group_by(
            sub.c.tenant_id
        )
        for tenant_id, answered_n, clean_n in await self._rows(submissions):
            counts = out.setdefault(tenant_id, RateCounts())
            counts.answered, counts.clean = int(answered_n), int(clean_n)
        return out

    # -- drill-down: the claims behind a KPI ------------------------------------------------------------

    def _claim_set(self, key: KpiKey, span: PeriodBounds) -> tuple[Any, Any, Any]:
        """The KPI's denominator claims (a subquery with ``tenant_id`` and ``claim_id``), the condition
        that puts one in the numerator, and the claim's own figure (days, balance or payments), if any."""
        if key in (KpiKey.DENIAL_RATE, KpiKey.FIRST_PASS_RESOLUTION_RATE, KpiKey.DAYS_TO_PAYMENT):
            adj = self.adjudicated_claims(span)
            if key is KpiKey.DAYS_TO_PAYMENT:
                paid = select(adj).where(adj.c.days.is_not(None)).subquery("paid")
                return paid, literal(True), paid.c.days
            return adj, adj.c.denied if key is KpiKey.DENIAL_RATE else adj.c.first_pass, literal(None)
        if key is KpiKey.CLEAN_CLAIM_RATE:
            sub = self.submitted_claims(span)
            return sub, sub.c.clean, literal(None)
        if key in (KpiKey.DAYS_IN_AR, KpiKey.AR_OVER_90_DAYS):
            bal = self.balance_claims(span)
            return bal, bal.c.aged if key is KpiKey.AR_OVER_90_DAYS else literal(True), bal.c.balance
        flows = self.flow_claims(span)
        return flows, flows.c.payments != 0, flows.c.payments

    async def kpi_claims(
        self, key: KpiKey, span: PeriodBounds, *, numerator_only: bool, after: uuid.UUID | None, limit: int
    ) -> list[Any]:
        """One page, by claim id, of the claims behind ``key`` in the period: claim number, date of
        service, payer, state, charge, patient id (for the audit event, never shown), whether the claim
        counts in the numerator, and its own figure."""
        await self._planned_per_call()
        claims, numerator, measure = self._claim_set(key, span)
        stmt = (
            select(
                Claim.id,
                Claim.patient_control_number,
                Claim.service_date,
                Claim.payer_id,
                Claim.state,
                Claim.total_charge_cents,
                Claim.patient_id,
                numerator.label("in_numerator"),
                measure.label("measure"),
            )
            .select_from(
                claims.join(Claim, and_(Claim.tenant_id == claims.c.tenant_id, Claim.id == claims.c.claim_id))
            )
            .order_by(Claim.id)
            .limit(limit)
        )
        if numerator_only:
            stmt = stmt.where(numerator)
        if after is not None:
            stmt = stmt.where(Claim.id > after)
        return await self._rows(stmt)

    # -- the forecast's history -------------------------------------------------------------------------

    async def forecast_history(self, *, before: date, since: date) -> ForecastHistory:
        """The forecast's history from its rollups (``report_forecast_claims`` and ``_payments``, kept as
        claims and entries are written; migration 0055): the claims first submitted from ``since`` to before
        ``before`` and every older one never adjudicated, per payer, submission day, first-adjudication day
        and closed unpaid or not (claims and gross charges), and the payer payments posted from ``since``
        to before ``before`` on those claims, per the same days and the posting day. One round trip; rows
        scale with payers x submission days x adjudication days, not with claims."""
        out = ForecastHistory([], [])
        params = {"since": since, "before": before}
        for row in await self._driver_rows(_forecast_history_statement(), params):
            if row[0]:
                out.claims.append(ClaimGroup(row[1], row[2], row[3], row[4], int(row[6]), int(row[7])))
            else:
                out.payments.append(PaymentGroup(row[1], row[2], row[3], row[5], int(row[7])))
        return out

    # -- productivity (staff scope) ---------------------------------------------------------------------

    async def staff_activity(self, *, since: datetime, until: datetime) -> list[Any]:
        """Per person (principal subject): coding items completed, billing items completed, distinct claims
        they moved, ledger postings they made, items completed after their due time, and the distinct
        clock hours and days with any of that activity."""
        wi, we = WorkItem, WorkItemEvent
        completed = (
            select(
                we.actor.label("actor"),
                we.created_at.label("at"),
                case((wi.kind == QueueKind.CODING, literal("coded")), else_=literal("billing")).label("what"),
                literal(None).label("claim_id"),
                (we.created_at > wi.due_at).label("late"),
            )
            .select_from(join(we, wi, and_(wi.tenant_id == we.tenant_id, wi.id == we.work_item_id)))
            .where(
                self.tenant_filter(we.tenant_id),
                we.event == ItemEventType.COMPLETED,
                we.actor.is_not(None),
                we.created_at >= since,
                we.created_at < until,
            )
        )
        ev = ClaimEvent
        claims = select(
            ev.actor, ev.created_at, literal("claim"), cast(ev.claim_id, ev.claim_id.type), literal(False)
        ).where(
            self.tenant_filter(ev.tenant_id),
            ev.cause == Cause.BILLER,
            ev.actor.is_not(None),
            ev.created_at >= since,
            ev.created_at < until,
        )
        lp = LedgerPosting
        postings = select(lp.actor, lp.created_at, literal("posting"), literal(None), literal(False)).where(
            self.tenant_filter(lp.tenant_id),
            lp.actor.is_not(None),
            lp.source.in_([Source.PATIENT_PAYMENT, Source.PATIENT_REFUND, Source.SMALL_BALANCE_WRITE_OFF]),
            lp.created_at >= since,
            lp.created_at < until,
        )
        acts = union_all(completed, claims, postings).subquery("acts")
        stmt = (
            select(
                acts.c.actor,
                func.count().filter(acts.c.what == "coded").label("coded"),
                func.count().filter(acts.c.what == "billing").label("billing_items"),
                func.count(acts.c.claim_id.distinct()).label("claims"),
                func.count().filter(acts.c.what == "posting").label("postings"),
                func.count().filter(acts.c.late).label("late"),
                func.count(func.date_trunc("hour", acts.c.at).distinct()).label("hours"),
                func.count(_utc_date(acts.c.at).distinct()).label("days"),
            )
            .group_by(acts.c.actor)
            .order_by(acts.c.actor)
        )
        return await self._rows(stmt)

    async def qa_by_coder(self, *, since: datetime, until: datetime) -> list[Any]:
        """Per coder: QA samples reviewed in the window and their summed agreement counts."""
        q = QaSample
        stmt = (
            select(
                q.coder,
                func.count().label("samples"),
                func.coalesce(func.sum(q.dx_agreed), 0) + func.coalesce(func.sum(q.px_agreed), 0),
                func.coalesce(func.sum(q.dx_total), 0) + func.coalesce(func.sum(q.px_total), 0),
            )
            .where(
                self.tenant_filter(q.tenant_id),
                q.status == SampleStatus.REVIEWED,
                q.reviewed_at >= since,
                q.reviewed_at < until,
            )
            .group_by(q.coder)
            .order_by(q.coder)
        )
        return await self._rows(stmt)
