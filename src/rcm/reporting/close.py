"""Month-end close per practice.

Closing a month freezes its figures: the rollup's day rows of every month up to it not yet closed are copied
into a snapshot, and the AR aging as of its last day is computed from the ledger and kept. Reports read
closed months from the snapshot only, so they never shift. Entries posted later whose effective date falls
in a closed month land on the first day of the first open month (the ledger trigger moves their report
day), where the drill-down finds them too. Closes go in order: a month that has ended, after the last
closed one; closing it closes the months before it. Owners and supervisors close; each close is audited.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from rcm.audit.events import Action
from rcm.kit.errors import Conflict, FieldError, InvalidInput
from rcm.reporting.repository import ReportRepository
from rcm.reporting.schemas import MonthClose, MonthCloseCreate
from rcm.tenancy.scope import TenantScope


def _month(value: str) -> date:
    year, month = value.split("-")
    return date(int(year), int(month), 1)


async def close_month(scope: TenantScope, data: MonthCloseCreate, *, today: date | None = None) -> MonthClose:
    month = _month(data.month)
    today = today or datetime.now(UTC).date()
    if month >= today.replace(day=1):
        raise InvalidInput(
            "Only a month that has ended can be closed.", errors=[FieldError("body:month", "not_ended")]
        )
    repo = scope.repo(ReportRepository)
    last = await repo.last_closed()
    if last is not None and month <= last:
        raise Conflict(f"Months up to {last:%Y-%m} are already closed.")
    row = await repo.close(month, closed_by=scope.principal.subject)
    scope.audit(
        "report.month_closed",
        Action.CREATE,
        resource_type="report_close",
        detail={"month": data.month},
    )
    return MonthClose(month=row.month, closed_at=row.closed_at, closed_by=row.closed_by)


async def closes(scope: TenantScope) -> list[MonthClose]:
    return [
        MonthClose(month=r.month, closed_at=r.closed_at, closed_by=r.closed_by)
        for r in await scope.repo(ReportRepository).closes()
    ]
