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
from collections.abc import Mapping
from datetime import datetime
from typing import cast

import msgspec
from sqlalchemy import Table, func, insert, literal, select
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
