"""All SQL for encounters, their lines and their history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select

from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterEvent
from rcm.kit.repository import TenantScopedRepository


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
