"""All SQL for encounters, their lines and their history, and the two statements of an intake."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    Table,
    Text,
    TextClause,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    column,
    delete,
    false,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy import cast as sql_cast

from rcm.audit.repository import audit_event
from rcm.audit.trail import pending_rows, with_audit
from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterDocument, EncounterEvent
from rcm.idempotency.repository import STORE_PARAMS, STORE_SQL
from rcm.kit.jsonwrite import encode, json_value, model_columns, populate, rows_params, table_name
from rcm.kit.models import TenantOwned, utcnow
from rcm.kit.repository import TenantRowRepository, TenantScopedRepository
from rcm.patients.models import Coverage, Patient
from rcm.providers.models import Provider
from rcm.webhooks.models import EventType
from rcm.webhooks.outbox import FAN_OUT_PARAM, FAN_OUT_SQL, OutboxRepository, event_rows
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


# One row per probe of a batch (the JSON array parameter ``probes``): ``line`` is its place in the batch.
_PROBE = (
    func.json_to_recordset(sql_cast(bindparam("probes", type_=Text), JSON))
    .table_valued(
        column("line", Integer),
        column("external_id", Text),
        column("patient_id", Uuid),
        column("mrn_index", LargeBinary),
        column("coverage_id", Uuid),
        column("payer_id", Text),
        column("member_index", LargeBinary),
        *[
            column(f"{prefix}_{name}", type_)
            for prefix in ("rend", "bill")
            for name, type_ in (("id", Uuid), ("npi", Text), ("name", Text), ("kind", Text))
        ],
        name="probe",
    )
    .render_derived(with_types=True)
)


def _in_scope(table: Table) -> ColumnElement[bool]:
    """The tenant filter of the lookup: the practices the transaction is bound to (the scope's one), the
    policy's own expression. Not ``tenant_id = $1``: a practice missing from the table's statistics (a new
    one, before ANALYZE) is then estimated at one row, every index of ``(tenant_id, ...)`` costs the same,
    and a part probed per row may pick one that scans the whole practice for each probe."""
    return table.c.tenant_id == any_(func.rcm.current_tenant_ids())


def _provider_slot(prefix: str) -> Any:
    """A provider by id, or by NPI, or (its NPI failing the check digit: ``name`` is then given) by name
    and kind, the NPI's own row first, then a valid NPI, then the oldest."""
    probe = _PROBE.c
    by_npi = _PROVIDER.c.npi == probe[f"{prefix}_npi"]
    return (
        select(_PROVIDER.c.id, _PROVIDER.c.npi, _PROVIDER.c.npi_valid)
        .where(
            _in_scope(_PROVIDER),
            or_(
                _PROVIDER.c.id == probe[f"{prefix}_id"],
                by_npi,
                and_(
                    func.lower(_PROVIDER.c.name) == probe[f"{prefix}_name"],
                    _PROVIDER.c.kind == probe[f"{prefix}_kind"],
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
    """Built once: for each probe of the batch, every part is at most one row, joined laterally off the
    probe's row (an index lookup each); a part whose probe fields are NULL finds nothing. A constant
    statement whatever the number of probes, so it is compiled and prepared once per connection."""
    probe = _PROBE.c
    enc = (
        select(_ENCOUNTER.c.id)
        .where(_in_scope(_ENCOUNTER), _ENCOUNTER.c.external_id == probe.external_id)
        .limit(1)
        .lateral("enc")
    )
    pat = (
        select(_PATIENT.c.id, _PATIENT.c.name_dob_bidx, _PATIENT.c.birth_date)
        .where(
            _in_scope(_PATIENT),
            or_(_PATIENT.c.id == probe.patient_id, _PATIENT.c.mrn_bidx == probe.mrn_index),
        )
        .limit(1)
        .lateral("pat")
    )
    # A coverage by id, or an inline one: the patient's (found above) with this payer and member id. Two
    # parts, not one with OR: the planner would rather scan the practice's coverages than combine them.
    cov_id = (
        select(_COVERAGE.c.id, _COVERAGE.c.patient_id)
        .where(_in_scope(_COVERAGE), _COVERAGE.c.id == probe.coverage_id)
        .limit(1)
        .lateral("cov_id")
    )
    cov_member = (
        select(_COVERAGE.c.id, _COVERAGE.c.patient_id)
        .where(
            _in_scope(_COVERAGE),
            _COVERAGE.c.patient_id == pat.c.id,
            _COVERAGE.c.payer_id == probe.payer_id,
            _COVERAGE.c.member_id_bidx == probe.member_index,
        )
        .limit(1)
        .lateral("cov_member")
    )
    parts = {
        "enc": enc,
        "pat": pat,
        "cov_id": cov_id,
        "cov_member": cov_member,
        "rend": _provider_slot("rend"),
        "bill": _provider_slot("bill"),
    }
    joined: Any = _PROBE
    for part in parts.values():
        joined = joined.outerjoin(part, true())
    columns = [
        column.label(f"{name}_{column.key}")
        for name, part in parts.items()
        if not name.startswith("cov_")
        for column in part.c
    ]
    columns += [
        case((cov_id.c.id.is_not(None), cov_id.c[key]), else_=cov_member.c[key]).label(f"cov_{key}")
        for key in ("id", "patient_id")
    ]
    return select(probe.line, *columns).select_from(joined).order_by(probe.line)


_LOOKUP = _lookup_statement()
_FOUND_AT = {key: index for index, key in enumerate(_LOOKUP.selected_columns.keys())}


def _found(row: Sequence[Any]) -> IntakeFound:
    at = _FOUND_AT

    def provider(name: str) -> FoundProvider | None:
        if row[at[f"{name}_id"]] is None:
            return None
        return FoundProvider(row[at[f"{name}_id"]], row[at[f"{name}_npi"]], row[at[f"{name}_npi_valid"]])

    return IntakeFound(
        external_id_taken=row[at["enc_id"]] is not None,
        patient=(
            FoundPatient(row[at["pat_id"]], row[at["pat_name_dob_bidx"]], row[at["pat_birth_date"]])
            if row[at["pat_id"]] is not None
            else None
        ),
        coverage=(
            FoundCoverage(row[at["cov_id"]], row[at["cov_patient_id"]])
            if row[at["cov_id"]] is not None
            else None
        ),
        rendering=provider("rend"),
        billing=provider("bill"),
    )


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
    # The practice's webhooks about each new encounter's first status (none when it subscribes to none).
    parts.append(FAN_OUT_SQL)
    names = [table_name(model) for model in _INTAKE_MODELS] + [audit_event.name, FAN_OUT_PARAM]
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

    async def lookup(self, probes: Sequence[IntakeProbe]) -> list[IntakeFound]:
        """What each probe finds, in the probes' order: one statement for the whole batch."""
        given = []
        for line, probe in enumerate(probes):
            values: dict[str, Any] = {
                "line": line,
                "external_id": probe.external_id,
                "patient_id": probe.patient_id,
                "mrn_index": probe.mrn_index,
                "coverage_id": probe.coverage_id,
                "payer_id": probe.coverage_payer_id,
                "member_index": probe.member_index,
            }
            for prefix, slot in (("rend", probe.rendering), ("bill", probe.billing)):
                if slot is not None:
                    values[f"{prefix}_id"] = slot.provider_id
                    values[f"{prefix}_npi"] = slot.npi
                    values[f"{prefix}_name"] = slot.name.lower() if slot.name is not None else None
                    values[f"{prefix}_kind"] = slot.kind
            given.append({key: json_value(value) for key, value in values.items() if value is not None})
        # The tenant is the transaction's (see _in_scope).
        params = encode({"probes": given})
        return [_found(row) for row in (await self._execute(_LOOKUP, params)).tuples()]

    async def write(
        self, rows: Sequence[TenantOwned], *, response: Mapping[str, Any], audit_since: int = 0
    ) -> None:
        """INSERT ``rows`` (of the intake's models, one encounter's or a batch's) and the audit events
        recorded in this transaction since ``audit_since`` (a ``pending_mark``: earlier ones stay pending
        for the commit), and store the idempotent ``response`` (``STORE_SQL``'s parameters): ONE constant
        statement of data-modifying CTEs, each table's rows one JSON parameter.

        Foreign keys are checked at the end of the statement, so a row may refer to another row of it.
        Columns left unset get their model's default here, so the caller's objects hold what the database
        holds.
        """
        tenant_id = self.context.tenant_id  # one practice's intake (the property refuses a cross-tenant one)
        batches = rows_params(_MODEL_COLUMNS, rows, tenant_id=tenant_id, now=utcnow())
        batches[audit_event.name] = pending_rows(self.session, since=audit_since)
        batches[FAN_OUT_PARAM] = event_rows(
            EventType.ENCOUNTER_STATUS_CHANGED,
            ((row.created_at, status_data(row)) for row in rows if isinstance(row, EncounterEvent)),
        )
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


async def encounter_status_changed(repo: TenantRowRepository[Any], event: EncounterEvent) -> None:
    """The practice's webhooks about an encounter's new status, in the same transaction (no PHI)."""
    await OutboxRepository(repo.session, repo.context).emit(
        event.tenant_id, EventType.ENCOUNTER_STATUS_CHANGED, at=event.created_at, data=status_data(event)
    )


def status_data(event: EncounterEvent) -> dict[str, str | None]:
    """An ``encounter.status_changed`` body's data: ids, the status and its fixed reason code (no PHI)."""
    return {"encounter_id": str(event.encounter_id), "status": event.status, "note": event.note}
