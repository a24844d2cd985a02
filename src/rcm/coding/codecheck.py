"""The one door from coding to the code tables (``rcm.codes``): is each code valid on the date of service?

Procedure codes are CPT (five characters starting with a digit: Category I, II and III) or HCPCS Level II
(a letter and four digits); modifiers are checked as the code tables keep them (two-digit ones with CPT).
No code set loaded for a system means no code of it can be confirmed: the check fails, naming why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes.models import CodeSystem
from rcm.codes.service import CodeCheck
from rcm.codes.service import check_codes as _check_codes


def procedure_system(code: str) -> CodeSystem:
    return CodeSystem.HCPCS if code[:1].isalpha() else CodeSystem.CPT


async def check_codes(session: AsyncSession, items: Sequence[tuple[str, str]], on: date) -> list[CodeCheck]:
    """One result per ``(system, code)``, in order, in one round trip."""
    return await _check_codes(session, items, on)
