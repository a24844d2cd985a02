"""DTOs of the money reports: cash flow, AR aging, drill-down and month-end close.

Money in integer cents. No PHI: a drill-down row names a claim by its number (CLM01), date of service, payer,
amounts and status only."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.reporting.models import Kind

__all__ = [
    "AgingBasis",
    "AgingBucket",
    "ArAgingReport",
    "ArAgingRow",
    "CashFlowFigures",
    "CashFlowGroup",
    "CashFlowReport",
    "CashFlowRow",
    "DrillEntry",
    "DrillPage",
    "Grain",
    "GroupBy",
    "Kind",
    "MonthClose",
    "MonthCloseCreate",
]


class Grain(enum.StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"


class GroupBy(enum.StrEnum):
    NONE = "none"
    PAYER = "payer"  # the claim's payer (directory id); '' for entries of no claim (PLB, unapplied)
    PROVIDER = "provider"  # the encounter's rendering provider id
    CPT = "cpt"  # the claim line's procedure code; '' for claim-level entries
    LOCATION = "location"  # the encounter's facility name; '' when none was given


class AgingBasis(enum.StrEnum):
    SERVICE_DATE = "service_date"
    SUBMISSION_DATE = "submission_date"


# The AR aging buckets, by age in days (as_of minus the basis date); 'unsubmitted' holds, on the submission
# basis, balances of claims never submitted. The same edges as SQL rcm.report_bucket (0040_report_rollups).
BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
# The upper edge of each bucket but the last, in days of age (as rcm.report_bucket draws them).
BUCKET_DAYS = (30, 60, 90, 120)
UNSUBMITTED = "unsubmitted"
PATIENT_PAYER = "patient"  # the payer column of patients' balances


class CashFlowFigures(msgspec.Struct):
    """One cell's money. Each figure is a sum of ledger entries (see the drill-down route)."""

    charges_cents: int = 0  # -charges account: gross charges billed, net of voids
    payments_cents: int = 0  # payments account: money payers sent (PLB recoupments deducted)
    patient_payments_cents: int = 0  # patient_payments account, payments only
    refunds_cents: int = 0  # patient_payments account, refunds, positive
    adjustments_cents: int = 0  # adjustments account: every CAS write-off and small-balance write-off
    adjustments_by_group: dict[str, int] = msgspec.field(default_factory=dict)  # CAS01 group -> cents
    interest_cents: int = 0  # interest account (PLB L6), ledger sign
    provider_adjustments_cents: int = 0  # provider_adjustments account (other PLB), ledger sign
    unapplied_cents: int = 0  # -unapplied account: payments matching no claim
    entries: int = 0  # ledger entries summed


class CashFlowRow(msgspec.Struct):
    period_start: date
    period_end: date
    group: str | None  # the group_by key; None when group_by is none
    closed: bool  # every day of the period lies in a closed month (figures from the frozen snapshot)
    figures: CashFlowFigures


class CashFlowGroup(msgspec.Struct):
    """A group's totals over the whole period, beside the previous period of the same length."""

    group: str | None
    current: CashFlowFigures
    previous: CashFlowFigures


class CashFlowReport(msgspec.Struct):
    date_from: date
    date_to: date
    grain: Grain
    group_by: GroupBy
    previous_from: date  # the comparison period: as many days, just before date_from
    previous_to: date
    closed_through: date | None  # the last day of the last closed month
    rows: list[CashFlowRow]
    groups: list[CashFlowGroup]
    total: CashFlowFigures
    previous_total: CashFlowFigures


class AgingBucket(msgspec.Struct):
    bucket: str
    balance_cents: int
    claims: int


class ArAgingRow(msgspec.Struct):
    payer_id: str  # 'patient' for patients' balances
    balance_cents: int
    claims: int
    buckets: list[AgingBucket]
    previous_balance_cents: int | None  # the same payer at the previous month's close, when closed


class ArAgingReport(msgspec.Struct):
    as_of: date
    basis: AgingBasis
    source: str  # 'live' (open balances now, aged at as_of) or 'closed' (the month-end snapshot)
    previous_as_of: date | None  # the comparison: the end of the month before, when that month is closed
    rows: list[ArAgingRow]
    totals: list[AgingBucket]
    balance_cents: int
    previous_totals: list[AgingBucket] | None
    previous_balance_cents: int | None


class DrillEntry(msgspec.Struct):
    """One ledger entry behind a cash-flow cell."""

    entry_id: uuid.UUID
    posted_at: datetime
    report_day: date
    kind: Kind
    amount_cents: int  # signed as in the report
    adjustment_group: str | None
    reason_code: str | None
    procedure_code: str | None
    claim_id: uuid.UUID | None
    claim_number: str | None  # CLM01 (patient control number)
    service_date: date | None
    payer_id: str | None
    claim_status: str | None


class DrillPage(msgspec.Struct):
    items: list[DrillEntry]
    next_cursor: str | None
    amount_cents: int  # the sum of the items on this page


Month = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]


class MonthCloseCreate(msgspec.Struct, forbid_unknown_fields=True):
    month: Month  # YYYY-MM; a month that has ended and follows the last closed one


class MonthClose(msgspec.Struct):
    month: date  # its first day
    closed_at: datetime
    closed_by: str
