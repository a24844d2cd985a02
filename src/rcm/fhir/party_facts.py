"""What FHIR says about a claim's other parties: the coverage's subscriber (a RelatedPerson or Patient named
by Coverage.subscriber, with Coverage.relationship), the referring provider (an Encounter participant of
type REF), the service facility (Claim.facility or Encounter.location: a Location with its address and its
own or its managing Organization's NPI), the referral (Claim.referral: a ServiceRequest, whose requester
refers) and the prior authorization (Claim.insurance.preAuthRef).

Each extractor here extends ``rcm.fhir.facts``' record of the same resource with what these parties need (a
subclass: everything reading the base record reads it unchanged). The registry the reader uses is
``EXTRACTORS`` below: ``facts.EXTRACTORS`` with these in place of the base ones, and RelatedPerson and
ServiceRequest added.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from rcm.fhir import facts as f

PARTICIPATION_TYPES = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
REFERRER = "REF"
# Coverage.relationship (subscriber-relationship, or the X12 SBR02/PAT01 codes some systems send) -> ours.
RELATIONSHIPS = {
    "self": "self",
    "18": "self",
    "spouse": "spouse",
    "01": "spouse",
    "child": "child",
    "19": "child",
}

B = TypeVar("B")


def _extend(base: Any, kind: type[B], **extra: Any) -> B:
    """``kind`` (a subclass of ``base``'s record) holding ``base``'s values and ``extra``."""
    values = {item.name: getattr(base, item.name) for item in fields(base)}
    return kind(**values, **extra)


@dataclass(slots=True)
class PersonFacts(f.PatientFacts):
    """A RelatedPerson (a dependent's subscriber): a patient's demographics, the middle name apart."""

    middle_name: str | None = None


@dataclass(slots=True)
class PractitionerFacts(f.ProviderFacts):
    """A Practitioner, its name in parts as the 837 names a person (NM103 last, NM104 first)."""

    family: str | None = None
    given: str | None = None


@dataclass(slots=True)
class SiteFacts(f.LocationFacts):
    name: str | None = None
    npi: str | None = None
    address: dict[str, str] | None = None
    organization: f.Ref | None = None  # Location.managingOrganization: its NPI when the Location has none


@dataclass(slots=True)
class CoverageParties(f.CoverageFacts):
    subscriber: f.Ref | None = None


@dataclass(slots=True)
class EncounterParties(f.EncounterFacts):
    referrers: list[f.Ref] = field(default_factory=list)


@dataclass(slots=True)
class ReferralFacts(f.RoleFacts):
    """A ServiceRequest (Claim.referral): its requester is the referring provider (``practitioner``)."""


@dataclass(slots=True)
class ClaimParties(f.ClaimFacts):
    referral: f.Ref | None = None
    facility: f.Ref | None = None
    pre_auth: str | None = None  # the focal insurance's first preAuthRef
    pre_auth_expression: str = ""


def us_address(items: Any) -> dict[str, str] | None:
    """The first address with a line, city, state and postal code (a state's name becomes its code), as
    the patient's is read."""
    for item in items or []:
        state = f._text(item.state)
        state = f.US_STATES.get(state.lower(), state) if state else None
        lines = [line for line in (item.line or []) if f._text(line)]
        city, postal = f._text(item.city), f._text(item.postalCode)
        if lines and city and state and postal:
            address = {"line1": f._text(lines[0]) or "", "city": city, "state": state, "postal_code": postal}
            if len(lines) > 1:
                address["line2"] = f._text(lines[1]) or ""
            return address
    return None


def related_person(resource: Any, expression: str, contained: dict[str, f.Facts]) -> PersonFacts:
    name = f._human_name(resource.name)
    given = [g for g in (name.given or []) if f._text(g)] if name is not None else []
    base = f.patient(resource, expression, contained)
    base.given_name = f._text(given[0]) if given else None
    return _extend(base, PersonFacts, middle_name=f._text(" ".join(given[1:])) if len(given) > 1 else None)


def practitioner(resource: Any, expression: str, contained: dict[str, f.Facts]) -> PractitionerFacts:
    name = f._human_name(resource.name)
    family = f._text(name.family) if name is not None else None
    given = f._text(" ".join(name.given or [])) if name is not None and name.given else None
    return _extend(
        f.practitioner(resource, expression, contained), PractitionerFacts, family=family, given=given
    )


def location(resource: Any, expression: str, contained: dict[str, f.Facts]) -> SiteFacts:
    return _extend(
        f.location(resource, expression, contained),
        SiteFacts,
        name=f._text(resource.name),
        npi=f._npi(resource),
        address=us_address([resource.address] if resource.address is not None else []),
        organization=f.reference(
            resource.managingOrganization, f"{expression}.managingOrganization", contained
        ),
    )


def coverage(resource: Any, expression: str, contained: dict[str, f.Facts]) -> CoverageParties:
    base = f.coverage(resource, expression, contained)
    for coding in getattr(resource.relationship, "coding", None) or []:
        base.relationship = RELATIONSHIPS.get(coding.code or "", "other")
        break
    return _extend(
        base,
        CoverageParties,
        subscriber=f.reference(resource.subscriber, f"{expression}.subscriber", contained),
    )


def encounter(resource: Any, expression: str, contained: dict[str, f.Facts]) -> EncounterParties:
    """A participant of type REF is the referring provider, never a performer (the rendering provider is
    chosen among the others)."""
    base = f.encounter(resource, expression, contained)
    referrers: list[f.Ref] = []
    for index, participant in enumerate(resource.participant or []):
        codes = {
            c.code
            for t in participant.type or []
            for c in t.coding or []
            if c.system in (None, PARTICIPATION_TYPES)
        }
        if REFERRER not in codes:
            continue
        where = f"{expression}.participant[{index}].individual"
        base.participants = [ref for ref in base.participants if ref.expression != where]
        ref = f.reference(participant.individual, where, contained)
        if ref is not None:
            referrers.append(ref)
    return _extend(base, EncounterParties, referrers=referrers)


def claim(resource: Any, expression: str, contained: dict[str, f.Facts]) -> ClaimParties:
    base = f.claim(resource, expression, contained)
    insurances = resource.insurance or []
    focal = next((i for i in insurances if i.focal), None) or next(iter(insurances), None)
    pre_auth, where = None, ""
    if focal is not None and focal.preAuthRef:
        index = insurances.index(focal)
        pre_auth = str(focal.preAuthRef[0])
        where = f"{expression}.insurance[{index}].preAuthRef[0]"
    return _extend(
        base,
        ClaimParties,
        referral=f.reference(resource.referral, f"{expression}.referral", contained),
        facility=f.reference(resource.facility, f"{expression}.facility", contained),
        pre_auth=pre_auth,
        pre_auth_expression=where,
    )


def service_request(resource: Any, expression: str, contained: dict[str, f.Facts]) -> ReferralFacts:
    return ReferralFacts(
        practitioner=f.reference(resource.requester, f"{expression}.requester", contained), npi=None, name=""
    )


EXTRACTORS: dict[str, f.Extractor] = {
    **f.EXTRACTORS,
    "Practitioner": practitioner,
    "Location": location,
    "Coverage": coverage,
    "Encounter": encounter,
    "Claim": claim,
    "RelatedPerson": related_person,
    "ServiceRequest": service_request,
}
CONTAINED_EXTRACTORS: dict[str, f.Extractor] = {
    name: EXTRACTORS[name] for name in (*f.CONTAINED_EXTRACTORS, "RelatedPerson", "ServiceRequest")
}
