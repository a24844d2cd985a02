"""What a FHIR Claim says about an institutional bill, in CARIN Blue Button's shapes: ``supportingInfo`` by
category (``typeofbill``, ``admissiontype``, ``pointoforigin``, ``discharge-status``, ``admissionperiod``;
the value in ``code`` or ``timingPeriod``), ``billablePeriod`` (the statement period), the ``careTeam``
member whose role is ``attending``, the ``diagnosis`` of type ``admitting`` and each ``item.revenue``.

Read from every Claim; used only for a practice whose manifest ``claim_type`` is institutional (Synthea
types every claim institutional, office visits included: the Claim's type never decides). The registry the
reader uses is ``EXTRACTORS``: ``party_facts``' with this Claim extractor in place of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rcm.fhir import facts as f
from rcm.fhir import party_facts as pf

SUPPORTING_INFO = frozenset(
    {"typeofbill", "admissiontype", "pointoforigin", "discharge-status", "admissionperiod"}
)
ATTENDING = "attending"
ADMITTING = "admitting"


@dataclass(slots=True)
class ClaimInstitutional(pf.ClaimParties):
    """The Claim's institutional facts as sent (codes as text: the intake schema judges them), each with
    the element it came from, to be named when it is refused."""

    supporting: dict[str, tuple[str, str]] = field(default_factory=dict)  # category -> (code, element)
    admission: tuple[datetime | None, str, str] | None = None  # (start, its date as text, element)
    statement: tuple[str | None, str | None, str] | None = None  # billablePeriod dates, element
    attending: f.Ref | None = None
    admitting: tuple[str, str] | None = None  # (ICD-10-CM code, element)
    revenue: dict[int, str] = field(default_factory=dict)  # item index -> its revenue code


def _codes(concept: Any) -> list[str]:
    return [c.code.strip() for c in getattr(concept, "coding", None) or [] if c.code and c.code.strip()]


def _date_text(value: Any) -> str | None:
    found = f._date(value)
    return found.isoformat() if found is not None else None


def claim(resource: Any, expression: str, contained: dict[str, f.Facts]) -> ClaimInstitutional:
    base = pf.claim(resource, expression, contained)
    supporting: dict[str, tuple[str, str]] = {}
    admission = None
    for index, info in enumerate(resource.supportingInfo or []):
        where = f"{expression}.supportingInfo[{index}]"
        category = next((c for c in _codes(info.category) if c in SUPPORTING_INFO), None)
        if category is None or category in supporting:
            continue
        if category == "admissionperiod":
            start = info.timingPeriod.start if info.timingPeriod is not None else None
            if start is not None and admission is None:
                moment = start if isinstance(start, datetime) else None
                admission = (moment, _date_text(start) or "", f"{where}.timingPeriod.start")
            continue
        codes = _codes(info.code)
        if codes:
            supporting[category] = (codes[0], f"{where}.code")
    period = resource.billablePeriod
    statement = (
        (_date_text(period.start), _date_text(period.end), f"{expression}.billablePeriod")
        if period is not None
        else None
    )
    attending = None
    for index, member in enumerate(resource.careTeam or []):
        if ATTENDING in _codes(member.role) and attending is None:
            attending = f.reference(member.provider, f"{expression}.careTeam[{index}].provider", contained)
    admitting = None
    for index, diagnosis in enumerate(resource.diagnosis or []):
        kinds = {code for concept in diagnosis.type or [] for code in _codes(concept)}
        if ADMITTING in kinds and admitting is None:
            where = f"{expression}.diagnosis[{index}].diagnosisCodeableConcept"
            found = f.codings(diagnosis.diagnosisCodeableConcept, where, "Admitting diagnosis")
            icd = next((c for c in found if c.kind is f.CodeKind.ICD10CM), None)
            if icd is not None:
                admitting = (icd.code, icd.expression)
    revenue = {
        index: codes[0] for index, item in enumerate(resource.item or []) if (codes := _codes(item.revenue))
    }
    return pf._extend(
        base,
        ClaimInstitutional,
        supporting=supporting,
        admission=admission,
        statement=statement,
        attending=attending,
        admitting=admitting,
        revenue=revenue,
    )


EXTRACTORS: dict[str, f.Extractor] = {**pf.EXTRACTORS, "Claim": claim}
CONTAINED_EXTRACTORS = pf.CONTAINED_EXTRACTORS
