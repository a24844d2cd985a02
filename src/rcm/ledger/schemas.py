"""What the ledger routes answer: a claim's entries and its balance (cents)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    posting_id: uuid.UUID
    posted_at: datetime
    source: str  # claim_built, claim_voided, claim_replaced, remittance_claim, provider_adjustment
    remittance_id: uuid.UUID | None
    account: str
    amount_cents: int  # signed: positive is a debit
    line_number: int | None
    adjustment_group: str | None  # CAS01: CO, OA, PI, PR
    reason_code: str | None  # CARC (or CLP02 on the payment entry)
    remark_codes: list[str]  # RARC
    segment: str | None  # CLM, CLP, CAS, PLB
    segment_position: int | None  # the CLP's ordinal in its transaction set; the line for a charge


class ClaimLedger(msgspec.Struct, frozen=True, kw_only=True):
    """``balance_cents`` is always the sum of the entries on ``receivable_accounts``."""

    claim_id: uuid.UUID
    entries: list[Entry]
    balance_cents: int
    insurance_balance_cents: int
    patient_balance_cents: int
    receivable_accounts: list[str]
