"""All SQL of denials, appeals, their attachments and the practice's letter templates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Date, DateTime, cast, func, select, update

from rcm.denials.models import (
    Appeal,
    AppealAttachment,
    AppealTemplate,
    Denial,
    DenialStatus,
)
from rcm.kit.repository import TenantScopedRepository

# What the denials report may group by, and the column each names.
GROUPS = {
    "payer": Denial.payer_id,
    "cpt": Denial.procedure_code,
    "carc": Denial.carc,
    "category": Denial.category,
}


class DenialRepository(TenantScopedRepository[Denial]):
    model = Denial

    async def listed(
        self, *, status: DenialStatus | None, claim_id: uuid.UUID | None, limit: int
    ) -> list[Denial]:
        """The practice's denials, the closest appeal deadline first."""
        stmt = self.base_statement().order_by(Denial.appeal_deadline, Denial.id).limit(limit)
        if status is not None:
            stmt = stmt.where(Denial.status == status)
        if claim_id is not None:
            stmt = stmt.where(Denial.claim_id == claim_id)
        return await self._all(stmt)

    async def of_claim(self, claim_id: uuid.UUID, *, statuses: Sequence[DenialStatus]) -> list[Denial]:
        stmt = (
            self.base_statement()
            .where(Denial.claim_id == claim_id, Denial.status.in_(list(statuses)))
            .order_by(Denial.line_number.nulls_first(), Denial.created_at)
        )
        return await self._all(stmt)

    async def of_appeal(self, appeal_id: uuid.UUID) -> list[Denial]:
        stmt = self.base_statement().where(Denial.appeal_id == appeal_id).order_by(Denial.line_number)
        return await self._all(stmt)

    async def set_status(
        self,
        denial_ids: Sequence[uuid.UUID],
        status: DenialStatus,
        *,
        appeal_id: uuid.UUID | None = None,
        replacement_claim_id: uuid.UUID | None = None,
    ) -> None:
        if not denial_ids:
            return
        values: dict[str, Any] = {"status": status, "updated_at": func.now()}
        if appeal_id is not None:
            values["appeal_id"] = appeal_id
        if replacement_claim_id is not None:
            values["replacement_claim_id"] = replacement_claim_id
        await self._execute(
            update(Denial)
            .where(self.tenant_filter(Denial.tenant_id), Denial.id.in_(list(denial_ids)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def close_open(self, claim_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Close the open denials of claims the payer has since paid; the claims that had some."""
        if not claim_ids:
            return set()
        stmt = (
            update(Denial)
            .where(
                self.tenant_filter(Denial.tenant_id),
                Denial.claim_id.in_(list(claim_ids)),
                Denial.status == DenialStatus.OPEN,
            )
            .values(status=DenialStatus.CLOSED, updated_at=func.now())
            .returning(Denial.claim_id)
            .execution_options(synchronize_session=False)
        )
        return set((await self._execute(stmt)).scalars())

    async def totals(
        self, groups: Sequence[str], *, period: str, since: date | None, until: date | None
    ) -> list[Any]:
        """Counts and denied cents per period (``date_trunc`` of the remittance date) and per group."""
        bucket = cast(func.date_trunc(period, cast(Denial.remitted_on, DateTime())), Date).label("period")
        columns = [GROUPS[g].label(g) for g in groups]
        stmt = (
            select(
                bucket, *columns, func.count().label("count"), func.sum(Denial.denied_cents).label("cents")
            )
            .where(self.tenant_filter(Denial.tenant_id))
            .group_by(bucket, *columns)
            .order_by(bucket, *columns)
        )
        if since is not None:
            stmt = stmt.where(Denial.remitted_on >= since)
        if until is not None:
            stmt = stmt.where(Denial.remitted_on <= until)
        return await self._rows(stmt)


class AppealRepository(TenantScopedRepository[Appeal]):
    model = Appeal

    async def locked(self, appeal_id: uuid.UUID) -> Appeal | None:
        stmt = self.for_update(self.base_statement().where(Appeal.id == appeal_id))
        return await self._first(stmt.execution_options(populate_existing=True))

    async def of_claim(self, claim_id: uuid.UUID) -> list[Appeal]:
        stmt = self.base_statement().where(Appeal.claim_id == claim_id).order_by(Appeal.created_at)
        return await self._all(stmt)


class AppealAttachmentRepository(TenantScopedRepository[AppealAttachment]):
    model = AppealAttachment

    async def of_appeal(self, appeal_id: uuid.UUID) -> list[AppealAttachment]:
        stmt = (
            self.base_statement()
            .where(AppealAttachment.appeal_id == appeal_id)
            .order_by(AppealAttachment.created_at, AppealAttachment.id)
        )
        return await self._all(stmt)


class AppealTemplateRepository(TenantScopedRepository[AppealTemplate]):
    model = AppealTemplate

    async def named(self, name: str) -> AppealTemplate | None:
        return await self._first(self.base_statement().where(AppealTemplate.name == name))

    async def listed(self) -> list[AppealTemplate]:
        return await self._all(self.base_statement().order_by(AppealTemplate.name))
