"""What each FHIR resource we use says, extracted right after validation into small plain records.

The validated R4B model (and the entry's JSON) is dropped as soon as its facts are out, so a bundle of
hundreds of encounters never lives in memory as models: only these records and the decoded notes do.
Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from rcm.fhir.outcome import Issue, IssueType

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ICD10CM_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.840.1.113883.6.90"})
CPT_SYSTEMS = frozenset({"http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"})
HCPCS_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "urn:oid:2.16.840.1.113883.6.285",
        "urn:oid:2.16.840.1.113883.6.14",
    }
)
POS_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
        "http://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
        "urn:oid:2.16.840.1.113883.6.50",
    }
)
SYSTEM_NAMES = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    **dict.fromkeys(ICD10CM_SYSTEMS, "ICD-10-CM"),
    **dict.fromkeys(CPT_SYSTEMS, "CPT"),
    **dict.fromkeys(HCPCS_SYSTEMS, "HCPCS"),
}
# The same shapes as the JSON intake's DTOs (rcm.encounters.schemas), checked here to name the coding.
ICD10CM_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
PROCEDURE_CODE = re.compile(r"^([0-9]{4}[0-9FTU]|[A-V][0-9]{4})$")
MODIFIER_CODE = re.compile(r"^[0-9A-Z]{2}$")
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
POS_CODE = re.compile(r"^[0-9]{2}$")
# Encounter.class (v3 ActCode) -> CMS place of service, when no Location names one.
CLASS_POS = {
    "AMB": "11",  # office
    "EMER": "23",  # emergency room, hospital
    "IMP": "21",  # inpatient hospital
    "ACUTE": "21",
    "NONAC": "21",
    "OBSENC": "22",  # on-campus outpatient hospital
    "SS": "24",  # ambulatory surgical center
    "HH": "12",  # home
    "VR": "10",  # telehealth in the patient's home
    "PRENC": "11",
    "FLD": "15",  # mobile unit
}
OTHER_POS = "99"
TEXT_MEDIA = re.compile(r"^text/[\w.+-]+\s*(;.*)?$", re.IGNORECASE)
MAX_NOTE_CHARS = 150_000  # of the encounter's 200,000-character documentation, for decoded notes


class CodeKind(enum.Enum):
    ICD10CM = "icd10cm"
    PROCEDURE = "procedure"  # CPT or HCPCS Level II
    CLINICAL = "clinical"  # SNOMED CT, LOINC, CVX, anything else: documentation for the coder


def code_kind(system: str | None) -> CodeKind:
    if system in ICD10CM_SYSTEMS:
        return CodeKind.ICD10CM
    if system in CPT_SYSTEMS or system in HCPCS_SYSTEMS:
        return CodeKind.PROCEDURE
    return CodeKind.CLINICAL


@dataclass(frozen=True, slots=True)
class Coding:
    kind: CodeKind
    system: str
    code: str
    display: str
    label: str  # what it was ("Encounter type", "Condition"...), for the documentation
    expression: str

    def describe(self) -> str:
        name = SYSTEM_NAMES.get(self.system, self.system or "no system")
        return f"{self.label}: {name} {self.code}" + (f" {self.display}" if self.display else "")


@dataclass(slots=True)
class Ref:
    """A reference as sent: literal (``urn:uuid:..``, ``Patient/1``, a URL), contained (``#id``),
    conditional (``Practitioner?identifier=system|value``) or logical (``identifier`` alone)."""

    expression: str
    reference: str | None
    identifier: tuple[str, str] | None
    display: str | None
    contained: Facts | None = None


@dataclass(slots=True)
class PatientFacts:
    keys: list[str]
    mrn: str | None
    given_name: str | None
    family_name: str | None
    birth_date: date | None
    sex: str
    address: dict[str, str] | None
    phone: str | None


@dataclass(slots=True)
class ProviderFacts:
    kind: str  # individual | organization
    npi: str | None
    name: str
    keys: list[str]
    payer_hints: list[str]  # an Organization's name and identifier values, to match a manifest payer


@dataclass(slots=True)
class RoleFacts:
    """A PractitionerRole (what US Core EHRs name as an encounter's performer): its practitioner, and an
    NPI of its own when it carries one."""

    practitioner: Ref | None
    npi: str | None
    name: str


@dataclass(slots=True)
class LocationFacts:
    pos: str | None


@dataclass(slots=True)
class CoverageFacts:
    keys: list[str]
    beneficiary: Ref | None
    payors: list[Ref]
    member_id: str | None
    relationship: str
    priority: str
    group_number: str | None
    start_date: date | None
    end_date: date | None


@dataclass(slots=True)
class EncounterFacts:
    keys: list[str]
    external_id: str | None
    service_date: date | None
    place_of_service: str
    subject: Ref | None
    participants: list[Ref]
    service_provider: Ref | None
    locations: list[Ref]
    diagnoses: list[tuple[int, Ref]]  # (rank, Condition reference)
    codings: list[Coding]
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ConditionFacts:
    encounter: Ref | None
    codings: list[Coding]


@dataclass(slots=True)
class ProcedureFacts:
    encounter: Ref | None
    codings: list[Coding]
    performed: date | None


@dataclass(slots=True)
class ChargeItemFacts:
    context: Ref | None
    codings: list[Coding]
    units: int
    cents: int | None
    occurred: date | None


@dataclass(slots=True)
class ClaimItemFacts:
    sequence: int
    codings: list[Coding]
    modifiers: list[str]
    units: int
    cents: int | None
    diagnosis_sequences: list[int]
    service_date: date | None
    pos: str | None
    encounters: list[Ref]
    expression: str


@dataclass(slots=True)
class ClaimFacts:
    diagnoses: list[tuple[int, list[Coding], Ref | None]]  # (sequence, codings, Condition reference)
    items: list[ClaimItemFacts]
    coverage: Ref | None
    provider: Ref | None


@dataclass(slots=True)
class DocumentFacts:
    encounters: list[Ref]
    text: str


Facts = (
    PatientFacts
    | ProviderFacts
    | RoleFacts
    | LocationFacts
    | CoverageFacts
    | EncounterFacts
    | ConditionFacts
    | ProcedureFacts
    | ChargeItemFacts
    | ClaimFacts
    | DocumentFacts
)


# Helpers ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


def _date(value: Any) -> date | None:
    """A FHIR date or dateTime as the practice's own calendar date (the offset it was sent with)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        return None


def _cents(money: Any) -> int | None:
    value = getattr(money, "value", None) if money is not None else None
    if value is None:
        return None
    try:
        cents = (Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return int(cents)


def _units(quantity: Any) -> int:
    value = getattr(quantity, "value", None) if quantity is not None else None
    try:
        units = int(Decimal(str(value))) if value is not None else 1
    except (InvalidOperation, ValueError):
        units = 1
    return units if units >= 1 else 1


def identifier_keys(resource: Any) -> list[str]:
    """The link keys of a resource: each identifier (``system|value``) and its resource id (``id|...``)."""
    keys = []
    for identifier in getattr(resource, "identifier", None) or []:
        value = _text(identifier.value)
        if value:
            keys.append(f"{identifier.system or ''}|{value}")
    if resource.id:
        keys.append(f"id|{resource.id}")
    return keys


def reference(ref: Any, expression: str, contained: dict[str, Facts]) -> Ref | None:
    if ref is None:
        return None
    text = _text(ref.reference)
    identifier = None
    if ref.identifier is not None and _text(ref.identifier.value):
        identifier = (ref.identifier.system or "", _text(ref.identifier.value) or "")
    found = contained.get(text[1:]) if text and text.startswith("#") else None
    if text is None and identifier is None:
        return None
    return Ref(expression, text, identifier, _text(ref.display), found)


def codings(concept: Any, expression: str, label: str) -> list[Coding]:
    if concept is None:
        return []
    out = []
    for index, coding in enumerate(concept.coding or []):
        code = _text(coding.code)
        if code is None:
            continue
        system = coding.system or ""
        out.append(
            Coding(
                code_kind(system),
                system,
                code,
                _text(coding.display) or "",
                label,
                f"{expression}.coding[{index}].code",
            )
        )
    if not out and _text(concept.text):
        out.append(Coding(CodeKind.CLINICAL, "", "", _text(concept.text) or "", label, expression))
    return out


def check_codings(found: list[Coding]) -> list[Issue]:
    """An ICD-10-CM, CPT or HCPCS coding whose code has not the code set's shape: named, never carried."""
    issues = []
    for coding in found:
        code = coding.code.strip().upper()
        if coding.kind is CodeKind.ICD10CM and not ICD10CM_CODE.match(code):
            issues.append(Issue(IssueType.VALUE, "is not an ICD-10-CM code", coding.expression))
        elif coding.kind is CodeKind.PROCEDURE and not PROCEDURE_CODE.match(code):
            issues.append(Issue(IssueType.VALUE, "is not a CPT or HCPCS Level II code", coding.expression))
    return issues


def _human_name(names: Any) -> Any:
    names = names or []
    for name in names:
        if name.use == "official":
            return name
    return names[0] if names else None


def _npi(resource: Any) -> str | None:
    for identifier in resource.identifier or []:
        if identifier.system == NPI_SYSTEM and _text(identifier.value):
            return _text(identifier.value)
    return None


# Extraction, one function per resource type ------------------------------------------------------------


def patient(resource: Any, expression: str, contained: dict[str, Facts]) -> PatientFacts:
    mrn = None
    for identifier in resource.identifier or []:
        types = getattr(identifier.type, "coding", None) or []
        if any(c.code == "MR" for c in types) and _text(identifier.value):
            mrn = _text(identifier.value)
            break
    if mrn is None:
        mrn = next((_text(i.value) for i in resource.identifier or [] if _text(i.value)), None)
    name = _human_name(resource.name)
    given = _text(" ".join(name.given or [])) if name is not None and name.given else None
    family = _text(name.family) if name is not None else None
    address = None
    for item in resource.address or []:
        state = _text(item.state)
        state = US_STATES.get(state.lower(), state) if state else None
        lines = [line for line in (item.line or []) if _text(line)]
        if lines and _text(item.city) and state and _text(item.postalCode):
            address = {
                "line1": _text(lines[0]) or "",
                "city": _text(item.city) or "",
                "state": state,
                "postal_code": _text(item.postalCode) or "",
            }
            if len(lines) > 1:
                address["line2"] = _text(lines[1]) or ""
            break
    phone = next(
        (_text(t.value) for t in resource.telecom or [] if t.system == "phone" and _text(t.value)), None
    )
    sex = resource.gender if resource.gender in ("female", "male", "other", "unknown") else "unknown"
    return PatientFacts(
        keys=identifier_keys(resource),
        mrn=mrn,
        given_name=given,
        family_name=family,
        birth_date=_date(resource.birthDate),
        sex=sex,
        address=address,
        phone=phone,
    )


def practitioner(resource: Any, expression: str, contained: dict[str, Facts]) -> ProviderFacts:
    name = _human_name(resource.name)
    text = None
    if name is not None:
        text = _text(name.text) or _text(
            " ".join([*(name.prefix or []), *(name.given or []), name.family or "", *(name.suffix or [])])
        )
    npi = _npi(resource)
    return ProviderFacts(
        "individual", npi, (text or f"Practitioner {npi or ''}")[:120].strip(), identifier_keys(resource), []
    )


def organization(resource: Any, expression: str, contained: dict[str, Facts]) -> ProviderFacts:
    npi = _npi(resource)
    name = _text(resource.name)
    hints = [h for h in [name, *(_text(i.value) for i in resource.identifier or [])] if h]
    return ProviderFacts(
        "organization",
        npi,
        (name or f"Organization {npi or ''}")[:120].strip(),
        identifier_keys(resource),
        hints,
    )


def practitioner_role(resource: Any, expression: str, contained: dict[str, Facts]) -> RoleFacts:
    npi = _npi(resource)
    display = _text(resource.practitioner.display) if resource.practitioner is not None else None
    return RoleFacts(
        practitioner=reference(resource.practitioner, f"{expression}.practitioner", contained),
        npi=npi,
        name=(display or f"Practitioner {npi or ''}")[:120].strip(),
    )


def location(resource: Any, expression: str, contained: dict[str, Facts]) -> LocationFacts:
    for concept in resource.type or []:
        for coding in concept.coding or []:
            if coding.system in POS_SYSTEMS and POS_CODE.match(coding.code or ""):
                return LocationFacts(coding.code)
    return LocationFacts(None)


_RELATIONSHIPS = {"self": "self", "spouse": "spouse", "child": "child"}
_PRIORITIES = {1: "primary", 2: "secondary", 3: "tertiary"}


def coverage(resource: Any, expression: str, contained: dict[str, Facts]) -> CoverageFacts:
    member = _text(resource.subscriberId)
    if member is None:
        member = next((_text(i.value) for i in resource.identifier or [] if _text(i.value)), None)
    relationship = "self"
    for coding in getattr(resource.relationship, "coding", None) or []:
        relationship = _RELATIONSHIPS.get(coding.code or "", "other")
        break
    group = None
    for item in resource.class_fhir or []:
        if any(c.code == "group" for c in getattr(item.type, "coding", None) or []):
            group = _text(item.value)
    period = resource.period
    return CoverageFacts(
        keys=identifier_keys(resource),
        beneficiary=reference(resource.beneficiary, f"{expression}.beneficiary", contained),
        payors=[
            r
            for index, payor in enumerate(resource.payor or [])
            if (r := reference(payor, f"{expression}.payor[{index}]", contained)) is not None
        ],
        member_id=member,
        relationship=relationship,
        priority=_PRIORITIES.get(resource.order or 1, "primary"),
        group_number=group,
        start_date=_date(period.start) if period else None,
        end_date=_date(period.end) if period else None,
    )


_PERFORMER_ORDER = {"PPRF": 0, "ATND": 1, "SPRF": 2, "PART": 3}


def encounter(resource: Any, expression: str, contained: dict[str, Facts]) -> EncounterFacts:
    external = next(
        (
            _text(i.value)
            for i in resource.identifier or []
            if _text(i.value) and EXTERNAL_ID.match(_text(i.value) or "")
        ),
        None,
    )
    if external is None and resource.id and EXTERNAL_ID.match(resource.id):
        external = resource.id
    participants: list[tuple[int, int, Ref]] = []
    for index, participant in enumerate(resource.participant or []):
        ref = reference(participant.individual, f"{expression}.participant[{index}].individual", contained)
        if ref is None or (ref.reference or "").split("?")[0].split("/")[0] == "RelatedPerson":
            continue
        codes = [c.code for t in participant.type or [] for c in t.coding or []]
        order = min((_PERFORMER_ORDER.get(code or "", 9) for code in codes), default=9)
        participants.append((order, index, ref))
    class_code = resource.class_fhir.code if resource.class_fhir is not None else None
    found: list[Coding] = []
    for index, concept in enumerate(resource.type or []):
        found += codings(concept, f"{expression}.type[{index}]", "Encounter type")
    for index, concept in enumerate(resource.reasonCode or []):
        found += codings(concept, f"{expression}.reasonCode[{index}]", "Reason for visit")
    return EncounterFacts(
        keys=identifier_keys(resource),
        external_id=external,
        service_date=_date(resource.period.start) if resource.period is not None else None,
        place_of_service=CLASS_POS.get(class_code or "", OTHER_POS),
        subject=reference(resource.subject, f"{expression}.subject", contained),
        participants=[ref for _, _, ref in sorted(participants, key=lambda p: (p[0], p[1]))],
        service_provider=reference(resource.serviceProvider, f"{expression}.serviceProvider", contained),
        locations=[
            r
            for index, item in enumerate(resource.location or [])
            if (r := reference(item.location, f"{expression}.location[{index}].location", contained))
        ],
        diagnoses=[
            (item.rank or 99, r)
            for index, item in enumerate(resource.diagnosis or [])
            if (r := reference(item.condition, f"{expression}.diagnosis[{index}].condition", contained))
        ],
        codings=found,
    )


def condition(resource: Any, expression: str, contained: dict[str, Facts]) -> ConditionFacts:
    return ConditionFacts(
        encounter=reference(resource.encounter, f"{expression}.encounter", contained),
        codings=codings(resource.code, f"{expression}.code", "Condition"),
    )


def procedure(resource: Any, expression: str, contained: dict[str, Facts]) -> ProcedureFacts:
    performed = resource.performedDateTime or (
        resource.performedPeriod.start if resource.performedPeriod else None
    )
    return ProcedureFacts(
        encounter=reference(resource.encounter, f"{expression}.encounter", contained),
        codings=codings(resource.code, f"{expression}.code", "Procedure"),
        performed=_date(performed),
    )


def charge_item(resource: Any, expression: str, contained: dict[str, Facts]) -> ChargeItemFacts:
    occurred = resource.occurrenceDateTime or (
        resource.occurrencePeriod.start if resource.occurrencePeriod else None
    )
    return ChargeItemFacts(
        context=reference(resource.context, f"{expression}.context", contained),
        codings=codings(resource.code, f"{expression}.code", "Charge"),
        units=_units(resource.quantity),
        cents=_cents(resource.priceOverride),
        occurred=_date(occurred),
    )


def claim(resource: Any, expression: str, contained: dict[str, Facts]) -> ClaimFacts:
    diagnoses = []
    for index, item in enumerate(resource.diagnosis or []):
        where = f"{expression}.diagnosis[{index}]"
        diagnoses.append(
            (
                item.sequence,
                codings(
                    item.diagnosisCodeableConcept, f"{where}.diagnosisCodeableConcept", "Claim diagnosis"
                ),
                reference(item.diagnosisReference, f"{where}.diagnosisReference", contained),
            )
        )
    items = []
    for index, item in enumerate(resource.item or []):
        where = f"{expression}.item[{index}]"
        units = _units(item.quantity)
        cents = _cents(item.net)
        if cents is None and item.unitPrice is not None:
            unit = _cents(item.unitPrice)
            cents = unit * units if unit is not None else None
        pos = None
        for coding in getattr(item.locationCodeableConcept, "coding", None) or []:
            if coding.system in POS_SYSTEMS and POS_CODE.match(coding.code or ""):
                pos = coding.code
        items.append(
            ClaimItemFacts(
                sequence=item.sequence,
                codings=codings(item.productOrService, f"{where}.productOrService", "Claim line"),
                modifiers=[
                    (c.code or "").upper()
                    for m in item.modifier or []
                    for c in m.coding or []
                    if MODIFIER_CODE.match((c.code or "").upper())
                ],
                units=units,
                cents=cents,
                diagnosis_sequences=list(item.diagnosisSequence or []),
                service_date=_date(
                    item.servicedDate or (item.servicedPeriod.start if item.servicedPeriod else None)
                ),
                pos=pos,
                encounters=[
                    r
                    for e_index, ref in enumerate(item.encounter or [])
                    if (r := reference(ref, f"{where}.encounter[{e_index}]", contained))
                ],
                expression=where,
            )
        )
    focal = next((i for i in resource.insurance or [] if i.focal), None) or next(
        iter(resource.insurance or []), None
    )
    coverage_ref = None
    if focal is not None:
        index = (resource.insurance or []).index(focal)
        coverage_ref = reference(focal.coverage, f"{expression}.insurance[{index}].coverage", contained)
    return ClaimFacts(
        diagnoses=diagnoses,
        items=items,
        coverage=coverage_ref,
        provider=reference(resource.provider, f"{expression}.provider", contained),
    )


def document_reference(resource: Any, expression: str, contained: dict[str, Facts]) -> DocumentFacts:
    texts = []
    for content in resource.content or []:
        attachment = content.attachment
        data = attachment.data if attachment is not None else None
        if not data or not TEXT_MEDIA.match(attachment.contentType or "text/plain"):
            continue
        raw = data if isinstance(data, bytes) else _b64(str(data))
        texts.append(raw.decode("utf-8", errors="replace").replace("\x00", ""))
    context = resource.context
    encounters = [
        r
        for index, ref in enumerate((context.encounter or []) if context is not None else [])
        if (r := reference(ref, f"{expression}.context.encounter[{index}]", contained))
    ]
    return DocumentFacts(encounters=encounters, text="\n\n".join(texts)[:MAX_NOTE_CHARS])


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return b""


Extractor = Callable[[Any, str, dict[str, Facts]], Facts]
EXTRACTORS: dict[str, Extractor] = {
    "Patient": patient,
    "Practitioner": practitioner,
    "PractitionerRole": practitioner_role,
    "Organization": organization,
    "Location": location,
    "Coverage": coverage,
    "Encounter": encounter,
    "Condition": condition,
    "Procedure": procedure,
    "ChargeItem": charge_item,
    "Claim": claim,
    "DocumentReference": document_reference,
}
# Contained resources we understand (a Practitioner inside an Encounter, a Coverage inside a Claim...).
CONTAINED_EXTRACTORS: dict[str, Extractor] = {
    name: EXTRACTORS[name]
    for name in ("Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Coverage")
}

US_STATES = {
    name.lower(): code
    for name, code in {
        "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
        "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
        "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN",
        "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
        "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
        "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
        "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
        "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
        "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT",
        "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
        "Wyoming": "WY", "Puerto Rico": "PR", "Guam": "GU", "Virgin Islands": "VI",
    }.items()
}  # fmt: skip
