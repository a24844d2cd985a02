"""Webhook subscriptions, the delivery outbox and its attempts: tenant-owned, RLS forced (0025_webhooks).

The signing secret is sealed with the practice's field keys (declared as a sealed column, so key rotation
re-encrypts it and offboarding shreds it with the practice's keys); it is never stored in clear."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, utcnow


class EventType(StrEnum):
    """What a practice may subscribe to (the ``type`` of a payload)."""

    ENCOUNTER_STATUS_CHANGED = "encounter.status_changed"
    CLAIM_STATUS_CHANGED = "claim.status_changed"
    CODER_QUERY_CREATED = "coder_query.created"
    # A patient statement was written (ids and where to fetch it: the fetch is the audited read).
    STATEMENT_READY = "statement.ready"
    STATEMENT_RUN_COMPLETED = "statement_run.completed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at ``next_attempt_at`` (again, after a failed attempt)
    DELIVERED = "delivered"  # a 2xx answered
    DEAD = "dead"  # every attempt failed, or the subscription went away; a replay re-arms it


def _in(column: str, values: type[StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class WebhookSubscription(TenantOwned, Base):
    __tablename__ = "webhook_subscription"
    __table_args__ = (
        Index("ix_webhook_subscription_created", "tenant_id", "created_at", "id"),
        CheckConstraint("url ~ '^https?://' AND length(url) <= 2048", name="url"),
        CheckConstraint("(secret IS NULL) = (deleted_at IS NOT NULL)", name="secret"),
    )
    # Not PHI, but sealed the same way: the declaration drives encryption, re-encryption and redaction.
    __phi_columns__: ClassVar[tuple[str, ...]] = ("secret",)

    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    active: Mapped[bool] = mapped_column(Boolean)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # base64 text, sealed
    secret_rotated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class WebhookDelivery(TenantOwned, Base):
    """The outbox: one event for one subscription, written in the transaction of the change it reports."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subscription_id"],
            ["rcm.webhook_subscription.tenant_id", "rcm.webhook_subscription.id"],
        ),
        UniqueConstraint("tenant_id", "subscription_id", "event_id"),
        _in("event_type", EventType),
        _in("status", DeliveryStatus),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_webhook_delivery_created", "tenant_id", "created_at", "id"),
        Index("ix_webhook_delivery_status", "tenant_id", "status", "created_at", "id"),
        Index("ix_webhook_delivery_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    subscription_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]  # the Webhook-Id: the same on every attempt and replay
    event_type: Mapped[EventType] = mapped_column(EnumText(EventType))
    payload: Mapped[str] = mapped_column(Text)  # the exact body signed and sent; no PHI
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus))
    attempts: Mapped[int] = mapped_column(Integer)  # since it was (re-)armed
    next_attempt_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    lease_token: Mapped[uuid.UUID | None]
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # an error class, never a body
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class WebhookAttempt(TenantOwned, Base):
    """One POST of a delivery, never updated."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"], ["rcm.webhook_delivery.tenant_id", "rcm.webhook_delivery.id"]
        ),
        CheckConstraint("number >= 1", name="number"),
        Index("ix_webhook_attempt_delivery", "tenant_id", "delivery_id", "created_at"),
    )

    delivery_id: Mapped[uuid.UUID]
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    retry_at: Mapped[datetime | None] = mapped_column(nullable=True)
