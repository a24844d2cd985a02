"""All SQL for bulk intake jobs and their line outcomes."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, Text, bindparam, text, update

from rcm.bulk.models import BulkIntake, BulkIntakeLine, BulkStatus
from rcm.kit.jsonwrite import encode, populate, table_name
from rcm.kit.repository import TenantScopedRepository

_LINE_COLUMNS = ("tenant_id", "job_id", "line_no", "outcome", "encounter_id", "errors")
# A batch's line outcomes in one constant statement (compiled once, prepared once per connection), the
# rows one JSON parameter: an ORM executemany compiles a multi-row VALUES of every row's parameters.
_ADD_LINES = text(populate(cast(Table, BulkIntakeLine.__table__), _LINE_COLUMNS)).bindparams(
    bindparam(table_name(BulkIntakeLine), type_=Text)
)


class BulkIntakeRepository(TenantScopedRepository[BulkIntake]):
    model = BulkIntake

    async def by_file(self, sha256: bytes) -> BulkIntake | None:
        return await self._first(self.base_statement().where(BulkIntake.file_sha256 == sha256))

    async def lock(self, job_id: uuid.UUID) -> BulkIntake | None:
        """The job, locked for this transaction (one runner advances a job at a time)."""
        stmt = self.for_update(self.base_statement().where(BulkIntake.id == job_id))
        found: BulkIntake | None = (await self._execute(stmt)).scalars().first()
        return found

    async def advance(self, job: BulkIntake, **values: Any) -> None:
        await self._execute(
            update(BulkIntake)
            .where(self.tenant_filter(BulkIntake.tenant_id), BulkIntake.id == job.id)
            .values(**values)
        )

    async def add_lines(self, job: BulkIntake, rows: list[dict[str, Any]]) -> None:
        """Line outcomes (``line_no``, ``outcome``, ``encounter_id``, ``errors``) of ``job``."""
        if rows:
            tenant_id, job_id = str(job.tenant_id), str(job.id)
            lines = [{"tenant_id": tenant_id, "job_id": job_id, **row} for row in rows]
            await self._execute(_ADD_LINES, encode({table_name(BulkIntakeLine): lines}))

    async def lines(self, job_id: uuid.UUID, *, after: int, limit: int) -> list[BulkIntakeLine]:
        stmt = (
            self.statement_for(BulkIntakeLine)
            .where(BulkIntakeLine.job_id == job_id, BulkIntakeLine.line_no > after)
            .order_by(BulkIntakeLine.line_no)
            .limit(limit)
        )
        return await self._all(stmt)

    async def set_status(self, job: BulkIntake, status: BulkStatus, failure: str | None = None) -> None:
        await self.advance(job, status=status, failure=failure)
        job.status, job.failure = status, failure
