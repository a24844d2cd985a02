"""The webhook jobs: a dispatcher on the shared scheduler queues due deliveries across practices, and the
``webhooks.deliver`` actor posts one (``rcm.webhooks.delivery``). Both are idempotent: the dispatcher marks
what it queued (re-queued only if still due a while later: a lost message), the actor leases the row."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.crypto.keyring import KeyStore
from rcm.crypto.tasks import job_keystore
from rcm.kit.tenant import TenantId
from rcm.webhooks.delivery import JOB, SYSTEM, deliver
from rcm.worker import actor, enqueue, job_context
from rcm.worker.scheduler import JobResources, periodic

DISPATCH_EVERY_SECONDS = 5.0
DISPATCH_BATCH = 500
# A row queued this long ago and still due lost its message (broker restart): queue it again.
REDISPATCH_AFTER = timedelta(minutes=2)


@actor(name=JOB, max_retries=3, time_limit_ms=60_000)
async def deliver_one(*, tenant_id: str, delivery_id: str) -> str | None:
    context = job_context()
    status = await deliver(
        context.sessions(),
        job_keystore(),
        TenantId(uuid.UUID(tenant_id)),
        uuid.UUID(delivery_id),
        env=context.settings.env,
    )
    return status.value if status is not None else None


async def dispatch_due(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Queue every due delivery of every practice (sent after commit); returns (practice, delivery)."""
    from rcm.audit.events import request_info_from
    from rcm.kit.db import platform_transaction
    from rcm.tenancy.repository import tenant_ids
    from rcm.tenancy.staff import system_scope
    from rcm.webhooks.repository import DeliveryRepository

    async with platform_transaction(sessions) as session:
        every_tenant = tuple(TenantId(t) for t in await tenant_ids(session))
    if not every_tenant:
        return []
    async with system_scope(
        sessions,
        keystore,
        job="webhooks.dispatch",
        tenant_ids=every_tenant,
        actor=SYSTEM,
        request=request_info_from(None),
    ) as scope:
        due = await scope.repo(DeliveryRepository).dispatch_due(
            limit=DISPATCH_BATCH, redispatch_after=REDISPATCH_AFTER
        )
        for tenant_id, delivery_id in due:
            enqueue(scope.session, deliver_one, tenant_id=tenant_id, delivery_id=delivery_id)
    return due


@periodic(name="webhooks.dispatch", every_seconds=lambda s: DISPATCH_EVERY_SECONDS)
async def dispatch(resources: JobResources) -> int:
    from rcm.config import app_database_url
    from rcm.crypto.provider import key_provider

    sessions = resources.sessions(app_database_url(resources.settings), application_name="rcm-webhooks")
    keystore = resources.state.get("keystore")
    if not isinstance(keystore, KeyStore):
        keystore = resources.state["keystore"] = KeyStore(key_provider(resources.settings))
    return len(await dispatch_due(sessions, keystore))
