"""All SQL for patients and coverages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import DateTime, Integer, LargeBinary, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from rcm.audit.records import AuditRecord
from rcm.audit.repository import read_with_event_params, read_with_event_statement
from rcm.kit.db import DriverStatement, DriverTransaction
from rcm.kit.repository import TenantScopedRepository, driver_rows
from rcm.patients.models import Coverage, Patient

# What a patient's DTO is made of (and the keyset): not its blind indexes, nor its update time. A page's
# rows hold these in this order (``PAGE_ID``... below).
_VIEW_COLUMNS = (
    Patient.id,
    Patient.created_at,
    Patient.sex,
    *(getattr(Patient, column) for column in Patient.__phi_columns__),
)
PAGE_ID, PAGE_CREATED_AT, PAGE_SEX, PAGE_PHI = 0, 1, 2, 3  # PAGE_PHI: first of the PHI columns
PageRows = Sequence[asyncpg.Record]  # a page as the driver reads it


@cache
def _page_statement(*, by_mrn: bool, by_name_dob: bool, after: bool) -> DriverStatement:
    """A page of patients with its audit event (``read_with_event_statement``), compiled once per shape
    (filters, cursor): the list is the hottest read, and SQLAlchemy building and running it per request
    cost more than the rest of the request's database work."""
    stmt = select(*_VIEW_COLUMNS).where(TenantScopedRepository.tenant_param_filter(Patient.tenant_id))
    if by_mrn:
        stmt = stmt.where(Patient.mrn_bidx == func.any(bindparam("mrn_index", type_=ARRAY(LargeBinary))))
    if by_name_dob:
        stmt = stmt.where(
            Patient.name_dob_bidx == func.any(bindparam("name_dob_index", type_=ARRAY(LargeBinary)))
        )
    if after:
        # The keyset condition for the next page (uses the (tenant, created, id) index).
        stmt = stmt.where(
            tuple_(Patient.created_at, Patient.id)
            > tuple_(
                bindparam("after_at", type_=DateTime(timezone=True)),
                bindparam("after_id", type_=UUID(as_uuid=True)),
            )
        )
    stmt = stmt.order_by(Patient.created_at, Patient.id).limit(bindparam("page_limit", type_=Integer))
    return DriverStatement.compile(read_with_event_statement(stmt, order=("created_at", "id")))


class PatientRepository(TenantScopedRepository[Patient]):
    model = Patient

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
    ) -> PageRows:
        """A page as plain rows of the columns of the patient's DTO (``PAGE_ID``...), and its audit event
        written by the same statement, naming the first ``limit - 1`` patients (the page shown; the last row
        only says that another page exists). One round trip, in the scope's transaction."""
        return await self._driver_rows(*_page_query(limit, after, mrn_index, name_dob_index, audit))


async def page_on_driver(
    unit: DriverTransaction,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    mrn_index: list[bytes] | None = None,
    name_dob_index: list[bytes] | None = None,
    audit: AuditRecord,
) -> PageRows:
    """``PatientRepository.page`` in a unit of work run on the driver without a session."""
    return await driver_rows(unit, *_page_query(limit, after, mrn_index, name_dob_index, audit))


def _page_query(
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    mrn_index: list[bytes] | None,
    name_dob_index: list[bytes] | None,
    audit: AuditRecord,
) -> tuple[DriverStatement, dict[str, Any]]:
    statement = _page_statement(
        by_mrn=mrn_index is not None, by_name_dob=name_dob_index is not None, after=after is not None
    )
    params = read_with_event_params(audit, shown=limit - 1)
    params["page_limit"] = limit
    if mrn_index is not None:
        params["mrn_index"] = mrn_index
    if name_dob_index is not None:
        params["name_dob_index"] = name_dob_index
    if after is not None:
        params["after_at"], params["after_id"] = after
    return statement, params


class CoverageRepository(TenantScopedRepository[Coverage]):
    model = Coverage

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
