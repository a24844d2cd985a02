"""An EncounterCreate from an Encounter entry and everything in the bundle that points at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from rcm.encounters import schemas as encounter_schemas
from rcm.fhir import facts as f
from rcm.fhir._common import (
    MAX_CHARGE_LINES,
    MAX_DIAGNOSES,
    MAX_DOCUMENTATION,
    EntryFailed,
    Pending,
    fail_with,
)
from rcm.fhir._institutional import institutional_block, revenue_code
from rcm.fhir._parties import Parties
from rcm.fhir.institutional_facts import ClaimInstitutional
from rcm.fhir.outcome import Issue, IssueType
from rcm.fhir.reader import Entry
from rcm.kit.errors import FieldError, RCMError
from rcm.kit.strict import EARLIEST_DATE
from rcm.providers.schemas import ProviderCreate
from rcm.tenancy.vocabulary import ClaimType

if TYPE_CHECKING:
    from rcm.fhir._intake import Intake


class EncounterBuild:
    """An EncounterCreate from an Encounter and what points at it, remembering where each part came from
    so the service's pointers (``/charges/2/service_date``) are answered as FHIR expressions."""

    def __init__(self, intake: Intake, entry: Entry, facts: f.EncounterFacts, pending: Pending) -> None:
        self.intake = intake
        self.entry = entry
        self.facts = facts
        self.pending = pending
        self.diagnoses: list[str] = []  # ICD-10-CM codes in our order
        self.further: list[str] = []  # documentation lines for codes past the twelfth
        self.diagnosis_sources: list[str] = []
        self.charge_sources: list[str] = []
        self.parties: Parties | None = None
        # The practice decides the claim type, never the Claim's own type (Synthea's are all institutional).
        self.institutional = intake.scope.manifest.claim_type is ClaimType.INSTITUTIONAL

    async def create(self, patient_id: uuid.UUID) -> encounter_schemas.EncounterCreate:
        facts = self.facts
        claim_positions = self._diagnoses()
        charges = self._charges(claim_positions)
        if len(charges) > MAX_CHARGE_LINES:
            raise fail_with(
                IssueType.TOO_LONG, f"has more than {MAX_CHARGE_LINES} billable lines", self.entry.expression
            )
        rendering, billing = await self._providers()
        parties = self.parties = Parties(self.intake, facts, self.pending.claims)
        billing_npis = {self.intake.scope.manifest.billing_provider.npi, *([billing.npi] if billing else [])}
        institutional = (
            institutional_block(
                [
                    (c.facts, c.expression)
                    for c in self.pending.claims
                    if isinstance(c.facts, ClaimInstitutional)
                ],
                parties,
                self.entry.expression,
            )
            if self.institutional
            else None
        )
        return encounter_schemas.EncounterCreate(
            external_id=facts.external_id or "",
            service_date=facts.service_date or date.min,
            place_of_service=self._place_of_service(),
            patient_id=patient_id,
            coverage_id=await self._coverage(patient_id),
            rendering_provider=rendering,
            billing_provider=billing,
            documentation=self._documentation(),
            diagnoses=[encounter_schemas.DiagnosisIn(code=code) for code in self.diagnoses],
            charges=charges,
            referring_provider=parties.referring(),
            service_facility=parties.facility(billing_npis),
            prior_authorization=parties.prior_authorization(),
            institutional=institutional,
        )

    # Diagnoses -----------------------------------------------------------------------------------------

    def _add_diagnosis(self, coding: f.Coding) -> int | None:
        """Our 1-based position of an ICD-10-CM code (a repeat keeps its first place); past twelve the
        code is noted in the documentation instead (the 837P carries twelve)."""
        code = coding.code.strip().upper()
        normalised = code.replace(".", "")
        for position, known in enumerate(self.diagnoses, start=1):
            if known.replace(".", "") == normalised:
                return position
        if len(self.diagnoses) >= MAX_DIAGNOSES:
            self.further.append(f"Further diagnosis: ICD-10-CM {code}")
            return None
        self.diagnoses.append(code)
        self.diagnosis_sources.append(coding.expression)
        return len(self.diagnoses)

    def _condition_codings(self, ref: f.Ref | None) -> list[f.Coding]:
        if ref is None:
            return []
        try:
            found = self.intake.resolve(ref, ("Condition",))
        except EntryFailed:
            return []
        facts = found.facts if isinstance(found, Entry) else found
        return facts.codings if isinstance(facts, f.ConditionFacts) else []

    def _diagnoses(self) -> dict[tuple[int, int], int]:
        """The claim's order first (its lines point into it), then the encounter's ranking, its reasons and
        the conditions recorded at the visit. Returns (claim entry, claim sequence) -> our position."""
        positions: dict[tuple[int, int], int] = {}
        for claim in self.pending.claims:
            assert isinstance(claim.facts, f.ClaimFacts)
            for sequence, codings, ref in sorted(claim.facts.diagnoses, key=lambda d: d[0]):
                icd = [c for c in [*codings, *self._condition_codings(ref)] if c.kind is f.CodeKind.ICD10CM]
                position = self._add_diagnosis(icd[0]) if icd else None
                if position is not None:
                    positions.setdefault((claim.index, sequence), position)
        ranked = [
            c
            for _, ref in sorted(self.facts.diagnoses, key=lambda d: d[0])
            for c in self._condition_codings(ref)
        ]
        recorded = [
            c
            for child in self.pending.conditions
            if isinstance(child.facts, f.ConditionFacts)
            for c in child.facts.codings
        ]
        for coding in [*ranked, *self.facts.codings, *recorded]:
            if coding.kind is f.CodeKind.ICD10CM:
                self._add_diagnosis(coding)
        return positions

    # Documentation and providers -----------------------------------------------------------------------

    def _documentation(self) -> str | None:
        """For the coder: every code the record carries (clinical codes above all: SNOMED CT and LOINC are
        what EHRs send, and a coder codes from them), then the notes."""
        pending = self.pending
        found: list[f.Coding] = list(self.facts.codings)
        for child in [*pending.conditions, *pending.procedures, *pending.charge_items]:
            found += getattr(child.facts, "codings", [])
        for claim in pending.claims:
            assert isinstance(claim.facts, f.ClaimFacts)
            found += [c for item in claim.facts.items for c in item.codings]
        lines = [*dict.fromkeys(c.describe() for c in found), *self.further]
        notes = [
            c.facts.text for c in pending.documents if isinstance(c.facts, f.DocumentFacts) and c.facts.text
        ]
        text = ""
        if lines:
            text = "Codes from the practice's FHIR record:\n" + "\n".join(f"- {line}" for line in lines)
        if notes:
            text += ("\n\n" if text else "") + "Notes:\n" + "\n\n".join(notes)
        return text.replace("\x00", "")[:MAX_DOCUMENTATION] or None

    async def _providers(self) -> tuple[ProviderCreate, ProviderCreate | None]:
        """Rendering: the first performer (primary performer, attender...). Billing: the claim's provider,
        else the encounter's service provider, else (None) the practice's billing provider."""
        rendering = None
        for ref in self.facts.participants:
            rendering = await self.intake.provider_of(ref, required=True)
            if rendering is not None:
                break
        billing = None
        refs = [c.facts.provider for c in self.pending.claims if isinstance(c.facts, f.ClaimFacts)]
        for named in [*refs, self.facts.service_provider]:
            if named is not None and billing is None:
                billing = await self.intake.provider_of(named, required=False)
        if rendering is None:
            # No performer named: the practice's billing provider renders (837P: no 2310B loop then).
            manifest_billing = self.intake.scope.manifest.billing_provider
            rendering_inline = ProviderCreate(
                npi=manifest_billing.npi,
                name=manifest_billing.name,
                kind="organization",
                taxonomy=manifest_billing.taxonomy,
            )
        else:
            rendering_inline = await self.intake.provider_inline(rendering)
        return rendering_inline, await self.intake.provider_inline(billing) if billing is not None else None

    def _place_of_service(self) -> str:
        for claim in self.pending.claims:
            assert isinstance(claim.facts, f.ClaimFacts)
            for item in claim.facts.items:
                if item.pos:
                    return item.pos
        for ref in self.facts.locations:
            try:
                found = self.intake.resolve(ref, ("Location",))
            except EntryFailed:
                continue
            facts = found.facts if isinstance(found, Entry) else found
            if isinstance(facts, f.LocationFacts) and facts.pos:
                return facts.pos
        return self.facts.place_of_service

    async def _coverage(self, patient_id: uuid.UUID) -> uuid.UUID | None:
        for claim in self.pending.claims:
            assert isinstance(claim.facts, f.ClaimFacts)
            ref = claim.facts.coverage
            if ref is None:
                continue
            try:
                found = self.intake.resolve(ref, ("Coverage",))
            except EntryFailed:
                continue  # a display-only coverage ("Medicaid"), as Synthea's claims carry
            if isinstance(found, Entry):
                target = self.intake.targets.get(found.index)
                if target is not None and target.patient_id == patient_id:
                    return target.id
            elif isinstance(found, f.CoverageFacts):
                try:
                    row_id, _ = await self.intake.add_coverage(found, patient_id, ref.expression)
                except EntryFailed:
                    continue
                return row_id
            elif isinstance(found, tuple):
                linked = await self.intake.linked(
                    "Coverage", [f"{found[1]}|{found[2]}" if found[1] != "id" else f"id|{found[2]}"]
                )
                if linked is not None:
                    return linked
        # The patient's coverage sent in this bundle, primary first, in force on the date of service.
        day = self.facts.service_date
        candidates = []
        for entry in self.intake.entries:
            target = self.intake.targets.get(entry.index)
            if entry.resource_type != "Coverage" or target is None or target.patient_id != patient_id:
                continue
            facts = entry.facts
            assert isinstance(facts, f.CoverageFacts)
            if day is not None and (
                (facts.start_date and facts.start_date > day) or (facts.end_date and facts.end_date < day)
            ):
                continue
            candidates.append(({"primary": 0, "secondary": 1}.get(facts.priority, 2), entry.index, target.id))
        return min(candidates)[2] if candidates else None

    def _charges(self, claim_positions: dict[tuple[int, int], int]) -> list[encounter_schemas.ChargeLineIn]:
        """Billable lines: the claim's when it has CPT/HCPCS lines, else the charge items', else the
        procedures' (no price: 0 cents), else CPT codes on the encounter type (as some EHRs send the E/M)."""
        for group in (
            self._claim_lines(claim_positions),
            [
                _Line(
                    c,
                    child.facts.cents,
                    child.facts.units,
                    [],
                    [],
                    child.facts.occurred,
                    f"{child.expression}.priceOverride",
                )
                for child in self.pending.charge_items
                if isinstance(child.facts, f.ChargeItemFacts) and (c := _procedure(child.facts.codings))
            ],
            [
                _Line(c, None, 1, [], [], child.facts.performed, child.expression)
                for child in self.pending.procedures
                if isinstance(child.facts, f.ProcedureFacts) and (c := _procedure(child.facts.codings))
            ],
            [
                _Line(c, None, 1, [], [], None, c.expression)
                for c in self.facts.codings
                if c.kind is f.CodeKind.PROCEDURE
            ],
        ):
            if group:
                self.charge_sources = [line.coding.expression for line in group]
                return [line.charge() for line in group]
        return []

    def _claim_lines(self, claim_positions: dict[tuple[int, int], int]) -> list[_Line]:
        lines = []
        for claim in self.pending.claims:
            assert isinstance(claim.facts, f.ClaimFacts)
            for index, item in enumerate(claim.facts.items):
                coding = _procedure(item.codings)
                if coding is None or (
                    item.encounters and all(self._points_elsewhere(r) for r in item.encounters)
                ):
                    continue
                pointers = [
                    p for s in item.diagnosis_sequences if (p := claim_positions.get((claim.index, s)))
                ]
                lines.append(
                    _Line(
                        coding,
                        item.cents,
                        item.units,
                        item.modifiers,
                        pointers,
                        item.service_date,
                        f"{item.expression}.net",
                        revenue_code(claim.facts, index, item.expression) if self.institutional else None,
                    )
                )
        return lines

    def _points_elsewhere(self, ref: f.Ref) -> bool:
        try:
            found = self.intake.resolve(ref, ("Encounter",))
        except EntryFailed:
            return True
        return not (isinstance(found, Entry) and found.index == self.entry.index)

    def issues_for(self, exc: RCMError) -> list[Issue]:
        """The encounter service's refusal, each pointer named where it came from in the bundle."""
        code = IssueType.CONFLICT if exc.status_code == 409 else IssueType.INVALID
        where = self.entry.expression
        out = []
        for error in exc.errors or [FieldError("", exc.detail)]:
            parts = error.pointer.strip("/").split("/")
            expression = where
            if parts[0] == "service_date":
                expression = f"{where}.period.start"
            elif (
                parts[0] == "charges"
                and len(parts) > 1
                and parts[1].isdigit()
                and int(parts[1]) < len(self.charge_sources)
            ):
                expression = self.charge_sources[int(parts[1])]
            elif (
                parts[0] == "diagnoses"
                and len(parts) > 1
                and parts[1].isdigit()
                and int(parts[1]) < len(self.diagnosis_sources)
            ):
                expression = self.diagnosis_sources[int(parts[1])]
            elif parts[0] == "patient_id":
                expression = f"{where}.subject"
            elif parts[0] == "coverage_id":
                expression = where
            elif parts[0] in ("rendering_provider_id", "rendering_provider"):
                expression = f"{where}.participant"
            elif parts[0] == "external_id":
                expression = f"{where}.identifier"
            elif self.parties is not None and parts[0] in self.parties.sources:
                expression = self.parties.sources[parts[0]]
            out.append(Issue(code, error.detail, expression, status=exc.status_code))
        return out


def _procedure(codings: list[f.Coding]) -> f.Coding | None:
    return next((c for c in codings if c.kind is f.CodeKind.PROCEDURE), None)


@dataclass(frozen=True, slots=True)
class _Line:
    """A billable line as the bundle gives it, before it is checked and becomes a ChargeLineIn."""

    coding: f.Coding
    cents: int | None
    units: int
    modifiers: list[str]
    pointers: list[int]
    day: date | None
    where: str  # the element holding the amount, named when it is wrong
    revenue: str | None = None  # Claim.item.revenue, institutional practices only

    def charge(self) -> encounter_schemas.ChargeLineIn:
        if self.cents is not None and self.cents < 0:
            raise fail_with(IssueType.VALUE, "must not be negative", self.where)
        if self.units > 9999:
            raise fail_with(IssueType.VALUE, "must be at most 9999 units", self.where)
        return encounter_schemas.ChargeLineIn(
            procedure_code=self.coding.code.strip().upper(),
            charge_cents=self.cents or 0,
            units=self.units,
            modifiers=list(dict.fromkeys(self.modifiers))[:4],
            diagnosis_pointers=list(dict.fromkeys(self.pointers))[:4],
            service_date=self.day if self.day is not None and self.day >= EARLIEST_DATE else None,
            revenue_code=self.revenue,
        )
