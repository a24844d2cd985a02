"""All SQL of idempotency records: reserve a key, read what a retry replays, store the first response."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    LargeBinary,
    Text,
    TextClause,
    Uuid,
    any_,
    bindparam,
    delete,
    func,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.idempotency.models import IdempotencyRecord
from rcm.kit.repository import TenantScopedRepository

# Plain SQL, built once: SQLAlchemy cannot cache an INSERT carrying an ON CONFLICT clause (it would compile
# it afresh on every request); a text statement is compiled once and prepared once per connection.
_RESERVE = text(
    "INSERT INTO rcm.idempotency_record (tenant_id, id, principal, key, route, request_hash, status_code,"
    " response_body) VALUES (:tenant_id, :id, :principal, :key, :route, :request_hash, 0, '')"
    " ON CONFLICT (tenant_id, principal, key) DO NOTHING RETURNING id"
).bindparams(
    bindparam("tenant_id", type_=Uuid),
    bindparam("id", type_=Uuid),
    bindparam("principal", type_=Text),
    bindparam("key", type_=Text),
    bindparam("route", type_=Text),
    bindparam("request_hash", type_=LargeBinary),
)
# The first response, stored over the reservation. Also a part of a larger write (``STORE_PARAMS``): a
# write that knows the response before it runs carries its storing along (one round trip fewer); with
# ``idem_id`` NULL it stores nothing.
STORE_SQL = (
    "UPDATE rcm.idempotency_record SET status_code = :idem_status, response_body = :idem_body,"
    " resource_type = :idem_resource_type, resource_ids = :idem_resource_ids,"
    " patient_ids = :idem_patient_ids WHERE tenant_id = :tenant_id AND id = :idem_id"
)
STORE_PARAMS = (
    bindparam("idem_status", type_=Integer),
    bindparam("idem_body", type_=LargeBinary),
    bindparam("idem_resource_type", type_=Text),
    bindparam("idem_resource_ids", type_=ARRAY(Uuid)),
    bindparam("idem_patient_ids", type_=ARRAY(Uuid)),
    bindparam("idem_id", type_=Uuid),
)
_STORE: TextClause = text(STORE_SQL).bindparams(bindparam("tenant_id", type_=Uuid), *STORE_PARAMS)


class IdempotencyRepository(TenantScopedRepository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def reserve(
        self, *, record_id: uuid.UUID, principal: str, key: str, route: str, fingerprint: bytes
    ) -> bool:
        """INSERT the pending record; False when (caller, key) already has one. A concurrent duplicate
        waits on the unique index until the first transaction ends."""
        reserved = await self._execute(
            _RESERVE,
            {
                "tenant_id": self.context.tenant_id,
                "id": record_id,
                "principal": principal,
                "key": key,
                "route": route,
                "request_hash": fingerprint,
            },
        )
        return reserved.scalar_one_or_none() is not None

    async def existing(self, principal: str, key: str) -> IdempotencyRecord:
        stmt = self.base_statement().where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
        return (await self._execute(stmt)).scalar_one()  # type: ignore[no-any-return]

    async def store(self, record_id: uuid.UUID, params: StoreParams) -> None:
        await self._execute(_STORE, {"tenant_id": self.context.tenant_id, **params.as_params(record_id)})


class StoreParams:
    """The stored response's columns, as ``STORE_SQL``'s parameters."""

    __slots__ = ("body", "patient_ids", "resource_ids", "resource_type", "status_code")

    def __init__(
        self,
        *,
        status_code: int,
        body: bytes,
        resource_type: str,
        resource_ids: Sequence[uuid.UUID],
        patient_ids: Sequence[uuid.UUID],
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.resource_type = resource_type
        self.resource_ids = list(resource_ids)
        self.patient_ids = list(patient_ids)

    def as_params(self, record_id: uuid.UUID | None) -> dict[str, Any]:
        return {
            "idem_status": self.status_code,
            "idem_body": self.body,
            "idem_resource_type": self.resource_type,
            "idem_resource_ids": self.resource_ids,
            "idem_patient_ids": self.patient_ids,
            "idem_id": record_id,
        }


async def purge_expired_records(session: AsyncSession, cutoff: datetime) -> int:
    """Forget stored responses created before ``cutoff`` in the session's tenants; returns how many."""
    result = await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == any_(func.rcm.current_tenant_ids()),
            IdempotencyRecord.created_at < cutoff,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
