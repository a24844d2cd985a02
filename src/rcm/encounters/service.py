"""Encounter intake: validate everything first, then write the encounter and its lines in one transaction.

A new encounter always enters the coding queue: even with codes from the practice, a coder confirms them
(and FHIR from EHRs carries no ICD-10-CM/CPT at all).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from rcm.audit.events import Action
from rcm.crypto.fields import seal, unseal
from rcm.encounters import schemas
from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterEvent
from rcm.encounters.repository import EncounterRepository
from rcm.kit.errors import Conflict, FieldError, InvalidInput
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.patients import service as patients
from rcm.patients.repository import CoverageRepository, PatientRepository
from rcm.providers.repository import ProviderRepository
from rcm.providers.schemas import ProviderCreate
from rcm.providers.service import find_or_add_provider
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import TenantScope
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import QueueKind, SubjectType
from rcm.workqueue.repository import WorkItemRepository

ENCOUNTER = "encounter"
DEFAULT_CODING_SLA = timedelta(hours=48)
NPI_CHECK_DIGIT_FAILED = "npi_check_digit_failed"  # the event note that flags an intake for the scrub


# Validation ------------------------------------------------------------------------------------------


def _exactly_one(data: schemas.EncounterCreate, name: str, *, required: bool) -> list[FieldError]:
    by_id = getattr(data, f"{name}_id") is not None
    inline = getattr(data, name) is not None
    if by_id and inline:
        return [FieldError(f"/{name}", f"give either {name} or {name}_id, not both")]
    if required and not (by_id or inline):
        return [FieldError(f"/{name}_id", f"is required (or give {name} inline)")]
    return []


def check_encounter(
    data: schemas.EncounterCreate, manifest: TenantManifest, latest: date
) -> list[FieldError]:
    """Every rule a schema cannot express, checked together so one answer names every problem.

    ``latest`` is the last plausible date (today in UTC plus the time-zone skew). Old dates of service are
    accepted: EHR history arrives too, and the timely-filing edit catches what is too old to bill.
    """
    errors = [
        *_exactly_one(data, "patient", required=True),
        *_exactly_one(data, "coverage", required=False),
        *_exactly_one(data, "rendering_provider", required=True),
        *_exactly_one(data, "billing_provider", required=False),
    ]
    if data.coverage is not None:
        errors += patients.check_coverage(data.coverage, manifest, "/coverage")
    if data.service_date > latest:
        errors.append(FieldError("/service_date", "is in the future"))
    if data.patient is not None:
        errors += patients.check_patient(data.patient, latest, "/patient")
        errors += check_dates_after_birth(data, data.patient.birth_date, "/patient/birth_date")
    seen: dict[str, int] = {}
    for index, diagnosis in enumerate(data.diagnoses):
        code = normalise_icd(diagnosis.code)
        if code in seen:
            errors.append(FieldError(f"/diagnoses/{index}/code", f"repeats diagnosis {seen[code] + 1}"))
        seen.setdefault(code, index)
    for index, line in enumerate(data.charges):
        for p_index, pointer in enumerate(line.diagnosis_pointers):
            if pointer > len(data.diagnoses):
                errors.append(
                    FieldError(
                        f"/charges/{index}/diagnosis_pointers/{p_index}", "points past the last diagnosis"
                    )
                )
        if len(set(line.diagnosis_pointers)) != len(line.diagnosis_pointers):
            errors.append(FieldError(f"/charges/{index}/diagnosis_pointers", "has repeated pointers"))
        if line.service_date is not None and line.service_date > latest:
            errors.append(FieldError(f"/charges/{index}/service_date", "is in the future"))
    return errors


def check_dates_after_birth(
    data: schemas.EncounterCreate, birth_date: date, birth_pointer: str | None
) -> list[FieldError]:
    """No service before the patient was born. An inline patient's birth date is named; a stored patient's
    is not (the caller did not send it), so the service dates are."""
    errors: list[FieldError] = []
    if birth_date > data.service_date:
        pointer, detail = (
            (birth_pointer, "is after service_date")
            if birth_pointer
            else ("/service_date", "is before the patient's birth date")
        )
        errors.append(FieldError(pointer, detail))
    errors += [
        FieldError(f"/charges/{index}/service_date", "is before the patient's birth date")
        for index, line in enumerate(data.charges)
        if line.service_date is not None and line.service_date < birth_date
    ]
    return errors


def normalise_icd(code: str) -> str:
    return code.replace(".", "").upper()


def _external_id_taken() -> Conflict:
    return Conflict(
        "An encounter with this external_id already exists.",
        errors=[FieldError("/external_id", "already exists")],
    )


# Intake ----------------------------------------------------------------------------------------------


async def create_encounter(
    scope: TenantScope,
    data: schemas.EncounterCreate,
    manifest: TenantManifest,
    *,
    source: str = "json",
    skew: timedelta = patients.DEFAULT_DATE_SKEW,
) -> schemas.Encounter:
    errors = check_encounter(data, manifest, patients.latest_plausible_date(skew))
    if errors:
        raise InvalidInput("The encounter has invalid fields.", errors=errors)
    repo = scope.repo(EncounterRepository)
    if await repo.by_external_id(data.external_id) is not None:
        raise _external_id_taken()

    # Every reference is checked before anything is written, so one answer names every unknown id.
    unknown = await _unknown_references(scope, data)
    if unknown:
        raise InvalidInput("The encounter references unknown records or dates before birth.", errors=unknown)
    patient_id, created_patient = await _resolve_patient(scope, data)
    coverage_id = await _resolve_coverage(scope, data, patient_id)
    rendering, rendering_npi_failed = await _resolve_provider(
        scope, data.rendering_provider_id, data.rendering_provider
    )
    billing, billing_npi_failed = await _resolve_billing_provider(scope, data, manifest, rendering)

    encounter_id = uuid.uuid4()
    now = datetime.now(UTC)
    tenant_id = scope.tenant_id
    row = Encounter(
        tenant_id=tenant_id,
        id=encounter_id,
        external_id=data.external_id,
        patient_id=patient_id,
        coverage_id=coverage_id,
        rendering_provider_id=rendering,
        billing_provider_id=billing,
        service_date=data.service_date,
        place_of_service=data.place_of_service,
        **seal(scope.keyring, Encounter, encounter_id, {"documentation": data.documentation}),
        status="needs_coding",
        total_charge_cents=sum(line.charge_cents for line in data.charges),  # SV102 is the line total
        source=source,
        created_at=now,
        updated_at=now,
    )
    try:
        await repo.insert(row)
    except IntegrityError as exc:
        # A concurrent request with the same external_id won the race (without an Idempotency-Key match).
        raise _external_id_taken() from exc
    diagnoses = [
        Diagnosis(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            encounter_id=encounter_id,
            sequence=sequence,
            code=normalise_icd(diagnosis.code),
        )
        for sequence, diagnosis in enumerate(data.diagnoses, start=1)
    ]
    charges = [
        ChargeLine(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            encounter_id=encounter_id,
            line_number=number,
            procedure_code=line.procedure_code,
            modifiers=list(line.modifiers),
            units=line.units,
            charge_cents=line.charge_cents,
            diagnosis_pointers=list(line.diagnosis_pointers),
            service_date=line.service_date,
        )
        for number, line in enumerate(data.charges, start=1)
    ]
    event = EncounterEvent(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        encounter_id=encounter_id,
        status="needs_coding",
        # Accepted, and flagged for the scrub: the claim cannot go out with an NPI that fails its check digit.
        note=NPI_CHECK_DIGIT_FAILED if rendering_npi_failed or billing_npi_failed else None,
        created_at=now,
    )
    priority, sla = workqueue.sla_for(manifest, QueueKind.CODING, default=DEFAULT_CODING_SLA)
    await repo.insert(*diagnoses, *charges, event)
    # A new encounter always enters the coding queue (its item and the item's "created" event: one statement).
    await scope.repo(WorkItemRepository).create(
        workqueue.new_item(
            kind=QueueKind.CODING,
            subject_type=SubjectType.ENCOUNTER,
            subject_id=encounter_id,
            due_at=now + sla,
            priority=priority,
            created_at=now,
        ),
        actor=scope.principal.subject,
    )
    if created_patient:
        scope.audit(
            "patient.create",
            Action.CREATE,
            resource_type="patient",
            resource_ids=[patient_id],
            patient_ids=[patient_id],
        )
    scope.audit(
        "encounter.create",
        Action.CREATE,
        resource_type=ENCOUNTER,
        resource_ids=[encounter_id],
        patient_ids=[patient_id],
    )
    # The response is built from what was just written: no second read of the same rows.
    return encounter_view(scope, row, diagnoses, charges)


async def _unknown_references(scope: TenantScope, data: schemas.EncounterCreate) -> list[FieldError]:
    errors: list[FieldError] = []
    if data.patient_id is not None:
        patient = await scope.repo(PatientRepository).get(data.patient_id)
        if patient is None:
            errors.append(FieldError("/patient_id", "does not exist"))
        else:
            errors += check_dates_after_birth(data, patients.birth_date_of(scope.keyring, patient), None)
    if data.coverage_id is not None:
        coverage = await scope.repo(CoverageRepository).get(data.coverage_id)
        if coverage is None or (data.patient_id is not None and coverage.patient_id != data.patient_id):
            errors.append(FieldError("/coverage_id", "does not exist for this patient"))
    providers = scope.repo(ProviderRepository)
    for name in ("rendering_provider", "billing_provider"):
        provider_id = getattr(data, f"{name}_id")
        if provider_id is not None and await providers.get(provider_id) is None:
            errors.append(FieldError(f"/{name}_id", "does not exist"))
    return errors


async def _resolve_patient(scope: TenantScope, data: schemas.EncounterCreate) -> tuple[uuid.UUID, bool]:
    if data.patient is not None:
        row, created = await patients.find_or_add_patient(scope, data.patient, pointer="/patient")
        return row.id, created
    assert data.patient_id is not None  # checked by _exactly_one and _unknown_references
    return data.patient_id, False


async def _resolve_coverage(
    scope: TenantScope, data: schemas.EncounterCreate, patient_id: uuid.UUID
) -> uuid.UUID | None:
    if data.coverage is not None:
        row, created = await patients.find_or_add_coverage(scope, patient_id, data.coverage)
        if created:
            scope.audit(
                "coverage.create",
                Action.CREATE,
                resource_type=patients.COVERAGE,
                resource_ids=[row.id],
                patient_ids=[patient_id],
            )
        return row.id
    if data.coverage_id is None:
        return None
    coverage = await scope.repo(CoverageRepository).get(data.coverage_id)
    if coverage is None or coverage.patient_id != patient_id:
        # An inline patient matched by MRN, with a coverage id of another patient.
        raise InvalidInput(
            "The encounter references unknown records.",
            errors=[FieldError("/coverage_id", "does not exist for this patient")],
        )
    return coverage.id


async def _resolve_provider(
    scope: TenantScope, provider_id: uuid.UUID | None, inline: ProviderCreate | None
) -> tuple[uuid.UUID, bool]:
    """The provider's id, and whether the NPI sent inline failed its check digit."""
    if inline is not None:
        match = await find_or_add_provider(scope, inline)
        return match.row.id, match.npi_failed
    assert provider_id is not None  # checked by _exactly_one and _unknown_references
    return provider_id, False


async def _resolve_billing_provider(
    scope: TenantScope, data: schemas.EncounterCreate, manifest: TenantManifest, rendering: uuid.UUID
) -> tuple[uuid.UUID, bool]:
    if data.billing_provider_id is not None or data.billing_provider is not None:
        return await _resolve_provider(scope, data.billing_provider_id, data.billing_provider)
    # Default: the practice's billing provider from its manifest (the group NPI on the 837P 2010AA loop).
    billing = manifest.billing_provider
    match = await find_or_add_provider(
        scope,
        ProviderCreate(npi=billing.npi, name=billing.name, kind="organization", taxonomy=billing.taxonomy),
    )
    return match.row.id, match.npi_failed


# Reads -----------------------------------------------------------------------------------------------


def encounter_view(
    scope: TenantScope, row: Encounter, diagnoses: list[Diagnosis] | Any, charges: list[ChargeLine] | Any
) -> schemas.Encounter:
    return schemas.Encounter(
        id=row.id,
        external_id=row.external_id,
        status=row.status,  # type: ignore[arg-type]
        patient_id=row.patient_id,
        rendering_provider_id=row.rendering_provider_id,
        billing_provider_id=row.billing_provider_id,
        service_date=row.service_date,
        place_of_service=row.place_of_service,
        total_charge_cents=row.total_charge_cents,
        diagnoses=[schemas.Diagnosis(sequence=d.sequence, code=d.code) for d in diagnoses],
        charges=[
            schemas.ChargeLine(
                line_number=c.line_number,
                procedure_code=c.procedure_code,
                modifiers=list(c.modifiers),
                units=c.units,
                charge_cents=c.charge_cents,
                diagnosis_pointers=list(c.diagnosis_pointers),
                service_date=c.service_date,
            )
            for c in charges
        ],
        created_at=row.created_at,
        updated_at=row.updated_at,
        coverage_id=row.coverage_id,
        documentation=unseal(scope.keyring, row)["documentation"],
    )


async def _load(scope: TenantScope, encounter_id: uuid.UUID) -> Encounter:
    return await scope.repo(EncounterRepository).get_or_404(encounter_id)


async def get_encounter(scope: TenantScope, encounter_id: uuid.UUID) -> schemas.Encounter:
    row = await _load(scope, encounter_id)
    diagnoses, charges = await scope.repo(EncounterRepository).lines(row.id)
    scope.audit(
        "encounter.read",
        Action.READ,
        resource_type=ENCOUNTER,
        resource_ids=[row.id],
        patient_ids=[row.patient_id],
    )
    return encounter_view(scope, row, diagnoses, charges)


async def encounter_status(scope: TenantScope, encounter_id: uuid.UUID) -> schemas.EncounterStatusView:
    row = await _load(scope, encounter_id)
    history = await scope.repo(EncounterRepository).history(row.id)
    scope.audit(
        "encounter.status",
        Action.READ,
        resource_type=ENCOUNTER,
        resource_ids=[row.id],
        patient_ids=[row.patient_id],
    )
    return schemas.EncounterStatusView(
        id=row.id,
        external_id=row.external_id,
        status=row.status,  # type: ignore[arg-type]
        history=[schemas.StatusChange(status=e.status, at=e.created_at, note=e.note) for e in history],
    )


async def list_encounters(
    scope: TenantScope,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    patient_id: uuid.UUID | None = None,
    external_id: str | None = None,
    service_date_from: date | None = None,
    service_date_to: date | None = None,
) -> Page[schemas.EncounterSummary]:
    rows = await scope.repo(EncounterRepository).page(
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        status=status,
        patient_id=patient_id,
        external_id=external_id,
        service_date_from=service_date_from,
        service_date_to=service_date_to,
    )
    page = paginate(
        rows,
        limit,
        lambda r: schemas.EncounterSummary(
            id=r.id,
            external_id=r.external_id,
            status=r.status,  # type: ignore[arg-type]
            patient_id=r.patient_id,
            service_date=r.service_date,
            total_charge_cents=r.total_charge_cents,
            created_at=r.created_at,
        ),
    )
    scope.audit(
        "encounter.search",
        Action.READ,
        resource_type=ENCOUNTER,
        resource_ids=[item.id for item in page.items],
        patient_ids=[item.patient_id for item in page.items],
        detail={"count": len(page.items)},
    )
    return page
