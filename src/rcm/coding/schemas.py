"""DTOs of the coding queue, the practice's answers, supervision and QA."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.coding.models import QueryStatus, SampleStatus, VersionState
from rcm.workqueue.models import ItemStatus, QueueKind

ICD10_PATTERN = r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"
PROCEDURE_PATTERN = r"^[A-Z0-9][0-9]{3}[0-9A-Z]$"  # CPT (5 digits, or 4 + F/T/U) or HCPCS Level II
MODIFIER_PATTERN = r"^[A-Z0-9]{2}$"

IcdCode = Annotated[
    str, msgspec.Meta(pattern=ICD10_PATTERN, description="ICD-10-CM, with or without the dot")
]
Modifier = Annotated[str, msgspec.Meta(pattern=MODIFIER_PATTERN)]
Pointer = Annotated[int, msgspec.Meta(ge=1, le=12)]


class LineIn(msgspec.Struct, forbid_unknown_fields=True):
    procedure_code: Annotated[str, msgspec.Meta(pattern=PROCEDURE_PATTERN)]
    diagnosis_pointers: Annotated[list[Pointer], msgspec.Meta(min_length=1, max_length=4)]
    modifiers: Annotated[list[Modifier], msgspec.Meta(max_length=4)] = []
    units: Annotated[int, msgspec.Meta(ge=1, le=9999)] = 1
    # Left out: priced from the practice's fee schedule (units x the code's charge).
    charge_cents: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] | None = None


class CodingCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A coding of an encounter: diagnoses (pointed at by position, 1-12) and procedure lines."""

    diagnoses: Annotated[list[IcdCode], msgspec.Meta(max_length=12)]
    lines: Annotated[list[LineIn], msgspec.Meta(max_length=50)]


class Line(msgspec.Struct):
    line_number: int
    procedure_code: str
    modifiers: list[str]
    units: int
    charge_cents: int
    diagnosis_pointers: list[int]


class Coding(msgspec.Struct):
    id: uuid.UUID
    number: int
    state: VersionState
    coder: str
    created_at: datetime
    diagnoses: list[str]
    lines: list[Line]


class WorkItem(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: QueueKind
    status: ItemStatus
    priority: int
    due_at: datetime
    created_at: datetime
    encounter_id: uuid.UUID
    leased_by: str | None
    lease_expires_at: datetime | None


class Suggested(msgspec.Struct):
    """The practice's own codes on the encounter: a starting point, never the answer."""

    diagnoses: list[str]
    lines: list[Line]


class Query(msgspec.Struct):
    id: uuid.UUID
    work_item_id: uuid.UUID
    encounter_id: uuid.UUID
    status: QueryStatus
    question: str
    answer: str | None
    asked_by: str
    created_at: datetime
    answered_at: datetime | None


class CodingTask(msgspec.Struct):
    """Everything a coder needs for one item: the documentation (PHI, audited), the practice's suggested
    codes, the latest draft, and the queries so far."""

    id: uuid.UUID  # the work item's id
    item: WorkItem
    patient_id: uuid.UUID
    service_date: date
    place_of_service: str
    documentation: str | None
    suggested: Suggested
    draft: Coding | None
    queries: list[Query]


class Completed(msgspec.Struct):
    id: uuid.UUID  # the work item's id
    item: WorkItem
    coding: Coding
    warnings: list[str]


class QueryCreate(msgspec.Struct, forbid_unknown_fields=True):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class QueryAnswer(msgspec.Struct, forbid_unknown_fields=True):
    answer: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


# Supervision ---------------------------------------------------------------------------------------------


class PracticeQueue(msgspec.Struct):
    tenant_id: uuid.UUID
    open: int  # waiting for a coder (incl. expired leases)
    leased: int
    waiting: int  # on the practice (a query)
    overdue: int  # past the due date from the practice's SLA
    oldest_age_seconds: int


class CoderLoad(msgspec.Struct):
    coder: str
    held: int
    held_overdue: int
    completed: int  # in the report's window
    completed_late: int


class QueueReport(msgspec.Struct):
    kind: QueueKind
    since: datetime
    practices: list[PracticeQueue]
    coders: list[CoderLoad]


class Reassign(msgspec.Struct, forbid_unknown_fields=True):
    coder: Annotated[uuid.UUID, msgspec.Meta(description="The person the item is handed to")]


class Reprioritise(msgspec.Struct, forbid_unknown_fields=True):
    priority: Annotated[int, msgspec.Meta(ge=1, le=9)]
    due_at: datetime | None = None


class StaffAssign(msgspec.Struct, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=63, description="The practice's slug")]
    qa_reviewer: bool = False


class SampleCreate(msgspec.Struct, forbid_unknown_fields=True):
    tenant: Annotated[str, msgspec.Meta(min_length=1, max_length=63, description="The practice's slug")]
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    coder: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class Sample(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    work_item_id: uuid.UUID
    encounter_id: uuid.UUID
    coder: str
    status: SampleStatus
    created_at: datetime
    reviewer: str | None
    reviewed_at: datetime | None
    dx_agreement: float | None
    px_agreement: float | None


class Samples(msgspec.Struct):
    samples: list[Sample]


class ReviewTask(msgspec.Struct):
    """What a QA reviewer codes from: the documentation, never the original coding (a blind review)."""

    id: uuid.UUID  # the sample's id
    tenant_id: uuid.UUID
    encounter_id: uuid.UUID
    patient_id: uuid.UUID
    service_date: date
    place_of_service: str
    documentation: str | None


class Agreement(msgspec.Struct):
    coder: str
    period: date  # the first day of the period (a week starts on Monday)
    samples: int
    dx_agreement: float | None  # codes both gave / codes either gave, over the period's samples
    px_agreement: float | None


class AgreementReport(msgspec.Struct):
    rows: list[Agreement]
