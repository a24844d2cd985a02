"""Correcting or cancelling an encounter before it is billed.

Once an encounter is billed, it is no longer changed in place: a correction flows as a replacement claim
(claim frequency 7) and a cancellation as a void (8), both owned by the claims package. ``is_billed`` is the
one check of that state; the claims package makes it true by moving the encounter to ``billed``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date
from typing import Annotated

import msgspec
from msgspec import Meta

from rcm.audit.events import Action
from rcm.crypto.fields import seal
from rcm.encounters import schemas
from rcm.encounters.institutional import check_institutional, institutional_columns
from rcm.encounters.models import Encounter, EncounterEvent
from rcm.encounters.parties import check_parties, facility_columns, referring_columns
from rcm.encounters.repository import (
    EncounterChangeRepository,
    EncounterRepository,
    encounter_status_changed,
)
from rcm.encounters.service import ENCOUNTER, charge_rows, diagnosis_rows, encounter_view, normalise_icd
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.kit.models import utcnow
from rcm.patients import service as patients
from rcm.patients.repository import CoverageRepository
from rcm.patients.schemas import NO_NUL
from rcm.tenancy.scope import TenantScope
from rcm.workqueue.models import SubjectType
from rcm.workqueue.repository import WorkItemRepository

CANCELLED: schemas.EncounterStatus = "cancelled"
CORRECTED_NOTE = "corrected"
_FINAL = frozenset({"billed", "closed", CANCELLED})


class CancelReason(enum.StrEnum):
    DUPLICATE = "duplicate"
    ENTERED_IN_ERROR = "entered_in_error"
    PATIENT_DID_NOT_ATTEND = "patient_did_not_attend"
    NOT_BILLABLE = "not_billable"
    OTHER = "other"


class EncounterCorrection(msgspec.Struct, forbid_unknown_fields=True):
    """What changes; fields left out stay. ``diagnoses`` and ``charges`` replace the whole list."""

    service_date: date | None = None
    place_of_service: schemas.PlaceOfService | None = None
    coverage_id: uuid.UUID | None = None
    documentation: Annotated[str, Meta(max_length=200_000, pattern=NO_NUL)] | None = None
    diagnoses: Annotated[list[schemas.DiagnosisIn], Meta(max_length=12)] | None = None
    charges: Annotated[list[schemas.ChargeLineIn], Meta(max_length=50)] | None = None
    # Each replaces the encounter's whole referring provider, facility or prior authorization (a prior
    # authorization often arrives after the visit).
    referring_provider: schemas.ReferringProvider | None = None
    service_facility: schemas.ServiceFacility | None = None
    prior_authorization: schemas.PriorAuthorization | None = None
    # Replaces the whole institutional block (an institutional encounter's only).
    institutional: schemas.Institutional | None = None


class EncounterCancel(msgspec.Struct, forbid_unknown_fields=True):
    reason: CancelReason


def is_billed(row: Encounter) -> bool:
    """Whether the encounter has gone out on a claim (then it changes only through claims)."""
    return row.status == "billed"


def _refuse_if_final(row: Encounter, verb: str) -> None:
    if is_billed(row):
        raise Conflict(
            f"The encounter is billed: {verb} it with a replacement or void claim.",
            errors=[FieldError("/status", "is billed")],
        )
    if row.status in _FINAL:
        raise Conflict(f"The encounter is {row.status}.", errors=[FieldError("/status", f"is {row.status}")])


async def _locked(scope: TenantScope, encounter_id: uuid.UUID) -> Encounter:
    row = await scope.repo(EncounterChangeRepository).lock(encounter_id)
    if row is None:
        raise NotFound
    return row


async def _check_correction(
    scope: TenantScope, row: Encounter, data: EncounterCorrection
) -> list[FieldError]:
    existing_diagnoses, existing_charges = await scope.repo(EncounterRepository).lines(row.id)
    diagnoses_count = len(data.diagnoses) if data.diagnoses is not None else len(existing_diagnoses)
    errors: list[FieldError] = []
    latest = patients.latest_plausible_date(patients.DEFAULT_DATE_SKEW)
    if data.service_date is not None and data.service_date > latest:
        errors.append(FieldError("/service_date", "is in the future"))
    errors += check_parties(data.referring_provider, data.service_facility)
    errors += check_institutional(row.claim_type, data.institutional, data.charges or (), latest)
    if data.coverage_id is not None:
        coverage = await scope.repo(CoverageRepository).get(data.coverage_id)
        if coverage is None or coverage.patient_id != row.patient_id:
            errors.append(FieldError("/coverage_id", "does not exist for this patient"))
    if data.diagnoses is not None:
        seen: set[str] = set()
        for index, diagnosis in enumerate(data.diagnoses):
            code = normalise_icd(diagnosis.code)
            if code in seen:
                errors.append(FieldError(f"/diagnoses/{index}/code", "repeats an earlier diagnosis"))
            seen.add(code)
    pointers = (
        [(f"/charges/{i}", c.diagnosis_pointers) for i, c in enumerate(data.charges)]
        if data.charges is not None
        else [(f"/charges/{i}", list(c.diagnosis_pointers)) for i, c in enumerate(existing_charges)]
    )
    for prefix, line_pointers in pointers:
        for p_index, pointer in enumerate(line_pointers):
            if pointer > diagnoses_count:
                errors.append(
                    FieldError(f"{prefix}/diagnosis_pointers/{p_index}", "points past the last diagnosis")
                )
    return errors


async def correct_encounter(
    scope: TenantScope, encounter_id: uuid.UUID, data: EncounterCorrection
) -> schemas.Encounter:
    row = await _locked(scope, encounter_id)
    _refuse_if_final(row, "correct")
    errors = await _check_correction(scope, row, data)
    if errors:
        raise InvalidInput("The correction has invalid fields.", errors=errors)

    tenant_id = scope.tenant_id
    values: dict[str, object] = {}
    if data.service_date is not None:
        values["service_date"] = data.service_date
    if data.place_of_service is not None:
        values["place_of_service"] = data.place_of_service
    if data.coverage_id is not None:
        values["coverage_id"] = data.coverage_id
    if data.referring_provider is not None:
        values.update(referring_columns(data.referring_provider))
    if data.service_facility is not None:
        values.update(facility_columns(data.service_facility))
    if data.prior_authorization is not None:
        values["prior_authorization"] = data.prior_authorization
    if data.institutional is not None:
        values.update(institutional_columns(row.claim_type, data.institutional))
    if data.documentation is not None:
        values.update(seal(scope.keyring, Encounter, row.id, {"documentation": data.documentation}))
    new_diagnoses = diagnosis_rows(tenant_id, row.id, data.diagnoses) if data.diagnoses is not None else None
    new_charges = charge_rows(tenant_id, row.id, data.charges) if data.charges is not None else None
    if new_charges is not None:
        values["total_charge_cents"] = sum(c.charge_cents for c in new_charges)
    changes = scope.repo(EncounterChangeRepository)
    if values:
        await changes.change(row.id, **values)
    await changes.replace_lines(row.id, new_diagnoses, new_charges)
    # The history says a correction happened (the status stays: a coder confirms the new codes).
    await changes.insert(
        EncounterEvent(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            encounter_id=row.id,
            status=row.status,
            note=CORRECTED_NOTE,
            created_at=utcnow(),
        )
    )
    scope.audit(
        "encounter.correct",
        Action.UPDATE,
        resource_type=ENCOUNTER,
        resource_ids=[row.id],
        patient_ids=[row.patient_id],
        detail={
            "fields": ",".join(
                f for f in EncounterCorrection.__struct_fields__ if getattr(data, f) is not None
            )
        },
    )
    await scope.session.refresh(row)
    diagnoses, charges = await scope.repo(EncounterRepository).lines(row.id)
    return encounter_view(scope, row, diagnoses, charges)


async def cancel_encounter(
    scope: TenantScope, encounter_id: uuid.UUID, data: EncounterCancel
) -> schemas.EncounterStatusView:
    row = await _locked(scope, encounter_id)
    _refuse_if_final(row, "cancel")
    changes = scope.repo(EncounterChangeRepository)
    await changes.change(row.id, status=CANCELLED)
    event = EncounterEvent(
        tenant_id=scope.tenant_id,
        id=uuid.uuid4(),
        encounter_id=row.id,
        status=CANCELLED,
        note=data.reason.value,  # a fixed reason code, never free text
        created_at=utcnow(),
    )
    await changes.insert(event)
    await encounter_status_changed(changes, event)
    # Its open coding (or billing) work goes away with it.
    await scope.repo(WorkItemRepository).cancel_for_subject(
        SubjectType.ENCOUNTER, row.id, actor=scope.principal.subject
    )
    scope.audit(
        "encounter.cancel",
        Action.UPDATE,
        resource_type=ENCOUNTER,
        resource_ids=[row.id],
        patient_ids=[row.patient_id],
        detail={"reason": data.reason.value},
    )
    history = await scope.repo(EncounterRepository).history(row.id)
    return schemas.EncounterStatusView(
        id=row.id,
        external_id=row.external_id,
        status=CANCELLED,
        history=[schemas.StatusChange(status=e.status, at=e.created_at, note=e.note) for e in history],
    )
