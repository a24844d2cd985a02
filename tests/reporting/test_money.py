"""Money reports against the real database: after seeded random postings (charges, voids, 835 payments and
their reversals, PLB adjustments, unapplied payments, patient payments and refunds, posted several drafts per
statement as the 835 posting does), every cash-flow figure and the AR aging equal, to the cent, a
recomputation straight from ``rcm.ledger_entry``; a closed month never shifts and late entries land in the
next open period; the routes answer owners and assigned supervisors, export CSV and XLSX, and a close is
audited."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import openpyxl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import RoundTrips
from rcm.kit.errors import Conflict, InvalidInput
from rcm.kit.tenant import TenantId
from rcm.ledger.models import Account, Remittance, RemittanceState, Source
from rcm.ledger.posting import Draft
from rcm.ledger.repository import LedgerRepository
from rcm.reporting.aging import ar_aging
from rcm.reporting.cashflow import cash_flow, cash_flow_entries
from rcm.reporting.close import close_month
from rcm.reporting.kpi_repository import KpiRepository, PeriodBounds
from rcm.reporting.schemas import (
    BUCKETS,
    AgingBasis,
    CashFlowFigures,
    Grain,
    GroupBy,
    MonthCloseCreate,
)
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.reporting.scenario import rebuilt_alike
from tests.support import Api

TODAY = datetime.now(UTC).date()
THIS_MONTH = TODAY.replace(day=1)
LAST_MONTH = (THIS_MONTH - timedelta(days=1)).replace(day=1)

# The reference: what each account and source means in the report, written apart from the SQL.
_KIND = {
    "charges": ("charges_cents", -1),
    "payments": ("payments_cents", 1),
    "adjustments": ("adjustments_cents", 1),
    "interest": ("interest_cents", 1),
    "provider_adjustments": ("provider_adjustments_cents", 1),
    "unapplied": ("unapplied_cents", -1),
}
_GROUP_COLUMN = {
    GroupBy.PAYER: "payer_id",
    GroupBy.PROVIDER: "provider_id",
    GroupBy.CPT: "procedure_code",
    GroupBy.LOCATION: "location",
}

LEDGER = """
SELECT e.id, e.account, e.amount_cents, e.adjustment_group, e.created_at, p.source, r.paid_on,
       coalesce(c.payer_id, '') AS payer_id, coalesce(enc.rendering_provider_id::text, '') AS provider_id,
       coalesce(l.procedure_code, '') AS procedure_code, coalesce(enc.facility_name, '') AS location
  FROM rcm.ledger_entry e
  JOIN rcm.ledger_posting p ON p.tenant_id = e.tenant_id AND p.id = e.posting_id
  LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
  LEFT JOIN rcm.claim c ON c.tenant_id = e.tenant_id AND c.id = e.claim_id
  LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
  LEFT JOIN rcm.claim_line l ON l.tenant_id = e.tenant_id AND l.claim_id = e.claim_id
                            AND l.line_number = e.line_number
 WHERE e.tenant_id = :t
"""

CLOSING_BALANCES = """
SELECT c.id, c.payer_id, c.service_date,
       (SELECT min(ev.created_at AT TIME ZONE 'UTC')::date FROM rcm.claim_event ev
         WHERE ev.tenant_id = c.tenant_id AND ev.claim_id = c.id AND ev.to_state = 'submitted') AS submitted,
       coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'insurance_receivable'), 0) AS insurance,
       coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'patient_receivable'), 0) AS patient
  FROM rcm.claim c
  JOIN rcm.ledger_entry e ON e.tenant_id = c.tenant_id AND e.claim_id = c.id
  JOIN rcm.ledger_posting p ON p.tenant_id = e.tenant_id AND p.id = e.posting_id
  LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
 WHERE c.tenant_id = :t AND coalesce(r.paid_on, (e.created_at AT TIME ZONE 'UTC')::date) <= :d
 GROUP BY c.tenant_id, c.id
"""

BALANCES = """
SELECT c.id, c.payer_id, c.service_date,
       (SELECT min(ev.created_at AT TIME ZONE 'UTC')::date FROM rcm.claim_event ev
         WHERE ev.tenant_id = c.tenant_id AND ev.claim_id = c.id AND ev.to_state = 'submitted') AS submitted,
       coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'insurance_receivable'), 0) AS insurance,
       coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'patient_receivable'), 0) AS patient
  FROM rcm.claim c JOIN rcm.ledger_entry e ON e.tenant_id = c.tenant_id AND e.claim_id = c.id
 WHERE c.tenant_id = :t
 GROUP BY c.tenant_id, c.id
"""


def _field(entry: Any) -> tuple[str, int] | None:
    if entry.account == "patient_payments":
        return ("refunds_cents", -1) if entry.source == "patient_refund" else ("patient_payments_cents", 1)
    return _KIND.get(entry.account)


def _add(figures: CashFlowFigures, entry: Any) -> None:
    found = _field(entry)
    if found is None:
        return
    name, sign = found
    setattr(figures, name, getattr(figures, name) + sign * entry.amount_cents)
    if entry.account == "adjustments":
        group = entry.adjustment_group or ""
        figures.adjustments_by_group[group] = figures.adjustments_by_group.get(group, 0) + entry.amount_cents
    figures.entries += 1


def _effective(entry: Any) -> date:
    day: date = entry.paid_on or entry.created_at.astimezone(UTC).date()
    return day


async def _ledger(owner_engine: AsyncEngine, practice: Tenant) -> list[Any]:
    return await rows(owner_engine, LEDGER, t=practice.id)


def _expected(
    entries: Iterable[Any], group_by: GroupBy, day_of: Any = _effective
) -> dict[tuple[date, str | None], CashFlowFigures]:
    cells: dict[tuple[date, str | None], CashFlowFigures] = defaultdict(CashFlowFigures)
    for entry in entries:
        if entry.account in ("insurance_receivable", "patient_receivable"):
            continue
        key = getattr(entry, _GROUP_COLUMN[group_by]) if group_by in _GROUP_COLUMN else None
        _add(cells[day_of(entry), key], entry)
    return dict(cells)


def _dropping_zero_groups(figures: CashFlowFigures) -> CashFlowFigures:
    figures.adjustments_by_group = {k: v for k, v in figures.adjustments_by_group.items() if v}
    return figures


async def _remittance(scope: Any, paid_on: date) -> uuid.UUID:
    remittance = Remittance(
        id=uuid.uuid4(),
        x12_file_id=None,
        set_control_number="0001",
        payer_name="Demo Medicare",
        payer_identifier=None,
        trace_originator="1999999999",
        trace_number=uuid.uuid4().hex[:12],
        total_paid_cents=0,
        credit_debit="C",
        payment_method="ACH",
        paid_on=paid_on,
        payee_npi=None,
        state=RemittanceState.POSTED,
        held_reason=None,
        claim_count=1,
    )
    assert await scope.repo(LedgerRepository).receive(remittance)
    return remittance.id


def _remittance_drafts(rng: random.Random, claim_ids: list[uuid.UUID]) -> list[Draft]:
    drafts = []
    for _ in range(rng.randint(1, 5)):
        roll = rng.random()
        if roll < 0.6:  # a CLP: payment, CO write-off, PR patient share; or its reversal (negative)
            sign = -1 if rng.random() < 0.2 else 1
            draft = Draft(Source.REMITTANCE_CLAIM, rng.choice(claim_ids))
            line = rng.choice([1, 2, None])
            draft.add(
                Account.PAYMENTS, Account.INSURANCE_RECEIVABLE, sign * rng.randint(1, 9000), line_number=line
            )
            draft.add(
                Account.ADJUSTMENTS,
                Account.INSURANCE_RECEIVABLE,
                sign * rng.randint(1, 3000),
                line_number=line,
                group=rng.choice(["CO", "OA", "PI"]),
                reason="45",
            )
            draft.add(
                Account.PATIENT_RECEIVABLE,
                Account.INSURANCE_RECEIVABLE,
                sign * rng.randint(0, 2000),
                line_number=line,
                group="PR",
                reason="2",
            )
        elif roll < 0.8:  # a PLB recoupment or interest
            draft = Draft(Source.PROVIDER_ADJUSTMENT, None)
            interest = rng.random() < 0.5
            target = Account.INTEREST if interest else Account.PROVIDER_ADJUSTMENTS
            draft.add(target, Account.PAYMENTS, rng.randint(-900, 900), reason="L6" if interest else "WO")
        else:  # a payment for no claim of ours
            draft = Draft(Source.REMITTANCE_CLAIM, None)
            draft.add(Account.PAYMENTS, Account.UNAPPLIED, rng.randint(1, 5000))
        drafts.append(draft)
    return drafts


def _other_drafts(rng: random.Random, claim_ids: list[uuid.UUID]) -> list[Draft]:
    drafts = []
    for _ in range(rng.randint(1, 5)):
        claim_id = rng.choice(claim_ids)
        roll = rng.random()
        if roll < 0.25:
            draft = Draft(Source.CLAIM_BUILT, claim_id)
            draft.add(Account.INSURANCE_RECEIVABLE, Account.CHARGES, rng.randint(100, 20000), line_number=1)
        elif roll < 0.4:
            draft = Draft(Source.CLAIM_VOIDED, claim_id)
            draft.add(Account.CHARGES, Account.INSURANCE_RECEIVABLE, rng.randint(100, 5000), line_number=2)
        elif roll < 0.7:
            draft = Draft(Source.PATIENT_PAYMENT, claim_id)
            draft.add(Account.PATIENT_PAYMENTS, Account.PATIENT_RECEIVABLE, rng.randint(1, 4000))
        elif roll < 0.85:
            draft = Draft(Source.PATIENT_REFUND, claim_id)
            draft.add(Account.PATIENT_RECEIVABLE, Account.PATIENT_PAYMENTS, rng.randint(1, 1500))
        else:
            draft = Draft(Source.SMALL_BALANCE_WRITE_OFF, claim_id)
            draft.add(Account.ADJUSTMENTS, Account.PATIENT_RECEIVABLE, rng.randint(1, 500), reason="WO")
        drafts.append(draft)
    return drafts


async def _claim_ids(claims: Claims, intake: Api, practice: Tenant, count: int) -> list[uuid.UUID]:
    ids = []
    for n in range(count):
        claim_id = await claims.new(intake, practice)
        if n % 2 == 0:  # half submitted (a submission date), half not
            await claims.walk(practice, claim_id, ClaimState.SUBMITTED)
        ids.append(claim_id)
    return ids


async def _post_randomly(
    rng: random.Random,
    *,
    sessions: Any,
    settings: Settings,
    practice: Tenant,
    claim_ids: list[uuid.UUID],
    n: int,
) -> None:
    for _ in range(n):
        async with practice_scope(sessions, settings, practice) as scope:
            if rng.random() < 0.5:
                paid_on = TODAY - timedelta(days=rng.randint(0, 75))
                remittance_id = await _remittance(scope, paid_on)
                await scope.repo(LedgerRepository).post(
                    _remittance_drafts(rng, claim_ids), remittance_id=remittance_id
                )
            else:
                await scope.repo(LedgerRepository).post(_other_drafts(rng, claim_ids))


def _report_cells(report: Any) -> dict[tuple[date, str | None], CashFlowFigures]:
    return {(r.period_start, r.group): _dropping_zero_groups(r.figures) for r in report.rows}


def _aging_expected(balances: list[Any], as_of: date, basis: AgingBasis) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for b in balances:
        since = b.service_date if basis is AgingBasis.SERVICE_DATE else b.submitted
        if since is None:
            bucket = "unsubmitted"
        else:
            age = (as_of - since).days
            edges = [30, 60, 90, 120]
            bucket = next((BUCKETS[i] for i, edge in enumerate(edges) if age <= edge), "120+")
        if b.insurance:
            out[b.payer_id][bucket] += b.insurance
        if b.patient:
            out["patient"][bucket] += b.patient
    return {payer: {k: v for k, v in cells.items() if v} for payer, cells in out.items()}


async def _aging(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    practice: Tenant,
    as_of: date,
    basis: AgingBasis,
) -> Any:
    async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
        return await ar_aging(scope, as_of=as_of, basis=basis)


def _aging_of(report: Any) -> dict[str, dict[str, int]]:
    return {
        r.payer_id: {b.bucket: b.balance_cents for b in r.buckets if b.balance_cents} for r in report.rows
    }


@pytest.mark.parametrize("seed", [7, 2026])
async def test_reports_equal_a_recomputation_from_the_ledger_after_random_postings(
    *,
    seed: int,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    rng = random.Random(seed)
    claim_ids = await _claim_ids(claims, intake, practice, 4)
    await _post_randomly(
        rng, sessions=sessions, settings=settings, practice=practice, claim_ids=claim_ids, n=14
    )
    entries = await _ledger(owner_engine, practice)
    assert {e.source for e in entries} >= {"claim_built", "remittance_claim", "patient_payment"}
    start = TODAY - timedelta(days=80)
    async with practice_scope(sessions, settings, practice, role=Role.SUPERVISOR) as scope:
        for group_by in GroupBy:
            report = await cash_flow(
                scope, date_from=start, date_to=TODAY, grain=Grain.DAY, group_by=group_by
            )
            assert _report_cells(report) == _expected(entries, group_by), group_by
        monthly = await cash_flow(scope, date_from=start, date_to=TODAY, grain=Grain.MONTH)
        weekly = await cash_flow(
            scope, date_from=start, date_to=TODAY, grain=Grain.WEEK, group_by=GroupBy.CPT
        )
        everything = CashFlowFigures()
        for entry in entries:
            if entry.account not in ("insurance_receivable", "patient_receivable"):
                _add(everything, entry)
        assert _dropping_zero_groups(monthly.total) == everything
        assert _dropping_zero_groups(weekly.total) == everything
        assert sum(r.figures.payments_cents for r in weekly.rows) == everything.payments_cents
        assert all(r.period_start.weekday() == 0 or r.period_start == start for r in weekly.rows)

        balances = await rows(owner_engine, BALANCES, t=practice.id)
        for basis in AgingBasis:
            aging = await ar_aging(scope, as_of=TODAY, basis=basis)
            assert _aging_of(aging) == _aging_expected(balances, TODAY, basis), basis
            assert aging.balance_cents == sum(b.insurance + b.patient for b in balances)
            assert aging.source == "live"

        # Every cell is traceable: the drill-down's entries sum to the figure, page by page.
        day = max(
            r.period_start
            for r in (await cash_flow(scope, date_from=start, date_to=TODAY, grain=Grain.DAY)).rows
        )
        cell = (await cash_flow(scope, date_from=day, date_to=day, grain=Grain.DAY)).total
        total, cursor, seen = 0, None, 0
        while True:
            page = await cash_flow_entries(
                scope, date_from=day, date_to=day, kind=None, cursor=cursor, limit=3
            )
            total += sum(i.amount_cents for i in page.items if i.kind.value == "payment")
            seen += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert total == cell.payments_cents
        assert seen == cell.entries


KPI_ENTRIES = """
SELECT e.account, e.amount_cents, e.adjustment_group, e.created_at, e.claim_id, c.service_date
  FROM rcm.ledger_entry e LEFT JOIN rcm.claim c ON c.tenant_id = e.tenant_id AND c.id = e.claim_id
 WHERE e.tenant_id = :t
"""


def _kpi_money_expected(entries: Iterable[Any], span: PeriodBounds) -> dict[str, int]:
    """The KPIs' money as defined (posting instants, half-open), summed entry by entry."""
    out = dict.fromkeys(("charges", "payments", "contractual", "window_charges", "ar", "ar_aged"), 0)
    for e in entries:
        if e.created_at >= span.end:
            continue
        in_period = e.created_at >= span.start
        if e.account == "charges":
            out["charges"] -= e.amount_cents if in_period else 0
            out["window_charges"] -= e.amount_cents if e.created_at >= span.window_start else 0
        elif e.account in ("payments", "patient_payments") and e.claim_id is not None and in_period:
            out["payments"] += e.amount_cents
        elif e.account == "adjustments" and e.adjustment_group == "CO" and in_period:
            out["contractual"] += e.amount_cents
        elif e.account in ("insurance_receivable", "patient_receivable"):
            out["ar"] += e.amount_cents
            out["ar_aged"] += e.amount_cents if e.service_date < span.aged_before else 0
    return out


POSTED_DAYS = (
    "SELECT day, charges_cents, payments_cents, contractual_cents FROM rcm.report_posted_day"
    " WHERE tenant_id = :t ORDER BY day"
)
RECEIVABLE_DAYS = (
    "SELECT day, service_date, amount_cents FROM rcm.report_receivable_day"
    " WHERE tenant_id = :t ORDER BY day, service_date"
)


async def test_kpi_money_equals_the_ledger_at_any_period_end(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """The KPIs' AR at a period's end is the receivable days' rollup before the end's day plus that day's
    entries up to the end: after random postings on both sides of the end (some settling claims since), it
    equals the ledger summed up to it."""
    rng = random.Random(41)
    claim_ids = await _claim_ids(claims, intake, practice, 4)
    await _post_randomly(
        rng, sessions=sessions, settings=settings, practice=practice, claim_ids=claim_ids, n=8
    )
    middle = datetime.now(UTC)
    await _post_randomly(
        rng, sessions=sessions, settings=settings, practice=practice, claim_ids=claim_ids, n=8
    )
    entries = await rows(owner_engine, KPI_ENTRIES, t=practice.id)
    assert any(e.created_at < middle for e in entries)
    assert any(e.created_at >= middle and e.account.endswith("_receivable") for e in entries)
    service_dates = sorted({e.service_date for e in entries if e.service_date is not None})
    # Mid-day ends (the flows from the ledger) and midnight UTC ends, as a KPI period's (from the posting
    # days' rollup): the entries' day, and the next (the flows of every entry).
    today = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    ends = (middle, middle + timedelta(seconds=1), today, today + timedelta(days=1))
    for end in ends:
        for aged_before in (service_dates[0], service_dates[-1] + timedelta(days=1)):
            span = PeriodBounds(
                start=end - timedelta(days=30),
                end=end,
                window_start=end - timedelta(days=90),
                aged_before=aged_before,
            )
            async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
                money = await scope.repo(KpiRepository).money(span)
            expected = _kpi_money_expected(entries, span)
            assert money.get(practice.id, dict.fromkeys(expected, 0)) == expected, (end, aged_before)
    # The posting days' rollups summed again from the ledger (rcm.report_rebuild) equal them as kept.
    kept = await rebuilt_alike(owner_engine, practice.id, POSTED_DAYS, RECEIVABLE_DAYS)
    assert all(kept)


async def test_a_closed_month_never_shifts_and_late_entries_land_in_the_open_period(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    rng = random.Random(11)
    claim_ids = await _claim_ids(claims, intake, practice, 3)
    await _post_randomly(
        rng, sessions=sessions, settings=settings, practice=practice, claim_ids=claim_ids, n=10
    )
    last_day = THIS_MONTH - timedelta(days=1)
    start = LAST_MONTH - timedelta(days=40)
    async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
        with pytest.raises(InvalidInput):
            await close_month(scope, MonthCloseCreate(month=f"{THIS_MONTH:%Y-%m}"))
        before = await cash_flow(
            scope, date_from=start, date_to=last_day, grain=Grain.DAY, group_by=GroupBy.PAYER
        )
        closed = await close_month(scope, MonthCloseCreate(month=f"{LAST_MONTH:%Y-%m}"))
        assert closed.month == LAST_MONTH
    async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
        with pytest.raises(Conflict):
            await close_month(scope, MonthCloseCreate(month=f"{LAST_MONTH - timedelta(days=1):%Y-%m}"))
        aging_at_close = await ar_aging(scope, as_of=last_day)
    assert aging_at_close.source == "closed"
    # The frozen AR equals the ledger's balances as of the month's end (entries effective on or before it).
    entries = await _ledger(owner_engine, practice)
    closing_balances = [
        SimpleNamespace(
            **{**b._asdict(), "submitted": b.submitted if b.submitted and b.submitted <= last_day else None}
        )
        for b in await rows(owner_engine, CLOSING_BALANCES, t=practice.id, d=last_day)
    ]
    assert _aging_of(aging_at_close) == _aging_expected(closing_balances, last_day, AgingBasis.SERVICE_DATE)
    assert _aging_of(await _aging(sessions, settings, practice, last_day, AgingBasis.SUBMISSION_DATE)) == (
        _aging_expected(closing_balances, last_day, AgingBasis.SUBMISSION_DATE)
    )

    # Late money: an 835 paid in the closed month, posted now; charges and refunds too.
    async with practice_scope(sessions, settings, practice) as scope:
        remittance_id = await _remittance(scope, LAST_MONTH + timedelta(days=5))
        late = _remittance_drafts(rng, claim_ids)
        await scope.repo(LedgerRepository).post(late, remittance_id=remittance_id)
    money = ("insurance_receivable", "patient_receivable")
    late_ids = {e.id for e in await _ledger(owner_engine, practice) if e.account not in money} - {
        e.id for e in entries
    }
    assert late_ids
    async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
        after = await cash_flow(
            scope, date_from=start, date_to=last_day, grain=Grain.DAY, group_by=GroupBy.PAYER
        )
        assert [(r.period_start, r.group, r.figures) for r in after.rows] == [
            (r.period_start, r.group, r.figures) for r in before.rows
        ]
        assert after.total == before.total
        assert after.closed_through == last_day
        assert all(r.closed for r in after.rows if r.period_start >= LAST_MONTH)
        # They count on the first day of the first open month, where the drill-down finds them.
        page = await cash_flow_entries(scope, date_from=THIS_MONTH, date_to=THIS_MONTH, limit=200)
        assert late_ids <= {i.entry_id for i in page.items}
        assert all(i.report_day == THIS_MONTH for i in page.items if i.entry_id in late_ids)
        current = await cash_flow(
            scope, date_from=THIS_MONTH, date_to=TODAY, grain=Grain.DAY, group_by=GroupBy.PAYER
        )

    def report_day(entry: Any) -> date:
        return max(_effective(entry), THIS_MONTH) if entry.id in late_ids else _effective(entry)

    expected = {
        key: figures
        for key, figures in _expected(
            await _ledger(owner_engine, practice), GroupBy.PAYER, report_day
        ).items()
        if key[0] >= THIS_MONTH
    }
    assert _report_cells(current) == expected


async def test_owner_and_supervisor_routes_exports_and_an_audited_close(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    rng = random.Random(5)
    claim_ids = await _claim_ids(claims, intake, practice, 2)
    await _post_randomly(
        rng, sessions=sessions, settings=settings, practice=practice, claim_ids=claim_ids, n=6
    )
    owner = user_principal(Role.PRACTICE_OWNER, home_tenant=TenantId(practice.id))
    owner_api = Api(
        client, await mint_access_token(owner, sessions=sessions, settings=settings), practice.slug
    )
    start = (TODAY - timedelta(days=90)).isoformat()
    query = f"date_from={start}&date_to={TODAY.isoformat()}&grain=month&group_by=payer"
    flow = await owner_api.get(f"/reports/cash-flow?{query}")
    assert flow.status_code == 200, flow.text
    body = flow.json()
    assert (body["group_by"], body["grain"]) == ("payer", "month")
    charges = body["total"]["charges_cents"]
    assert charges == sum(r["figures"]["charges_cents"] for r in body["rows"])
    # Again, the caches warm: the owner's access is settled without rows, so the unit of work is BEGIN with
    # the binding (a bound parameter), the report's one statement and COMMIT, all on the driver
    # (``provide_tenant_read``); the answer is the service's through a session.
    with RoundTrips(app.state.engine) as counter:
        again = await owner_api.get(f"/reports/cash-flow?{query}")
        statements, on_driver, round_trips = (
            list(counter.statements),
            counter.driver_statements,
            counter.round_trips,
        )
    assert again.json() == body
    assert round_trips == 4
    assert on_driver == len(statements) == 3
    assert statements[0] == "BEGIN"
    assert "set_config" in statements[1]
    assert "$1" in statements[1]
    async with practice_scope(sessions, settings, practice, role=Role.PRACTICE_OWNER) as scope:
        report = await cash_flow(
            scope,
            date_from=TODAY - timedelta(days=90),
            date_to=TODAY,
            grain=Grain.MONTH,
            group_by=GroupBy.PAYER,
        )
    assert msgspec.to_builtins(report) == body

    csv_response = await owner_api.get(f"/reports/cash-flow.csv?{query}")
    assert csv_response.status_code == 200, csv_response.text
    assert csv_response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_response.text)))
    totals = next(r for r in table if r["group"] == "total")
    assert totals["charges_usd"] == f"{charges / 100:.2f}"
    assert {r["group"] for r in table} >= {"total", "previous_period", "DEMO-MCR"}

    xlsx = await owner_api.get(f"/reports/cash-flow.xlsx?{query}")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    header = cells[0]
    total_row = next(r for r in cells if r[header.index("group")] == "total")
    assert round(total_row[header.index("charges_usd")] * 100) == charges

    aging = await owner_api.get("/reports/ar-aging?basis=submission_date")
    assert aging.status_code == 200, aging.text
    assert [b["bucket"] for b in aging.json()["totals"]] == [*BUCKETS, "unsubmitted"]
    aging_csv = await owner_api.get("/reports/ar-aging.csv")
    lines = list(csv.reader(io.StringIO(aging_csv.text)))
    assert lines[0] == [
        "payer",
        *(f"{b}_usd" for b in BUCKETS),
        "balance_usd",
        "claims",
        "previous_balance_usd",
    ]
    assert lines[-1][0] == "total"
    service_basis = (await owner_api.get("/reports/ar-aging")).json()
    assert lines[-1][-3] == f"{service_basis['balance_cents'] / 100:.2f}"
    aging_xlsx = await owner_api.get("/reports/ar-aging.xlsx")
    aging_sheet = openpyxl.load_workbook(io.BytesIO(aging_xlsx.content)).active
    assert aging_sheet is not None
    last = [c.value for c in list(aging_sheet.iter_rows())[-1]]
    assert last[0] == "total"
    assert round(last[len(BUCKETS) + 1] * 100) == service_basis["balance_cents"]

    drill = await owner_api.get(
        f"/reports/cash-flow/entries?date_from={start}&date_to={TODAY}&kind=charge&limit=5"
    )
    assert drill.status_code == 200, drill.text
    item = drill.json()["items"][0]
    assert set(item) == {
        "entry_id",
        "posted_at",
        "report_day",
        "kind",
        "amount_cents",
        "adjustment_group",
        "reason_code",
        "procedure_code",
        "claim_id",
        "claim_number",
        "service_date",
        "payer_id",
        "claim_status",
    }

    # A supervisor assigned to the practice reads it; a coder may not close; the owner closes, audited.
    supervisor = await make_staff(Role.SUPERVISOR, practice)
    seen = await supervisor.get(f"/tenants/{practice.slug}/reports/cash-flow?{query}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["total"] == body["total"]
    coder = await make_staff(Role.CODER, practice)
    refused = await coder.post(f"/tenants/{practice.slug}/reports/close", {"month": f"{LAST_MONTH:%Y-%m}"})
    assert refused.status_code == 403
    closed = await owner_api.post("/reports/close", {"month": f"{LAST_MONTH:%Y-%m}"})
    assert closed.status_code == 201, closed.text
    assert closed.json()["month"] == LAST_MONTH.isoformat()
    again = await owner_api.post("/reports/close", {"month": f"{LAST_MONTH:%Y-%m}"})
    assert again.status_code == 409
    listed = await owner_api.get("/reports/closes")
    assert [c["month"] for c in listed.json()] == [LAST_MONTH.isoformat()]
    events = await rows(
        owner_engine,
        "SELECT event_type, action, detail->>'month' AS month FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'report.month_closed'",
        t=practice.id,
    )
    assert [(e.action, e.month) for e in events] == [("C", f"{LAST_MONTH:%Y-%m}")]
