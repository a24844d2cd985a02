"""Code sets: validity checks on a date of service, lookups and search, and loading releases.

``check_codes`` is what coding and the scrub call: one round trip for a whole claim's codes. A code is valid
on a date when a window of it covers the date and it is billable (not an ICD-10-CM header). A date after
the newest loaded release is checked against that release and carries a warning naming it; a date before the
oldest loaded release, likewise, against the oldest. Nothing passes silently: a system with no release
loaded at all (CPT before the operator loads the AMA file) is reported as such on every code.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes import repository
from rcm.codes.importers.base import CodeRow, MueRow, ParsedRelease, PtpRow, SexAgeRow
from rcm.codes.models import CodeSet, CodeSetRelease, CodeSystem, Sex
from rcm.codes.schemas import CodeLookup, CodeMatch, CodePage
from rcm.kit.errors import FieldError, InvalidInput, RCMError

SYSTEM_NAMES: dict[str, str] = {
    CodeSet.ICD10CM: "ICD-10-CM",
    CodeSet.CPT: "CPT",
    CodeSet.HCPCS: "HCPCS Level II",
    CodeSet.MODIFIER: "modifier",
    CodeSet.POS: "place-of-service",
    CodeSet.CARC: "CARC",
    CodeSet.RARC: "RARC",
    CodeSet.NCCI_PTP: "NCCI PTP",
    CodeSet.MUE: "MUE",
    CodeSet.SEX_AGE: "sex/age edit",
}


def normalize(system: CodeSystem, code: str) -> str:
    """The stored form: upper case, no blanks; ICD-10-CM without its dot (``E11.9`` -> ``E119``)."""
    code = code.strip().upper()
    return code.replace(".", "") if system is CodeSystem.ICD10CM else code


def display(system: CodeSystem, code: str) -> str:
    """ICD-10-CM codes with their dot after the category (``E119`` -> ``E11.9``), others as stored."""
    if system is CodeSystem.ICD10CM and len(code) > 3:
        return f"{code[:3]}.{code[3:]}"
    return code


@dataclass(frozen=True, slots=True)
class CodeCheck:
    system: str
    code: str  # as the caller gave it
    on: datetime.date
    valid: bool
    reason: str | None = None  # why not valid
    description: str | None = None
    warning: str | None = None  # "code set may be out of date: ..."

    @property
    def message(self) -> str:
        """One line for an error: the code, the date and the reason."""
        return f"{self.system} code {self.code} on {self.on.isoformat()}: {self.reason or 'valid'}"


async def check_codes(
    session: AsyncSession, items: Sequence[tuple[str, str]], on: datetime.date
) -> list[CodeCheck]:
    """Each (system, code) checked on ``on``, in the order given; one database round trip for the list."""
    known: list[tuple[int, CodeSystem, str]] = []
    out: list[CodeCheck | None] = []
    for index, (system, code) in enumerate(items):
        if system not in CodeSystem._value2member_map_:
            out.append(CodeCheck(system, code, on, valid=False, reason=f"unknown code system {system!r}"))
            continue
        out.append(None)
        stored = normalize(CodeSystem(system), code)
        known.append((index, _stored_system(CodeSystem(system), stored), stored))
    rows = await repository.check_rows(session, [(s.value, c) for _, s, c in known], on)
    for (index, system, _), row in zip(known, rows, strict=True):
        out[index] = _judge(system, items[index][0], items[index][1], on, row)
    return [check for check in out if check is not None]


def _stored_system(system: CodeSystem, code: str) -> CodeSystem:
    """Two-digit modifiers (25, 59...) are CPT's (Level I, the AMA's): they come with the operator's CPT
    file. The HCPCS Level II modifiers (GT, XS, RT...) come with the HCPCS file."""
    return CodeSystem.CPT if system is CodeSystem.MODIFIER and code.isdigit() else system


def _judge(
    system: CodeSystem, asked: str, code: str, on: datetime.date, row: repository.CheckRow
) -> CodeCheck:
    name = SYSTEM_NAMES[system]
    system = CodeSystem(asked)
    if not row.loaded:
        return CodeCheck(system.value, code, on, valid=False, reason=f"no {name} code set loaded")
    warning = None
    if row.release_through is not None and on > row.release_through:
        warning = (
            f"code set may be out of date: newest {name} release loaded is {row.release_label} "
            f"(through {row.release_through.isoformat()})"
        )
    billable, description = row.billable, row.description
    early = row.ended is None and row.starts is not None
    if billable is None and early and row.oldest_from is not None and on < row.oldest_from:
        # Before the oldest release loaded: judged by the oldest, and said so.
        billable, description = row.early_billable, row.early_description
        warning = (
            f"code set may not cover {on.isoformat()}: oldest {name} release loaded is "
            f"{row.oldest_label} (from {row.oldest_from.isoformat()})"
        )
    if billable is None:
        if row.ended is not None:
            reason = f"not valid on {on.isoformat()}: terminated {row.ended.isoformat()}"
        elif row.starts is not None:
            reason = f"not valid on {on.isoformat()}: effective from {row.starts.isoformat()}"
        else:
            reason = "unknown code"
        return CodeCheck(system.value, code, on, valid=False, reason=reason, warning=warning)
    if not billable:
        return CodeCheck(
            system.value,
            code,
            on,
            valid=False,
            reason="header code, not billable",
            description=description,
            warning=warning,
        )
    return CodeCheck(system.value, code, on, valid=True, description=description, warning=warning)


# --- Lookup and search (the coders' routes) ---------------------------------------------------------------


class UnknownCodeSystem(RCMError):
    status_code = 404
    title = "Unknown code system"


def code_system(name: str) -> CodeSystem:
    """The system a path names, or a 404 naming it and the systems there are."""
    if name not in CodeSystem._value2member_map_:
        known = ", ".join(s.value for s in CodeSystem)
        raise UnknownCodeSystem(f"There is no code system {name!r}; the systems are {known}.")
    return CodeSystem(name)


async def lookup(session: AsyncSession, system: CodeSystem, code: str, on: datetime.date) -> CodeLookup:
    check = (await check_codes(session, [(system.value, code)], on))[0]
    return CodeLookup(
        system=system,
        code=code,
        on=on,
        valid=check.valid,
        description=check.description,
        reason=check.reason,
        warning=check.warning,
    )


_CURSOR_PREFIX = "o"


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    digits = cursor.removeprefix(_CURSOR_PREFIX)
    if not cursor.startswith(_CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 9:
        raise InvalidInput(
            "The cursor is not one this API issued.", errors=[FieldError("query:cursor", "invalid")]
        )
    return int(digits)


async def search(
    session: AsyncSession,
    system: CodeSystem,
    *,
    q: str,
    on: datetime.date,
    limit: int,
    cursor: str | None,
) -> CodePage:
    """Codes in force on ``on`` by description (PostgreSQL full-text search, ranked) or code prefix: an exact
    code first, then codes starting with it, then by rank; billable codes before headers on a tie."""
    words = " ".join(q.split())
    if not words:
        raise InvalidInput("Give words or a code to search for.", errors=[FieldError("query:q", "empty")])
    token = words.split(" ")[0]
    prefix = (
        normalize(system, token) if len(words.split(" ")) == 1 and token.replace(".", "").isalnum() else ""
    )
    offset = _offset(cursor)
    rows = await repository.search(
        session, system, words=words, code_prefix=prefix, on=on, limit=limit + 1, offset=offset
    )
    items = [
        CodeMatch(
            code=display(system, row.code),
            description=row.description,
            billable=row.billable,
            effective_from=row.effective_from,
            effective_through=row.effective_through,
            rank=round(row.rank, 6),
        )
        for row in rows[:limit]
    ]
    more = len(rows) > limit
    return CodePage(items=items, next_cursor=f"{_CURSOR_PREFIX}{offset + limit}" if more else None)


# --- Edits for the scrub ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NcciPair:
    """Column 2 is not paid with column 1 on the same date of service; with modifier indicator 1 a modifier
    (59, XE, XS, XP, XU...) may bypass the edit, with 0 nothing may, 9 means not applicable."""

    column1: str
    column2: str
    modifier_indicator: int
    effective_from: datetime.date
    deleted_on: datetime.date | None
    rationale: str | None


async def ncci_pairs(session: AsyncSession, codes: Sequence[str], on: datetime.date) -> list[NcciPair]:
    """The PTP edits in force on ``on`` between any two of ``codes`` (CPT/HCPCS), in one round trip."""
    wanted = list(dict.fromkeys(c.strip().upper() for c in codes))
    if len(wanted) < 2:
        return []
    return [
        NcciPair(r.column1, r.column2, r.modifier_indicator, r.effective_from, r.deleted_on, r.rationale)
        for r in await repository.ncci_rows(session, wanted, on)
    ]


@dataclass(frozen=True, slots=True)
class MueLimit:
    code: str
    units: int  # the most units of service per line (indicator 1) or per day (2, 3)
    adjudication_indicator: int  # 1 line edit, 2 date-of-service policy, 3 date-of-service clinical
    rationale: str | None


async def mue_limits(session: AsyncSession, codes: Sequence[str], on: datetime.date) -> dict[str, MueLimit]:
    """The MUE in force on ``on`` for each code that has one (practitioner services), in one round trip."""
    wanted = list(dict.fromkeys(c.strip().upper() for c in codes))
    if not wanted:
        return {}
    return {
        r.code: MueLimit(r.code, r.units, r.adjudication_indicator, r.rationale)
        for r in await repository.mue_rows(session, wanted, on)
    }


@dataclass(frozen=True, slots=True)
class SexAgeEdit:
    system: str
    code: str
    sex: Sex | None  # the only sex the code applies to
    min_age_years: int | None  # inclusive
    max_age_years: int | None  # inclusive

    def conflict(self, *, sex: str | None, age_years: int | None) -> str | None:
        """Why a patient of this sex and age conflicts with the code, or None."""
        if self.sex is not None and sex is not None and sex != self.sex.value:
            return f"{self.code} applies to {self.sex.value} patients only"
        if age_years is not None:
            if self.min_age_years is not None and age_years < self.min_age_years:
                return f"{self.code} applies from age {self.min_age_years}"
            if self.max_age_years is not None and age_years > self.max_age_years:
                return f"{self.code} applies up to age {self.max_age_years}"
        return None


async def sex_age_edits(
    session: AsyncSession, items: Sequence[tuple[str, str]], on: datetime.date
) -> list[SexAgeEdit]:
    """The operator's sex/age edits in force on ``on`` for these (system, code) pairs, in one round trip."""
    wanted = [
        (s, normalize(CodeSystem(s), c)) for s, c in items if s in CodeSystem._value2member_map_ and c.strip()
    ]
    if not wanted:
        return []
    return [
        SexAgeEdit(r.system, r.code, Sex(r.sex) if r.sex else None, r.min_age_years, r.max_age_years)
        for r in await repository.sex_age_rows(session, wanted, on)
    ]


# --- Loading ---------------------------------------------------------------------------------------------


class ReleaseRefused(RCMError):
    """A release that cannot be loaded as given (older than the newest loaded one)."""

    status_code = 409
    title = "Release refused"


@dataclass(frozen=True, slots=True)
class LoadReport:
    code_set: CodeSet
    label: str
    source: str
    already_loaded: bool
    rows: int
    added: int = 0
    changed: int = 0
    terminated: int = 0
    unchanged: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        name = SYSTEM_NAMES[self.code_set]
        if self.already_loaded:
            return f"{name} {self.label} ({self.source}): already loaded, nothing changed"
        return (
            f"{name} {self.label} ({self.source}): {self.rows} rows, {self.added} added, "
            f"{self.changed} changed, {self.terminated} terminated, {self.unchanged} unchanged "
            f"in {self.seconds:.1f} s"
        )


async def load_release(session: AsyncSession, parsed: ParsedRelease, *, as_owner: bool = True) -> LoadReport:
    """Load one parsed release in the caller's transaction (readers keep the previous release until it
    commits). Idempotent: a file already loaded (same checksum) changes nothing."""
    started = time.perf_counter()
    if as_owner:
        await repository.act_as_owner(session)
    await repository.lock_code_set(session, parsed.code_set)
    existing = await repository.release_by_checksum(session, parsed.code_set, parsed.checksum)
    if existing is not None:
        return LoadReport(
            parsed.code_set, existing.label, parsed.source, already_loaded=True, rows=len(parsed.rows)
        )
    newest = await repository.newest_release_start(session, parsed.code_set)
    if newest is not None and parsed.effective_from < newest:
        raise ReleaseRefused(
            f"{SYSTEM_NAMES[parsed.code_set]} release {parsed.label} starts "
            f"{parsed.effective_from.isoformat()}, before the newest one loaded ({newest.isoformat()}): "
            "load releases oldest first"
        )
    parsed.materialize()
    release = CodeSetRelease(
        id=uuid.uuid4(),
        code_set=parsed.code_set,
        label=parsed.label,
        effective_from=parsed.effective_from,
        effective_through=parsed.effective_through,
        source=parsed.source,
        checksum=parsed.checksum,
    )
    await repository.insert_release(session, release)
    counts = await _load_rows(session, parsed, release.id)
    await repository.update_release_counts(session, release.id, counts)
    return LoadReport(
        parsed.code_set,
        parsed.label,
        parsed.source,
        already_loaded=False,
        rows=len(parsed.rows),
        added=counts.added,
        changed=counts.changed,
        terminated=counts.terminated,
        unchanged=counts.unchanged,
        seconds=time.perf_counter() - started,
    )


async def _load_rows(
    session: AsyncSession, parsed: ParsedRelease, release_id: uuid.UUID
) -> repository.Counts:
    code_set = parsed.code_set
    if code_set is CodeSet.NCCI_PTP:
        ptp = [r for r in parsed.rows if isinstance(r, PtpRow)]
        return await repository.load_ncci(
            session,
            release_id=release_id,
            rows=[
                (
                    r.column1,
                    r.column2,
                    r.effective_from,
                    r.deleted_on,
                    r.modifier_indicator,
                    r.existed_before_1996,
                    r.rationale,
                )
                for r in ptp
            ],
        )
    if code_set is CodeSet.MUE:
        return await repository.load_versioned(
            session,
            repository.MUE_LIMIT,
            release_id=release_id,
            effective_from=parsed.effective_from,
            fixed={},
            rows=[
                (r.code, r.units, r.adjudication_indicator, r.rationale, None, None)
                for r in parsed.rows
                if isinstance(r, MueRow)
            ],
        )
    if code_set is CodeSet.SEX_AGE:
        return await repository.load_versioned(
            session,
            repository.SEX_AGE_EDIT,
            release_id=release_id,
            effective_from=parsed.effective_from,
            fixed={},
            rows=[
                (
                    r.system.value,
                    r.code,
                    r.sex.value if r.sex else None,
                    r.min_age_years,
                    r.max_age_years,
                    None,
                    None,
                )
                for r in parsed.rows
                if isinstance(r, SexAgeRow)
            ],
        )
    return await repository.load_versioned(
        session,
        repository.CODE_VERSION,
        release_id=release_id,
        effective_from=parsed.effective_from,
        fixed={"system": code_set.value},
        rows=[
            (r.code, r.description, r.billable, r.effective_from, r.effective_through)
            for r in parsed.rows
            if isinstance(r, CodeRow)
        ],
    )


async def list_releases(session: AsyncSession) -> list[CodeSetRelease]:
    return await repository.releases(session)
