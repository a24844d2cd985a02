"""All SQL for providers, encounters and their lines."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select

from rcm.encounters.models import ChargeLine, Diagnosis, Encounter, EncounterEvent, Provider
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository


class ProviderRepository(TenantScopedRepository[Provider]):
    model = Provider

    async def by_npi(self, npi: str) -> Provider | None:
        return (
            (await self.session.execute(self.base_statement().where(Provider.npi == npi))).scalars().first()
        )

    async def by_name(self, name: str, kind: str) -> Provider | None:
        """The practice's provider of this name and kind (case-insensitive), a valid NPI first."""
        stmt = (
            self.base_statement()
            .where(func.lower(Provider.name) == name.lower(), Provider.kind == kind)
            .order_by(Provider.npi_valid.desc(), Provider.created_at, Provider.id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def page(self, *, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Provider]:
        stmt = self.base_statement()
        if after is not None:
            stmt = stmt.where(after_key(Provider.created_at, Provider.id, after))
        stmt = stmt.order_by(Provider.created_at, Provider.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())


class EncounterRepository(TenantScopedRepository[Encounter]):
    model = Encounter

    async def by_external_id(self, external_id: str) -> Encounter | None:
        stmt = self.base_statement().where(Encounter.external_id == external_id)
        return (await self.session.execute(stmt)).scalars().first()

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
        if after is not None:
            stmt = stmt.where(after_key(Encounter.created_at, Encounter.id, after))
        stmt = stmt.order_by(Encounter.created_at, Encounter.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def lines(self, encounter_id: uuid.UUID) -> tuple[Sequence[Diagnosis], Sequence[ChargeLine]]:
        diagnoses = (
            await self.session.execute(
                select(Diagnosis)
                .where(self.tenant_filter(Diagnosis.tenant_id), Diagnosis.encounter_id == encounter_id)
                .order_by(Diagnosis.sequence)
            )
        ).scalars()
        charges = (
            await self.session.execute(
                select(ChargeLine)
                .where(self.tenant_filter(ChargeLine.tenant_id), ChargeLine.encounter_id == encounter_id)
                .order_by(ChargeLine.line_number)
            )
        ).scalars()
        return list(diagnoses), list(charges)

    async def history(self, encounter_id: uuid.UUID) -> list[EncounterEvent]:
        stmt = (
            select(EncounterEvent)
            .where(
                self.tenant_filter(EncounterEvent.tenant_id),
                EncounterEvent.encounter_id == encounter_id,
            )
            .order_by(EncounterEvent.created_at, EncounterEvent.id)
        )
        return list((await self.session.execute(stmt)).scalars())
