"""All SQL of the scrubber: the one read of a coded encounter, scrub runs and results, and the billing
item a failed scrub keeps open."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    Text,
    TextClause,
    Uuid,
    bindparam,
    func,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.orm import aliased

from rcm.audit.repository import audit_event
from rcm.audit.trail import pending_rows, with_audit
from rcm.claims.models import Claim
from rcm.codes.models import CodeSetRelease
from rcm.encounters.models import ChargeLine, Diagnosis, Encounter
from rcm.idempotency.repository import STORE_PARAMS, STORE_SQL
from rcm.kit.jsonwrite import encode, model_columns, populate, rows_params, table_name
from rcm.kit.models import utcnow
from rcm.kit.repository import TenantScopedRepository
from rcm.patients.models import Coverage, Patient
from rcm.providers.models import Provider
from rcm.scrub.inputs import CoverageIn, DiagnosisIn, InstitutionalIn, LineIn, ProviderIn, ScrubInput
from rcm.scrub.models import ScrubResult, ScrubRun
from rcm.tenancy.vocabulary import ClaimType
from rcm.workqueue.models import ItemEventType, ItemStatus, QueueKind, SubjectType, WorkItem, WorkItemEvent
from rcm.workqueue.repository import WorkItemRepository

_ITEM = cast(Table, WorkItem.__table__)


# Building the read statement costs more CPU than running it: it is built once per practice (its tenant
# filter, written by ``tenant_filter`` as everywhere) and lock mode, with the encounter id as a parameter.
_LOAD_STATEMENTS: dict[tuple[tuple[uuid.UUID, ...], bool], Select[Any]] = {}
_LOAD_CACHE_SIZE = 1024


class ScrubInputRepository(TenantScopedRepository[Encounter]):
    model = Encounter

    async def load(self, encounter_id: uuid.UUID, *, lock: bool) -> ScrubInput | None:
        """The encounter with its patient's sex and sealed birth date, coverage, providers, diagnoses and
        lines: ONE statement (lines and diagnoses aggregated as JSON). ``lock`` holds the encounter row
        until commit, so two scrubs of one encounter queue up instead of racing for its billing item."""
        key = (tuple(self.context.tenant_ids), lock)
        stmt = _LOAD_STATEMENTS.get(key)
        if stmt is None:
            if len(_LOAD_STATEMENTS) >= _LOAD_CACHE_SIZE:
                _LOAD_STATEMENTS.clear()
            stmt = _LOAD_STATEMENTS[key] = self._load_statement(lock)
        row = (await self._execute(stmt, {"encounter_id": encounter_id})).first()
        if row is None:
            return None
        return _scrub_input(row)

    def _load_statement(self, lock: bool) -> Select[Any]:
        rendering = aliased(Provider)
        billing = aliased(Provider)
        diagnoses = (
            select(
                func.coalesce(
                    func.jsonb_agg(
                        aggregate_order_by(
                            func.jsonb_build_array(Diagnosis.sequence, Diagnosis.code), Diagnosis.sequence
                        )
                    ),
                    func.jsonb_build_array(),
                )
            )
            .where(
                self.tenant_filter(Diagnosis.tenant_id),
                Diagnosis.tenant_id == Encounter.tenant_id,
                Diagnosis.encounter_id == Encounter.id,
            )
            .scalar_subquery()
        )
        lines = (
            select(
                func.coalesce(
                    func.jsonb_agg(
                        aggregate_order_by(
                            func.jsonb_build_array(
                                ChargeLine.line_number,
                                ChargeLine.procedure_code,
                                ChargeLine.modifiers,
                                ChargeLine.units,
                                ChargeLine.charge_cents,
                                ChargeLine.diagnosis_pointers,
                                ChargeLine.service_date,
                                ChargeLine.revenue_code,
                            ),
                            ChargeLine.line_number,
                        )
                    ),
                    func.jsonb_build_array(),
                )
            )
            .where(
                self.tenant_filter(ChargeLine.tenant_id),
                ChargeLine.tenant_id == Encounter.tenant_id,
                ChargeLine.encounter_id == Encounter.id,
            )
            .scalar_subquery()
        )
        # Which code sets are loaded, from when (global table of rcm.codes): read here, in the same round
        # trip, so the reference lookups can tell "not loaded" from "no edit" without one more.
        first_days = (
            select(
                CodeSetRelease.code_set.label("code_set"),
                func.min(CodeSetRelease.effective_from).label("first_day"),
            )
            .group_by(CodeSetRelease.code_set)
            .subquery()
        )
        starts = select(
            func.coalesce(
                func.jsonb_object_agg(first_days.c.code_set, first_days.c.first_day),
                func.jsonb_build_object(),
            )
        ).scalar_subquery()
        # The original claim a clean scrub built for this coverage's responsibility (claims are built once:
        # read here so a re-scrub of a billed encounter costs no round trip of its own).
        built = (
            select(Claim.id)
            .where(
                self.tenant_filter(Claim.tenant_id),
                Claim.tenant_id == Encounter.tenant_id,
                Claim.encounter_id == Encounter.id,
                Claim.frequency == 1,
                Claim.responsibility == Coverage.priority,
            )
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            select(
                Encounter.id,
                Encounter.patient_id,
                Encounter.status,
                Encounter.service_date,
                Encounter.place_of_service,
                Patient.sex,
                Patient.birth_date,
                rendering.npi,
                billing.npi,
                Coverage.id,
                Coverage.payer_id,
                Coverage.member_id,
                Coverage.relationship,
                Coverage.start_date,
                Coverage.end_date,
                Coverage.priority,
                built,
                type_coerce(diagnoses, JSONB),
                type_coerce(lines, JSONB),
                type_coerce(starts, JSONB),
                Encounter.claim_type,
                Encounter.type_of_bill,
                Encounter.statement_start,
                Encounter.statement_end,
                Encounter.admission_date,
                Encounter.admission_type,
                Encounter.patient_status,
                Encounter.attending_npi,
            )
            .join(Patient, (Patient.tenant_id == Encounter.tenant_id) & (Patient.id == Encounter.patient_id))
            .join(
                rendering,
                (rendering.tenant_id == Encounter.tenant_id)
                & (rendering.id == Encounter.rendering_provider_id),
            )
            .join(
                billing,
                (billing.tenant_id == Encounter.tenant_id) & (billing.id == Encounter.billing_provider_id),
            )
            .outerjoin(
                Coverage, (Coverage.tenant_id == Encounter.tenant_id) & (Coverage.id == Encounter.coverage_id)
            )
            .where(self.tenant_filter(Encounter.tenant_id), Encounter.id == bindparam("encounter_id"))
        )
        return stmt.with_for_update(of=Encounter.__table__) if lock else stmt

    async def patient_of(self, encounter_id: uuid.UUID) -> uuid.UUID | None:
        return await self._first(
            select(Encounter.patient_id).where(
                self.tenant_filter(Encounter.tenant_id), Encounter.id == encounter_id
            )
        )


def _scrub_input(row: Any) -> ScrubInput:
    (eid, patient_id, status, service_date, pos, sex, birth_sealed, r_npi, b_npi) = row[:9]
    (coverage_id, payer_id, member_id, relationship, start, end, priority, claim_id) = row[9:17]
    (dx, cl, starts, claim_type) = row[17:21]
    institutional = InstitutionalIn(*row[21:]) if claim_type is ClaimType.INSTITUTIONAL else None
    return ScrubInput(
        encounter_id=eid,
        patient_id=patient_id,
        status=status,
        service_date=service_date,
        place_of_service=pos,
        patient_sex=sex,
        providers=(ProviderIn("rendering", r_npi), ProviderIn("billing", b_npi)),
        coverage=(
            CoverageIn(payer_id, bool(member_id), relationship, start, end, coverage_id, priority, claim_id)
            if coverage_id
            else None
        ),
        diagnoses=tuple(DiagnosisIn(int(seq), str(code)) for seq, code in dx),
        lines=tuple(_line(item, service_date) for item in cl),
        birth_date_sealed=birth_sealed,
        code_set_starts={str(name): date.fromisoformat(day) for name, day in starts.items()},
        claim_type=claim_type,
        institutional=institutional,
    )


def _line(item: list[Any], encounter_date: date) -> LineIn:
    number, code, modifiers, units, cents, pointers, day, revenue_code = item
    return LineIn(
        line_number=int(number),
        procedure_code=str(code),
        modifiers=tuple(modifiers or ()),
        units=int(units),
        charge_cents=int(cents),
        diagnosis_pointers=tuple(int(p) for p in pointers or ()),
        service_date=date.fromisoformat(day) if day else encounter_date,
        revenue_code=revenue_code,
    )


# A stored scrub's rows, parents first, with its audit events and idempotent answer: one constant statement.
_WRITE_MODELS: tuple[Any, ...] = (WorkItem, WorkItemEvent, ScrubRun, ScrubResult)
_WRITE_COLUMNS = {model: model_columns(model) for model in _WRITE_MODELS}


def _write_statement() -> TextClause:
    parts = [
        populate(cast(Table, model.__table__), [name for _, name, _ in _WRITE_COLUMNS[model]])
        for model in _WRITE_MODELS
    ]
    parts.append(STORE_SQL)  # with ``idem_id`` NULL it stores nothing
    names = [table_name(model) for model in _WRITE_MODELS] + [audit_event.name]
    return text(with_audit(parts)).bindparams(
        *[bindparam(name, type_=Text) for name in names], bindparam("tenant_id", type_=Uuid), *STORE_PARAMS
    )


_WRITE = _write_statement()


class ScrubRunRepository(TenantScopedRepository[ScrubRun]):
    model = ScrubRun

    async def write(
        self,
        rows: Sequence[WorkItem | WorkItemEvent | ScrubRun | ScrubResult],
        *,
        response: Mapping[str, Any],
    ) -> None:
        """INSERT a stored scrub's ``rows`` (its run and results, a new billing item and its event) with
        the audit events recorded so far, and store the idempotent ``response`` (``STORE_SQL``'s
        parameters): ONE round trip, whatever the number of results."""
        tenant_id = self.context.tenant_id
        batches = rows_params(_WRITE_COLUMNS, rows, tenant_id=tenant_id, now=utcnow())
        batches[audit_event.name] = pending_rows(self.session)
        await self._execute(_WRITE, {**encode(batches), **response, "tenant_id": tenant_id})

    async def latest(self, encounter_id: uuid.UUID) -> tuple[ScrubRun, list[ScrubResult]] | None:
        stmt = (
            self.base_statement()
            .where(ScrubRun.encounter_id == encounter_id)
            .order_by(ScrubRun.created_at.desc(), ScrubRun.id.desc())
            .limit(1)
        )
        run = await self._first(stmt)
        if run is None:
            return None
        results = await self._all(
            self.statement_for(ScrubResult)
            .where(ScrubResult.scrub_run_id == run.id)
            .order_by(ScrubResult.position)
        )
        return run, results


class BillingItemRepository(WorkItemRepository):
    """The billing-queue item about an encounter that failed its scrub: one live item per encounter."""

    async def live_item(self, encounter_id: uuid.UUID) -> WorkItem | None:
        stmt = self.base_statement().where(
            WorkItem.kind == QueueKind.BILLING,
            WorkItem.subject_type == SubjectType.ENCOUNTER,
            WorkItem.subject_id == encounter_id,
            WorkItem.status.in_([ItemStatus.OPEN, ItemStatus.LEASED]),
        )
        return await self._first(stmt)

    async def complete_live(self, encounter_id: uuid.UUID, *, actor: str) -> list[WorkItem]:
        """A clean re-scrub resolves the encounter's live billing item (its ``completed`` event too)."""
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.kind == QueueKind.BILLING,
                _ITEM.c.subject_type == SubjectType.ENCOUNTER,
                _ITEM.c.subject_id == encounter_id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED]),
            )
            .values(
                status=ItemStatus.DONE,
                leased_by=None,
                lease_expires_at=None,
                updated_at=func.clock_timestamp(),
            )
            .returning(*_ITEM.c)
        )
        return await self._run(changed, ItemEventType.COMPLETED, actor)
