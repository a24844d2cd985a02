"""The outbox writer: the one call the domains make when an encounter's status or a claim's state changes,
or a coder asks the practice a question. It writes in the caller's transaction, so the webhook exists if and
only if the change commits; the dispatcher (``rcm.webhooks.tasks``) sends it after.

One row per matching active subscription, fanned out here in ONE ``INSERT ... SELECT`` (no row at all when
the practice subscribes to nothing): each subscriber then has its own status, attempts and backoff, a slow or
dead receiver never holds back another, and a subscription made later does not receive earlier events.

Payloads carry ids, types, states and timestamps only: no names, dates of birth, member ids, free text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import cast

import msgspec
from sqlalchemy import Table, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from rcm.kit.repository import TenantRowRepository
from rcm.kit.tenant import TenantId
from rcm.webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookSubscription

_DELIVERY = cast(Table, WebhookDelivery.__table__)
_SUBSCRIPTION = cast(Table, WebhookSubscription.__table__)
Value = str | int | None


def payload(event_id: uuid.UUID, event_type: EventType, at: datetime, data: Mapping[str, Value]) -> str:
    """The body every subscriber gets, byte for byte (it is stored: retries and replays resend it)."""
    body = {"id": str(event_id), "type": event_type.value, "timestamp": at.isoformat(), "data": dict(data)}
    return msgspec.json.encode(body).decode()


# The same fan-out as ``OutboxRepository.emit``, as one part of a larger write (``with_audit`` of
# ``rcm.audit.trail``) whose events are prepared in Python (``event_rows``: the JSON array parameter
# ``webhook_event``): what a one-statement intake writes (its encounters' first status) is announced in
# that statement, so the deliveries exist if and only if the rows do, at no round trip of their own.
FAN_OUT_SQL = (
    "INSERT INTO rcm.webhook_delivery (tenant_id, id, created_at, subscription_id, event_id, event_type,"
    " payload, status, attempts, next_attempt_at, updated_at)"
    " SELECT s.tenant_id, gen_random_uuid(), clock_timestamp(), s.id, e.event_id, e.event_type, e.payload,"
    " 'pending', 0, clock_timestamp(), clock_timestamp()"
    " FROM json_to_recordset(CAST(:webhook_event AS json)) AS e(event_id uuid, event_type text, payload text)"
    " JOIN rcm.webhook_subscription AS s ON s.tenant_id = :tenant_id AND s.active AND s.deleted_at IS NULL"
    " AND e.event_type = ANY (s.event_types)"
)
FAN_OUT_PARAM = "webhook_event"
_FAN_OUT = text(FAN_OUT_SQL)  # on its own (``emit_many``): built once, SQLAlchemy compiles it once


def event_rows(
    event_type: EventType, events: Iterable[tuple[datetime, Mapping[str, Value]]]
) -> list[dict[str, str]]:
    """``FAN_OUT_SQL``'s parameter: one event (its id, type and body) per (instant, data) given."""
    rows = []
    for at, data in events:
        event_id = uuid.uuid4()
        rows.append(
            {
                "event_id": str(event_id),
                "event_type": event_type.value,
                "payload": payload(event_id, event_type, at, data),
            }
        )
    return rows


class OutboxRepository(TenantRowRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def emit(
        self, tenant_id: uuid.UUID, event_type: EventType, *, at: datetime, data: Mapping[str, Value]
    ) -> int:
        """Queue the event for each of the practice's active subscriptions to its type; returns how many.

        ``tenant_id`` is the changed row's practice (a staff scope spans several): it must be one of this
        unit of work's practices, and RLS refuses any other anyway."""
        if tenant_id not in self.context.tenant_ids:
            raise ValueError("event of a tenant outside this unit of work")
        event_id = uuid.uuid4()
        body = payload(event_id, event_type, at, data)
        s = _SUBSCRIPTION.c
        chosen = select(
            s.tenant_id,
            func.gen_random_uuid(),
            func.clock_timestamp(),
            s.id,
            literal(event_id, PgUUID(as_uuid=True)),
            literal(event_type.value),
            literal(body),
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            func.clock_timestamp(),
            func.clock_timestamp(),
        ).where(
            s.tenant_id == TenantId(tenant_id),
            self.tenant_filter(s.tenant_id),
            s.active.is_(True),
            s.deleted_at.is_(None),
            s.event_types.any(event_type.value),
        )
        stmt = insert(_DELIVERY).from_select(
            [
                "tenant_id",
                "id",
                "created_at",
                "subscription_id",
                "event_id",
                "event_type",
                "payload",
                "status",
                "attempts",
                "next_attempt_at",
                "updated_at",
            ],
            chosen,
        )
        result = await self._execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def emit_many(
        self,
        tenant_id: uuid.UUID,
        event_type: EventType,
        events: Sequence[tuple[datetime, Mapping[str, Value]]],
    ) -> int:
        """``emit`` of many events of one type at once (each its own event id and body, as ``emit`` makes
        them), fanned out in ONE constant statement (``FAN_OUT_SQL``); returns how many deliveries."""
        if tenant_id not in self.context.tenant_ids:
            raise ValueError("event of a tenant outside this unit of work")
        if not events:
            return 0
        rows = msgspec.json.encode(event_rows(event_type, events)).decode()
        result = await self._execute(_FAN_OUT, {FAN_OUT_PARAM: rows, "tenant_id": TenantId(tenant_id)})
        return int(getattr(result, "rowcount", 0) or 0)
