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

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes import service as codes
from rcm.codes.models import CodeSet


class CodeKind(StrEnum):
    """Code systems the scrubber checks (the wire names of the code-set package)."""

    ICD10CM = "icd10cm"
    CPT = "cpt"
    HCPCS = "hcpcs"
    MODIFIER = "modifier"
    POS = "pos"


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
    # The date is after the newest loaded release: checked against that release, which the warning names.
    warning: str | None = None


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


@dataclass(slots=True)
class CodeSetReference:
    """The code-set package (``rcm.codes``), read in the scrub's own transaction.

    Which sets are loaded is read once per scrub (given by the encounter's read, or else from the release
    list: one round trip); a set with no release starting on or before the date of service is ``NotLoaded``
    for that date, so an empty edit list always means "no edit", never "no data".
    """

    session: AsyncSession
    # Code set -> its oldest loaded release's first day; read from the release list when not given.
    starts: dict[str, date] | None = None

    async def _first_day(self, code_set: str) -> date | None:
        if self.starts is None:
            starts: dict[str, date] = {}
            for release in await codes.list_releases(self.session):
                key = release.code_set.value
                starts[key] = min(starts.get(key, release.effective_from), release.effective_from)
            self.starts = starts
        return self.starts.get(code_set)

    async def _missing(self, code_set: CodeSet, on: date) -> NotLoaded | None:
        first = await self._first_day(code_set.value)
        name = codes.SYSTEM_NAMES[code_set]
        if first is None:
            return NotLoaded(f"no {name} release is loaded")
        if on < first:
            return NotLoaded(f"the oldest {name} release loaded starts {first.isoformat()}")
        return None

    async def check_codes(self, items: Sequence[tuple[str, str]], on: date) -> list[CodeStatus] | NotLoaded:
        checks = await codes.check_codes(self.session, items, on)
        out = []
        for check in checks:
            missing = (
                await self._missing(_loaded_as(check.system, check.code), on)
                if check.system in _SETS
                else None
            )
            if missing is not None:
                out.append(CodeStatus(check.system, check.code, None, missing.reason))
            else:
                out.append(CodeStatus(check.system, check.code, check.valid, check.reason, check.warning))
        return out

    async def ncci_pairs(self, codes_: Sequence[str], on: date) -> list[PtpEdit] | NotLoaded:
        missing = await self._missing(CodeSet.NCCI_PTP, on)
        if missing is not None:
            return missing
        pairs = await codes.ncci_pairs(self.session, codes_, on)
        return [PtpEdit(p.column1, p.column2, p.modifier_indicator) for p in pairs]

    async def mue_limits(self, codes_: Sequence[str], on: date) -> dict[str, MueLimit] | NotLoaded:
        missing = await self._missing(CodeSet.MUE, on)
        if missing is not None:
            return missing
        limits = await codes.mue_limits(self.session, codes_, on)
        return {c: MueLimit(m.code, m.units, m.adjudication_indicator) for c, m in limits.items()}

    async def sex_age_edits(self, items: Sequence[tuple[str, str]], on: date) -> list[SexAgeEdit] | NotLoaded:
        missing = await self._missing(CodeSet.SEX_AGE, on)
        if missing is not None:
            return missing
        edits = await codes.sex_age_edits(self.session, items, on)
        return [
            SexAgeEdit(e.system, e.code, e.sex.value if e.sex else None, e.min_age_years, e.max_age_years)
            for e in edits
        ]


_SETS = frozenset(member.value for member in CodeSet)


def _loaded_as(system: str, code: str) -> CodeSet:
    """The set a code is loaded with: two-digit modifiers (25, 59) come in the CPT file, as ``rcm.codes``
    stores them; Level II modifiers (XS, LT) in the modifier set."""
    return CodeSet.CPT if system == CodeKind.MODIFIER and code.isdigit() else CodeSet(system)
