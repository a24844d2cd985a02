"""Posting one delivery: lease it, sign it, POST it, record the attempt, schedule the next or give up.

At least once, and idempotent under at-least-once jobs: the row is leased (``FOR UPDATE SKIP LOCKED``, then a
lease with an expiry) in a short transaction of its own, the POST happens with no transaction open, and the
outcome is written only under the same lease token. A duplicate message finds the row leased, delivered or
not yet due, and does nothing. A receiver de-duplicates on Webhook-Id, which is the same on every attempt.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import request_info_from
from rcm.crypto.fields import unseal
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal, PrincipalKind
from rcm.kit.errors import NotFound
from rcm.kit.tenant import TenantId
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope
from rcm.webhooks import signing
from rcm.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookSubscription
from rcm.webhooks.repository import DeliveryRepository, SubscriptionRepository
from rcm.webhooks.targets import TargetError, check_target

logger = logging.getLogger(__name__)
JOB = "webhooks.deliver"
SYSTEM = Principal(
    kind=PrincipalKind.CLIENT,
    subject="system:webhooks",
    roles=frozenset(),
    scopes=frozenset(),
    token_id=f"job:{JOB}",
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits ``base * 2**(n-1)`` plus up to a quarter more
    (never less, so each wait is longer than the one before), capped; after ``max_attempts``, dead."""

    max_attempts: int = 10  # 30 s, 1, 2, 4 ... 128 min: about four and a quarter hours in all
    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    timeout_seconds: float = 5.0  # a receiver answers quickly and does its work after
    lease_seconds: float = 60.0  # longer than the timeout: a crashed worker's row comes back after it

    def delay(self, attempt: int) -> timedelta:
        base = min(self.base_seconds * 2 ** (attempt - 1), self.cap_seconds)
        return timedelta(seconds=base * (1 + random.uniform(0, 0.25)))  # noqa: S311 - jitter, not secrecy


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None  # an exception's class name, or "http_<status>": never a response body
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(url: str, body: bytes, headers: dict[str, str], *, timeout_seconds: float) -> Outcome:
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(None, type(exc).__name__, int((time.monotonic() - started) * 1000))
    elapsed = int((time.monotonic() - started) * 1000)
    error = None if 200 <= response.status_code < 300 else f"http_{response.status_code}"
    return Outcome(response.status_code, error, elapsed)


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenant_id: TenantId,
    delivery_id: uuid.UUID,
    *,
    env: str,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> DeliveryStatus | None:
    """One attempt of a due delivery; its status after, or None when there was nothing to do."""
    token = uuid.uuid4()

    def scope() -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            sessions, keystore, tenant_id, actor=SYSTEM, request=request_info_from(None), job=JOB
        )

    try:
        async with scope() as unit:
            row = await unit.repo(DeliveryRepository).lease(
                delivery_id, token=token, hold=timedelta(seconds=policy.lease_seconds)
            )
            if row is None:
                return None
            subscription = await unit.repo(SubscriptionRepository).get(row.subscription_id)
            secret = None
            if subscription is not None and subscription.active and subscription.deleted_at is None:
                secret = unseal(unit.keyring, subscription, model=WebhookSubscription)["secret"]
            url = subscription.url if subscription is not None else ""
            webhook_id, body, attempt = str(row.event_id), row.payload.encode(), row.attempts + 1
    except NotFound:
        return None  # the practice is suspended or gone: its deliveries wait (or go with it)

    if secret is None:
        outcome = Outcome(None, "SubscriptionInactive", 0)
    else:
        try:
            check_target(url, env=env)
        except TargetError:
            outcome = Outcome(None, "TargetRefused", 0)
        else:
            stamp = int(datetime.now(UTC).timestamp())
            headers = signing.headers(secret, webhook_id, stamp, body)
            outcome = await post(url, body, headers, timeout_seconds=policy.timeout_seconds)

    async with scope() as unit:
        now = datetime.now(UTC)
        give_up = secret is None or attempt >= policy.max_attempts
        retry_at = None if outcome.delivered or give_up else now + policy.delay(attempt)
        if outcome.delivered:
            status = DeliveryStatus.DELIVERED
        else:
            status = DeliveryStatus.DEAD if give_up else DeliveryStatus.PENDING
        repo = unit.repo(DeliveryRepository)
        await repo.insert(
            WebhookAttempt(
                id=uuid.uuid4(),
                delivery_id=delivery_id,
                number=attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                retry_at=retry_at,
            )
        )
        done = await repo.finish(
            delivery_id,
            token=token,
            status=status.value,
            attempts=attempt,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            next_attempt_at=retry_at or now,
            dispatched_at=None,
            delivered_at=now if outcome.delivered else None,
        )
    if done is None:
        logger.warning(
            "webhook lease lost before the outcome was written", extra={"delivery": str(delivery_id)}
        )
        return None
    finished: DeliveryStatus = done.status
    return finished
