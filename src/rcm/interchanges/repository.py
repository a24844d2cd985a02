"""All SQL of kept X12 files."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.interchanges.models import Direction, FileStatus, ResponseCursor, X12File, X12FileLink
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository

_FILE = cast(Table, X12File.__table__)
_CURSOR = cast(Table, ResponseCursor.__table__)
_LINK = cast(Table, X12FileLink.__table__)


class X12FileRepository(TenantScopedRepository[X12File]):
    model = X12File

    async def by_digest(self, direction: Direction, sha256: bytes) -> X12File | None:
        stmt = self.base_statement().where(X12File.direction == direction, X12File.sha256 == sha256)
        return await self._first(stmt)

    async def of_batch(self, batch_id: uuid.UUID, *, direction: Direction | None = None) -> list[X12File]:
        """The files of a batch: its 837 and every file linked to it (a 999, 277CA or 835 answering it)."""
        linked = select(_LINK.c.x12_file_id).where(
            self.tenant_filter(_LINK.c.tenant_id), _LINK.c.submission_batch_id == batch_id
        )
        stmt = self.base_statement().where(
            or_(X12File.submission_batch_id == batch_id, X12File.id.in_(linked))
        )
        if direction is not None:
            stmt = stmt.where(X12File.direction == direction)
        return await self._all(stmt.order_by(X12File.created_at, X12File.id))

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


class X12FileLinkRepository(TenantScopedRepository[X12FileLink]):
    model = X12FileLink

    async def link(
        self,
        file_id: uuid.UUID,
        *,
        batch_ids: Iterable[uuid.UUID] = (),
        claim_ids: Iterable[uuid.UUID] = (),
        check_trace_numbers: Iterable[str] = (),
    ) -> None:
        """Record what ``file_id`` is about, one row each; a link already recorded is left as it is (one
        statement, whatever the number)."""
        values = (
            [{"submission_batch_id": b} for b in dict.fromkeys(batch_ids)]
            + [{"claim_id": c} for c in dict.fromkeys(claim_ids)]
            + [{"check_trace_number": t} for t in dict.fromkeys(check_trace_numbers)]
        )
        if not values:
            return
        rows = [
            {
                "tenant_id": self.context.tenant_id,
                "id": uuid.uuid4(),
                "x12_file_id": file_id,
                "submission_batch_id": None,
                "claim_id": None,
                "check_trace_number": None,
                **value,
            }
            for value in values
        ]
        await self._execute(pg_insert(_LINK).values(rows).on_conflict_do_nothing())

    async def of_files(self, file_ids: Sequence[uuid.UUID]) -> list[X12FileLink]:
        if not file_ids:
            return []
        stmt = self.base_statement().where(X12FileLink.x12_file_id.in_(list(file_ids)))
        return await self._all(stmt.order_by(X12FileLink.created_at, X12FileLink.id))

    async def links_batch(self, file_id: uuid.UUID, batch_id: uuid.UUID) -> bool:
        stmt = select(_LINK.c.id).where(
            self.tenant_filter(_LINK.c.tenant_id),
            _LINK.c.x12_file_id == file_id,
            _LINK.c.submission_batch_id == batch_id,
        )
        return (await self._execute(stmt)).first() is not None


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
