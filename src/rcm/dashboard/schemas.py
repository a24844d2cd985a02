"""DTOs of saved views and of the claims behind an AR-aging cell."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.dashboard.models import ReportName

# A name people read back in a list: printable, no markup characters, at most 80 characters.
ViewName = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f<>]+$")]


class SavedViewWrite(msgspec.Struct, forbid_unknown_fields=True):
    """Save a view under ``name``: a view of the same name of the caller's is replaced."""

    name: ViewName
    report: ReportName
    # Allow-listed settings of the report (grain, group_by, date_from, date_to...), each a string as in the
    # page's query string.
    parameters: dict[str, str] = msgspec.field(default_factory=dict)


class SavedView(msgspec.Struct):
    id: uuid.UUID
    name: str
    report: ReportName
    parameters: dict[str, str]
    href: str  # the page that reopens the view, its parameters in the query string
    created_at: datetime
    updated_at: datetime


class ClaimRow(msgspec.Struct):
    """A claim as a report shows it: its number, date of service, payer, amounts and status; no patient."""

    claim_id: uuid.UUID
    claim_number: str  # CLM01, the patient control number (our number, not the patient's)
    service_date: date
    payer_id: str
    status: str
    charge_cents: int  # gross charges on the ledger
    paid_cents: int  # payer and patient payments
    adjusted_cents: int  # write-offs (CAS adjustments, small balances)
    balance_cents: int  # open: insurance and patient receivables
    figure_cents: int  # what this claim adds to the AR cell: its payer's or its patients' balance, or both


class ClaimPage(msgspec.Struct):
    items: list[ClaimRow]
    next_cursor: str | None
