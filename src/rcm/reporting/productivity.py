"""Supervisors' staff productivity over the practices they are assigned to, and the billing company's
roll-up of every practice's KPIs for people holding the operator role.

Productivity (``StaffScope``: the supervisor's own live assignments, nothing else), per person (their
principal subject, with their display name from the people directory: staff names are not PHI) over a
window:

- items coded: coding work items they completed; billing items: billing work items they completed;
- claims worked: distinct claims they moved by hand (corrections, resubmissions, appeals, closes);
- postings: ledger postings they made (patient payments, refunds, write-offs);
- SLA breaches: items they completed after the item's due time (from the practice's SLA);
- active hours and days: distinct clock hours and UTC days with any of the above; the per-hour and per-day
  rates divide the person's actions (coded + billing items + claims + postings) by them;
- QA accuracy per coder: codes both the coder and the blind reviewer gave over codes either gave
  (diagnoses and procedure lines), summed over the samples reviewed in the window.

Queues per practice: depth (open, leased, waiting), overdue items (SLA breached, still live) and the age of
the oldest live item, for the coding and the billing queue.

The operator roll-up opens the named system path (``SystemScope``, job ``reports.operator_kpis``) over
every active practice; each practice's trail records the read. Aggregates only: no PHI.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal
from rcm.kit.db import platform_transaction
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.tenant import TenantId
from rcm.reporting.kpi_repository import KpiRepository, RateCounts
from rcm.reporting.kpis import (
    DEFINITIONS,
    KpiDefinition,
    KpiPeriod,
    bounds,
    build_period,
    checked_period,
    empty_money,
)
from rcm.tenancy.models import Tenant
from rcm.tenancy.repository import active_tenants, people_by_subject
from rcm.tenancy.scope import StaffScope
from rcm.tenancy.staff import system_scope
from rcm.workqueue.models import QueueKind
from rcm.workqueue.repository import WorkItemRepository

OPERATOR_JOB = "reports.operator_kpis"
MAX_WINDOW_DAYS = 366


class StaffProductivity(msgspec.Struct):
    staff: str  # principal subject (the person's id)
    name: str | None = None  # the person's display name (staff names are not PHI); None for an API client
    items_coded: int = 0
    billing_items_completed: int = 0
    claims_worked: int = 0
    postings: int = 0
    sla_breaches: int = 0  # items completed after their due time
    active_hours: int = 0
    active_days: int = 0
    actions_per_hour: float | None = None
    actions_per_day: float | None = None
    qa_samples: int = 0
    qa_accuracy: float | None = (
        None  # agreed codes / codes either gave, over reviewed samples; None without any
    )


class PracticeQueue(msgspec.Struct):
    tenant: str  # slug
    kind: QueueKind
    open: int
    leased: int
    waiting: int
    overdue: int  # live items past their due time (SLA breached)
    oldest_age_seconds: int


class ProductivityReport(msgspec.Struct):
    since: date
    until: date  # included
    staff: list[StaffProductivity]
    queues: list[PracticeQueue]
    practices: list[str]  # the slugs this report covers (the caller's assignments)


class PracticeKpis(msgspec.Struct):
    tenant: str  # slug
    name: str
    current: KpiPeriod


class OperatorKpis(msgspec.Struct):
    period_from: date
    period_to: date
    practices: list[PracticeKpis]
    definitions: list[KpiDefinition]


def _window(since: date | None, until: date | None) -> tuple[date, date]:
    end = until or datetime.now(UTC).date()
    start = since or end - timedelta(days=6)
    if end < start or (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise InvalidInput(
            "The window must start before it ends and last at most a year.",
            errors=[FieldError("/since", "is after until or over 366 days before")],
        )
    return start, end


def _rate(numerator: int, denominator: int) -> float | None:
    return None if not denominator else round(numerator / denominator, 4)


async def _slugs(session: AsyncSession, tenant_ids: tuple[TenantId, ...]) -> dict[uuid.UUID, Tenant]:
    wanted = set(tenant_ids)
    return {t.id: t for t in await active_tenants(session) if t.id in wanted}


async def productivity_report(
    scope: StaffScope, *, since: date | None = None, until: date | None = None
) -> ProductivityReport:
    """Staff productivity, QA accuracy, SLA breaches and queues over the supervisor's practices, for the
    UTC days ``since``..``until`` (default: the 7 days ending today)."""
    start, end = _window(since, until)
    lower = datetime.combine(start, time(), tzinfo=UTC)
    upper = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    repo = scope.repo(KpiRepository)
    qa = {
        row[0]: (int(row[1]), int(row[2]), int(row[3]))
        for row in await repo.qa_by_coder(since=lower, until=upper)
    }
    staff = []
    for row in await repo.staff_activity(since=lower, until=upper):
        actions = int(row.coded) + int(row.billing_items) + int(row.claims) + int(row.postings)
        samples, agreed, total = qa.pop(row.actor, (0, 0, 0))
        staff.append(
            StaffProductivity(
                staff=row.actor,
                items_coded=int(row.coded),
                billing_items_completed=int(row.billing_items),
                claims_worked=int(row.claims),
                postings=int(row.postings),
                sla_breaches=int(row.late),
                active_hours=int(row.hours),
                active_days=int(row.days),
                actions_per_hour=_rate(actions, int(row.hours)),
                actions_per_day=_rate(actions, int(row.days)),
                qa_samples=samples,
                qa_accuracy=_rate(agreed, total),
            )
        )
    for coder, (samples, agreed, total) in qa.items():  # reviewed, though idle in the window
        staff.append(StaffProductivity(staff=coder, qa_samples=samples, qa_accuracy=_rate(agreed, total)))
    names = await people_by_subject(scope.session, [s.staff for s in staff])
    for person in staff:
        person.name = names.get(person.staff, (None, None))[0]
    tenants = await _slugs(scope.session, scope.tenant_ids)
    now = datetime.now(UTC)
    queues = []
    items = scope.repo(WorkItemRepository)
    for kind in QueueKind:
        for row in await items.depth_by_practice(kind):
            tenant = tenants.get(row.tenant_id)
            if tenant is None:
                continue
            queues.append(
                PracticeQueue(
                    tenant=tenant.slug,
                    kind=kind,
                    open=int(row.open),
                    leased=int(row.leased),
                    waiting=int(row.waiting),
                    overdue=int(row.overdue),
                    oldest_age_seconds=max(0, int((now - row.oldest).total_seconds())),
                )
            )
    scope.audit(
        "report.productivity",
        Action.READ,
        resource_type="report",
        detail={"since": start.isoformat(), "until": end.isoformat()},
    )
    return ProductivityReport(
        since=start,
        until=end,
        staff=sorted(staff, key=lambda s: s.staff),
        queues=sorted(queues, key=lambda q: (q.tenant, q.kind.value)),
        practices=sorted(t.slug for t in tenants.values()),
    )


async def operator_kpis(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    *,
    actor: Principal,
    request: RequestInfo,
    period_from: date | None = None,
    period_to: date | None = None,
) -> OperatorKpis:
    """Every active practice's KPIs for the period, side by side, through the named system path (job
    ``reports.operator_kpis``); the caller must be an operator (the route's guard). Each practice's trail
    records the read."""
    start, end = checked_period(period_from, period_to)
    async with platform_transaction(sessions) as session:
        tenants = await active_tenants(session)
    ids = tuple(TenantId(t.id) for t in tenants)
    if not ids:
        return OperatorKpis(period_from=start, period_to=end, practices=[], definitions=DEFINITIONS)
    async with system_scope(
        sessions, keystore, job=OPERATOR_JOB, tenant_ids=ids, actor=actor, request=request
    ) as scope:
        repo = scope.repo(KpiRepository)
        span = bounds(start, end)
        money = await repo.money(span)
        rates = await repo.rates(span)
        scope.audit(
            "report.operator_kpis",
            Action.READ,
            resource_type="report",
            detail={"period_from": start.isoformat(), "period_to": end.isoformat()},
        )
    practices = [
        PracticeKpis(
            tenant=t.slug,
            name=t.name,
            current=build_period(start, end, money.get(t.id, empty_money()), rates.get(t.id, RateCounts())),
        )
        for t in tenants
    ]
    return OperatorKpis(period_from=start, period_to=end, practices=practices, definitions=DEFINITIONS)
