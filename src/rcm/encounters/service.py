"""Encounter intake: validate everything first, then write the encounter and its lines in one transaction.

A new encounter always enters the coding queue: even with codes from the practice, a coder confirms them
(and FHIR from EHRs carries no ICD-10-CM/CPT at all).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from rcm.audit.events import Action
from rcm.crypto.fields import seal, unseal
from rcm.encounters import schemas
from rcm.encounters.institutional import (
    check_institutional,
    claim_type_of,
    institutional_columns,
    institutional_of,
)
from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterEvent
from rcm.encounters.parties import check_parties, facility_of, party_columns, referring_of
from rcm.encounters.repository import (
    EXTERNAL_ID_UNIQUE,
    EncounterRepository,
    FoundProvider,
    IntakeFound,
    IntakeProbe,
    IntakeRepository,
    ProviderProbe,
)
from rcm.idempotency.service import NO_RESPONSE, carry_response
from rcm.kit.errors import Conflict, FieldError, InvalidInput, RCMError
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.kit.repository import constraint_name
from rcm.patients import service as patients
from rcm.patients.models import Coverage, Patient
from rcm.providers.models import Provider
from rcm.providers.npi import npi_check_digit_valid
from rcm.providers.schemas import ProviderCreate
from rcm.providers.service import build_provider
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.vocabulary import ClaimType
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import QueueKind, SubjectType

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
    errors += check_parties(data.referring_provider, data.service_facility)
    errors += check_institutional(claim_type_of(data, manifest), data.institutional, data.charges, latest)
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


def diagnosis_rows(
    tenant_id: uuid.UUID, encounter_id: uuid.UUID, diagnoses: Sequence[schemas.DiagnosisIn]
) -> list[Diagnosis]:
    """An encounter's diagnosis rows, in the order given (HI01-HI12 of the 837P), codes without the dot."""
    return [
        Diagnosis.build(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            encounter_id=encounter_id,
            sequence=sequence,
            code=normalise_icd(diagnosis.code),
        )
        for sequence, diagnosis in enumerate(diagnoses, start=1)
    ]


def charge_rows(
    tenant_id: uuid.UUID, encounter_id: uuid.UUID, charges: Sequence[schemas.ChargeLineIn]
) -> list[ChargeLine]:
    """An encounter's charge lines, numbered in the order given."""
    return [
        ChargeLine.build(
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
            revenue_code=line.revenue_code,
        )
        for number, line in enumerate(charges, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An encounter of a batch, resolved and ready to write (its rows are in the batch's ``rows``)."""

    encounter: Encounter
    diagnoses: list[Diagnosis]
    charges: list[ChargeLine]


@dataclass(slots=True)
class IntakeBatch:
    """A batch of intakes resolved as a run of them one after the other would resolve them: ``outcomes``
    holds each item's ``Prepared`` encounter or the error it would have raised, in order; ``rows`` every
    row of the accepted ones, parents first, for one write."""

    rows: list[Any] = field(default_factory=list)
    outcomes: list[Prepared | RCMError] = field(default_factory=list)
    # What earlier items of the batch created, as later items would have found it in the database.
    external_ids: set[str] = field(default_factory=set)
    patients: dict[bytes, Patient] = field(default_factory=dict)  # by MRN blind index
    coverages: dict[tuple[uuid.UUID, str, bytes], uuid.UUID] = field(default_factory=dict)
    providers: list[Provider] = field(default_factory=list)  # in the order created
    # (id, patient id) of what the accepted items create, for the batch's audit events.
    created_coverages: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    created_patients: list[uuid.UUID] = field(default_factory=list)
    created_encounters: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)
    # What the batch before this one creates (``after``): found, as if it were stored.
    earlier_external_ids: set[str] = field(default_factory=set)
    earlier_patients: dict[bytes, Patient] = field(default_factory=dict)
    earlier_coverages: dict[tuple[uuid.UUID, str, bytes], uuid.UUID] = field(default_factory=dict)
    # ``providers`` from this index on are this batch's own (those before it are the earlier batch's).
    own_providers_from: int = 0

    @classmethod
    def after(cls, earlier: IntakeBatch | None) -> IntakeBatch:
        """A batch resolved as if ``earlier`` (prepared, written but not yet committed when this one looks
        up) were already stored: what it creates is found, never created twice. Only ``earlier``'s own
        creations are carried (not what it carried itself: that is committed by then), so a run of
        batches holds two at a time however long it is."""
        if earlier is None:
            return cls()
        own = earlier.providers[earlier.own_providers_from :]
        return cls(
            earlier_external_ids=earlier.external_ids,
            earlier_patients=earlier.patients,
            earlier_coverages=earlier.coverages,
            providers=list(own),
            own_providers_from=len(own),
        )


async def create_encounter(
    scope: TenantScope,
    data: schemas.EncounterCreate,
    manifest: TenantManifest,
    *,
    source: str = "json",
    skew: timedelta = patients.DEFAULT_DATE_SKEW,
) -> schemas.Encounter:
    """Two statements (a batch of one): every lookup at once, then every row with its audit events and
    the stored idempotent response."""
    batch = await prepare_encounters(scope, [data], manifest, source=source, skew=skew)
    [outcome] = batch.outcomes
    if isinstance(outcome, RCMError):
        raise outcome
    # The response is built from what is written: no second read of the same rows. Known before the
    # write, it is stored as the idempotent answer in the same statement.
    view = encounter_view(scope, outcome.encounter, outcome.diagnoses, outcome.charges)
    try:
        await write_encounters(scope, batch, response=carry_response(scope, 201, view))
    except IntegrityError as exc:
        # A concurrent request with the same external_id won the race (without an Idempotency-Key match).
        if constraint_name(exc) == EXTERNAL_ID_UNIQUE:
            raise _external_id_taken() from exc
        raise
    return view


async def write_encounters(
    scope: TenantScope, batch: IntakeBatch, *, response: Mapping[str, Any] | None = None, audit_since: int = 0
) -> None:
    """One statement: every row of the batch's accepted encounters with the audit events recorded since
    ``audit_since``. An IntegrityError means a concurrent writer created one of its rows first."""
    await scope.repo(IntakeRepository).write(
        batch.rows, response=response or NO_RESPONSE, audit_since=audit_since
    )


async def prepare_encounters(
    scope: TenantScope,
    items: Sequence[schemas.EncounterCreate],
    manifest: TenantManifest,
    *,
    source: str,
    skew: timedelta,
    earlier: IntakeBatch | None = None,
    audit: bool = True,
) -> IntakeBatch:
    """Validate, look up (one statement for the batch) and resolve each item as if the items were taken in
    turn: a later item finds the patient, coverage, provider or external id an earlier one creates. Every
    reference of an item is checked before anything is built, so one answer names every unknown id. An
    item's error never touches the others; nothing is written here.

    ``earlier``: a batch written just before this one, not committed yet (see ``IntakeBatch.after``).
    Without ``audit`` the creations are not recorded: the caller records them (``audit_created``) in the
    transaction that writes the batch, when that is not the one that prepared it."""
    latest = patients.latest_plausible_date(skew)
    keyring = scope.keyring
    checked: list[list[FieldError]] = [check_encounter(data, manifest, latest) for data in items]
    probes: list[tuple[int, IntakeProbe, ProviderCreate | None]] = []
    for index, data in enumerate(items):
        if checked[index]:
            continue
        billing_inline = data.billing_provider
        if data.billing_provider_id is None and billing_inline is None:
            # Default: the practice's billing provider from its manifest (the group NPI on the 837P 2010AA).
            billing = manifest.billing_provider
            billing_inline = ProviderCreate(
                npi=billing.npi, name=billing.name, kind="organization", taxonomy=billing.taxonomy
            )
        probe = IntakeProbe(
            external_id=data.external_id,
            patient_id=data.patient_id,
            mrn_index=keyring.blind_index("mrn", data.patient.mrn) if data.patient else None,
            coverage_id=data.coverage_id,
            coverage_payer_id=data.coverage.payer_id if data.coverage else None,
            member_index=keyring.blind_index("member_id", data.coverage.member_id) if data.coverage else None,
            rendering=_probe(data.rendering_provider_id, data.rendering_provider),
            billing=_probe(data.billing_provider_id, billing_inline),
        )
        probes.append((index, probe, billing_inline))
    found = await scope.repo(IntakeRepository).lookup([probe for _, probe, _ in probes]) if probes else []
    resolved = {
        index: (probe, billing, hit) for (index, probe, billing), hit in zip(probes, found, strict=True)
    }
    batch = IntakeBatch.after(earlier)
    priority, sla = workqueue.sla_for(manifest, QueueKind.CODING, default=DEFAULT_CODING_SLA)
    for index, data in enumerate(items):
        if checked[index]:
            batch.outcomes.append(InvalidInput("The encounter has invalid fields.", errors=checked[index]))
            continue
        probe, billing_inline, hit = resolved[index]
        try:
            prepared = _prepare(
                scope,
                data,
                probe,
                hit,
                batch,
                billing_inline=billing_inline,
                claim_type=claim_type_of(data, manifest),
                source=source,
                priority=priority,
                sla=sla,
            )
        except RCMError as exc:
            batch.outcomes.append(exc)
        else:
            batch.outcomes.append(prepared)
    if audit:
        audit_created(scope, batch)
    return batch


def audit_created(scope: TenantScope, batch: IntakeBatch) -> None:
    """The creations of the batch, one event per kind naming every record and patient (a batch of one
    records what a lone intake does). Recorded before the write, which carries them: the rows and their
    audit events in one statement."""
    if batch.created_coverages:
        scope.audit(
            "coverage.create",
            Action.CREATE,
            resource_type=patients.COVERAGE,
            resource_ids=[coverage_id for coverage_id, _ in batch.created_coverages],
            patient_ids=[patient_id for _, patient_id in batch.created_coverages],
        )
    if batch.created_patients:
        scope.audit(
            "patient.create",
            Action.CREATE,
            resource_type="patient",
            resource_ids=batch.created_patients,
            patient_ids=batch.created_patients,
        )
    if batch.created_encounters:
        scope.audit(
            "encounter.create",
            Action.CREATE,
            resource_type=ENCOUNTER,
            resource_ids=[encounter_id for encounter_id, _ in batch.created_encounters],
            patient_ids=[patient_id for _, patient_id in batch.created_encounters],
        )


def _prepare(
    scope: TenantScope,
    data: schemas.EncounterCreate,
    probe: IntakeProbe,
    found: IntakeFound,
    batch: IntakeBatch,
    *,
    billing_inline: ProviderCreate | None,
    claim_type: ClaimType,
    source: str,
    priority: int,
    sla: timedelta,
) -> Prepared:
    """One item of a batch: raises the error a lone intake would; otherwise its rows join ``batch`` (and
    what it creates becomes visible to the later items, and to the batch's audit events)."""
    if (
        found.external_id_taken
        or data.external_id in batch.external_ids
        or data.external_id in batch.earlier_external_ids
    ):
        raise _external_id_taken()
    unknown = _unknown_references(scope, data, found)
    if unknown:
        raise InvalidInput("The encounter references unknown records or dates before birth.", errors=unknown)

    tenant_id = scope.tenant_id
    keyring = scope.keyring
    new_rows: list[Any] = []  # parents first
    patient_id, created_patient = _resolve_patient(scope, data, probe, found, batch, new_rows=new_rows)
    coverage_id, created_coverage = _resolve_coverage(
        scope, data, found, batch, patient_id, member_index=probe.member_index, new_rows=new_rows
    )
    # Nothing below refuses the item: what it creates is now the batch's.
    first_new_provider = len(batch.providers)
    rendering, rendering_npi_failed = _resolve_provider(
        data.rendering_provider_id, data.rendering_provider, found.rendering, batch.providers
    )
    billing_id, billing_npi_failed = _resolve_provider(
        data.billing_provider_id, billing_inline, found.billing, batch.providers
    )
    new_rows += batch.providers[first_new_provider:]
    batch.external_ids.add(data.external_id)
    for row in new_rows:
        if isinstance(row, Patient):
            batch.patients[row.mrn_bidx] = row
        elif isinstance(row, Coverage):
            assert probe.member_index is not None
            batch.coverages[(row.patient_id, row.payer_id, probe.member_index)] = row.id

    encounter_id = uuid.uuid4()
    now = datetime.now(UTC)
    row = Encounter.build(
        tenant_id=tenant_id,
        id=encounter_id,
        external_id=data.external_id,
        patient_id=patient_id,
        coverage_id=coverage_id,
        rendering_provider_id=rendering,
        billing_provider_id=billing_id,
        service_date=data.service_date,
        place_of_service=data.place_of_service,
        **seal(keyring, Encounter, encounter_id, {"documentation": data.documentation}),
        status="needs_coding",
        total_charge_cents=sum(line.charge_cents for line in data.charges),  # SV102 is the line total
        source=source,
        created_at=now,
        updated_at=now,
        **party_columns(data),
        **institutional_columns(claim_type, data.institutional),
    )
    diagnoses = diagnosis_rows(tenant_id, encounter_id, data.diagnoses)
    charges = charge_rows(tenant_id, encounter_id, data.charges)
    event = EncounterEvent.build(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        encounter_id=encounter_id,
        status="needs_coding",
        # Accepted, and flagged for the scrub: the claim cannot go out with an NPI that fails its check digit.
        note=NPI_CHECK_DIGIT_FAILED if rendering_npi_failed or billing_npi_failed else None,
        created_at=now,
    )
    # A new encounter always enters the coding queue (its item and the item's "created" event).
    item = workqueue.new_item(
        kind=QueueKind.CODING,
        subject_type=SubjectType.ENCOUNTER,
        subject_id=encounter_id,
        due_at=now + sla,
        priority=priority,
        created_at=now,
    )
    item.tenant_id = tenant_id
    item_created = workqueue.created_event(item, actor=scope.principal.subject)
    if created_coverage:
        assert coverage_id is not None
        batch.created_coverages.append((coverage_id, patient_id))
    if created_patient:
        batch.created_patients.append(patient_id)
    batch.created_encounters.append((encounter_id, patient_id))
    batch.rows += [*new_rows, row, *diagnoses, *charges, event, item, item_created]
    return Prepared(row, diagnoses, charges)


def _probe(provider_id: uuid.UUID | None, inline: ProviderCreate | None) -> ProviderProbe | None:
    if provider_id is not None:
        return ProviderProbe(provider_id=provider_id)
    if inline is None:
        return None
    if npi_check_digit_valid(inline.npi):
        return ProviderProbe(npi=inline.npi)
    # A failing NPI never becomes a second provider of a name the practice has: look the name up too.
    return ProviderProbe(npi=inline.npi, name=inline.name, kind=inline.kind)


def _unknown_references(
    scope: TenantScope, data: schemas.EncounterCreate, found: IntakeFound
) -> list[FieldError]:
    errors: list[FieldError] = []
    if data.patient_id is not None:
        if found.patient is None:
            errors.append(FieldError("/patient_id", "does not exist"))
        else:
            birth = patients.stored_birth_date(scope.keyring, found.patient.id, found.patient.birth_date)
            errors += check_dates_after_birth(data, birth, None)
    if data.coverage_id is not None:
        coverage = found.coverage
        if coverage is None or (data.patient_id is not None and coverage.patient_id != data.patient_id):
            errors.append(FieldError("/coverage_id", "does not exist for this patient"))
    for name, provider in (("rendering_provider", found.rendering), ("billing_provider", found.billing)):
        if getattr(data, f"{name}_id") is not None and provider is None:
            errors.append(FieldError(f"/{name}_id", "does not exist"))
    return errors


def _resolve_patient(
    scope: TenantScope,
    data: schemas.EncounterCreate,
    probe: IntakeProbe,
    found: IntakeFound,
    batch: IntakeBatch,
    *,
    new_rows: list[Any],
) -> tuple[uuid.UUID, bool]:
    """The patient's id, and whether this intake creates it (an inline patient matched by MRN: stored, or
    created by an earlier item of the batch)."""
    if data.patient is not None:
        assert probe.mrn_index is not None
        earlier = batch.patients.get(probe.mrn_index) or batch.earlier_patients.get(probe.mrn_index)
        if earlier is not None:
            patients.check_same_patient(scope.keyring, data.patient, earlier.name_dob_bidx, "/patient")
            return earlier.id, False
        if found.patient is not None:
            patients.check_same_patient(scope.keyring, data.patient, found.patient.name_dob_bidx, "/patient")
            return found.patient.id, False
        row = patients.build_patient(scope.keyring, scope.tenant_id, data.patient)
        new_rows.append(row)
        return row.id, True
    assert data.patient_id is not None  # checked by _exactly_one and _unknown_references
    return data.patient_id, False


def _resolve_coverage(
    scope: TenantScope,
    data: schemas.EncounterCreate,
    found: IntakeFound,
    batch: IntakeBatch,
    patient_id: uuid.UUID,
    *,
    member_index: bytes | None,
    new_rows: list[Any],
) -> tuple[uuid.UUID | None, bool]:
    if data.coverage is not None:
        assert member_index is not None
        key = (patient_id, data.coverage.payer_id, member_index)
        earlier = batch.coverages.get(key) or batch.earlier_coverages.get(key)
        if earlier is not None:  # created by an earlier item of the batch (or by the batch before)
            return earlier, False
        if found.coverage is not None and found.coverage.patient_id == patient_id:
            return found.coverage.id, False  # the patient's coverage with this payer and member id
        row = patients.build_coverage(scope.keyring, patient_id, data.coverage, member_index)
        new_rows.append(row)
        return row.id, True
    if data.coverage_id is None:
        return None, False
    coverage = found.coverage
    if coverage is None or coverage.patient_id != patient_id:
        # An inline patient matched by MRN, with a coverage id of another patient.
        raise InvalidInput(
            "The encounter references unknown records.",
            errors=[FieldError("/coverage_id", "does not exist for this patient")],
        )
    return coverage.id, False


def _resolve_provider(
    provider_id: uuid.UUID | None,
    inline: ProviderCreate | None,
    found: FoundProvider | None,
    created: list[Provider],
) -> tuple[uuid.UUID, bool]:
    """The provider's id, and whether the NPI sent inline failed its check digit.

    Matched by NPI, the provider's identity (stored, or created by this batch). An NPI failing its check
    digit is accepted but never becomes a second provider of a name the practice has: the stored one of
    that name and kind (``found`` when its NPI differs), or one this batch created, a valid NPI first and
    the older first (as the lookup orders stored ones). Otherwise a new provider joins ``created``.
    """
    if inline is None:
        assert provider_id is not None  # checked by _exactly_one and _unknown_references
        return provider_id, False
    for new in created:
        if new.npi == inline.npi:
            return new.id, not new.npi_valid
    if found is not None and found.npi == inline.npi:
        return found.id, not found.npi_valid
    valid = npi_check_digit_valid(inline.npi)
    if not valid:
        same_name = [(not found.npi_valid, -1, found.id)] if found is not None else []
        same_name += [
            (not new.npi_valid, order, new.id)
            for order, new in enumerate(created)
            if new.name.lower() == inline.name.lower() and new.kind == inline.kind
        ]
        if same_name:
            return min(same_name, key=lambda match: match[:2])[2], True
    row = build_provider(inline, valid=valid)
    created.append(row)
    return row.id, not valid


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
                revenue_code=c.revenue_code,
            )
            for c in charges
        ],
        created_at=row.created_at,
        updated_at=row.updated_at,
        coverage_id=row.coverage_id,
        documentation=unseal(scope.keyring, row)["documentation"],
        referring_provider=referring_of(row),
        service_facility=facility_of(row),
        prior_authorization=row.prior_authorization,
        claim_type=row.claim_type,
        institutional=institutional_of(row),
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
