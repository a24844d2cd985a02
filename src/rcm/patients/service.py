"""Patients and coverages: encrypt on the way in, decrypt on the way out, audit every touch."""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Row

from rcm.audit.events import Action
from rcm.audit.trail import written_by_caller
from rcm.crypto import fields
from rcm.crypto.fields import seal, unseal
from rcm.crypto.keyring import TenantKeyring
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.kit.pagination import decode_cursor, encode_cursor
from rcm.kit.phi import MaskedRepr
from rcm.patients import schemas
from rcm.patients.models import Coverage, Patient
from rcm.patients.repository import (
    PAGE_CREATED_AT,
    PAGE_ID,
    PAGE_PHI,
    PAGE_SEX,
    CoverageRepository,
    PageRows,
    PatientRepository,
    page_on_driver,
)
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import OnePractice, TenantRead, TenantScope

PATIENT = "patient"
COVERAGE = "coverage"
# The default of RCM_FUTURE_DATE_SKEW_DAYS: a practice in UTC-10 sends "today" while it is tomorrow in UTC.
DEFAULT_DATE_SKEW = timedelta(days=1)


def latest_plausible_date(skew: timedelta) -> date:
    """The last date an intake may carry for a birth or a service: today in UTC plus the time-zone skew."""
    return datetime.now(UTC).date() + skew


def check_patient(data: schemas.PatientCreate, latest: date, pointer: str = "") -> list[FieldError]:
    """What the schema cannot say about a patient (dates before 1900 are refused for every body upstream)."""
    if data.birth_date > latest:
        return [FieldError(f"{pointer}/birth_date", "is in the future")]
    return []


def name_dob_key(family_name: str, birth_date: date) -> str:
    return f"{family_name}|{birth_date.isoformat()}"


def build_patient(keyring: TenantKeyring, tenant_id: uuid.UUID, data: schemas.PatientCreate) -> Patient:
    row_id = uuid.uuid4()
    sealed = seal(
        keyring,
        Patient,
        row_id,
        {
            "mrn": data.mrn,
            "given_name": data.given_name,
            "family_name": data.family_name,
            "birth_date": data.birth_date.isoformat(),
            "address": msgspec.json.encode(data.address).decode() if data.address else None,
            "phone": data.phone,
        },
    )
    return Patient.build(
        tenant_id=tenant_id,
        id=row_id,
        sex=data.sex,
        mrn_bidx=keyring.blind_index("mrn", data.mrn),
        name_dob_bidx=keyring.blind_index("name_dob", name_dob_key(data.family_name, data.birth_date)),
        **sealed,
    )


def birth_date_of(keyring: TenantKeyring, row: Patient) -> date:
    """Only the birth date of a stored patient (the intake's date checks need nothing else)."""
    return stored_birth_date(keyring, row.id, row.birth_date)


def stored_birth_date(keyring: TenantKeyring, patient_id: uuid.UUID, ciphertext: bytes) -> date:
    value = keyring.decrypt_str(
        table=Patient.__tablename__, column="birth_date", row_id=patient_id, ciphertext=ciphertext
    )
    return date.fromisoformat(value or "")


def check_same_patient(
    keyring: TenantKeyring, data: schemas.PatientCreate, name_dob_bidx: bytes, pointer: str
) -> None:
    """A patient matched by MRN must also agree on family name and birth date: an MRN typed against the
    wrong person must not attach an encounter to someone else's record."""
    expected = keyring.blind_index("name_dob", name_dob_key(data.family_name, data.birth_date))
    if name_dob_bidx != expected:
        raise Conflict(
            "A patient with this MRN exists with another family name or birth date.",
            errors=[FieldError(f"{pointer}/mrn", "belongs to a patient with another name or birth date")],
        )


# The patient's PHI in its declared order, as one C call on a row (a list opens 100 rows of them).
_PHI = operator.attrgetter(*Patient.__phi_columns__)
# Stored addresses were checked on the way in: read back with the struct's constructor, not a validating
# decode (its patterns cost more than the AES-GCM of the field).
_ADDRESS_FIELDS = msgspec.json.Decoder(dict[str, str | None])


def patient_view(keyring: TenantKeyring, row: Patient | Row[Any]) -> schemas.Patient:
    return patient_views(keyring, [row])[0]


def patient_views(keyring: TenantKeyring, rows: Sequence[Patient | Row[Any]]) -> list[schemas.Patient]:
    """The DTOs of ``rows``, their PHI opened with one opener (what repeats across rows is set up once)."""
    opener = fields.opener(keyring, Patient)
    views = []
    for row in rows:
        mrn, given_name, family_name, birth_date, address, phone = opener.open(row.id, _PHI(row))
        views.append(
            schemas.Patient(
                id=row.id,
                mrn=mrn or "",
                given_name=given_name or "",
                family_name=family_name or "",
                birth_date=date.fromisoformat(birth_date or ""),
                sex=row.sex,  # type: ignore[arg-type]  # constrained by a CHECK constraint
                created_at=row.created_at,
                address=schemas.Address(**_ADDRESS_FIELDS.decode(address)) if address else None,  # type: ignore[arg-type]
                phone=phone,
            )
        )
    return views


async def find_or_add_patient(
    scope: TenantScope, data: schemas.PatientCreate, *, pointer: str = ""
) -> tuple[Patient, bool]:
    """Match on the MRN blind index; create only when the practice has no patient with that MRN.

    A match must also agree on family name and birth date: an MRN typed against the wrong person must not
    attach an encounter to someone else's record.
    """
    repo = scope.repo(PatientRepository)
    existing = await repo.by_mrn_index([scope.keyring.blind_index("mrn", data.mrn)])
    if existing is not None:
        check_same_patient(scope.keyring, data, existing.name_dob_bidx, pointer)
        return existing, False
    row = build_patient(scope.keyring, scope.tenant_id, data)
    await repo.insert(row)
    return row, True


async def create_patient(
    scope: TenantScope, data: schemas.PatientCreate, *, skew: timedelta = DEFAULT_DATE_SKEW
) -> schemas.Patient:
    errors = check_patient(data, latest_plausible_date(skew))
    if errors:
        raise InvalidInput("The patient has invalid fields.", errors=errors)
    row, created = await find_or_add_patient(scope, data)
    if not created:
        raise Conflict(
            "A patient with this MRN already exists.", errors=[FieldError("/mrn", "already exists")]
        )
    scope.audit(
        "patient.create", Action.CREATE, resource_type=PATIENT, resource_ids=[row.id], patient_ids=[row.id]
    )
    return patient_view(scope.keyring, row)


async def load_patient(scope: TenantScope, patient_id: uuid.UUID) -> Patient:
    row = await scope.repo(PatientRepository).get(patient_id)
    if row is None:
        raise NotFound
    return row


async def get_patient(scope: TenantScope, patient_id: uuid.UUID) -> schemas.Patient:
    row = await load_patient(scope, patient_id)
    scope.audit(
        "patient.read", Action.READ, resource_type=PATIENT, resource_ids=[row.id], patient_ids=[row.id]
    )
    return patient_view(scope.keyring, row)


class _PatientJson(MaskedRepr, msgspec.Struct):
    """``schemas.Patient`` as it is written out, field for field in its order, from what was stored: the
    birth date is stored as its ISO text and the address as the JSON of ``schemas.Address`` (written by
    ``build_patient`` with the same encoder, and authenticated by AES-GCM since), so both go out as they
    are, without parsing them into objects only to encode them back."""

    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: str
    sex: str
    created_at: datetime
    address: msgspec.Raw | None = None
    phone: str | None = None


class _PageJson(msgspec.Struct):
    """``Page[schemas.Patient]`` as it is written out."""

    items: list[_PatientJson]
    next_cursor: str | None = None


_PAGE_JSON = msgspec.json.Encoder()


def patient_page_json(keyring: TenantKeyring, rows: PageRows, limit: int) -> bytes:
    """The JSON of ``Page[schemas.Patient]`` for a page read with ``limit + 1`` rows (the extra one only
    says that another page exists), PHI opened with one opener for the page."""
    opener = fields.opener(keyring, Patient)
    shown = rows[:limit]
    items = []
    for row in shown:
        mrn, given_name, family_name, birth_date, address, phone = opener.open(row[PAGE_ID], row[PAGE_PHI:])
        items.append(
            _PatientJson(
                row[PAGE_ID],
                mrn or "",
                given_name or "",
                family_name or "",
                birth_date or "",
                row[PAGE_SEX],
                row[PAGE_CREATED_AT],
                msgspec.Raw(address) if address else None,
                phone,
            )
        )
    last = shown[-1] if shown and len(rows) > limit else None
    cursor = encode_cursor(last[PAGE_CREATED_AT], last[PAGE_ID]) if last is not None else None
    return _PAGE_JSON.encode(_PageJson(items, cursor))


async def list_patients(
    scope: OnePractice,
    *,
    limit: int,
    cursor: str | None,
    mrn: str | None = None,
    family_name: str | None = None,
    birth_date: date | None = None,
) -> bytes:
    """A page of the practice's patients, as the JSON of ``Page[schemas.Patient]``, audited in the read's
    own statement (the event names the patients shown). In a ``TenantRead``, that statement is the whole
    unit of work, run on the driver."""
    if (family_name is None) != (birth_date is None):
        pointer = "/birth_date" if birth_date is None else "/family_name"
        raise InvalidInput(
            "Search by name needs both family_name and birth_date.",
            errors=[FieldError(pointer, "is required")],
        )
    keyring = scope.keyring
    event = scope.event(
        "patient.search",
        Action.READ,
        resource_type=PATIENT,
        detail={"by_mrn": mrn is not None, "by_name_dob": family_name is not None},
    )
    page: Callable[..., Awaitable[PageRows]]
    if isinstance(scope, TenantRead):
        page = functools.partial(page_on_driver, scope.unit)
    else:
        assert isinstance(scope, TenantScope)
        page = scope.repo(PatientRepository).page
    rows = await page(
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        mrn_index=[keyring.blind_index("mrn", mrn)] if mrn is not None else None,
        name_dob_index=(
            [keyring.blind_index("name_dob", name_dob_key(family_name, birth_date))]
            if family_name is not None and birth_date is not None
            else None
        ),
        audit=written_by_caller(event),
    )
    return patient_page_json(keyring, rows, limit)


# Coverage ---------------------------------------------------------------------------------------------


def check_coverage(
    data: schemas.CoverageCreate, manifest: TenantManifest, pointer: str = ""
) -> list[FieldError]:
    errors: list[FieldError] = []
    if data.payer_id not in manifest.payer_ids:
        errors.append(FieldError(f"{pointer}/payer_id", "is not a payer in this practice's manifest"))
    if data.start_date and data.end_date and data.end_date < data.start_date:
        errors.append(FieldError(f"{pointer}/end_date", "is before start_date"))
    # 837P: a dependent's claim names the subscriber (2010BA) apart from the patient (2000C); a self
    # coverage's subscriber is the patient, so demographics of someone else there would contradict it.
    if data.relationship == "self" and data.subscriber is not None:
        errors.append(FieldError(f"{pointer}/subscriber", "must be absent when relationship is self"))
    elif data.relationship != "self" and data.subscriber is None:
        errors.append(FieldError(f"{pointer}/subscriber", "is required when relationship is not self"))
    elif data.subscriber is not None and data.subscriber.birth_date > latest_plausible_date(
        DEFAULT_DATE_SKEW
    ):
        errors.append(FieldError(f"{pointer}/subscriber/birth_date", "is in the future"))
    return errors


def subscriber_view(keyring: TenantKeyring, row: Coverage) -> schemas.Subscriber | None:
    """The subscriber's demographics of a dependent's coverage (None on a self coverage). The caller
    audits the read."""
    return _subscriber_of(unseal(keyring, row), row.subscriber_sex)


def _subscriber_of(phi: dict[str, str | None], sex: str | None) -> schemas.Subscriber | None:
    family_name, birth_date = phi["subscriber_family_name"], phi["subscriber_birth_date"]
    if family_name is None or birth_date is None:
        return None
    address = phi["subscriber_address"]
    return schemas.Subscriber(
        family_name=family_name,
        given_name=phi["subscriber_given_name"] or "",
        middle_name=phi["subscriber_middle_name"],
        birth_date=date.fromisoformat(birth_date),
        sex=sex,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        address=schemas.Address(**_ADDRESS_FIELDS.decode(address)) if address else None,  # type: ignore[arg-type]
    )


def coverage_view(keyring: TenantKeyring, row: Coverage) -> schemas.Coverage:
    phi = unseal(keyring, row)
    return schemas.Coverage(
        id=row.id,
        patient_id=row.patient_id,
        payer_id=row.payer_id,
        member_id=phi["member_id"] or "",
        relationship=row.relationship,  # type: ignore[arg-type]
        priority=row.priority,  # type: ignore[arg-type]
        created_at=row.created_at,
        group_number=phi["group_number"],
        start_date=row.start_date,
        end_date=row.end_date,
        subscriber=_subscriber_of(phi, row.subscriber_sex),
    )


async def find_or_add_coverage(
    scope: TenantScope, patient_id: uuid.UUID, data: schemas.CoverageCreate
) -> tuple[Coverage, bool]:
    repo = scope.repo(CoverageRepository)
    index = scope.keyring.blind_index("member_id", data.member_id)
    existing = await repo.by_member_index(patient_id, data.payer_id, [index])
    if existing is not None:
        return existing, False
    row = build_coverage(scope.keyring, patient_id, data, index)
    await repo.insert(row)
    return row, True


def build_coverage(
    keyring: TenantKeyring, patient_id: uuid.UUID, data: schemas.CoverageCreate, member_index: bytes
) -> Coverage:
    row_id = uuid.uuid4()
    subscriber = data.subscriber
    phi = {
        "member_id": data.member_id,
        "group_number": data.group_number,
        "subscriber_family_name": subscriber.family_name if subscriber else None,
        "subscriber_given_name": subscriber.given_name if subscriber else None,
        "subscriber_middle_name": subscriber.middle_name if subscriber else None,
        "subscriber_birth_date": subscriber.birth_date.isoformat() if subscriber else None,
        "subscriber_address": (
            msgspec.json.encode(subscriber.address).decode() if subscriber and subscriber.address else None
        ),
    }
    return Coverage.build(
        id=row_id,
        patient_id=patient_id,
        payer_id=data.payer_id,
        member_id_bidx=member_index,
        relationship=data.relationship,
        priority=data.priority,
        start_date=data.start_date,
        end_date=data.end_date,
        subscriber_sex=subscriber.sex if subscriber else None,
        **seal(keyring, Coverage, row_id, phi),
    )


async def create_coverage(
    scope: TenantScope, patient_id: uuid.UUID, data: schemas.CoverageCreate
) -> schemas.Coverage:
    await load_patient(scope, patient_id)
    errors = check_coverage(data, scope.manifest)
    if errors:
        raise InvalidInput("The coverage has invalid fields.", errors=errors)
    row, created = await find_or_add_coverage(scope, patient_id, data)
    if not created:
        raise Conflict(
            "This patient already has this member id with this payer.",
            errors=[FieldError("/member_id", "already exists for this payer")],
        )
    scope.audit(
        "coverage.create",
        Action.CREATE,
        resource_type=COVERAGE,
        resource_ids=[row.id],
        patient_ids=[patient_id],
    )
    return coverage_view(scope.keyring, row)


async def list_coverages(scope: TenantScope, patient_id: uuid.UUID) -> list[schemas.Coverage]:
    await load_patient(scope, patient_id)
    rows = await scope.repo(CoverageRepository).for_patient(patient_id)
    scope.audit(
        "coverage.search",
        Action.READ,
        resource_type=COVERAGE,
        resource_ids=[row.id for row in rows],
        patient_ids=[patient_id],
    )
    return [coverage_view(scope.keyring, row) for row in rows]
