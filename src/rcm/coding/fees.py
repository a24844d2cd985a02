"""Fee schedules loaded from a CSV (``code,modifier,charge_cents``, a header row first): a practice's charges
beyond (and ahead of) the ``fee_schedule`` of its manifest. Loading replaces the practice's loaded schedule
whole, in one transaction, audited on its trail."""

from __future__ import annotations

import csv
import io
import re

from rcm.audit.events import Action
from rcm.coding.repository import FeeScheduleRepository
from rcm.coding.schemas import MODIFIER_PATTERN, PROCEDURE_PATTERN
from rcm.kit.errors import FieldError, InvalidInput
from rcm.tenancy.scope import SystemScope, TenantScope

HEADER = ["code", "modifier", "charge_cents"]
_CODE = re.compile(PROCEDURE_PATTERN)
_MODIFIER = re.compile(MODIFIER_PATTERN)
MAX_CENTS = 100_000_000


def parse_csv(text: str) -> list[tuple[str, str, int]]:
    """The entries of a fee schedule CSV; every bad cell is named ``line N/column``. Charges are integer
    cents (``12500``, never ``125.00``)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != HEADER:
        raise InvalidInput(
            "The fee schedule CSV needs the header code,modifier,charge_cents.",
            errors=[FieldError("line 1", "is not the header code,modifier,charge_cents")],
        )
    entries: dict[tuple[str, str], int] = {}
    errors: list[FieldError] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 3:
            errors.append(FieldError(f"line {number}", "needs exactly three cells"))
            continue
        code, modifier, cents = (cell.strip() for cell in row)
        if not _CODE.match(code):
            errors.append(FieldError(f"line {number}/code", "is not a CPT or HCPCS code"))
        if modifier and not _MODIFIER.match(modifier):
            errors.append(FieldError(f"line {number}/modifier", "is not a two-character modifier"))
        if not cents.isdigit() or int(cents) > MAX_CENTS:
            errors.append(FieldError(f"line {number}/charge_cents", "is not a whole number of cents"))
        elif (code, modifier) in entries:
            errors.append(FieldError(f"line {number}", f"{code} {modifier} is given twice"))
        else:
            entries[(code, modifier)] = int(cents)
    if errors:
        raise InvalidInput("The fee schedule CSV is invalid.", errors=errors)
    return [(code, modifier, cents) for (code, modifier), cents in sorted(entries.items())]


async def load(scope: TenantScope | SystemScope, entries: list[tuple[str, str, int]]) -> int:
    """Replace the practice's loaded fee schedule with ``entries``; returns how many."""
    await scope.repo(FeeScheduleRepository).replace(entries)
    scope.audit(
        "fee_schedule.load", Action.UPDATE, resource_type="fee_schedule", detail={"entries": len(entries)}
    )
    return len(entries)
