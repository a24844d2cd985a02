"""All SQL of kept X12 files."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.interchanges.models import Direction, FileStatus, ResponseCursor, X12File
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository

_FILE = cast(Table, X12File.__table__)
_CURSOR = cast(Table, ResponseCursor.__table__)


class X12FileRepository(TenantScopedRepository[X12File]):
    model = X12File

    async def by_digest(self, direction: Direction, sha256: bytes) -> X12File | None:
        stmt = self.base_statement().where(X12File.direction == direction, X12File.sha256 == sha256)
        return await self._first(stmt)

    async def of_batch(self, batch_id: uuid.UUID, *, direction: Direction) -> list[X12File]:
        stmt = (
            self.base_statement()
            .where(X12File.submission_batch_id == batch_id, X12File.direction == direction)
            .order_by(X12File.created_at, X12File.id)
        )
        return await self._all(stmt)

    async def listed(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
        direction: Direction | None = None,
        kind: str | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> list[X12File]:
        stmt = self.base_statement()
        if direction is not None:
            stmt = stmt.where(X12File.direction == direction)
        if kind is not None:
            stmt = stmt.where(X12File.kind == kind)
        if batch_id is not None:
            stmt = stmt.where(X12File.submission_batch_id == batch_id)
        if after is not None:
            stmt = stmt.where(after_key(X12File.created_at, X12File.id, after))
        stmt = stmt.order_by(X12File.created_at, X12File.id).limit(limit)
        return await self._all(stmt)

    async def settle(
        self,
        file_ids: Sequence[uuid.UUID],
        status: FileStatus,
        *,
        error: str | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> None:
        """Record what processing made of the files (``processed`` or ``refused`` with where it failed)."""
        values: dict[str, object] = {"status": status.value, "error": error, "processed_at": func.now()}
        if batch_id is not None:
            values["submission_batch_id"] = batch_id
        stmt = (
            update(_FILE)
            .where(self.tenant_filter(_FILE.c.tenant_id), _FILE.c.id.in_(list(file_ids)))
            .values(**values)
        )
        await self._execute(stmt)

    async def unprocessed(
        self, *, direction: Direction, limit: int, kinds: Sequence[str] | None = None
    ) -> list[X12File]:
        stmt = self.base_statement().where(X12File.direction == direction, X12File.status == FileStatus.KEPT)
        if kinds is not None:
            stmt = stmt.where(X12File.kind.in_(list(kinds)))
        return await self._all(stmt.order_by(X12File.created_at, X12File.id).limit(limit))

    async def locked(self, file_id: uuid.UUID) -> X12File | None:
        """The file's row, locked for its processing (two workers never apply one file at once)."""
        stmt = self.for_update(
            select(X12File).where(self.tenant_filter(X12File.tenant_id), X12File.id == file_id)
        )
        return await self._first(stmt)


class ResponseCursorRepository(TenantScopedRepository[ResponseCursor]):
    model = ResponseCursor

    async def cursor(self, connector: str, endpoint: str) -> str | None:
        stmt = select(ResponseCursor.cursor).where(
            self.tenant_filter(ResponseCursor.tenant_id),
            ResponseCursor.connector == connector,
            ResponseCursor.endpoint == endpoint,
        )
        return (await self._execute(stmt)).scalar()

    async def advance(self, connector: str, endpoint: str, cursor: str | None) -> None:
        """Record the cursor the last fetch gave (one statement: insert, or update the practice's row)."""
        stmt = pg_insert(_CURSOR).values(
            tenant_id=self.context.tenant_id,
            id=uuid.uuid4(),
            connector=connector,
            endpoint=endpoint,
            cursor=cursor,
            fetched_at=func.now(),
            updated_at=func.now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_CURSOR.c.tenant_id, _CURSOR.c.connector, _CURSOR.c.endpoint],
            set_={"cursor": stmt.excluded.cursor, "fetched_at": func.now(), "updated_at": func.now()},
        )
        await self._execute(stmt)
