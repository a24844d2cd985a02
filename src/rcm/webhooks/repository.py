"""All SQL of webhooks: subscriptions, the deliveries (outbox rows) and their attempts, the dispatcher's pick
of due rows across practices, and a worker's lease on the one row it posts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update

from rcm.kit.repository import TenantScopedRepository
from rcm.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription

_DELIVERY = cast(Table, WebhookDelivery.__table__)
_SUBSCRIPTION = cast(Table, WebhookSubscription.__table__)


class SubscriptionRepository(TenantScopedRepository[WebhookSubscription]):
    model = WebhookSubscription

    async def live(self, subscription_id: uuid.UUID) -> WebhookSubscription | None:
        """The subscription unless deleted (a deleted one is the standard 404)."""
        stmt = self.base_statement().where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.deleted_at.is_(None)
        )
        return await self._first(stmt.execution_options(populate_existing=True))

    async def page(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[WebhookSubscription]:
        stmt = self.base_statement().where(WebhookSubscription.deleted_at.is_(None))
        return await self.keyset_page(stmt, limit=limit, after=after)

    async def change(self, subscription_id: uuid.UUID, **values: Any) -> WebhookSubscription | None:
        stmt = (
            update(WebhookSubscription)
            .where(
                self.tenant_filter(WebhookSubscription.tenant_id),
                WebhookSubscription.id == subscription_id,
                WebhookSubscription.deleted_at.is_(None),
            )
            .values(**values, updated_at=func.clock_timestamp())
            .returning(WebhookSubscription)
        )
        refreshed = select(WebhookSubscription).from_statement(stmt).execution_options(populate_existing=True)
        return (await self._execute(refreshed)).scalars().first()


class DeliveryRepository(TenantScopedRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: DeliveryStatus | None,
        subscription_id: uuid.UUID | None,
    ) -> list[WebhookDelivery]:
        stmt = self.base_statement()
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if subscription_id is not None:
            stmt = stmt.where(WebhookDelivery.subscription_id == subscription_id)
        return await self.keyset_page(stmt, limit=limit, after=after)

    async def attempts(self, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
        stmt = self.statement_for(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        return await self._all(stmt.order_by(WebhookAttempt.created_at, WebhookAttempt.id))

    async def rearm(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """A finished (delivered or dead) delivery becomes due now, with a fresh retry budget; its
        Webhook-Id and body stay. None when it is still pending (it is going out anyway)."""
        return await self._update(
            [_DELIVERY.c.id == delivery_id, _DELIVERY.c.status != DeliveryStatus.PENDING.value],
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=func.clock_timestamp(),
            dispatched_at=func.clock_timestamp(),
            lease_token=None,
            lease_expires_at=None,
        )

    # The dispatcher and the worker ------------------------------------------------------------------------

    async def dispatch_due(
        self, *, limit: int, redispatch_after: timedelta
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(practice, delivery) of due pending rows not queued lately, marked queued now; SKIP LOCKED, so
        two dispatchers never take one row. Oldest due first across practices."""
        d = _DELIVERY.c
        due = (
            select(d.tenant_id, d.id)
            .where(
                self.tenant_filter(d.tenant_id),
                d.status == DeliveryStatus.PENDING.value,
                d.next_attempt_at <= func.now(),
                or_(d.dispatched_at.is_(None), d.dispatched_at < func.now() - redispatch_after),
                or_(d.lease_expires_at.is_(None), d.lease_expires_at < func.now()),
            )
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        stmt = (
            update(_DELIVERY)
            .where(d.tenant_id == due.c.tenant_id, d.id == due.c.id)
            .values(dispatched_at=func.clock_timestamp())
            .returning(d.tenant_id, d.id)
        )
        return [(row[0], row[1]) for row in (await self._execute(stmt)).all()]

    async def lease(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, hold: timedelta
    ) -> WebhookDelivery | None:
        """Take the row for one POST if it is pending, due and held by no live lease (SKIP LOCKED: a second
        worker with the same message finds nothing and stops). The lease outlives a crash by ``hold``."""
        d = _DELIVERY.c
        free = (
            select(d.tenant_id, d.id)
            .where(
                self.tenant_filter(d.tenant_id),
                d.id == delivery_id,
                d.status == DeliveryStatus.PENDING.value,
                d.next_attempt_at <= func.now(),
                or_(d.lease_expires_at.is_(None), d.lease_expires_at < func.now()),
            )
            .with_for_update(skip_locked=True)
            .cte("free")
        )
        stmt = (
            update(WebhookDelivery)
            .where(_DELIVERY.c.tenant_id == free.c.tenant_id, _DELIVERY.c.id == free.c.id)
            .values(lease_token=token, lease_expires_at=func.clock_timestamp() + hold)
            .returning(WebhookDelivery)
        )
        refreshed = select(WebhookDelivery).from_statement(stmt).execution_options(populate_existing=True)
        return (await self._execute(refreshed)).scalars().first()

    async def finish(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, **values: Any
    ) -> WebhookDelivery | None:
        """Record the outcome of the attempt made under ``token``; None when the lease was lost meanwhile
        (another worker took the row after it expired: its outcome stands, this one is only an attempt)."""
        return await self._update(
            [_DELIVERY.c.id == delivery_id, _DELIVERY.c.lease_token == token],
            **values,
            lease_token=None,
            lease_expires_at=None,
        )

    async def _update(self, where: list[Any], **values: Any) -> WebhookDelivery | None:
        stmt = (
            update(WebhookDelivery)
            .where(self.tenant_filter(_DELIVERY.c.tenant_id), *where)
            .values(**values, updated_at=func.clock_timestamp())
            .returning(WebhookDelivery)
        )
        refreshed = select(WebhookDelivery).from_statement(stmt).execution_options(populate_existing=True)
        return (await self._execute(refreshed)).scalars().first()
