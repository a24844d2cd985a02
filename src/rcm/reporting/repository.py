"""SQL of the money reports: the rollups (migration 0040_report_rollups), closes, and the drill-down into
the ledger behind a figure."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from rcm.kit.db import DriverStatement, DriverTransaction
from rcm.kit.repository import TENANT_PARAM, TenantRowRepository, driver_rows
from rcm.reporting.models import (
    ReportClaimBalance,
    ReportClose,
    ReportClosedAr,
    ReportClosedDay,
    ReportLedgerDay,
)
from rcm.reporting.schemas import BUCKET_DAYS, BUCKETS, PATIENT_PAYER, AgingBasis, Grain, GroupBy

_GROUP_COLUMN = {
    GroupBy.PAYER: "payer_id",
    GroupBy.PROVIDER: "provider_id",
    GroupBy.CPT: "procedure_code",
    GroupBy.LOCATION: "location",
}


@dataclass(frozen=True, slots=True)
class DayFigure:
    period: date | None  # None: a day of the comparison period
    group: str | None
    kind: str
    adjustment_group: str
    amount_cents: int
    entries: int


@dataclass(frozen=True, slots=True)
class AgingFigure:
    payer_id: str
    bucket: str
    balance_cents: int
    claims: int


@dataclass(frozen=True, slots=True)
class CellFilter:
    """A cash-flow cell: its days, and optionally its kind, CAS group and group key."""

    day_from: date
    day_to: date
    kind: str | None = None
    adjustment_group: str | None = None
    group_by: GroupBy = GroupBy.NONE
    group: str | None = None


_MONTH: ColumnElement[Any] = literal_column("interval '1 month'")
_DAY: ColumnElement[Any] = literal_column("interval '1 day'")


def _bucket(age: ColumnElement[Any]) -> ColumnElement[str]:
    return func.rcm.report_bucket(age)


@cache
def _day_figures_statement(grain: Grain, group_by: GroupBy) -> DriverStatement:
    """The cash flow's one statement, compiled once per grain and grouping: the sums of the days from
    ``:first`` to ``:day_to`` (days up to the last closed month's end from the closed months' snapshot, the
    later ones from the live rollup; the close's day is an index bound of each scan, not a per-row filter),
    and one more row whose kind is NULL carrying that day (``through``, NULL when nothing is closed)."""
    tenant = TenantRowRepository.tenant_param_filter
    first, day_from = bindparam("first", type_=Date), bindparam("day_from", type_=Date)
    day_to = bindparam("day_to", type_=Date)
    through = (
        select(cast(func.max(ReportClose.month) + _MONTH - _DAY, Date))
        .where(tenant(ReportClose.tenant_id))
        .scalar_subquery()
    )
    parts = []
    for table, closed in ((ReportClosedDay, True), (ReportLedgerDay, False)):
        since = func.coalesce(through, literal_column("'-infinity'::date"))
        kept = table.day <= through if closed else table.day > since
        group = getattr(table, _GROUP_COLUMN[group_by]) if group_by in _GROUP_COLUMN else null()
        parts.append(
            select(
                table.day.label("day"),
                group.label("grp"),
                table.kind.label("kind"),
                table.adjustment_group.label("adjustment_group"),
                table.amount_cents.label("amount_cents"),
                table.entries.label("entries"),
            ).where(tenant(table.tenant_id), table.day >= first, table.day <= day_to, kept)
        )
    rows = union_all(*parts).subquery("rows")
    # The period's first day, truncated as a timestamp without time zone: the same day as through a
    # timestamptz, without the time zone's rules on each of the rows.
    start = func.date_trunc(grain.value, cast(rows.c.day, DateTime(timezone=False)))
    period = case((rows.c.day < day_from, null()), else_=cast(start, Date)).label("period")
    sums = select(
        cast(null(), Date).label("through"),
        period,
        rows.c.grp,
        rows.c.kind,
        rows.c.adjustment_group,
        cast(func.sum(rows.c.amount_cents), BigInteger).label("amount_cents"),
        cast(func.sum(rows.c.entries), BigInteger).label("entries"),
    ).group_by(period, rows.c.grp, rows.c.kind, rows.c.adjustment_group)
    close = select(through, *(null() for _ in range(6)))
    return DriverStatement.compile(union_all(sums, close))


@cache
def _service_aging_statement() -> DriverStatement:
    """AR aging on the date-of-service basis, without grouping row by row: the payers of the open claims
    (a skip scan of ``ix_report_claim_balance_open``, one probe per payer), then per payer and bucket the
    sums of one range of that index, (tenant, payer, date of service): every open claim read once, by the
    index alone. Bucket k holds the dates of service from ``as_of`` - its upper edge (included) to ``as_of``
    - the edge before it (excluded), the first open above and the last open below, as rcm.report_bucket
    ages a claim. A row for every payer and bucket, empty ones with no claims."""
    edges = [f":as_of - {days}" for days in BUCKET_DAYS]
    bounds = zip([*edges, "'-infinity'::date"], ["'infinity'::date", *edges], strict=True)
    buckets = ", ".join(f"('{label}', {lo}, {hi})" for label, (lo, hi) in zip(BUCKETS, bounds, strict=True))
    # Only constants are formatted in (column names, bucket labels and edges); the values are bound.
    sql = f"""
WITH RECURSIVE payers AS (
  SELECT min(b.payer_id) AS payer_id FROM rcm.report_claim_balance b
   WHERE b.tenant_id = :{TENANT_PARAM} AND {_OPEN}
  UNION ALL
  SELECT (SELECT min(b.payer_id) FROM rcm.report_claim_balance b
           WHERE b.tenant_id = :{TENANT_PARAM} AND {_OPEN} AND b.payer_id > p.payer_id)
    FROM payers p WHERE p.payer_id IS NOT NULL
)
SELECT p.payer_id, r.bucket, s.*
  FROM payers p
  CROSS JOIN (VALUES {buckets}) r (bucket, lo, hi)
  CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.insurance_cents), 0)::bigint, count(*) FILTER (WHERE b.insurance_cents <> 0),
           coalesce(sum(b.patient_cents), 0)::bigint, count(*) FILTER (WHERE b.patient_cents <> 0)
      FROM rcm.report_claim_balance b
     WHERE b.tenant_id = :{TENANT_PARAM} AND {_OPEN}
       AND b.payer_id = p.payer_id AND b.service_date >= r.lo AND b.service_date < r.hi
  ) s
 WHERE p.payer_id IS NOT NULL
"""  # noqa: S608 - constants only
    return DriverStatement.compile(
        text(sql).bindparams(
            bindparam(TENANT_PARAM, type_=PG_UUID(as_uuid=True)), bindparam("as_of", type_=Date)
        )
    )


async def day_figures_on_driver(
    unit: DriverTransaction,
    *,
    day_from: date,
    day_to: date,
    grain: Grain,
    group_by: GroupBy,
    previous_from: date,
) -> tuple[date | None, list[DayFigure]]:
    """``ReportRepository.day_figures`` in a unit of work run on the driver without a session."""
    params = _day_figures_params(day_from, day_to, previous_from)
    return _day_figures_of(await driver_rows(unit, _day_figures_statement(grain, group_by), params))


def _day_figures_params(day_from: date, day_to: date, previous_from: date) -> dict[str, Any]:
    return {"day_from": day_from, "day_to": day_to, "first": min(day_from, previous_from)}


def _day_figures_of(rows: Sequence[Any]) -> tuple[date | None, list[DayFigure]]:
    closed_through: date | None = next(r[0] for r in rows if r[3] is None)
    return closed_through, [DayFigure(*r[1:]) for r in rows if r[3] is not None]


# The partial index's predicate, as constants (a generic plan must still see that the index applies).
_OPEN = "(b.insurance_cents <> 0 OR b.patient_cents <> 0)"


class ReportRepository(TenantRowRepository[ReportLedgerDay]):
    model = ReportLedgerDay

    # Closes -------------------------------------------------------------------------------------------

    async def closes(self) -> list[ReportClose]:
        return await self._all(self.statement_for(ReportClose).order_by(ReportClose.month.desc()))

    async def last_closed(self) -> date | None:
        stmt = select(func.max(ReportClose.month)).where(self.tenant_filter(ReportClose.tenant_id))
        found: date | None = (await self._execute(stmt)).scalar_one()
        return found

    async def close(self, month: date, *, closed_by: str) -> ReportClose:
        """Record the close; the table's trigger freezes the month's figures in the same statement."""
        stmt = (
            insert(ReportClose)
            .values(tenant_id=self.context.tenant_ids[0], month=month, closed_by=closed_by)
            .returning(ReportClose)
        )
        row: ReportClose = (await self.session.scalars(stmt)).one()
        return row

    # Cash flow ----------------------------------------------------------------------------------------

    async def day_figures(
        self, *, day_from: date, day_to: date, grain: Grain, group_by: GroupBy, previous_from: date
    ) -> tuple[date | None, list[DayFigure]]:
        """The last day of the last closed month (None: no close) and the sums per period, group, kind and
        CAS group: closed days from the frozen snapshot, the others from the live rollup. The days from
        ``previous_from`` to ``day_from`` are summed too, in the same scan, as rows whose period is None
        (the comparison period's totals). One round trip (``_day_figures_statement``)."""
        params = _day_figures_params(day_from, day_to, previous_from)
        return _day_figures_of(await self._driver_rows(_day_figures_statement(grain, group_by), params))

    # AR aging -----------------------------------------------------------------------------------------

    async def open_aging(self, *, as_of: date, basis: AgingBasis) -> list[AgingFigure]:
        """Open balances now, per payer and bucket of age at ``as_of``, from the index of open claims alone:
        on the date-of-service basis one range of it per payer and bucket (``_SERVICE_AGING``), on the
        submission basis one pass grouped by payer and bucket (``_submission_aging``)."""
        if basis is AgingBasis.SERVICE_DATE:
            rows: Sequence[Any] = await self._driver_rows(_service_aging_statement(), {"as_of": as_of})
        else:
            rows = await self._rows(self._submission_aging(as_of))
        figures: list[AgingFigure] = []
        patient: dict[str, list[int]] = {}
        for payer, label, ins_cents, ins_claims, pat_cents, pat_claims in rows:
            if ins_claims:
                figures.append(AgingFigure(payer, label, int(ins_cents), int(ins_claims)))
            if pat_claims:
                total = patient.setdefault(label, [0, 0])
                total[0] += int(pat_cents)
                total[1] += int(pat_claims)
        figures.extend(AgingFigure(PATIENT_PAYER, label, c, n) for label, (c, n) in patient.items())
        figures.sort(key=lambda f: f.payer_id)
        return figures

    def _submission_aging(self, as_of: date) -> Select[Any]:
        b = ReportClaimBalance
        # as_of - first submission, in days; NULL (never submitted) stays NULL: 'unsubmitted'.
        bucket = _bucket(literal(as_of, Date) - b.submitted_on).label("bucket")
        # Constants, not bound parameters: a generic plan must still see the partial index's predicate.
        zero: ColumnElement[int] = literal_column("0")
        insurance_open, patient_open = b.insurance_cents != zero, b.patient_cents != zero
        # One pass over the open claims' index: per payer and bucket, the insurance balances and the
        # patients' (folded into the patient row by open_aging), instead of one scan for each side.
        return (
            select(
                b.payer_id,
                bucket,
                func.coalesce(func.sum(b.insurance_cents).filter(insurance_open), zero),
                func.count().filter(insurance_open),
                func.coalesce(func.sum(b.patient_cents).filter(patient_open), zero),
                func.count().filter(patient_open),
            )
            .where(self.tenant_filter(b.tenant_id), or_(insurance_open, patient_open))
            .group_by(b.payer_id, bucket)
        )

    async def closed_aging(self, *, month: date, basis: AgingBasis) -> list[AgingFigure] | None:
        """The AR aging frozen at ``month``'s close, or None when that month is not closed."""
        closed = await self._first(self.statement_for(ReportClose).where(ReportClose.month == month))
        if closed is None:
            return None
        a = ReportClosedAr
        stmt = select(a.payer_id, a.bucket, a.balance_cents, a.claims).where(
            self.tenant_filter(a.tenant_id), a.month == month, a.basis == basis.value
        )
        return [AgingFigure(p, bucket, int(c), int(n)) for p, bucket, c, n in await self._rows(stmt)]

    # Drill-down ---------------------------------------------------------------------------------------

    async def drill(
        self, cell: CellFilter, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Any]:
        """The ledger entries behind a cell, in posting order (keyset). Each entry's report day is worked out
        as the trigger did: its effective date, moved past the months closed before it was posted."""
        conditions = ["d.report_day BETWEEN :day_from AND :day_to"]
        params: dict[str, Any] = {
            "tenant": self.context.tenant_ids[0],
            "day_from": cell.day_from,
            "day_to": cell.day_to,
            "limit": limit,
        }
        if cell.kind is not None:
            conditions.append("d.kind = :kind")
            params["kind"] = cell.kind
        if cell.adjustment_group is not None:
            conditions.append("coalesce(d.adjustment_group, '') = :adjustment_group")
            params["adjustment_group"] = cell.adjustment_group
        if cell.group_by in _GROUP_COLUMN and cell.group is not None:
            conditions.append(f"d.{_GROUP_COLUMN[cell.group_by]} = :grp")
            params["grp"] = cell.group
        if after is not None:
            conditions.append("(d.posted_at, d.entry_id) > (:after_at, :after_id)")
            params["after_at"], params["after_id"] = after
        stmt = text(_DRILL.format(conditions=" AND ".join(conditions)))
        return list((await self._execute(stmt, params)).mappings().all())


# The entries of one practice with their report day, kind and reported sign (as rcm.report_rollup_entries
# sums them). Only constant fragments are formatted in; every value is a bound parameter.
_DRILL = """
WITH d AS (
  SELECT n.id AS entry_id, n.created_at AS posted_at, n.claim_id, n.adjustment_group, n.reason_code,
         greatest(coalesce(r.paid_on, (n.created_at AT TIME ZONE 'UTC')::date),
                  coalesce(o.open_from, '-infinity'::date)) AS report_day,
         CASE n.account
           WHEN 'charges' THEN 'charge'
           WHEN 'payments' THEN 'payment'
           WHEN 'patient_payments' THEN
             CASE WHEN p.source = 'patient_refund' THEN 'refund' ELSE 'patient_payment' END
           WHEN 'adjustments' THEN 'adjustment'
           WHEN 'interest' THEN 'interest'
           WHEN 'provider_adjustments' THEN 'provider_adjustment'
           WHEN 'unapplied' THEN 'unapplied'
         END AS kind,
         CASE WHEN n.account IN ('charges', 'unapplied')
                OR (n.account = 'patient_payments' AND p.source = 'patient_refund')
              THEN -n.amount_cents ELSE n.amount_cents END AS amount_cents,
         coalesce(c.payer_id, '') AS payer_id, coalesce(enc.rendering_provider_id::text, '') AS provider_id,
         coalesce(l.procedure_code, '') AS procedure_code, coalesce(enc.facility_name, '') AS location,
         c.patient_control_number AS claim_number, c.service_date, c.state AS claim_status
    FROM rcm.ledger_entry n
    JOIN rcm.ledger_posting p ON p.tenant_id = n.tenant_id AND p.id = n.posting_id
    LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
    LEFT JOIN rcm.claim c ON c.tenant_id = n.tenant_id AND c.id = n.claim_id
    LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
    LEFT JOIN rcm.claim_line l
      ON l.tenant_id = n.tenant_id AND l.claim_id = n.claim_id AND l.line_number = n.line_number
    LEFT JOIN LATERAL (
      SELECT (max(rc.month) + interval '1 month')::date AS open_from FROM rcm.report_close rc
       WHERE rc.tenant_id = n.tenant_id AND rc.closed_at <= n.created_at) o ON true
   WHERE n.tenant_id = :tenant
     AND n.account NOT IN ('insurance_receivable', 'patient_receivable')
)
SELECT * FROM d WHERE {conditions}
ORDER BY d.posted_at, d.entry_id
LIMIT :limit
"""
