"""Subscriptions and deliveries of one practice: create (secret returned once), list, delete, rotate the
secret, list deliveries and replay one. Services never commit; the request boundary does."""

from __future__ import annotations

import uuid

import msgspec

from rcm.audit.events import Action
from rcm.crypto.fields import seal
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.kit.models import utcnow
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.tenancy.scope import TenantScope
from rcm.webhooks import schemas, signing
from rcm.webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookSubscription
from rcm.webhooks.repository import DeliveryRepository, SubscriptionRepository
from rcm.webhooks.targets import TargetError, check_target
from rcm.worker import enqueue

SUBSCRIPTION = "webhook_subscription"
DELIVERY = "webhook_delivery"


def subscription_view(row: WebhookSubscription) -> schemas.Subscription:
    return schemas.Subscription(
        id=row.id,
        url=row.url,
        event_types=[EventType(t) for t in row.event_types],
        active=row.active,
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
    )


def _with_secret(row: WebhookSubscription, secret: str) -> schemas.SubscriptionSecret:
    return schemas.SubscriptionSecret(**msgspec.structs.asdict(subscription_view(row)), secret=secret)


def delivery_view(row: WebhookDelivery) -> schemas.Delivery:
    return schemas.Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        webhook_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status is DeliveryStatus.PENDING else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def _target(url: str, env: str) -> str:
    try:
        return check_target(url, env=env)
    except TargetError as exc:
        raise InvalidInput("The webhook URL is refused.", errors=[FieldError("/url", str(exc))]) from None


async def create_subscription(
    scope: TenantScope, data: schemas.SubscriptionCreate, *, env: str
) -> schemas.SubscriptionSecret:
    url = _target(data.url, env)
    row_id, secret = uuid.uuid4(), signing.new_secret()
    now = utcnow()
    row = WebhookSubscription(
        id=row_id,
        url=url,
        event_types=sorted({t.value for t in data.event_types}),
        active=data.active,
        secret_rotated_at=now,
        created_at=now,
        updated_at=now,
        **seal(scope.keyring, WebhookSubscription, row_id, {"secret": secret}),
    )
    await scope.repo(SubscriptionRepository).insert(row)
    scope.audit(
        "webhook.subscription.create", Action.CREATE, resource_type=SUBSCRIPTION, resource_ids=[row_id]
    )
    return _with_secret(row, secret)


async def list_subscriptions(
    scope: TenantScope, *, limit: int, cursor: str | None
) -> Page[schemas.Subscription]:
    rows = await scope.repo(SubscriptionRepository).page(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None
    )
    scope.audit(
        "webhook.subscription.list",
        Action.READ,
        resource_type=SUBSCRIPTION,
        resource_ids=[r.id for r in rows[:limit]],
    )
    return paginate(rows, limit, subscription_view)


async def read_subscription(scope: TenantScope, subscription_id: uuid.UUID) -> schemas.Subscription:
    row = await scope.repo(SubscriptionRepository).live(subscription_id)
    if row is None:
        raise NotFound
    scope.audit("webhook.subscription.read", Action.READ, resource_type=SUBSCRIPTION, resource_ids=[row.id])
    return subscription_view(row)


async def update_subscription(
    scope: TenantScope, subscription_id: uuid.UUID, data: schemas.SubscriptionUpdate, *, env: str
) -> schemas.Subscription:
    """Pause or resume, change the URL or the event types; deliveries already queued keep their target's
    subscription (a paused one's pending deliveries go dead at their next attempt, replayable)."""
    values: dict[str, object] = {}
    if data.url is not None:
        values["url"] = _target(data.url, env)
    if data.event_types is not None:
        values["event_types"] = sorted({t.value for t in data.event_types})
    if data.active is not None:
        values["active"] = data.active
    repo = scope.repo(SubscriptionRepository)
    row = await (repo.change(subscription_id, **values) if values else repo.live(subscription_id))
    if row is None:
        raise NotFound
    scope.audit(
        "webhook.subscription.update",
        Action.UPDATE,
        resource_type=SUBSCRIPTION,
        resource_ids=[row.id],
        detail={"fields": ",".join(sorted(values))},
    )
    return subscription_view(row)


async def rotate_secret(scope: TenantScope, subscription_id: uuid.UUID) -> schemas.SubscriptionSecret:
    """A new secret at once: deliveries from now on are signed with it (the old one stops verifying)."""
    secret = signing.new_secret()
    sealed = seal(scope.keyring, WebhookSubscription, subscription_id, {"secret": secret})
    row = await scope.repo(SubscriptionRepository).change(
        subscription_id, **sealed, secret_rotated_at=utcnow()
    )
    if row is None:
        raise NotFound
    scope.audit(
        "webhook.subscription.rotate", Action.UPDATE, resource_type=SUBSCRIPTION, resource_ids=[row.id]
    )
    return _with_secret(row, secret)


async def delete_subscription(scope: TenantScope, subscription_id: uuid.UUID) -> None:
    """Soft delete: the secret is erased; its pending deliveries go dead at their next attempt."""
    row = await scope.repo(SubscriptionRepository).change(
        subscription_id, active=False, secret=None, deleted_at=utcnow()
    )
    if row is None:
        raise NotFound
    scope.audit(
        "webhook.subscription.delete", Action.DELETE, resource_type=SUBSCRIPTION, resource_ids=[row.id]
    )


async def list_deliveries(
    scope: TenantScope,
    *,
    limit: int,
    cursor: str | None,
    status: DeliveryStatus | None,
    subscription_id: uuid.UUID | None,
) -> Page[schemas.Delivery]:
    rows = await scope.repo(DeliveryRepository).page(
        limit=limit + 1,
        after=decode_cursor(cursor) if cursor else None,
        status=status,
        subscription_id=subscription_id,
    )
    scope.audit(
        "webhook.delivery.list",
        Action.READ,
        resource_type=DELIVERY,
        resource_ids=[r.id for r in rows[:limit]],
        detail={"status": status.value if status else None},
    )
    return paginate(rows, limit, delivery_view)


async def read_delivery(scope: TenantScope, delivery_id: uuid.UUID) -> schemas.DeliveryDetail:
    repo = scope.repo(DeliveryRepository)
    row = await repo.get_or_404(delivery_id)
    attempts = await repo.attempts(delivery_id)
    scope.audit("webhook.delivery.read", Action.READ, resource_type=DELIVERY, resource_ids=[row.id])
    return schemas.DeliveryDetail(
        delivery=delivery_view(row),
        payload=row.payload,
        attempts=[
            schemas.Attempt(
                number=a.number,
                at=a.created_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                retry_at=a.retry_at,
            )
            for a in attempts
        ],
    )


async def replay(scope: TenantScope, delivery_id: uuid.UUID) -> schemas.Delivery:
    """Send a delivered or dead delivery again, with the same Webhook-Id and body (a fresh retry budget)."""
    repo = scope.repo(DeliveryRepository)
    await repo.get_or_404(delivery_id)
    row = await repo.rearm(delivery_id)
    if row is None:
        raise Conflict(
            "This delivery is still pending: it will be attempted anyway.",
            errors=[FieldError("/status", "is pending")],
        )
    scope.audit("webhook.delivery.replay", Action.UPDATE, resource_type=DELIVERY, resource_ids=[row.id])
    from rcm.webhooks.tasks import deliver_one  # the job's module imports this one

    enqueue(scope.session, deliver_one, tenant_id=scope.tenant_id, delivery_id=row.id)
    return delivery_view(row)
