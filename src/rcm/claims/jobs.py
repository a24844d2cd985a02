"""The submission relay on the shared scheduler (``rcm.worker.scheduler``), and what the submission job
needs from its worker process (sessions, keys, blob store, the connectors' circuit breaker)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.outbox_repository import OutboxRepository
from rcm.claims.submission import Policy, Submitter
from rcm.claims.submit_tasks import submit_batch_job
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import system_principal
from rcm.kit.secrets import SecretResolver
from rcm.payers.breaker import breaker_for
from rcm.worker import enqueue, job_context
from rcm.worker.scheduler import JobResources, periodic

RELAY = "claims.relay_submissions"
RELAY_LIMIT = 1000


def process_submitter() -> Submitter:
    from rcm.crypto.tasks import job_keystore

    context = job_context()
    settings = context.settings
    return Submitter(
        sessions=context.sessions(),
        keystore=job_keystore(),
        store=BlobStore.from_settings(settings),
        breaker=breaker_for(settings),
        secrets=SecretResolver(settings.secrets_dir),
        policy=Policy.from_settings(settings),
    )


async def relay(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    *,
    now: datetime | None = None,
    limit: int = RELAY_LIMIT,
) -> int:
    """Ask for ``claims.submit_batch`` for every batch due (pending, or sending past its lease) in every
    practice not offboarded; sent after commit. Returns how many. Duplicates are harmless (the handler
    locks and checks), so a tick that overlaps a message in flight costs a no-op."""
    from rcm.kit.db import platform_transaction
    from rcm.kit.tenant import TenantId
    from rcm.tenancy.repository import not_offboarded_tenants
    from rcm.tenancy.staff import system_scope

    async with platform_transaction(sessions) as session:
        tenants = tuple(TenantId(t) for t, _ in await not_offboarded_tenants(session))
    if not tenants:
        return 0
    async with system_scope(
        sessions,
        keystore,
        job=RELAY,
        tenant_ids=tenants,
        actor=system_principal(RELAY),
        request=RequestInfo(request_id=f"job:{RELAY}", trace_id=""),
    ) as scope:
        due = await scope.repo(OutboxRepository).due(now or datetime.now(UTC), limit=limit)
        for tenant_id, batch_id in due:
            enqueue(scope.session, submit_batch_job, tenant_id=tenant_id, batch_id=batch_id)
    return len(due)


@periodic(name=RELAY, every_seconds=lambda s: s.submission_relay_seconds)
async def relay_submissions(resources: JobResources) -> int:
    from rcm.config import app_database_url
    from rcm.crypto.provider import key_provider

    settings = resources.settings
    keystore = resources.state.get("keystore")
    if not isinstance(keystore, KeyStore):
        keystore = resources.state["keystore"] = KeyStore(key_provider(settings))
    sessions = resources.sessions(app_database_url(settings), application_name="rcm-submission-relay")
    return await relay(sessions, keystore)
