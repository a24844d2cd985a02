"""A claim's other parties from a bundle, as the JSON intake takes them: the coverage's subscriber
(Coverage.subscriber -> RelatedPerson or Patient), and the encounter's referring provider (Encounter
participant of type REF -> Practitioner with an NPI), service facility (Claim.facility, else an
Encounter.location with an address: a Location, its NPI or its managing Organization's) and prior
authorization (Claim.insurance.preAuthRef). A refusal names the FHIRPath element it comes from."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import msgspec

from rcm.encounters import schemas as encounter_schemas
from rcm.fhir import facts as f
from rcm.fhir import party_facts as pf
from rcm.fhir._common import EntryFailed, fail_with
from rcm.fhir.outcome import Issue, IssueType
from rcm.fhir.reader import Entry
from rcm.kit.strict import EARLIEST_DATE
from rcm.patients import schemas as patient_schemas

if TYPE_CHECKING:
    from rcm.fhir._intake import Intake

PRIOR_AUTHORIZATION = re.compile(r"^[A-Za-z0-9./-]([A-Za-z0-9 ./-]{0,48}[A-Za-z0-9./-])?$")
NPI = re.compile(r"^[0-9]{10}$")


def _where(found: Any, ref: f.Ref) -> str:
    return found.expression if isinstance(found, Entry) else ref.expression


def _facts_of(found: Any, ref: f.Ref) -> Any:
    """The facts a resolved reference names; an entry that failed is a 424 naming the reference."""
    if isinstance(found, Entry):
        if found.facts is None:
            raise fail_with(
                IssueType.PROCESSING,
                f"refers to Bundle.entry[{found.index}], which failed",
                ref.expression,
                424,
            )
        return found.facts
    return found


def subscriber_of(intake: Intake, facts: f.CoverageFacts) -> patient_schemas.SubscriberCreate | None:
    """The subscriber's demographics of a dependent's coverage; None when it names none (the coverage
    check then says one is required) or when the patient is the subscriber."""
    ref = facts.subscriber if isinstance(facts, pf.CoverageParties) else None
    if ref is None:
        return None
    found = intake.resolve(ref, ("RelatedPerson", "Patient"))
    if facts.relationship == "self":
        if isinstance(found, Entry) and found.resource_type == "RelatedPerson":
            raise fail_with(
                IssueType.VALUE,
                "names a RelatedPerson, but Coverage.relationship is self (the patient is the subscriber)",
                ref.expression,
            )
        return None
    if isinstance(found, tuple):
        raise fail_with(
            IssueType.NOT_FOUND,
            "must refer to a RelatedPerson or Patient of this bundle (the subscriber's name and birth date)",
            ref.expression,
        )
    person = _facts_of(found, ref)
    where = _where(found, ref)
    if not isinstance(person, f.PatientFacts):
        raise fail_with(IssueType.INVALID, "must refer to a RelatedPerson or Patient", ref.expression)
    issues = []
    if person.family_name is None or person.given_name is None:
        issues.append(
            Issue(IssueType.REQUIRED, "the subscriber needs a family and a given name", f"{where}.name")
        )
    if person.birth_date is None:
        issues.append(
            Issue(IssueType.REQUIRED, "the subscriber's birth date is required", f"{where}.birthDate")
        )
    elif person.birth_date < EARLIEST_DATE:
        issues.append(
            Issue(IssueType.VALUE, f"must not be before {EARLIEST_DATE.isoformat()}", f"{where}.birthDate")
        )
    if issues:
        raise EntryFailed(*issues)
    middle = person.middle_name if isinstance(person, pf.PersonFacts) else None
    try:
        data = msgspec.convert(
            {
                "family_name": (person.family_name or "")[:100],
                "given_name": (person.given_name or "")[:100],
                "middle_name": middle[:100] if middle else None,
                "birth_date": person.birth_date,
                "sex": person.sex,
            },
            patient_schemas.SubscriberCreate,
        )
    except msgspec.ValidationError:
        raise fail_with(IssueType.VALUE, "cannot be kept as sent", f"{where}.name") from None
    # Optional in 2010BA: one this server cannot keep (a foreign address) is left out.
    if person.address is not None:
        with contextlib.suppress(msgspec.ValidationError):
            data.address = msgspec.convert(person.address, patient_schemas.Address)
    return data


class Parties:
    """The referring provider, service facility and prior authorization of one encounter, remembering the
    element each came from so the service's pointers are answered as FHIR expressions."""

    def __init__(self, intake: Intake, facts: f.EncounterFacts, claims: list[Entry]) -> None:
        self.intake = intake
        self.facts = facts
        self.claims = [c.facts for c in claims if isinstance(c.facts, pf.ClaimParties)]
        self.sources: dict[str, str] = {}  # "referring_provider" -> the element it came from

    def referring(self) -> encounter_schemas.ReferringProvider | None:
        """An Encounter participant of type REF, else the requester of the Claim's referral
        (a ServiceRequest)."""
        candidates: list[tuple[f.Ref, tuple[str, ...]]] = [
            (ref, ("Practitioner", "PractitionerRole"))
            for ref in (self.facts.referrers if isinstance(self.facts, pf.EncounterParties) else [])
        ]
        candidates += [(c.referral, ("ServiceRequest",)) for c in self.claims if c.referral is not None]
        if not candidates:
            return None
        ref, types = candidates[0]
        made = self.person(ref, types)
        self.sources["referring_provider"] = ref.expression
        return made

    def person(
        self, ref: f.Ref, types: tuple[str, ...], role: str = "referring"
    ) -> encounter_schemas.ReferringProvider:
        """A person the 837 names by NPI and name (the ``role`` provider: referring, attending), from a
        Practitioner, a PractitionerRole or ServiceRequest naming one, or a conditional reference by NPI
        with a display."""
        named, npi = ref, None
        person = _facts_of(self.intake.resolve(ref, types), ref)
        # A ServiceRequest names its requester, a PractitionerRole its practitioner (and maybe an NPI).
        for _ in range(2):
            if not isinstance(person, f.RoleFacts):
                break
            npi = npi or person.npi
            if person.practitioner is None:
                nobody = f"names no practitioner (the {role} provider)"
                raise fail_with(IssueType.REQUIRED, nobody, named.expression)
            named = person.practitioner
            person = _facts_of(self.intake.resolve(named, ("Practitioner", "PractitionerRole")), named)
        if isinstance(person, tuple):
            _, system, value = person
            if system != f.NPI_SYSTEM or not named.display:
                raise fail_with(
                    IssueType.NOT_FOUND,
                    f"the {role} provider must be a Practitioner of this bundle, or name its NPI "
                    f"({f.NPI_SYSTEM}) and a display",
                    named.expression,
                )
            npi, family, given = value, named.display, None
        elif isinstance(person, f.ProviderFacts):
            npi = npi or person.npi
            family = (person.family if isinstance(person, pf.PractitionerFacts) else None) or person.name
            given = person.given if isinstance(person, pf.PractitionerFacts) else None
        else:
            raise fail_with(IssueType.INVALID, "must refer to a Practitioner", named.expression)
        if npi is None or not NPI.match(npi):
            no_npi = f"the {role} provider needs an NPI ({f.NPI_SYSTEM})"
            raise fail_with(IssueType.REQUIRED, no_npi, named.expression)
        return encounter_schemas.ReferringProvider(
            npi=npi, family_name=family[:60], given_name=given[:35] if given else None
        )

    def facility(self, billing_npis: set[str]) -> encounter_schemas.ServiceFacility | None:
        """Claim.facility (refused naming it when it cannot be used), else the first Encounter.location
        with a name and an address (passed over when it cannot). None when the facility is the billing
        provider (837P: no 2310C then)."""
        candidates = [(c.facility, True) for c in self.claims if c.facility is not None]
        candidates += [(ref, False) for ref in self.facts.locations]
        for ref, strict in candidates:
            try:
                made = self._facility(ref, billing_npis)
            except EntryFailed:
                if strict:
                    raise
                continue
            if made is not None:
                return made
        return None

    def _facility(self, ref: f.Ref, billing_npis: set[str]) -> encounter_schemas.ServiceFacility | None:
        found = self.intake.resolve(ref, ("Location",))
        site = _facts_of(found, ref)
        where = _where(found, ref)
        if not isinstance(site, pf.SiteFacts):
            raise fail_with(IssueType.NOT_FOUND, "must refer to a Location of this bundle", ref.expression)
        if site.name is None:
            raise fail_with(IssueType.REQUIRED, "the service facility needs a name", f"{where}.name")
        if site.address is None:
            raise fail_with(IssueType.REQUIRED, "the service facility needs a US address", f"{where}.address")
        try:
            address = msgspec.convert(site.address, patient_schemas.Address)
        except msgspec.ValidationError:
            raise fail_with(
                IssueType.VALUE, "is not a US address this server can keep", f"{where}.address"
            ) from None
        npi = site.npi or self._organization_npi(site.organization)
        if npi is not None and npi in billing_npis:
            return None
        if npi is not None and not NPI.match(npi):
            raise fail_with(IssueType.VALUE, "an NPI has 10 digits", f"{where}.identifier")
        self.sources["service_facility"] = ref.expression
        return encounter_schemas.ServiceFacility(name=site.name[:60], address=address, npi=npi)

    def _organization_npi(self, ref: f.Ref | None) -> str | None:
        if ref is None:
            return None
        try:
            found = self.intake.resolve(ref, ("Organization",))
        except EntryFailed:
            return None
        if isinstance(found, tuple):
            return found[2] if found[1] == f.NPI_SYSTEM else None
        facts = found.facts if isinstance(found, Entry) else found
        return facts.npi if isinstance(facts, f.ProviderFacts) else None

    def prior_authorization(self) -> str | None:
        for claim in self.claims:
            if claim.pre_auth is None:
                continue
            value = claim.pre_auth.strip()
            if not PRIOR_AUTHORIZATION.match(value):
                raise fail_with(
                    IssueType.VALUE,
                    "a prior authorization number has 1 to 50 letters, digits, spaces, '.', '/' or '-'",
                    claim.pre_auth_expression,
                )
            self.sources["prior_authorization"] = claim.pre_auth_expression
            return value
        return None
