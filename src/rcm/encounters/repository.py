"""All SQL for encounters, their lines and their history, and the two statements of an intake."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    LargeBinary,
    Select,
    Table,
    Text,
    TextClause,
    Uuid,
    and_,
    bindparam,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)

from rcm.audit.repository import audit_event
from rcm.audit.trail import pending_rows, with_audit
from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterDocument, EncounterEvent
from rcm.idempotency.repository import STORE_PARAMS, STORE_SQL
from rcm.kit.jsonwrite import encode, model_columns, populate, rows_params, table_name
from rcm.kit.models import TenantOwned, utcnow
from rcm.kit.repository import TenantScopedRepository
from rcm.patients.models import Coverage, Patient
from rcm.providers.models import Provider
from rcm.workqueue.models import WorkItem, WorkItemEvent


class EncounterRepository(TenantScopedRepository[Encounter]):
    model = Encounter

    async def by_external_id(self, external_id: str) -> Encounter | None:
        return await self._first(self.base_statement().where(Encounter.external_id == external_id))

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: str | None = None,
        patient_id: uuid.UUID | None = None,
        external_id: str | None = None,
        service_date_from: date | None = None,
        service_date_to: date | None = None,
    ) -> list[Encounter]:
        stmt = self.base_statement()
        if status is not None:
            stmt = stmt.where(Encounter.status == status)
        if patient_id is not None:
            stmt = stmt.where(Encounter.patient_id == patient_id)
        if external_id is not None:
            stmt = stmt.where(Encounter.external_id == external_id)
        if service_date_from is not None:
            stmt = stmt.where(Encounter.service_date >= service_date_from)
        if service_date_to is not None:
            stmt = stmt.where(Encounter.service_date <= service_date_to)
        return await self.keyset_page(stmt, limit=limit, after=after)

    async def status_totals(
        self, *, service_date_from: date | None, service_date_to: date | None
    ) -> list[tuple[str, int, int]]:
        """(status, encounters, total charge cents) per status, for the intake summary (no PHI column)."""
        stmt = (
            select(Encounter.status, func.count(), func.coalesce(func.sum(Encounter.total_charge_cents), 0))
            .where(self.tenant_filter(Encounter.tenant_id))
            .group_by(Encounter.status)
            .order_by(Encounter.status)
        )
        if service_date_from is not None:
            stmt = stmt.where(Encounter.service_date >= service_date_from)
        if service_date_to is not None:
            stmt = stmt.where(Encounter.service_date <= service_date_to)
        return [(status, int(n), int(cents)) for status, n, cents in await self._rows(stmt)]

    async def lines(self, encounter_id: uuid.UUID) -> tuple[Sequence[Diagnosis], Sequence[ChargeLine]]:
        diagnoses = await self._all(
            self.statement_for(Diagnosis)
            .where(Diagnosis.encounter_id == encounter_id)
            .order_by(Diagnosis.sequence)
        )
        charges = await self._all(
            self.statement_for(ChargeLine)
            .where(ChargeLine.encounter_id == encounter_id)
            .order_by(ChargeLine.line_number)
        )
        return diagnoses, charges

    async def history(self, encounter_id: uuid.UUID) -> list[EncounterEvent]:
        stmt = (
            self.statement_for(EncounterEvent)
            .where(EncounterEvent.encounter_id == encounter_id)
            .order_by(EncounterEvent.created_at, EncounterEvent.id)
        )
        return await self._all(stmt)


# Intake: one statement to look up everything an encounter refers to, one to write it all ----------------


@dataclass(frozen=True, slots=True)
class ProviderProbe:
    """How to find one provider slot: by id, or by NPI (and, for an NPI failing its check digit, by name
    and kind, a valid NPI first: the practice's provider that NPI is a typo of)."""

    provider_id: uuid.UUID | None = None
    npi: str | None = None
    name: str | None = None  # only when the NPI fails its check digit
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class IntakeProbe:
    external_id: str
    patient_id: uuid.UUID | None = None
    mrn_index: bytes | None = None
    coverage_id: uuid.UUID | None = None
    # An inline coverage: the patient's (the one found above) with this payer and member id.
    coverage_payer_id: str | None = None
    member_index: bytes | None = None
    rendering: ProviderProbe | None = None
    billing: ProviderProbe | None = None


@dataclass(frozen=True, slots=True)
class FoundPatient:
    id: uuid.UUID
    name_dob_bidx: bytes
    birth_date: bytes  # ciphertext


@dataclass(frozen=True, slots=True)
class FoundCoverage:
    id: uuid.UUID
    patient_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class FoundProvider:
    id: uuid.UUID
    npi: str
    npi_valid: bool


@dataclass(frozen=True, slots=True)
class IntakeFound:
    external_id_taken: bool
    patient: FoundPatient | None
    coverage: FoundCoverage | None
    rendering: FoundProvider | None
    billing: FoundProvider | None


# The unique constraint a concurrent intake of the same external id runs into (migration 0005).
EXTERNAL_ID_UNIQUE = "uq_encounter_tenant_id_external_id"
_ENCOUNTER = cast(Table, Encounter.__table__)
_PATIENT = cast(Table, Patient.__table__)
_COVERAGE = cast(Table, Coverage.__table__)
_PROVIDER = cast(Table, Provider.__table__)


def _provider_slot(prefix: str, tenant: BindParameter[uuid.UUID]) -> Any:
    """A provider by id, or by NPI, or (its NPI failing the check digit: ``name`` is then given) by name
    and kind, the NPI's own row first, then a valid NPI, then the oldest."""
    by_npi = _PROVIDER.c.npi == bindparam(f"{prefix}_npi", type_=Text)
    return (
        select(_PROVIDER.c.id, _PROVIDER.c.npi, _PROVIDER.c.npi_valid)
        .where(
            _PROVIDER.c.tenant_id == tenant,
            or_(
                _PROVIDER.c.id == bindparam(f"{prefix}_id", type_=Uuid),
                by_npi,
                and_(
                    func.lower(_PROVIDER.c.name) == bindparam(f"{prefix}_name", type_=Text),
                    _PROVIDER.c.kind == bindparam(f"{prefix}_kind", type_=Text),
                ),
            ),
        )
        .order_by(
            func.coalesce(by_npi, false()).desc(),
            _PROVIDER.c.npi_valid.desc(),
            _PROVIDER.c.created_at,
            _PROVIDER.c.id,
        )
        .limit(1)
        .lateral(prefix)
    )


def _lookup_statement() -> Select[Any]:
    """Built once: every part is at most one row, joined laterally off a one-row base; a part whose
    parameters are NULL finds nothing. A constant statement is compiled and prepared once per connection."""
    tenant = bindparam("tenant_id", type_=Uuid)
    enc = (
        select(_ENCOUNTER.c.id)
        .where(
            _ENCOUNTER.c.tenant_id == tenant,
            _ENCOUNTER.c.external_id == bindparam("external_id", type_=Text),
        )
        .limit(1)
        .lateral("enc")
    )
    pat = (
        select(_PATIENT.c.id, _PATIENT.c.name_dob_bidx, _PATIENT.c.birth_date)
        .where(
            _PATIENT.c.tenant_id == tenant,
            or_(
                _PATIENT.c.id == bindparam("patient_id", type_=Uuid),
                _PATIENT.c.mrn_bidx == bindparam("mrn_index", type_=LargeBinary),
            ),
        )
        .limit(1)
        .lateral("pat")
    )
    cov = (
        select(_COVERAGE.c.id, _COVERAGE.c.patient_id)
        .where(
            _COVERAGE.c.tenant_id == tenant,
            or_(
                _COVERAGE.c.id == bindparam("coverage_id", type_=Uuid),
                # An inline coverage: the patient's (found above) with this payer and member id.
                and_(
                    _COVERAGE.c.patient_id == pat.c.id,
                    _COVERAGE.c.payer_id == bindparam("payer_id", type_=Text),
                    _COVERAGE.c.member_id_bidx == bindparam("member_index", type_=LargeBinary),
                ),
            ),
        )
        .limit(1)
        .lateral("cov")
    )
    parts = {
        "enc": enc,
        "pat": pat,
        "cov": cov,
        "rend": _provider_slot("rend", tenant),
        "bill": _provider_slot("bill", tenant),
    }
    joined: Any = select(literal(1).label("one")).subquery("base")
    for part in parts.values():
        joined = joined.outerjoin(part, true())
    columns = [column.label(f"{name}_{column.key}") for name, part in parts.items() for column in part.c]
    return select(*columns).select_from(joined)


_LOOKUP = _lookup_statement()


# Parents first (the foreign keys are checked at the end of the statement anyway).
_INTAKE_MODELS: tuple[Any, ...] = (
    Patient,
    Coverage,
    Provider,
    Encounter,
    Diagnosis,
    ChargeLine,
    EncounterEvent,
    WorkItem,
    WorkItemEvent,
)
_MODEL_COLUMNS = {model: model_columns(model) for model in _INTAKE_MODELS}


def _write_statement() -> TextClause:
    parts = [
        populate(cast(Table, model.__table__), [name for _, name, _ in _MODEL_COLUMNS[model]])
        for model in _INTAKE_MODELS
    ]
    # The request's idempotent response, stored along (with ``idem_id`` NULL it stores nothing).
    parts.append(STORE_SQL)
    names = [table_name(model) for model in _INTAKE_MODELS] + [audit_event.name]
    return text(with_audit(parts)).bindparams(
        *[bindparam(name, type_=Text) for name in names],
        bindparam("tenant_id", type_=Uuid),
        *STORE_PARAMS,
    )


_WRITE = _write_statement()


class IntakeRepository(TenantScopedRepository[Encounter]):
    """The SQL of one intake across the tables an encounter refers to: every lookup in one statement, and
    every row (with the audit events recorded so far) in one more. Both statements are constant, so they
    are compiled once per process and prepared once per connection: a round trip, and SQLAlchemy's work
    on a statement, cost a request more than PostgreSQL's."""

    model = Encounter

    async def lookup(self, probe: IntakeProbe) -> IntakeFound:
        params: dict[str, Any] = {
            "tenant_id": self.context.tenant_id,
            "external_id": probe.external_id,
            "patient_id": probe.patient_id,
            "mrn_index": probe.mrn_index,
            "coverage_id": probe.coverage_id,
            "payer_id": probe.coverage_payer_id,
            "member_index": probe.member_index,
        }
        for prefix, given in (("rend", probe.rendering), ("bill", probe.billing)):
            slot = given or ProviderProbe()
            params[f"{prefix}_id"] = slot.provider_id
            params[f"{prefix}_npi"] = slot.npi
            params[f"{prefix}_name"] = slot.name.lower() if slot.name is not None else None
            params[f"{prefix}_kind"] = slot.kind
        row = (await self._execute(_LOOKUP, params)).one()._mapping

        def provider(name: str) -> FoundProvider | None:
            if row[f"{name}_id"] is None:
                return None
            return FoundProvider(row[f"{name}_id"], row[f"{name}_npi"], row[f"{name}_npi_valid"])

        return IntakeFound(
            external_id_taken=row["enc_id"] is not None,
            patient=(
                FoundPatient(row["pat_id"], row["pat_name_dob_bidx"], row["pat_birth_date"])
                if row["pat_id"] is not None
                else None
            ),
            coverage=FoundCoverage(row["cov_id"], row["cov_patient_id"])
            if row["cov_id"] is not None
            else None,
            rendering=provider("rend"),
            billing=provider("bill"),
        )

    async def write(self, rows: Sequence[TenantOwned], *, response: Mapping[str, Any]) -> None:
        """INSERT ``rows`` (of the intake's models) and the audit events recorded so far in this
        transaction, and store the idempotent ``response`` (``STORE_SQL``'s parameters): ONE constant
        statement of data-modifying CTEs, each table's rows one JSON parameter.

        Foreign keys are checked at the end of the statement, so a row may refer to another row of it.
        Columns left unset get their model's default here, so the caller's objects hold what the database
        holds.
        """
        tenant_id = self.context.tenant_id  # one practice's intake (the property refuses a cross-tenant one)
        batches = rows_params(_MODEL_COLUMNS, rows, tenant_id=tenant_id, now=utcnow())
        batches[audit_event.name] = pending_rows(self.session)
        params = encode(batches)
        await self._execute(_WRITE, {**params, **response, "tenant_id": tenant_id})


class EncounterChangeRepository(TenantScopedRepository[Encounter]):
    """Corrections and cancellation of an encounter before it is billed."""

    model = Encounter

    async def lock(self, encounter_id: uuid.UUID) -> Encounter | None:
        stmt = self.for_update(self.base_statement().where(Encounter.id == encounter_id))
        found: Encounter | None = (await self._execute(stmt)).scalars().first()
        return found

    async def change(self, encounter_id: uuid.UUID, **values: Any) -> None:
        await self._execute(
            update(Encounter)
            .where(self.tenant_filter(Encounter.tenant_id), Encounter.id == encounter_id)
            .values(**values, updated_at=utcnow())
        )

    async def replace_lines(
        self, encounter_id: uuid.UUID, diagnoses: list[Diagnosis] | None, charges: list[ChargeLine] | None
    ) -> None:
        if diagnoses is not None:
            await self._execute(
                delete(Diagnosis).where(
                    self.tenant_filter(Diagnosis.tenant_id), Diagnosis.encounter_id == encounter_id
                )
            )
        if charges is not None:
            await self._execute(
                delete(ChargeLine).where(
                    self.tenant_filter(ChargeLine.tenant_id), ChargeLine.encounter_id == encounter_id
                )
            )
        await self.insert(*(diagnoses or []), *(charges or []))


class EncounterDocumentRepository(TenantScopedRepository[EncounterDocument]):
    model = EncounterDocument

    async def for_encounter(self, encounter_id: uuid.UUID) -> list[EncounterDocument]:
        stmt = self.base_statement().where(EncounterDocument.encounter_id == encounter_id)
        return await self._all(stmt.order_by(EncounterDocument.created_at, EncounterDocument.id))

    async def one(self, encounter_id: uuid.UUID, document_id: uuid.UUID) -> EncounterDocument | None:
        return await self._first(
            self.base_statement().where(
                EncounterDocument.encounter_id == encounter_id, EncounterDocument.id == document_id
            )
        )
