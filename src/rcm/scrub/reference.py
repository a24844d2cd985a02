"""Reference data the edits need (code sets, NCCI procedure-to-procedure pairs, MUE limits, sex and age
edits), behind ONE small protocol, so the rules never know where it comes from.

Every method answers either the data (an empty answer means "no edit applies") or ``NotLoaded`` (the
reference data is not installed, or not for that date): the rules report the latter as "not checked", with
its reason, and never as a pass. Each method is one round trip for all the codes of one date of service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol


class CodeKind(StrEnum):
    """Code systems the scrubber checks (the wire names of the code-set package)."""

    ICD10CM = "icd10cm"
    CPT = "cpt"
    HCPCS = "hcpcs"
    MODIFIER = "modifier"


def procedure_kind(code: str) -> CodeKind:
    """CPT codes start with a digit (categories I-III); HCPCS Level II with a letter."""
    return CodeKind.CPT if code[:1].isdigit() else CodeKind.HCPCS


@dataclass(frozen=True, slots=True)
class NotLoaded:
    """The reference data is not there: the edit could not run (never a pass)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CodeStatus:
    system: str
    code: str
    valid: bool | None  # None: this code's system is not loaded for the date
    reason: str | None = None  # why not valid (unknown, not yet effective, terminated, not billable...)


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """NCCI PTP: ``column2`` is not paid with ``column1`` on the same day. Modifier indicator 0: never;
    1: allowed with an NCCI-associated modifier; 9: the edit does not apply."""

    column1: str
    column2: str
    modifier_indicator: int


@dataclass(frozen=True, slots=True)
class MueLimit:
    code: str
    units: int
    adjudication_indicator: int  # 1: per line; 2 and 3: per date of service


@dataclass(frozen=True, slots=True)
class SexAgeEdit:
    system: str
    code: str
    sex: str | None  # female | male: the only sex the code is for
    min_age_years: int | None
    max_age_years: int | None


class ReferenceData(Protocol):
    async def check_codes(self, items: Sequence[tuple[str, str]], on: date) -> list[CodeStatus] | NotLoaded:
        """Each ``(system, code)``: valid on ``on``, or why not."""
        ...

    async def ncci_pairs(self, codes: Sequence[str], on: date) -> list[PtpEdit] | NotLoaded:
        """The PTP edits in force on ``on`` between any two of ``codes``."""
        ...

    async def mue_limits(self, codes: Sequence[str], on: date) -> dict[str, MueLimit] | NotLoaded:
        """The MUE of each of ``codes`` that has one on ``on``."""
        ...

    async def sex_age_edits(self, items: Sequence[tuple[str, str]], on: date) -> list[SexAgeEdit] | NotLoaded:
        """The sex and age edits in force on ``on`` for ``(system, code)`` items."""
        ...


@dataclass(frozen=True, slots=True)
class UnloadedReference:
    """No code-set package on this server: every edit that needs reference data reports "not checked"."""

    reason: str = "the code sets are not installed on this server"

    async def check_codes(self, items: Sequence[tuple[str, str]], on: date) -> list[CodeStatus] | NotLoaded:
        return NotLoaded(self.reason)

    async def ncci_pairs(self, codes: Sequence[str], on: date) -> list[PtpEdit] | NotLoaded:
        return NotLoaded(self.reason)

    async def mue_limits(self, codes: Sequence[str], on: date) -> dict[str, MueLimit] | NotLoaded:
        return NotLoaded(self.reason)

    async def sex_age_edits(self, items: Sequence[tuple[str, str]], on: date) -> list[SexAgeEdit] | NotLoaded:
        return NotLoaded(self.reason)
