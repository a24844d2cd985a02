"""Denial and appeal DTOs (``XCreate`` / ``X``); no ORM object crosses the API boundary."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from rcm.denials.categories import DenialCategory
from rcm.denials.models import AppealOutcome, AppealStatus, DenialStatus, SubmissionMethod

TemplateName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class Denial(msgspec.Struct):
    id: uuid.UUID
    claim_id: uuid.UUID
    payer_id: str
    line_number: int | None
    procedure_code: str | None
    group_code: str | None
    carc: str | None
    adjustments: list[str]
    rarcs: list[str]
    category: DenialCategory
    denied_cents: int
    remitted_on: date
    appeal_deadline: date
    days_left: int  # the clock: days until the appeal deadline (negative once it has passed)
    status: DenialStatus
    appeal_id: uuid.UUID | None
    replacement_claim_id: uuid.UUID | None
    created_at: datetime


class AppealCreate(msgspec.Struct, forbid_unknown_fields=True):
    """An appeal of the open denials of one claim: the biller's argument, in the named letter template."""

    claim_id: uuid.UUID
    argument: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    template: TemplateName | None = None


class Attachment(msgspec.Struct):
    id: uuid.UUID
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class Appeal(msgspec.Struct):
    id: uuid.UUID
    claim_id: uuid.UUID
    template: str
    status: AppealStatus
    denial_ids: list[uuid.UUID]
    attachments: list[Attachment]
    submitted_on: date | None
    submission_method: SubmissionMethod | None
    submission_reference: str | None
    outcome: AppealOutcome | None
    recovered_cents: int | None
    decided_on: date | None
    created_at: datetime


class AppealSubmission(msgspec.Struct, forbid_unknown_fields=True):
    submitted_on: date
    method: SubmissionMethod
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] | None = None


class AppealDecision(msgspec.Struct, forbid_unknown_fields=True):
    outcome: AppealOutcome
    decided_on: date
    recovered_cents: Annotated[int, msgspec.Meta(ge=0)] = 0


class TemplateWrite(msgspec.Struct, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


class Template(msgspec.Struct):
    name: str
    body: str
    built_in: bool  # the shipped default, not (yet) saved by the practice
    updated_at: datetime | None


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class DenialTotals(msgspec.Struct):
    period: date
    count: int
    denied_cents: int
    payer: str | None = None
    cpt: str | None = None
    carc: str | None = None
    category: DenialCategory | None = None


class DenialReport(msgspec.Struct):
    group_by: list[str]
    period: Period
    since: date | None
    until: date | None
    rows: list[DenialTotals]
