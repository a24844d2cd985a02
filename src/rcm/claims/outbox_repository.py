"""All SQL of the submission outbox: the pending batch row is the outbox record of its own sending
(``rcm.claims.submission``). Locking a batch for its handler, the relay's due list across practices, and
the moves between pending, sending, sent and dead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update

from rcm.claims.models import BatchStatus, SubmissionBatch
from rcm.kit.repository import TenantScopedRepository

_BATCH = cast(Table, SubmissionBatch.__table__)
UNSENT = (BatchStatus.PENDING.value, BatchStatus.SENDING.value)


class OutboxRepository(TenantScopedRepository[SubmissionBatch]):
    model = SubmissionBatch

    async def lock(self, batch_id: uuid.UUID, *, wait: bool = False) -> SubmissionBatch | None:
        """The batch, locked for this transaction; None when missing or (unless ``wait``) another handler
        holds it (that handler is at work on it: a duplicate message has nothing to do)."""
        stmt = self.for_update(
            self.base_statement().where(SubmissionBatch.id == batch_id), skip_locked=not wait
        )
        return await self._first(stmt.execution_options(populate_existing=True))

    async def due(self, now: datetime, *, limit: int) -> list[Any]:
        """``(tenant_id, id)`` of the batches whose message is due (pending, or sending past its lease),
        oldest due first, across the scope's practices."""
        stmt = (
            select(_BATCH.c.tenant_id, _BATCH.c.id)
            .where(
                self.tenant_filter(_BATCH.c.tenant_id),
                _BATCH.c.status.in_(UNSENT),
                _BATCH.c.next_attempt_at <= now,
            )
            .order_by(_BATCH.c.next_attempt_at)
            .limit(limit)
        )
        return await self._rows(stmt)

    async def _set(self, batch_id: uuid.UUID, *, only: tuple[str, ...], **values: Any) -> bool:
        stmt = (
            update(_BATCH)
            .where(self.tenant_filter(_BATCH.c.tenant_id), _BATCH.c.id == batch_id, _BATCH.c.status.in_(only))
            .values(**values, updated_at=func.clock_timestamp())
            .returning(_BATCH.c.id)
        )
        return (await self._execute(stmt)).first() is not None

    async def start_sending(self, batch_id: uuid.UUID, *, lease_until: datetime) -> bool:
        """Spend an attempt and hold the batch in ``sending`` until ``lease_until`` (the relay leaves it
        alone until then; after it, the batch is probed, not re-sent blindly)."""
        return await self._set(
            batch_id,
            only=UNSENT,
            status=BatchStatus.SENDING.value,
            attempts=_BATCH.c.attempts + 1,
            next_attempt_at=lease_until,
        )

    async def reschedule(
        self,
        batch_id: uuid.UUID,
        *,
        at: datetime,
        error: str | None,
        status: BatchStatus = BatchStatus.PENDING,
        refund: bool = False,
    ) -> bool:
        """Back to ``status`` until ``at``; ``refund``: the call was never made (its circuit was open), so
        the attempt spent on it is given back."""
        values: dict[str, Any] = {"status": status.value, "next_attempt_at": at, "last_error": error}
        if refund:
            values["attempts"] = func.greatest(_BATCH.c.attempts - 1, 0)
        return await self._set(batch_id, only=UNSENT, **values)

    async def bury(self, batch_id: uuid.UUID, *, error: str) -> bool:
        """``dead``: a biller decides (the billing item the caller opens)."""
        return await self._set(batch_id, only=UNSENT, status=BatchStatus.DEAD.value, last_error=error)

    async def revive(self, batch_id: uuid.UUID, *, now: datetime) -> bool:
        """A dead batch back to ``pending``, due now, with a fresh retry budget (a biller's replay)."""
        return await self._set(
            batch_id,
            only=(BatchStatus.DEAD.value,),
            status=BatchStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
        )
