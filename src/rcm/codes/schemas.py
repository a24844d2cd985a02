"""Code lookup and search DTOs (reference data: no PHI)."""

from __future__ import annotations

from datetime import date

import msgspec

from rcm.codes.models import CodeSystem


class CodeLookup(msgspec.Struct):
    system: CodeSystem
    code: str  # as asked
    on: date
    valid: bool  # billable and in force on ``on``
    description: str | None
    reason: str | None  # why not valid: unknown code, header code, not valid on the date, no code set loaded
    warning: str | None  # the date lies outside the loaded releases (named)


class CodeMatch(msgspec.Struct):
    code: str  # ICD-10-CM with its dot
    description: str | None
    billable: bool
    effective_from: date
    effective_through: date | None
    rank: float


class CodePage(msgspec.Struct):
    items: list[CodeMatch]
    next_cursor: str | None = None
