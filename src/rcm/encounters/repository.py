"""All SQL for encounters, their lines and their history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterDocument, EncounterEvent
from rcm.kit.models import utcnow
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
