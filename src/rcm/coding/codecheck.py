"""The one door from coding to the code tables: is each code valid on the date of service?

``rcm.codes.service.check_codes`` (the code-set package, built beside this one) answers from the ICD-10-CM,
CPT and HCPCS tables. Until that package is part of this build, the adapter answers from the code's format
alone, marked ``format_only`` in each result, so completion still validates what it can and the wiring is
one line to change.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.coding.schemas import ICD10_PATTERN, PROCEDURE_PATTERN

ICD10 = "icd10cm"
PROCEDURE = "cpt_hcpcs"


@dataclass(frozen=True, slots=True)
class CodeResult:
    system: str
    code: str
    on: date
    valid: bool
    reason: str | None = None
    warning: str | None = None
    format_only: bool = False


Checker = Callable[[AsyncSession, Sequence[tuple[str, str]], date], Awaitable[list[Any]]]


def _checker() -> Checker | None:
    try:
        module = importlib.import_module("rcm.codes.service")
    except ImportError:
        return None
    return cast(Checker | None, getattr(module, "check_codes", None))


_FORMATS = {ICD10: re.compile(ICD10_PATTERN), PROCEDURE: re.compile(PROCEDURE_PATTERN)}


async def check_codes(session: AsyncSession, items: Sequence[tuple[str, str]], on: date) -> list[CodeResult]:
    """One result per ``(system, code)``, in order."""
    checker = _checker()
    if checker is not None:
        found = await checker(session, items, on)
        return [
            CodeResult(
                system=str(c.system),
                code=c.code,
                on=c.on,
                valid=bool(c.valid),
                reason=c.reason,
                warning=getattr(c, "warning", None),
            )
            for c in found
        ]
    return [
        CodeResult(
            system=system,
            code=code,
            on=on,
            valid=bool(_FORMATS[system].match(code)),
            reason=None if _FORMATS[system].match(code) else "is not a well-formed code",
            format_only=True,
        )
        for system, code in items
    ]
