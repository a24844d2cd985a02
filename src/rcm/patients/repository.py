"""All SQL for patients and coverages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from rcm.audit.records import AuditRecord
from rcm.audit.repository import read_with_event
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository
from rcm.patients.models import Coverage, Patient

# What a patient's DTO is made of (and the keyset): not its blind indexes, nor its update time.
_VIEW_COLUMNS = (
    Patient.id,
    Patient.created_at,
    Patient.sex,
    *(getattr(Patient, column) for column in Patient.__phi_columns__),
)


class PatientRepository(TenantScopedRepository[Patient]):
    model = Patient

    async def by_ids(self, patient_ids: Sequence[uuid.UUID]) -> list[Patient]:
        stmt = self.base_statement().where(Patient.id.in_(list(patient_ids)))
        return list((await self.session.execute(stmt)).scalars())

    async def by_mrn_index(self, candidates: list[bytes]) -> Patient | None:
        stmt = self.base_statement().where(Patient.mrn_bidx.in_(candidates))
        return (await self.session.execute(stmt)).scalars().first()

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        mrn_index: list[bytes] | None = None,
        name_dob_index: list[bytes] | None = None,
        audit: AuditRecord,
    ) -> Sequence[Row[Any]]:
        """A page as plain rows of the columns of the patient's DTO (Core rows, no ORM objects: a list of
        100 is read once and dropped, and building and tracking 100 instances cost as much as decrypting
        them), and its audit event written by the same statement, naming the first ``limit - 1`` patients
        (the page shown; the last row only says that another page exists)."""
        stmt = self.base_statement().with_only_columns(*_VIEW_COLUMNS)
        if mrn_index is not None:
            stmt = stmt.where(Patient.mrn_bidx.in_(mrn_index))
        if name_dob_index is not None:
            stmt = stmt.where(Patient.name_dob_bidx.in_(name_dob_index))
        if after is not None:
            stmt = stmt.where(after_key(Patient.created_at, Patient.id, after))
        stmt = stmt.order_by(Patient.created_at, Patient.id).limit(limit)
        audited, params = read_with_event(stmt, order=("created_at", "id"), shown=limit - 1, record=audit)
        return (await self.session.execute(audited, params)).all()


class CoverageRepository(TenantScopedRepository[Coverage]):
    model = Coverage

    async def by_ids(self, coverage_ids: Sequence[uuid.UUID]) -> list[Coverage]:
        stmt = self.base_statement().where(Coverage.id.in_(list(coverage_ids)))
        return list((await self.session.execute(stmt)).scalars())

    async def for_patient(self, patient_id: uuid.UUID) -> list[Coverage]:
        stmt = self.base_statement().where(Coverage.patient_id == patient_id).order_by(Coverage.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def by_member_index(
        self, patient_id: uuid.UUID, payer_id: str, candidates: list[bytes]
    ) -> Coverage | None:
        stmt = self.base_statement().where(
            Coverage.patient_id == patient_id,
            Coverage.payer_id == payer_id,
            Coverage.member_id_bidx.in_(candidates),
        )
        return (await self.session.execute(stmt)).scalars().first()
