"""The scrubber's rules: a registry of named, versioned edits, each with a severity and a message a biller
understands.

A rule looks at one encounter (``ScrubContext``, read once, held in memory) and answers a ``Verdict``:
``passed``, ``fired`` (with one finding per problem, naming codes, line numbers and dates, never a name or
a birth date), or ``not_checked`` when the reference data it needs is not loaded: "not checked" is never a
pass. A rule's id carries its version (``NCCI-PTP@2026.1``): when an edit's logic changes, its version does,
and stored results say which version judged the encounter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from itertools import combinations

from pydantic import SecretStr

from rcm.kit.secrets import SecretUnavailable
from rcm.providers.npi import npi_check_digit_valid
from rcm.scrub.inputs import LineIn, ScrubInput
from rcm.scrub.reference import (
    CodeKind,
    CodeStatus,
    MueLimit,
    NotLoaded,
    PtpEdit,
    SexAgeEdit,
    procedure_kind,
)
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scrub_rules import RuleSeverity
from rcm.tenancy.vocabulary import ClaimType

Severity = RuleSeverity

# CMS Place of Service codes in use (unassigned numbers are not valid on a claim): the fallback when no
# place-of-service release is loaded; a loaded release, dated, is what POS-VALID checks first.
PLACES_OF_SERVICE = frozenset(
    [f"{n:02d}" for n in range(1, 28)]
    + ["31", "32", "33", "34", "41", "42", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58"]
    + ["60", "61", "62", "65", "66", "71", "72", "81", "99"]
)
# NCCI PTP-associated modifiers (NCCI Policy Manual, ch. I): with modifier indicator 1 they let the column
# two code be paid, when the services really were distinct (other site, session, encounter, practitioner...).
NCCI_MODIFIERS = frozenset(
    {"59", "XE", "XS", "XP", "XU", "25", "24", "27", "57", "58", "78", "79", "91"}
    | {"E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9"}
    | {"LC", "LD", "LM", "LT", "RC", "RI", "RT", "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"}
)
TIMELY_FILING_WARNING_DAYS = 30


def shown(system: str, code: str) -> str:
    """A code as billers read it: ICD-10-CM with its dot after the category (``E119`` -> ``E11.9``)."""
    if system == CodeKind.ICD10CM and len(code) > 3 and "." not in code:
        return f"{code[:3]}.{code[3:]}"
    return code


class RuleStatus(StrEnum):
    PASSED = "passed"
    FIRED = "fired"
    NOT_CHECKED = "not_checked"


class RuleSource(StrEnum):
    BUILTIN = "builtin"
    MANIFEST = "manifest"  # declared by the practice in its tenant manifest


@dataclass(frozen=True, slots=True)
class Finding:
    message: str
    line_number: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: RuleStatus
    findings: tuple[Finding, ...] = ()
    looked_at: tuple[str, ...] = ()  # the data the rule looked at, in words (codes, lines, dates)
    reason: str | None = None  # why it could not run (not_checked)


def passed(*looked_at: str) -> Verdict:
    return Verdict(RuleStatus.PASSED, looked_at=looked_at)


def fired(findings: Iterable[Finding], *looked_at: str) -> Verdict:
    return Verdict(RuleStatus.FIRED, tuple(findings), looked_at)


def not_checked(reason: str, *looked_at: str) -> Verdict:
    return Verdict(RuleStatus.NOT_CHECKED, looked_at=looked_at, reason=reason)


def judged(findings: list[Finding], *looked_at: str) -> Verdict:
    return fired(findings, *looked_at) if findings else passed(*looked_at)


@dataclass(slots=True)
class ScrubContext:
    """Everything the rules may look at, read before any rule runs."""

    input: ScrubInput
    manifest: TenantManifest
    today: date
    latest: date  # the last plausible date of service: today (UTC) plus the time-zone skew
    tin: SecretStr | SecretUnavailable | None = None  # None: the manifest names no TIN reference
    codes: dict[date, list[CodeStatus] | NotLoaded] = field(default_factory=dict)
    ptp: dict[date, list[PtpEdit] | NotLoaded] = field(default_factory=dict)
    mue: dict[date, dict[str, MueLimit] | NotLoaded] = field(default_factory=dict)
    sex_age: dict[date, list[SexAgeEdit] | NotLoaded] = field(default_factory=dict)

    def lines_on(self, day: date) -> list[LineIn]:
        return [line for line in self.input.lines if line.service_date == day]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    version: str
    severity: RuleSeverity
    title: str  # what the rule checks, for the rules list
    source: RuleSource = RuleSource.BUILTIN
    claim_type: ClaimType | None = None  # runs on encounters of this claim type only (None: on every one)

    @property
    def key(self) -> str:
        prefix = "manifest:" if self.source is RuleSource.MANIFEST else ""
        return f"{prefix}{self.id}@{self.version}"


Check = Callable[[ScrubContext], Verdict]


@dataclass(frozen=True, slots=True)
class Rule:
    spec: RuleSpec
    check: Check


REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str, version: str, severity: RuleSeverity, title: str, *, claim_type: ClaimType | None = None
) -> Callable[[Check], Check]:
    """Register a built-in rule; ids are unique (a second version replaces, it does not sit beside).
    ``claim_type``: the rule judges only encounters billed on that 837 (the institutional edits)."""

    def register(check: Check) -> Check:
        if rule_id in REGISTRY:
            raise ValueError(f"rule {rule_id} registered twice")
        spec = RuleSpec(rule_id, version, severity, title, claim_type=claim_type)
        REGISTRY[rule_id] = Rule(spec, check)
        return check

    return register


def builtin_rules(claim_type: ClaimType = ClaimType.PROFESSIONAL) -> tuple[Rule, ...]:
    """The built-in rules that judge an encounter of ``claim_type``, in registration order."""
    return tuple(r for r in REGISTRY.values() if r.spec.claim_type in (None, claim_type))


# Required data ---------------------------------------------------------------------------------------


@rule("NPI-CHECK", "2026.1", Severity.ERROR, "Rendering and billing provider NPIs pass their check digit")
def npi_check(ctx: ScrubContext) -> Verdict:
    findings = [
        Finding(
            f"The {p.role} provider's NPI {p.npi} fails its check digit: correct it in the provider record "
            "(the payer rejects the claim otherwise)."
        )
        for p in ctx.input.providers
        if not npi_check_digit_valid(p.npi)
    ]
    return judged(findings, *(f"{p.role} NPI {p.npi}" for p in ctx.input.providers))


@rule("TIN-PRESENT", "2026.1", Severity.ERROR, "The practice's TIN is configured and readable")
def tin_present(ctx: ScrubContext) -> Verdict:
    reference = ctx.manifest.tin_reference
    if reference is None:
        return fired([Finding("The practice has no TIN reference in its manifest (tin_reference).")])
    if isinstance(ctx.tin, SecretUnavailable) or ctx.tin is None:
        return fired(
            [Finding(f"The practice's TIN could not be read: {ctx.tin}.")], f"tin_reference {reference}"
        )
    digits = ctx.tin.get_secret_value().replace("-", "")
    if len(digits) != 9 or not digits.isdigit():
        return fired(
            [Finding(f"The practice's TIN read from {reference} is not nine digits.")],
            f"tin_reference {reference}",
        )
    return passed(f"tin_reference {reference}")


@rule("SUBSCRIBER", "2026.1", Severity.ERROR, "Coverage with a payer of the practice and a member id")
def subscriber(ctx: ScrubContext) -> Verdict:
    coverage = ctx.input.coverage
    if coverage is None:
        return fired(
            [Finding("The encounter has no coverage: add the patient's insurance (payer, member id).")]
        )
    looked = (f"payer {coverage.payer_id}", f"date of service {ctx.input.service_date}")
    findings = []
    if coverage.payer_id not in ctx.manifest.payer_ids:
        findings.append(Finding(f"The payer {coverage.payer_id} is not one of the practice's payers."))
    if not coverage.has_member_id:
        findings.append(Finding("The coverage has no subscriber member id."))
    for day in ctx.input.service_dates:
        if coverage.start_date is not None and day < coverage.start_date:
            findings.append(
                Finding(f"The coverage starts on {coverage.start_date}, after the service on {day}.")
            )
        if coverage.end_date is not None and day > coverage.end_date:
            findings.append(
                Finding(f"The coverage ended on {coverage.end_date}, before the service on {day}.")
            )
    return judged(findings, *looked)


@rule("DATES", "2026.1", Severity.ERROR, "Dates of service are present and not in the future")
def dates(ctx: ScrubContext) -> Verdict:
    findings = []
    if ctx.input.service_date > ctx.latest:
        findings.append(Finding(f"The date of service {ctx.input.service_date} is in the future."))
    findings += [
        Finding(f"The service date {line.service_date} of {line.name} is in the future.", line.line_number)
        for line in ctx.input.lines
        if line.service_date > ctx.latest and line.service_date != ctx.input.service_date
    ]
    if not ctx.input.lines:
        findings.append(Finding("The encounter has no charge lines to bill."))
    return judged(findings, *(f"date of service {day}" for day in ctx.input.service_dates))


@rule("POS-VALID", "2026.2", Severity.ERROR, "The place of service is a CMS place-of-service code")
def place_of_service(ctx: ScrubContext) -> Verdict:
    pos = ctx.input.place_of_service
    answer = ctx.codes.get(ctx.input.service_date)
    status = next(
        (s for s in answer if s.system == CodeKind.POS) if isinstance(answer, list) else iter(()), None
    )
    if status is not None and status.valid is not None:
        # The loaded code set, on the date of service (codes are added and retired over the years).
        looked = f"place of service {pos} on {ctx.input.service_date} (place-of-service code set)"
        if status.valid:
            return passed(looked)
        why = f" ({status.reason})" if status.reason else ""
        return fired(
            [Finding(f"The place of service {pos} is not valid on {ctx.input.service_date}{why}.")], looked
        )
    looked = f"place of service {pos} (built-in CMS list: no place-of-service release is loaded)"
    if pos in PLACES_OF_SERVICE:
        return passed(looked)
    return fired([Finding(f"The place of service {pos} is not a CMS place-of-service code.")], looked)


# Codes -----------------------------------------------------------------------------------------------


def _code_items(ctx: ScrubContext, day: date) -> list[tuple[str, str]]:
    items: dict[tuple[str, str], None] = {}
    for diagnosis in ctx.input.diagnoses:
        items[(CodeKind.ICD10CM.value, diagnosis.code)] = None
    for line in ctx.lines_on(day):
        items[(procedure_kind(line.procedure_code).value, line.procedure_code)] = None
        for modifier in line.modifiers:
            items[(CodeKind.MODIFIER.value, modifier)] = None
    return list(items)


@rule("CODES-VALID", "2026.1", Severity.ERROR, "Diagnosis, procedure and modifier codes valid on the date")
def codes_valid(ctx: ScrubContext) -> Verdict:
    findings: list[Finding] = []
    unchecked: list[str] = []
    looked: list[str] = []
    for day in ctx.input.service_dates:
        answer = ctx.codes.get(day)
        if answer is None:
            continue
        if isinstance(answer, NotLoaded):
            return not_checked(f"Codes could not be checked for {day}: {answer.reason}.")
        for status in answer:
            if status.system == CodeKind.POS:
                continue  # POS-VALID's
            code = shown(status.system, status.code)
            looked.append(f"{status.system} {code} on {day}")
            if status.valid is None:
                unchecked.append(f"{status.system} {code}" + (f" ({status.reason})" if status.reason else ""))
            elif not status.valid:
                why = f" ({status.reason})" if status.reason else ""
                findings.append(Finding(f"The {status.system} code {code} is not valid on {day}{why}."))
    if findings:
        return fired(findings, *looked)
    if unchecked:
        return not_checked(f"Could not check {'; '.join(unchecked)}.", *looked)
    return passed(*looked)


@rule("CODES-CURRENT", "2026.1", Severity.WARNING, "The code sets loaded cover the date of service")
def codes_current(ctx: ScrubContext) -> Verdict:
    """A date after the newest loaded release is checked against that release: valid there, perhaps not
    on the day (a new fiscal year's ICD-10-CM). The biller is told which release, never left to assume."""
    warnings: dict[str, None] = {}
    looked: list[str] = []
    for day in ctx.input.service_dates:
        answer = ctx.codes.get(day)
        if answer is None:
            continue
        if isinstance(answer, NotLoaded):
            return not_checked(f"Codes could not be checked for {day}: {answer.reason}.")
        looked.append(f"code-set releases for {day}")
        for status in answer:
            if status.warning:
                warnings[f"{status.warning} ({status.system} on {day})"] = None
    if warnings:
        return fired([Finding(f"{text[:1].upper()}{text[1:]}.") for text in warnings], *looked)
    return passed(*looked)


@rule("DX-POINTERS", "2026.1", Severity.ERROR, "Every line points to one to four existing diagnoses")
def diagnosis_pointers(ctx: ScrubContext) -> Verdict:
    count = len(ctx.input.diagnoses)
    findings = []
    if count == 0:
        findings.append(Finding("The encounter has no diagnosis."))
    for line in ctx.input.lines:
        pointers = line.diagnosis_pointers
        # An 837I line (SV2) points to no diagnosis: the claim's diagnoses cover it.
        if not pointers and ctx.input.claim_type is ClaimType.PROFESSIONAL:
            findings.append(Finding(f"{line.name.capitalize()} points to no diagnosis.", line.line_number))
        if len(pointers) > 4:
            findings.append(
                Finding(f"{line.name.capitalize()} has more than four pointers.", line.line_number)
            )
        if len(set(pointers)) != len(pointers):
            findings.append(Finding(f"{line.name.capitalize()} repeats a pointer.", line.line_number))
        findings += [
            Finding(
                f"{line.name.capitalize()} points to diagnosis {p}, which does not exist.", line.line_number
            )
            for p in pointers
            if not 1 <= p <= count
        ]
    return judged(findings, f"{count} diagnoses", f"{len(ctx.input.lines)} lines")


def _by_date(ctx: ScrubContext, answers: Mapping[date, object], what: str) -> NotLoaded | None:
    for day in ctx.input.service_dates:
        answer = answers.get(day)
        if isinstance(answer, NotLoaded):
            return NotLoaded(f"{what} for {day}: {answer.reason}")
    return None


@rule("NCCI-PTP", "2026.1", Severity.ERROR, "No NCCI procedure-to-procedure conflict on the same day")
def ncci_ptp(ctx: ScrubContext) -> Verdict:
    missing = _by_date(ctx, ctx.ptp, "NCCI PTP edits")
    if missing is not None:
        return not_checked(missing.reason)
    findings = []
    looked = []
    for day in ctx.input.service_dates:
        edits = ctx.ptp.get(day)
        if not isinstance(edits, list):
            continue
        by_pair = {(e.column1, e.column2): e for e in edits}
        for first, second in combinations(ctx.lines_on(day), 2):
            for one, two in ((first, second), (second, first)):
                edit = by_pair.get((one.procedure_code, two.procedure_code))
                if edit is None or edit.modifier_indicator == 9:
                    continue
                looked.append(f"{edit.column1}/{edit.column2} on {day}")
                bypass = NCCI_MODIFIERS & (set(one.modifiers) | set(two.modifiers))
                if edit.modifier_indicator == 1 and bypass:
                    continue
                tail = (
                    "the edit allows no modifier."
                    if edit.modifier_indicator == 0
                    else "add 59/XE/XS/XP/XU (or 25 on the E/M) if the services were distinct."
                )
                findings.append(
                    Finding(
                        f"NCCI: {two.procedure_code} ({two.name}) is bundled into {one.procedure_code} "
                        f"({one.name}) on {day}; {tail}",
                        two.line_number,
                    )
                )
    return judged(findings, *looked)


@rule("MUE", "2026.1", Severity.ERROR, "Units within the medically unlikely edit of each code")
def mue(ctx: ScrubContext) -> Verdict:
    missing = _by_date(ctx, ctx.mue, "MUE limits")
    if missing is not None:
        return not_checked(missing.reason)
    findings = []
    looked = []
    for day in ctx.input.service_dates:
        limits = ctx.mue.get(day)
        if not isinstance(limits, dict):
            continue
        per_day: dict[str, int] = {}
        for line in ctx.lines_on(day):
            per_day[line.procedure_code] = per_day.get(line.procedure_code, 0) + line.units
            limit = limits.get(line.procedure_code)
            if limit is not None and limit.adjudication_indicator == 1 and line.units > limit.units:
                findings.append(
                    Finding(
                        f"{line.name.capitalize()} bills {line.units} units; "
                        f"the MUE allows {limit.units} per line.",
                        line.line_number,
                    )
                )
        for code, units in per_day.items():
            limit = limits.get(code)
            if limit is None:
                continue
            looked.append(f"{code}: {units} units on {day}, MUE {limit.units}")
            if limit.adjudication_indicator != 1 and units > limit.units:
                findings.append(
                    Finding(f"{code} bills {units} units on {day}; the MUE allows {limit.units} per day.")
                )
    return judged(findings, *looked)


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@rule("SEX-AGE", "2026.1", Severity.ERROR, "Sex- and age-specific codes agree with the patient")
def sex_age(ctx: ScrubContext) -> Verdict:
    missing = _by_date(ctx, ctx.sex_age, "Sex and age edits")
    if missing is not None:
        return not_checked(missing.reason)
    findings = []
    looked = []
    for day in ctx.input.service_dates:
        edits = ctx.sex_age.get(day)
        if not isinstance(edits, list):
            continue
        for edit in edits:
            code = shown(edit.system, edit.code)
            looked.append(f"{edit.system} {code} on {day}")
            if edit.sex is not None and ctx.input.patient_sex != edit.sex:
                findings.append(Finding(f"The {edit.system} code {code} is for {edit.sex} patients only."))
            if edit.min_age_years is None and edit.max_age_years is None:
                continue
            birth = ctx.input.birth_date
            if birth is None:  # the service decrypts it whenever an age edit applies
                return not_checked("The patient's birth date was not available for the age edits.", *looked)
            age = _age_on(birth, day)
            low = edit.min_age_years if edit.min_age_years is not None else 0
            high = edit.max_age_years if edit.max_age_years is not None else 200
            if not low <= age <= high:
                findings.append(
                    Finding(
                        f"The {edit.system} code {code} is for ages {low} to {high}; "
                        f"the patient's age on {day} is outside that range."
                    )
                )
    return judged(findings, *looked)


@rule("DUPLICATE-LINE", "2026.1", Severity.ERROR, "No line repeats another (code, modifiers, date)")
def duplicate_lines(ctx: ScrubContext) -> Verdict:
    seen: dict[tuple[str, tuple[str, ...], date], LineIn] = {}
    findings = []
    for line in ctx.input.lines:
        key = (line.procedure_code, tuple(sorted(line.modifiers)), line.service_date)
        first = seen.setdefault(key, line)
        if first is not line:
            findings.append(
                Finding(
                    f"{line.name.capitalize()} repeats line {first.line_number} on {line.service_date}: "
                    "merge the units, or add 76/77/91 if it was really repeated.",
                    line.line_number,
                )
            )
    return judged(findings, f"{len(ctx.input.lines)} lines")


def _filing_deadline(ctx: ScrubContext) -> tuple[date, str] | NotLoaded:
    coverage = ctx.input.coverage
    if coverage is None:
        return NotLoaded("the encounter has no coverage, so no payer's filing window applies")
    payer = next((p for p in ctx.manifest.payers if p.payer_id == coverage.payer_id), None)
    if payer is None or payer.timely_filing_days is None:
        return NotLoaded(f"the manifest sets no timely_filing_days for the payer {coverage.payer_id}")
    earliest = ctx.input.service_dates[0]
    return earliest + timedelta(days=payer.timely_filing_days), payer.payer_id


@rule("TIMELY-FILING", "2026.1", Severity.ERROR, "Within the payer's timely-filing window")
def timely_filing(ctx: ScrubContext) -> Verdict:
    deadline = _filing_deadline(ctx)
    if isinstance(deadline, NotLoaded):
        return not_checked(f"The timely-filing window is unknown: {deadline.reason}.")
    last_day, payer = deadline
    looked = f"payer {payer}, last filing day {last_day}"
    if ctx.today > last_day:
        return fired([Finding(f"The payer {payer}'s timely-filing window closed on {last_day}.")], looked)
    return passed(looked)


@rule("TIMELY-FILING-NEAR", "2026.1", Severity.WARNING, "Not close to the end of the timely-filing window")
def timely_filing_near(ctx: ScrubContext) -> Verdict:
    deadline = _filing_deadline(ctx)
    if isinstance(deadline, NotLoaded):
        return not_checked(f"The timely-filing window is unknown: {deadline.reason}.")
    last_day, payer = deadline
    looked = f"payer {payer}, last filing day {last_day}"
    left = (last_day - ctx.today).days
    if 0 <= left <= TIMELY_FILING_WARNING_DAYS:
        return fired(
            [Finding(f"File soon: the payer {payer}'s timely-filing window closes on {last_day}.")], looked
        )
    return passed(looked)
