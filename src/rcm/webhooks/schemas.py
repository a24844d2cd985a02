"""Webhook DTOs: subscriptions (the secret only in the answer that creates or rotates it) and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from rcm.webhooks.models import DeliveryStatus, EventType

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, description="https:// target URL")]


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    event_types: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EventType))]
    active: bool = True


class SubscriptionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """What changes; fields left out stay as they are (``active: false`` pauses a subscription)."""

    url: Url | None = None
    event_types: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EventType))] | None = (
        None
    )
    active: bool | None = None


class Subscription(msgspec.Struct):
    id: uuid.UUID
    url: str
    event_types: list[EventType]
    active: bool
    created_at: datetime
    secret_rotated_at: datetime


class SubscriptionSecret(Subscription):
    """A subscription with its signing secret: shown once (at creation and rotation), never again."""

    secret: str  # whsec_<base64>: the HMAC-SHA256 key, base64 after the prefix


class Attempt(msgspec.Struct):
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_at: datetime | None


class Delivery(msgspec.Struct):
    id: uuid.UUID
    subscription_id: uuid.UUID
    webhook_id: uuid.UUID  # the Webhook-Id header: the same on every attempt and replay
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryDetail(msgspec.Struct):
    delivery: Delivery
    payload: str  # the exact body signed and sent (ids, types, states, timestamps: no PHI)
    attempts: list[Attempt]
