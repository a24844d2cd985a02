"""DTOs of claims, the billing queue and submission batches (msgspec Structs; no ORM object leaves)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from rcm.claims.models import BatchStatus
from rcm.claims.states import Cause, ClaimState, Responsibility
from rcm.denials.schemas import Denial
from rcm.interchanges.models import Direction, FileStatus
from rcm.tenancy.vocabulary import ClaimType
from rcm.workqueue.models import BillingReason, ItemStatus, SubjectType

# A reason a biller gives: short text, kept on the claim's event (never PHI by policy: it says why, not who).
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]+$")]
# The payer's claim control number as the payer wrote it (REF*F8 of a replacement or void: up to 50).
PayerControlNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9-]+$")]


class ClaimLine(msgspec.Struct):
    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    charge_cents: int
    diagnosis_pointers: list[int]
    service_date: date
    revenue_code: str | None = None  # 837I SV201


class ClaimEvent(msgspec.Struct):
    id: uuid.UUID
    at: datetime
    from_state: ClaimState | None
    to_state: ClaimState
    cause: Cause
    actor: str | None
    reason: str | None
    payer_claim_control_number: str | None


class ClaimSummary(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    encounter_id: uuid.UUID
    payer_id: str
    responsibility: Responsibility
    state: ClaimState
    frequency: int  # 1 original, 7 replacement, 8 void
    patient_control_number: str
    payer_claim_control_number: str | None
    original_claim_id: uuid.UUID | None
    service_date: date
    total_charge_cents: int
    submission_batch_id: uuid.UUID | None
    created_at: datetime
    state_changed_at: datetime
    closed_reason: str | None
    primary_claim_id: uuid.UUID | None = None  # a secondary's primary claim (a tertiary's secondary)


class Claim(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    payer_id: str
    responsibility: Responsibility
    state: ClaimState
    frequency: int
    patient_control_number: str
    payer_claim_control_number: str | None
    original_claim_id: uuid.UUID | None
    original_payer_claim_control_number: str | None
    service_date: date
    place_of_service: str
    diagnoses: list[str]
    total_charge_cents: int
    submission_batch_id: uuid.UUID | None
    created_at: datetime
    state_changed_at: datetime
    closed_reason: str | None
    lines: list[ClaimLine]
    events: list[ClaimEvent]
    claim_type: ClaimType = ClaimType.PROFESSIONAL  # 837P or 837I
    primary_claim_id: uuid.UUID | None = None  # a secondary's primary claim (a tertiary's secondary)


class CloseClaim(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class VoidClaim(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ReplaceClaim(msgspec.Struct, forbid_unknown_fields=True):
    """A corrected claim replacing one the payer holds (frequency 7), built from the encounter as it is
    coded now."""

    reason: Reason


class ResubmitClaim(msgspec.Struct, forbid_unknown_fields=True):
    """A rejected (or not yet enrolled) claim, corrected, goes back to ``ready`` for the next batch."""

    reason: Reason


class ClaimAction(StrEnum):
    RESUBMIT = "resubmit"
    REPLACE = "replace"
    VOID = "void"
    CLOSE = "close"
    # The problem was corrected elsewhere (the encounter re-coded and re-scrubbed, a coverage fixed).
    CORRECTED = "corrected"


class CompleteItem(msgspec.Struct, forbid_unknown_fields=True):
    """How a biller finishes a billing item: an action on its claim (or ``corrected``) and why."""

    action: ClaimAction
    reason: Reason


class BillingItem(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    reason: BillingReason | None
    status: ItemStatus
    priority: int
    due_at: datetime
    created_at: datetime
    subject_type: SubjectType
    subject_id: uuid.UUID
    leased_by: str | None
    lease_expires_at: datetime | None


class BillingTask(msgspec.Struct):
    """An item with what it is about: its claim (with lines and events) when it is about one."""

    item: BillingItem
    claim: Claim | None
    # Encounter items (scrub failures): the encounter; its scrub report is at .../encounters/{id}/scrub.
    encounter_id: uuid.UUID | None
    # Denial items: the claim's open denials, each with its reasons and appeal clock (``days_left``).
    denials: list[Denial] = []


class Completed(msgspec.Struct):
    item: BillingItem
    claim: Claim | None  # the claim the action produced or changed (the replacement, the void)


class ReasonDepth(msgspec.Struct):
    tenant_id: uuid.UUID
    reason: BillingReason | None
    live: int
    overdue: int
    oldest_age_seconds: int


class PracticeDepth(msgspec.Struct):
    tenant_id: uuid.UUID
    open: int
    leased: int
    waiting: int
    overdue: int
    oldest_age_seconds: int


class BillingQueueReport(msgspec.Struct):
    practices: list[PracticeDepth]
    reasons: list[ReasonDepth]


class Batch(msgspec.Struct):
    """A submission batch: one practice's claims to one payer under one interchange (no PHI)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    payer_id: str
    connector: str | None
    sender_id: str
    receiver_id: str
    interchange_control_number: int  # ISA13
    group_control_number: int  # GS06
    transaction_set_control_number: str  # ST02
    claim_count: int
    status: BatchStatus
    created_at: datetime
    # The outbox (rcm.claims.submission): connector calls spent, when it is next tried, the last error in
    # words (connector, operation, reason; never content) and the clearinghouse's receipt once sent.
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    receipt_reference: str | None = None
    claim_type: ClaimType = ClaimType.PROFESSIONAL  # an 837P or an 837I interchange, never both
    sent_at: datetime | None = None


class BatchClaim(msgspec.Struct):
    """A claim of a batch, as the claims list shows it (ids, control number, state; no PHI)."""

    id: uuid.UUID
    patient_control_number: str
    state: ClaimState
    frequency: int
    total_charge_cents: int
    payer_claim_control_number: str | None


class BatchFile(msgspec.Struct):
    """An X12 file kept for the batch: the 837 sent, the 999/277CA/835 received about it (envelope facts and
    links only). ``claim_ids``: the batch's claims the file matched; ``check_trace_numbers``: an 835's TRN02
    (the check or EFT it reassociates with). Download it at ``.../submission-batches/{batch}/files/{id}``."""

    id: uuid.UUID
    direction: Direction
    kind: str  # 837P, 999, 277CA...
    status: FileStatus
    size: int
    interchange_control_number: int | None
    created_at: datetime
    processed_at: datetime | None
    error: str | None = None  # why a received file was refused: a segment and position, never content
    claim_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    check_trace_numbers: list[str] = msgspec.field(default_factory=list)


class BatchDetail(msgspec.Struct):
    batch: Batch
    claims: list[BatchClaim]
    files: list[BatchFile]
