"""One bundle's intake: references resolved, providers, patients and coverages written, encounters
handed to ``_encounter``; each entry under a savepoint."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from typing import Any

import msgspec

from rcm.audit.events import Action
from rcm.audit.trail import discard_pending_since, pending_mark
from rcm.encounters.repository import EncounterRepository
from rcm.encounters.service import create_encounter
from rcm.fhir import facts as f
from rcm.fhir._common import (
    LINKED,
    BundleResult,
    EntryFailed,
    EntryResult,
    Pending,
    Target,
    fail_with,
)
from rcm.fhir._encounter import EncounterBuild
from rcm.fhir._parties import subscriber_of
from rcm.fhir._records import coverage_expression, patient_create, patient_expression, provider_create
from rcm.fhir._references import References
from rcm.fhir.models import TargetType
from rcm.fhir.outcome import Issue, IssueType, informational, overall_status
from rcm.fhir.reader import Entry, ParsedBundle
from rcm.fhir.repository import FhirLinkRepository
from rcm.kit.errors import RCMError
from rcm.kit.strict import EARLIEST_DATE
from rcm.patients import schemas as patient_schemas
from rcm.patients import service as patients
from rcm.patients.repository import PatientRepository
from rcm.providers.repository import ProviderRepository
from rcm.providers.schemas import ProviderCreate
from rcm.providers.service import PROVIDER, find_or_add_provider
from rcm.tenancy.scope import TenantScope


class Intake:
    def __init__(self, scope: TenantScope, parsed: ParsedBundle, skew: timedelta) -> None:
        self.scope = scope
        self.parsed = parsed
        self.skew = skew
        self.latest = patients.latest_plausible_date(skew)
        self.entries = parsed.entries
        self.results: dict[int, EntryResult] = {}
        self.targets: dict[int, Target] = {}
        self.errors: list[Issue] = []  # root causes, for a transaction's refusal
        self.references = References(parsed.entries)
        self.links = scope.repo(FhirLinkRepository)
        # Providers by id, as the encounter service takes them inline (it flags an NPI failing its check
        # digit on the encounter, exactly as for the JSON intake).
        self.providers: dict[uuid.UUID, ProviderCreate] = {}
        self.base = f"/api/v1/tenants/{scope.manifest.slug}"

    # Driving -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        for entry in self.entries:
            if entry.issues:
                self._fail(entry, entry.issues)
        by_type: dict[str, list[Entry]] = {}
        for entry in self.entries:
            if entry.facts is not None:
                by_type.setdefault(entry.resource_type, []).append(entry)
        for name in ("Organization", "Practitioner"):
            for entry in by_type.get(name, []):
                await self._unit(entry, self._provider)
        self._read_only(by_type)
        for entry in by_type.get("Patient", []):
            await self._unit(entry, self._patient)
        for entry in by_type.get("Coverage", []):
            await self._unit(entry, self._coverage)
        pending = self._group(by_type)
        for entry in by_type.get("Encounter", []):
            await self._unit(
                entry, functools.partial(self._encounter, pending=pending.get(entry.index, Pending()))
            )
            self._mirror(entry, pending.get(entry.index, Pending()))
        for entry in self.entries:
            if entry.index not in self.results:
                # A type we do not use (Observation, ExplanationOfBenefit...): listed, not refused.
                self.results[entry.index] = EntryResult(
                    entry.index,
                    entry.resource_type,
                    200,
                    issues=[
                        informational(
                            f"{entry.resource_type} is not used by this server; skipped", entry.expression
                        )
                    ],
                )

    def _read_only(self, by_type: dict[str, list[Entry]]) -> None:
        """Entries read for what others say about them, never records of their own."""
        for name, text in (
            ("Location", "read for the place of service; no record is kept"),
            ("PractitionerRole", "read for the practitioner it names; no record is kept"),
            ("RelatedPerson", "read for the coverage's subscriber; kept with the coverage"),
            ("ServiceRequest", "read for the referring provider; kept with the encounter"),
        ):
            for entry in by_type.get(name, []):
                self.results[entry.index] = EntryResult(
                    entry.index, entry.resource_type, 200, issues=[informational(text, entry.expression)]
                )

    async def _unit(self, entry: Entry, work: Any) -> None:
        """One entry's writes under a savepoint: a failure undoes them (and their audit events) alone."""
        mark = pending_mark(self.scope.session)
        try:
            async with self.scope.session.begin_nested():
                target = await work(entry)
        except EntryFailed as exc:
            discard_pending_since(self.scope.session, mark)
            self._fail(entry, exc.issues)
            return
        except RCMError as exc:
            discard_pending_since(self.scope.session, mark)
            self._fail(entry, self._service_issues(entry, exc))
            return
        self.targets[entry.index] = target
        status = 201 if target.created else 200
        issues = [] if target.kind is not None else [informational("nothing to keep", entry.expression)]
        if isinstance(entry.facts, f.ProviderFacts) and target.kind is None:
            issues = [
                informational(
                    f"has no NPI (identifier system {f.NPI_SYSTEM}); no provider record is kept",
                    entry.expression,
                )
            ]
        self.results[entry.index] = EntryResult(
            entry.index, entry.resource_type, status, self._location(target), issues
        )

    def _fail(self, entry: Entry, issues: list[Issue]) -> None:
        self.errors += issues
        self.results[entry.index] = EntryResult(
            entry.index, entry.resource_type, overall_status(issues), issues=list(issues)
        )

    def _mirror(self, encounter: Entry, pending: Pending) -> None:
        """Entries folded into an encounter answer as it did."""
        outcome = self.results[encounter.index]
        for child in pending.all():
            if child.index in self.results:
                continue
            if outcome.status >= 400:
                issue = Issue(
                    IssueType.PROCESSING,
                    f"not stored: its encounter Bundle.entry[{encounter.index}] failed",
                    child.expression,
                    status=424,
                )
                self.results[child.index] = EntryResult(child.index, child.resource_type, 424, issues=[issue])
            else:
                note = informational(
                    f"kept with the encounter of Bundle.entry[{encounter.index}]", child.expression
                )
                self.results[child.index] = EntryResult(
                    child.index, child.resource_type, outcome.status, outcome.location, [note]
                )

    def result(self) -> BundleResult:
        resource_ids: list[uuid.UUID] = []
        patient_ids: list[uuid.UUID] = []
        for target in self.targets.values():
            if target.id is not None:
                resource_ids.append(target.id)
            if target.patient_id is not None:
                patient_ids.append(target.patient_id)
        return BundleResult(
            self.parsed.bundle_type,
            self.parsed.mode,
            [self.results[e.index] for e in self.entries],
            list(dict.fromkeys(resource_ids)),
            list(dict.fromkeys(patient_ids)),
        )

    def _location(self, target: Target) -> str | None:
        if target.id is None:
            return None
        if target.kind is TargetType.PATIENT:
            return f"{self.base}/patients/{target.id}"
        if target.kind is TargetType.COVERAGE:
            return f"{self.base}/patients/{target.patient_id}/coverages"
        if target.kind is TargetType.PROVIDER:
            return f"{self.base}/providers/{target.id}"
        return f"{self.base}/encounters/{target.id}"

    # References ----------------------------------------------------------------------------------------

    def resolve(self, ref: f.Ref, types: tuple[str, ...]) -> Entry | f.Facts | tuple[str, str, str]:
        return self.references.resolve(ref, types)

    def _entry_target(self, entry: Entry, ref: f.Ref) -> Target:
        target = self.targets.get(entry.index)
        if target is None and not entry.issues and entry.index not in self.results:
            raise fail_with(
                IssueType.INVALID,
                f"refers to Bundle.entry[{entry.index}], a {entry.resource_type}: a type this server does "
                "not read",
                ref.expression,
            )
        if target is None:
            raise fail_with(
                IssueType.PROCESSING,
                f"refers to Bundle.entry[{entry.index}], which failed",
                ref.expression,
                424,
            )
        return target

    def _key(self, resource_type: str, key: str) -> bytes:
        return self.scope.keyring.blind_index("fhir_identifier", f"{resource_type}|{key}")

    async def linked(self, resource_type: str, keys: list[str]) -> uuid.UUID | None:
        linked = LINKED.get(resource_type)
        if linked is None or not keys:
            return None
        found = await self.links.targets(linked, [self._key(resource_type, k) for k in keys])
        return found[0][2] if found else None

    async def _link(self, resource_type: str, keys: list[str], kind: TargetType, target: uuid.UUID) -> None:
        await self.links.link(
            LINKED[resource_type], [self._key(resource_type, k) for k in keys], kind, target
        )

    async def _patient_of(self, ref: f.Ref | None, expression: str) -> uuid.UUID:
        if ref is None:
            raise fail_with(IssueType.REQUIRED, "is required", expression)
        found = self.resolve(ref, ("Patient",))
        if isinstance(found, Entry):
            target = self._entry_target(found, ref)
            assert target.id is not None
            return target.id
        if isinstance(found, f.PatientFacts):
            row_id, _ = await self._add_patient(found, ref.expression)
            return row_id
        if isinstance(found, tuple):
            kind, system, value = found
            key = f"id|{value}" if system == "id" else f"{system}|{value}"
            linked = await self.linked(kind, [key])
            if linked is None and system != "id":
                row = await self.scope.repo(PatientRepository).by_mrn_index(
                    [self.scope.keyring.blind_index("mrn", value)]
                )
                linked = row.id if row is not None else None
            if linked is not None:
                return linked
            raise fail_with(IssueType.NOT_FOUND, "matches no patient of this practice", ref.expression)
        raise fail_with(IssueType.INVALID, "must refer to Patient", ref.expression)

    async def provider_of(  # noqa: PLR0911 - one return per way a provider is named
        self, ref: f.Ref, *, required: bool
    ) -> uuid.UUID | None:
        found = self.resolve(ref, ("Practitioner", "Organization", "PractitionerRole"))
        role = found.facts if isinstance(found, Entry) else found
        if isinstance(role, f.RoleFacts):
            return await self._role_provider(role, ref, required=required)
        if isinstance(found, Entry):
            target = self._entry_target(found, ref)
            if target.id is None and required:
                raise fail_with(
                    IssueType.REQUIRED,
                    f"refers to Bundle.entry[{found.index}], which has no NPI",
                    ref.expression,
                )
            return target.id
        if isinstance(found, f.ProviderFacts):
            if found.npi is None:
                if required:
                    raise fail_with(
                        IssueType.REQUIRED, "refers to a contained resource without an NPI", ref.expression
                    )
                return None
            return (await self._add_provider(found, ref.expression))[0]
        if isinstance(found, tuple):
            kind, system, value = found
            if system == f.NPI_SYSTEM:
                facts = f.ProviderFacts(
                    "organization" if kind == "Organization" else "individual",
                    value,
                    (ref.display or f"{kind} {value}")[:120],
                    [f"{system}|{value}"],
                    [],
                )
                return (await self._add_provider(facts, ref.expression))[0]
            key = f"id|{value}" if system == "id" else f"{system}|{value}"
            linked = await self.linked(kind, [key]) if kind in LINKED else None
            if linked is not None:
                return linked
            if required:
                raise fail_with(
                    IssueType.NOT_FOUND,
                    "matches no provider of this practice and names no NPI to create one from",
                    ref.expression,
                )
            return None
        return None

    async def _role_provider(self, role: f.RoleFacts, ref: f.Ref, *, required: bool) -> uuid.UUID | None:
        """A PractitionerRole's provider: by its own NPI, else its practitioner's."""
        if role.npi is not None:
            facts = f.ProviderFacts("individual", role.npi, role.name, [f"{f.NPI_SYSTEM}|{role.npi}"], [])
            return (await self._add_provider(facts, ref.expression))[0]
        if role.practitioner is not None:
            return await self.provider_of(role.practitioner, required=required)
        if required:
            raise fail_with(
                IssueType.REQUIRED, "refers to a PractitionerRole naming no practitioner", ref.expression
            )
        return None

    # Providers, patients, coverages --------------------------------------------------------------------

    async def _provider(self, entry: Entry) -> Target:
        facts = entry.facts
        assert isinstance(facts, f.ProviderFacts)
        if facts.npi is None:
            return Target(None, None, created=False)
        row_id, created = await self._add_provider(facts, f"{entry.expression}.identifier")
        return Target(TargetType.PROVIDER, row_id, created)

    async def _add_provider(self, facts: f.ProviderFacts, expression: str) -> tuple[uuid.UUID, bool]:
        if facts.npi is None or not facts.npi.isdigit() or len(facts.npi) != 10:
            raise fail_with(IssueType.VALUE, "an NPI has 10 digits", expression)
        resource_type = "Organization" if facts.kind == "organization" else "Practitioner"
        linked = await self.linked(resource_type, facts.keys)
        if linked is not None:
            return linked, False
        data = ProviderCreate(
            npi=facts.npi,
            name=facts.name or f"{resource_type} {facts.npi}",
            kind="organization" if facts.kind == "organization" else "individual",
        )
        match = await find_or_add_provider(self.scope, data)
        self.providers[match.row.id] = provider_create(match.row)
        if match.created:
            self.scope.audit(
                "provider.create", Action.CREATE, resource_type=PROVIDER, resource_ids=[match.row.id]
            )
        await self._link(resource_type, facts.keys, TargetType.PROVIDER, match.row.id)
        return match.row.id, match.created

    async def provider_inline(self, provider_id: uuid.UUID) -> ProviderCreate:
        known = self.providers.get(provider_id)
        if known is None:
            row = await self.scope.repo(ProviderRepository).get_or_404(provider_id)
            known = self.providers[provider_id] = provider_create(row)
        return known

    async def _patient(self, entry: Entry) -> Target:
        facts = entry.facts
        assert isinstance(facts, f.PatientFacts)
        row_id, created = await self._add_patient(facts, entry.expression)
        return Target(TargetType.PATIENT, row_id, created, patient_id=row_id)

    async def _add_patient(self, facts: f.PatientFacts, expression: str) -> tuple[uuid.UUID, bool]:
        # Matched by MRN, with the JSON intake's guard (family name and birth date must agree), never by a
        # link alone: an identifier typed against the wrong person must not attach records to someone else.
        data = patient_create(facts, expression, self.latest)
        row, created = await patients.find_or_add_patient(self.scope, data, pointer=expression)
        if created:
            self.scope.audit(
                "patient.create",
                Action.CREATE,
                resource_type=patients.PATIENT,
                resource_ids=[row.id],
                patient_ids=[row.id],
            )
        await self._link("Patient", facts.keys, TargetType.PATIENT, row.id)
        return row.id, created

    async def _coverage(self, entry: Entry) -> Target:
        facts = entry.facts
        assert isinstance(facts, f.CoverageFacts)
        patient_id = await self._patient_of(facts.beneficiary, f"{entry.expression}.beneficiary")
        row_id, created = await self.add_coverage(facts, patient_id, entry.expression)
        return Target(TargetType.COVERAGE, row_id, created, patient_id=patient_id)

    async def add_coverage(
        self, facts: f.CoverageFacts, patient_id: uuid.UUID, expression: str
    ) -> tuple[uuid.UUID, bool]:
        linked = await self.linked("Coverage", facts.keys)
        if linked is not None:
            return linked, False
        payer_id = self._payer(facts, expression)
        if facts.member_id is None or not f.EXTERNAL_ID.match(facts.member_id) or ":" in facts.member_id:
            raise fail_with(
                IssueType.REQUIRED,
                "needs the member id (letters, digits and -)",
                f"{expression}.subscriberId",
            )
        for value, where in ((facts.start_date, "period.start"), (facts.end_date, "period.end")):
            if value is not None and value < EARLIEST_DATE:
                raise fail_with(
                    IssueType.VALUE,
                    f"must not be before {EARLIEST_DATE.isoformat()}",
                    f"{expression}.{where}",
                )
        try:
            data = msgspec.convert(
                {
                    "payer_id": payer_id,
                    "member_id": facts.member_id,
                    "relationship": facts.relationship,
                    "priority": facts.priority,
                    "group_number": facts.group_number,
                    "start_date": facts.start_date,
                    "end_date": facts.end_date,
                },
                patient_schemas.CoverageCreate,
            )
        except msgspec.ValidationError:
            raise fail_with(
                IssueType.VALUE, "has an element this server cannot keep (member id or group)", expression
            ) from None
        data.subscriber = subscriber_of(self, facts)
        errors = patients.check_coverage(data, self.scope.manifest)
        if errors:
            raise EntryFailed(
                *[
                    Issue(IssueType.VALUE, e.detail, coverage_expression(expression, e.pointer))
                    for e in errors
                ]
            )
        row, created = await patients.find_or_add_coverage(self.scope, patient_id, data)
        if created:
            self.scope.audit(
                "coverage.create",
                Action.CREATE,
                resource_type=patients.COVERAGE,
                resource_ids=[row.id],
                patient_ids=[patient_id],
            )
        await self._link("Coverage", facts.keys, TargetType.COVERAGE, row.id)
        return row.id, created

    def _payer(self, facts: f.CoverageFacts, expression: str) -> str:  # noqa: PLR0912 - hints, then two passes
        """The manifest payer the coverage names: by payer id (an identifier), else by name."""
        hints: list[str] = []
        for ref in facts.payors:
            if ref.identifier is not None:
                hints.append(ref.identifier[1])
            if ref.display:
                hints.append(ref.display)
            try:
                found = self.resolve(ref, ("Organization", "Patient", "RelatedPerson"))
            except EntryFailed:
                continue
            if isinstance(found, Entry) and isinstance(found.facts, f.ProviderFacts):
                hints += found.facts.payer_hints
            elif isinstance(found, f.ProviderFacts):
                hints += found.payer_hints
            elif isinstance(found, tuple):
                hints.append(found[2])
        payers = self.scope.manifest.payers
        for hint in hints:
            for payer in payers:
                if hint == payer.payer_id:
                    return payer.payer_id
        for hint in hints:
            for payer in payers:
                if hint.strip().lower() == payer.name.strip().lower():
                    return payer.payer_id
        raise fail_with(
            IssueType.VALUE,
            "names no payer of this practice's manifest (by payer id or name)",
            f"{expression}.payor",
        )

    # Encounters ----------------------------------------------------------------------------------------

    def _group(self, by_type: dict[str, list[Entry]]) -> dict[int, Pending]:
        """What points at each encounter of the bundle. A pointer elsewhere (an encounter sent before) or to
        nothing leaves the entry to be answered alone."""
        pending: dict[int, Pending] = {}

        def encounter_index(ref: f.Ref | None) -> int | None:
            if ref is None:
                return None
            try:
                found = self.resolve(ref, ("Encounter",))
            except EntryFailed:
                return None
            return found.index if isinstance(found, Entry) else None

        for name, attr, bucket in (
            ("Condition", "encounter", "conditions"),
            ("Procedure", "encounter", "procedures"),
            ("ChargeItem", "context", "charge_items"),
        ):
            for entry in by_type.get(name, []):
                index = encounter_index(getattr(entry.facts, attr))
                if index is not None:
                    getattr(pending.setdefault(index, Pending()), bucket).append(entry)
        for entry in by_type.get("Claim", []):
            assert isinstance(entry.facts, f.ClaimFacts)
            for index in dict.fromkeys(
                i
                for item in entry.facts.items
                for ref in item.encounters
                if (i := encounter_index(ref)) is not None
            ):
                pending.setdefault(index, Pending()).claims.append(entry)
        for entry in by_type.get("DocumentReference", []):
            assert isinstance(entry.facts, f.DocumentFacts)
            for index in dict.fromkeys(
                i for ref in entry.facts.encounters if (i := encounter_index(ref)) is not None
            ):
                pending.setdefault(index, Pending()).documents.append(entry)
        # Entries with no encounter of this bundle: answered now, alone.
        grouped = {child.index for p in pending.values() for child in p.all()}
        for name in ("Condition", "Procedure", "ChargeItem", "Claim", "DocumentReference"):
            for entry in by_type.get(name, []):
                if entry.index not in grouped:
                    self._standalone(entry)
        return pending

    def _standalone(self, entry: Entry) -> None:
        refs: list[f.Ref] = []
        facts = entry.facts
        if isinstance(facts, f.ConditionFacts | f.ProcedureFacts) and facts.encounter is not None:
            refs = [facts.encounter]
        elif isinstance(facts, f.ChargeItemFacts) and facts.context is not None:
            refs = [facts.context]
        elif isinstance(facts, f.ClaimFacts):
            refs = [ref for item in facts.items for ref in item.encounters]
        elif isinstance(facts, f.DocumentFacts):
            refs = facts.encounters
        for ref in refs:
            try:
                self.resolve(ref, ("Encounter",))
            except EntryFailed as exc:
                self._fail(entry, exc.issues)
                return
        text = (
            "refers to an encounter sent before; its codes are the coder's now, so nothing is added"
            if refs
            else "is not linked to an encounter; nothing is kept"
        )
        self.results[entry.index] = EntryResult(
            entry.index, entry.resource_type, 200, issues=[informational(text, entry.expression)]
        )

    async def _encounter(self, entry: Entry, *, pending: Pending) -> Target:
        facts = entry.facts
        assert isinstance(facts, f.EncounterFacts)
        where = entry.expression
        if facts.external_id is None:
            raise fail_with(
                IssueType.REQUIRED,
                "needs an identifier or id (letters, digits and . _ : -, at most 80) to recognise a resend",
                f"{where}.identifier",
            )
        patient_id = await self._patient_of(facts.subject, f"{where}.subject")
        existing = await self.linked("Encounter", facts.keys)
        if existing is None:
            row = await self.scope.repo(EncounterRepository).by_external_id(facts.external_id)
            existing = row.id if row is not None else None
        if existing is not None:
            await self._link("Encounter", facts.keys, TargetType.ENCOUNTER, existing)
            return Target(TargetType.ENCOUNTER, existing, created=False, patient_id=patient_id)
        if facts.service_date is None:
            raise fail_with(IssueType.REQUIRED, "is required (the date of service)", f"{where}.period.start")
        if facts.service_date < EARLIEST_DATE:
            raise fail_with(
                IssueType.VALUE, f"must not be before {EARLIEST_DATE.isoformat()}", f"{where}.period.start"
            )
        build = EncounterBuild(self, entry, facts, pending)
        data = await build.create(patient_id)
        try:
            created = await create_encounter(
                self.scope, data, self.scope.manifest, source="fhir", skew=self.skew
            )
        except RCMError as exc:
            raise EntryFailed(*build.issues_for(exc)) from None
        await self._link("Encounter", facts.keys, TargetType.ENCOUNTER, created.id)
        return Target(TargetType.ENCOUNTER, created.id, created=True, patient_id=patient_id)

    def _service_issues(self, entry: Entry, exc: RCMError) -> list[Issue]:
        code = IssueType.CONFLICT if exc.status_code == 409 else IssueType.INVALID
        if not exc.errors:
            return [Issue(code, exc.detail, entry.expression, status=exc.status_code)]
        return [
            Issue(code, e.detail, patient_expression(entry.expression, e.pointer), status=exc.status_code)
            for e in exc.errors
        ]
