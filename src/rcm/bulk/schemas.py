"""Bulk intake DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from rcm.bulk.models import BulkFormat, BulkStatus, LineOutcome


class BulkIntake(msgspec.Struct):
    """A bulk intake job and its progress. ``lines_read`` counts records (blank lines and a CSV header are
    not records); ``accepted + rejected == lines_read``."""

    id: uuid.UUID
    status: BulkStatus
    format: BulkFormat
    lines_read: int
    accepted: int
    rejected: int
    file_sha256: str
    created_at: datetime
    updated_at: datetime
    failure: str | None = None


class LineError(msgspec.Struct, omit_defaults=True):
    pointer: str  # JSON pointer into the line's encounter ("" = the whole line)
    detail: str
    column: str | None = None  # the CSV column, for CSV files


class BulkLineResult(msgspec.Struct):
    line: int  # line number in the file, from 1 (a CSV header is line 1)
    outcome: LineOutcome
    encounter_id: uuid.UUID | None = None
    errors: list[LineError] = msgspec.field(default_factory=list)
