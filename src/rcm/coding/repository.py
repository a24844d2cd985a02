"""All SQL of coding work: versions and their rows, queries, fee schedules, QA samples and agreement."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Date, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from rcm.coding.models import (
    CodingDiagnosis,
    CodingLine,
    CodingQuery,
    CodingVersion,
    FeeScheduleEntry,
    QaSample,
    QueryStatus,
    SampleStatus,
    VersionState,
)
from rcm.encounters.models import Encounter, EncounterEvent
from rcm.encounters.repository import encounter_status_changed
from rcm.kit.models import utcnow
from rcm.kit.repository import TenantRowRepository, TenantScopedRepository
from rcm.workqueue.models import ItemStatus, WorkItem


class CodingRepository(TenantScopedRepository[CodingVersion]):
    model = CodingVersion

    async def next_number(self, work_item_id: uuid.UUID) -> int:
        stmt = select(func.coalesce(func.max(CodingVersion.number), 0) + 1).where(
            self.tenant_filter(CodingVersion.tenant_id), CodingVersion.work_item_id == work_item_id
        )
        return int((await self._execute(stmt)).scalar_one())

    async def latest(self, work_item_id: uuid.UUID, *states: VersionState) -> CodingVersion | None:
        stmt = self.base_statement().where(CodingVersion.work_item_id == work_item_id)
        if states:
            stmt = stmt.where(CodingVersion.state.in_(states))
        return await self._first(stmt.order_by(CodingVersion.number.desc()).limit(1))

    async def rows(self, version_id: uuid.UUID) -> tuple[list[CodingDiagnosis], list[CodingLine]]:
        diagnoses = await self._all(
            self.statement_for(CodingDiagnosis)
            .where(CodingDiagnosis.coding_version_id == version_id)
            .order_by(CodingDiagnosis.sequence)
        )
        lines = await self._all(
            self.statement_for(CodingLine)
            .where(CodingLine.coding_version_id == version_id)
            .order_by(CodingLine.line_number)
        )
        return diagnoses, lines

    # Queries to the practice ----------------------------------------------------------------------------

    async def queries(self, work_item_id: uuid.UUID) -> list[CodingQuery]:
        stmt = self.statement_for(CodingQuery).where(CodingQuery.work_item_id == work_item_id)
        return await self._all(stmt.order_by(CodingQuery.created_at, CodingQuery.id))

    async def open_queries(self, *, limit: int) -> list[CodingQuery]:
        stmt = self.statement_for(CodingQuery).where(CodingQuery.status == QueryStatus.OPEN)
        return await self._all(stmt.order_by(CodingQuery.created_at, CodingQuery.id).limit(limit))

    async def query(self, query_id: uuid.UUID) -> CodingQuery | None:
        return await self._first(self.statement_for(CodingQuery).where(CodingQuery.id == query_id))

    async def answer(self, query_id: uuid.UUID, *, answer: bytes, answered_by: str) -> CodingQuery | None:
        """Record the answer to an open query (once: a second answer finds nothing open)."""
        stmt = (
            update(CodingQuery)
            .where(
                self.tenant_filter(CodingQuery.tenant_id),
                CodingQuery.id == query_id,
                CodingQuery.status == QueryStatus.OPEN,
            )
            .values(
                status=QueryStatus.ANSWERED, answer=answer, answered_by=answered_by, answered_at=func.now()
            )
            .returning(CodingQuery)
        )
        # The session may hold the row from the read before: refresh it from what the UPDATE returned.
        refreshed = select(CodingQuery).from_statement(stmt).execution_options(populate_existing=True)
        return (await self._execute(refreshed)).scalars().first()

    # QA -------------------------------------------------------------------------------------------------

    async def sample_candidates(self, *, limit: int, coder: str | None, exclude: str) -> list[CodingVersion]:
        """Completed versions of done items not yet sampled, newest first (random among the newest 10x)."""
        sampled = select(QaSample.original_version_id).where(self.tenant_filter(QaSample.tenant_id))
        item_done = select(WorkItem.id).where(
            self.tenant_filter(WorkItem.tenant_id), WorkItem.status == ItemStatus.DONE
        )
        recent = (
            self.base_statement()
            .where(
                CodingVersion.state == VersionState.COMPLETED,
                CodingVersion.id.not_in(sampled),
                CodingVersion.work_item_id.in_(item_done),
                CodingVersion.coder != exclude,
            )
            .order_by(CodingVersion.created_at.desc())
            .limit(limit * 10)
        )
        if coder is not None:
            recent = recent.where(CodingVersion.coder == coder)
        pool = recent.subquery()
        stmt = (
            select(CodingVersion)
            .join(pool, CodingVersion.id == pool.c.id)
            .where(self.tenant_filter(CodingVersion.tenant_id), CodingVersion.tenant_id == pool.c.tenant_id)
        )
        return await self._all(stmt.order_by(func.random()).limit(limit))

    async def sample(self, sample_id: uuid.UUID) -> QaSample | None:
        return await self._first(self.statement_for(QaSample).where(QaSample.id == sample_id))

    async def open_samples(self, *, limit: int) -> list[QaSample]:
        stmt = self.statement_for(QaSample).where(QaSample.status == SampleStatus.OPEN)
        return await self._all(stmt.order_by(QaSample.created_at, QaSample.id).limit(limit))

    async def reviewed(
        self, sample_id: uuid.UUID, *, reviewer: str, version_id: uuid.UUID, scores: dict[str, int]
    ) -> QaSample | None:
        stmt = (
            update(QaSample)
            .where(
                self.tenant_filter(QaSample.tenant_id),
                QaSample.id == sample_id,
                QaSample.status == SampleStatus.OPEN,
            )
            .values(
                status=SampleStatus.REVIEWED,
                reviewer=reviewer,
                review_version_id=version_id,
                reviewed_at=func.now(),
                **scores,
            )
            .returning(QaSample)
        )
        refreshed = select(QaSample).from_statement(stmt).execution_options(populate_existing=True)
        return (await self._execute(refreshed)).scalars().first()

    async def agreement(self, *, since: datetime, until: datetime, period: str) -> list[Any]:
        """Per coder and period: reviewed samples and the summed agreement counts."""
        bucket = cast(func.date_trunc(period, QaSample.reviewed_at), Date).label("period")
        stmt = (
            select(
                QaSample.coder,
                bucket,
                func.count().label("samples"),
                func.sum(QaSample.dx_agreed).label("dx_agreed"),
                func.sum(QaSample.dx_total).label("dx_total"),
                func.sum(QaSample.px_agreed).label("px_agreed"),
                func.sum(QaSample.px_total).label("px_total"),
            )
            .where(
                self.tenant_filter(QaSample.tenant_id),
                QaSample.status == SampleStatus.REVIEWED,
                QaSample.reviewed_at >= since,
                QaSample.reviewed_at < until,
            )
            .group_by(QaSample.coder, bucket)
            .order_by(QaSample.coder, bucket)
        )
        return await self._rows(stmt)


class FeeScheduleRepository(TenantRowRepository[FeeScheduleEntry]):
    model = FeeScheduleEntry

    async def charges(self, codes: list[str]) -> dict[tuple[str, str], int]:
        stmt = self.base_statement().where(FeeScheduleEntry.code.in_(codes))
        return {(e.code, e.modifier): e.charge_cents for e in await self._all(stmt)}

    async def replace(self, entries: list[tuple[str, str, int]]) -> None:
        """The practice's schedule becomes exactly ``entries`` (code, modifier or '', cents)."""
        tenant = self.context.tenant_id
        await self._execute(delete(FeeScheduleEntry).where(self.tenant_filter(FeeScheduleEntry.tenant_id)))
        if entries:
            await self._execute(
                insert(FeeScheduleEntry),
                [
                    {"tenant_id": tenant, "code": code, "modifier": modifier, "charge_cents": cents}
                    for code, modifier, cents in entries
                ],
            )

    async def all(self) -> list[FeeScheduleEntry]:
        stmt = self.base_statement().order_by(FeeScheduleEntry.code, FeeScheduleEntry.modifier)
        return await self._all(stmt)


class EncounterStatusRepository(TenantScopedRepository[Encounter]):
    """The one change coding makes to an encounter: its status (and the event in its history)."""

    model = Encounter

    async def set_status(self, encounter_id: uuid.UUID, status: str) -> None:
        await self._execute(
            update(Encounter)
            .where(self.tenant_filter(Encounter.tenant_id), Encounter.id == encounter_id)
            .values(status=status, updated_at=func.now())
        )
        event = EncounterEvent(
            tenant_id=self.context.tenant_id,
            id=uuid.uuid4(),
            encounter_id=encounter_id,
            status=status,
            created_at=utcnow(),
        )
        await self.insert(event)
        await encounter_status_changed(self, event)
