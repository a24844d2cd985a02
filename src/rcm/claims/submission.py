"""Sending submission batches to their clearinghouse: a transactional outbox, at least once, never twice.

The pending batch row is the outbox record: ``build_batches`` (and a biller's replay) write it in the
transaction that makes the batch, and ask for ``claims.submit_batch`` after commit; the relay
(``rcm.claims.jobs``) sends that message again for every batch still due, so a lost message only delays.

The handler (``submit_batch``) is idempotent under duplicate messages:

1. Lock the batch (SKIP LOCKED: a handler at work on it already wins). Sent or dead: done. Not yet due (a
   backoff, a circuit's cool-down, a call in flight under its lease): nothing to do.
2. Found ``sending`` with its lease over, a handler died between the connector's call and its record: the
   connector is asked whether the far side has the file (``delivered``): yes, it is marked sent; no, it is
   sent; cannot tell, it goes to a biller (sending again might submit every claim twice).
3. Render (once: the kept 837 is reused), set ``sending`` with a lease, spend an attempt, and COMMIT.
4. Call the connector under its circuit breaker, with no transaction open.
5. In a new transaction: sent (claims submitted, an event each, the receipt recorded); or a transient error
   retried with exponential backoff and jitter (at least the far side's Retry-After) until the attempts run
   out; or dead: a ``dead_letter`` billing item names the batch and the error in words (connector,
   operation, reason: never content) for a biller to replay. An open circuit makes no call and spends no
   attempt: the batch waits out the cool-down.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.batches import BATCH, mark_sent
from rcm.claims.building import open_billing_item
from rcm.claims.models import BatchStatus, SubmissionBatch
from rcm.claims.outbox_repository import OutboxRepository
from rcm.claims.rendering import render_batch
from rcm.claims.repository import BillingQueueRepository
from rcm.claims.submit_tasks import submit_batch_job
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import system_principal
from rcm.interchanges import service as interchanges
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.payers.breaker import Breaker, CircuitOpen, breaker_key, guarded
from rcm.payers.connector import (
    Connector,
    ConnectorConfig,
    ConnectorError,
    PermanentConnectorError,
    Submission,
    TransientConnectorError,
)
from rcm.payers.registry import build_config, open_connector
from rcm.payers.repository import EnrollmentRepository
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.worker import enqueue
from rcm.workqueue.models import BillingReason, SubjectType
from rcm.x12 import X12Error

JOB = "claims.submit_batch"
_ERROR_LENGTH = 300


class Outcome(StrEnum):
    SENT = "sent"  # the connector took it, or (after a crash) the far side already had it
    DONE = "done"  # already sent or dead: a duplicate message
    BUSY = "busy"  # another handler holds the batch, or it is gone
    NOT_DUE = "not_due"  # waiting: backoff, cool-down, or a call in flight under its lease
    RETRY = "retry"  # a transient error: rescheduled with backoff
    CIRCUIT_OPEN = "circuit_open"  # no call made: rescheduled after the cool-down, no attempt spent
    DEAD = "dead"  # a billing item asks a biller to decide


@dataclass(frozen=True, slots=True)
class Policy:
    max_attempts: int = 8
    backoff_seconds: float = 30.0  # the first retry's delay; doubled per attempt, with jitter
    max_backoff_seconds: float = 3600.0
    lease_seconds: float = 300.0  # how long a call in flight keeps the relay away (> the connector timeout)
    timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.submission_max_attempts,
            backoff_seconds=settings.submission_backoff_seconds,
            max_backoff_seconds=max(settings.submission_backoff_seconds, 3600.0),
            lease_seconds=settings.submission_lease_seconds,
            timeout_seconds=settings.connector_timeout_seconds,
        )

    def backoff(self, attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
        """Exponential with "equal jitter" (half fixed, half random), never sooner than Retry-After."""
        base = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(attempts - 1, 0))
        delay = base / 2 + rng.uniform(0, base / 2)
        return timedelta(seconds=max(delay, retry_after or 0.0))


@dataclass(slots=True)
class Submitter:
    """What the handler needs from its process (the job builds one; tests build their own)."""

    sessions: async_sessionmaker[AsyncSession]
    keystore: KeyStore
    store: BlobStore
    breaker: Breaker
    secrets: SecretResolver
    policy: Policy = field(default_factory=Policy)
    connect: Callable[[ConnectorConfig], Connector] = open_connector
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @asynccontextmanager
    async def scope(self, tenant_id: TenantId) -> AsyncIterator[TenantScope]:
        async with job_tenant_scope(
            self.sessions,
            self.keystore,
            tenant_id,
            actor=system_principal(JOB),
            request=RequestInfo(request_id=f"job:{JOB}", trace_id=""),
            job=JOB,
        ) as scope:
            yield scope


def file_name(batch: SubmissionBatch) -> str:
    """Opaque and stable across retries (the ``delivered`` probe asks by it): ids only, no PHI."""
    return f"837-{batch.interchange_control_number:09d}-{batch.id.hex}.x12"


def error_words(exc: ConnectorError) -> str:
    """What ``last_error`` and the billing item say: connector, operation, error class and reason words
    (connector errors never carry content or credentials by contract)."""
    return f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]


@dataclass(slots=True)
class _Call:
    connector: Connector
    key: str
    submission: Submission
    attempts: int  # including the one this call spends


async def submit_batch(deps: Submitter, tenant_id: TenantId, batch_id: uuid.UUID) -> Outcome:
    """Send one batch (see the module's steps); safe to run any number of times, concurrently too."""
    async with deps.scope(tenant_id) as scope:
        prepared = await _prepare(deps, scope, batch_id)
    if isinstance(prepared, Outcome):
        return prepared
    call = prepared
    try:
        async with guarded(deps.breaker, call.key):
            receipt = await call.connector.submit(call.submission)
    except ConnectorError as exc:
        async with deps.scope(tenant_id) as scope:
            return await _failed(deps, scope, batch_id, exc, attempts=call.attempts)
    finally:
        await call.connector.aclose()
    async with deps.scope(tenant_id) as scope:
        batch = await scope.repo(OutboxRepository).lock(batch_id, wait=True)
        if batch is None or batch.status is not BatchStatus.SENDING:
            return Outcome.DONE  # settled meanwhile (a probe after an overlong call): nothing to record
        await mark_sent(scope, batch_id, receipt_reference=receipt.reference)
    return Outcome.SENT


async def _prepare(deps: Submitter, scope: TenantScope, batch_id: uuid.UUID) -> _Call | Outcome:
    """Steps 1-3 in one transaction; a ``_Call`` to make once it commits, or what happened instead."""
    now = deps.clock()
    repo = scope.repo(OutboxRepository)
    batch = await repo.lock(batch_id)
    idle = _nothing_to_do(batch, now)
    if idle is not None or batch is None:
        return idle or Outcome.BUSY
    try:
        config = await _config(deps, scope, batch)
        connector = deps.connect(config)
    except PermanentConnectorError as exc:
        return await _failed(deps, scope, batch_id, exc, attempts=batch.attempts)
    key = breaker_key(config.connector, _endpoint_key(config))
    name = file_name(batch)
    try:
        if batch.status is BatchStatus.SENDING:
            settled = await _probe(deps, scope, batch, connector, key=key, name=name)
            if settled is not None:
                await connector.aclose()
                return settled
        data = await _render(deps, scope, batch_id)
        if data is None:
            await connector.aclose()
            return Outcome.DEAD
        await repo.start_sending(batch_id, lease_until=now + timedelta(seconds=deps.policy.lease_seconds))
    except BaseException:
        await connector.aclose()
        raise
    submission = Submission(
        file_name=name, interchange_control_number=f"{batch.interchange_control_number:09d}", x12=data
    )
    scope.audit("submission_batch.sending", Action.UPDATE, resource_type=BATCH, resource_ids=[batch_id])
    return _Call(connector=connector, key=key, submission=submission, attempts=batch.attempts + 1)


def _nothing_to_do(batch: SubmissionBatch | None, now: datetime) -> Outcome | None:
    """Why a message finds nothing to do: the batch is held or gone, settled, or not yet due."""
    if batch is None:
        return Outcome.BUSY
    if batch.status not in (BatchStatus.PENDING, BatchStatus.SENDING):
        return Outcome.DONE
    if batch.next_attempt_at > now:
        return Outcome.NOT_DUE
    return None


async def _probe(
    deps: Submitter, scope: TenantScope, batch: SubmissionBatch, connector: Connector, *, key: str, name: str
) -> Outcome | None:
    """A batch left ``sending`` past its lease: its handler died between the call and its record. None
    when the far side does not have the file (send it); otherwise what was settled."""
    try:
        async with guarded(deps.breaker, key):
            delivered = await connector.delivered(name)
    except ConnectorError as exc:
        return await _failed(deps, scope, batch.id, exc, attempts=batch.attempts, probing=True)
    if delivered:
        await mark_sent(scope, batch.id, receipt_reference=None)
        return Outcome.SENT
    if delivered is None:
        reason = f"{connector.config.connector} delivered: cannot tell whether the file reached the far side"
        await _bury(scope, batch.id, reason)
        return Outcome.DEAD
    return None


async def _render(deps: Submitter, scope: TenantScope, batch_id: uuid.UUID) -> bytes | None:
    """The batch's 837 as kept (rendered the first time); None when it cannot be: retrying cannot render
    what X12 cannot say (or for a practice no longer enrolled), so the batch goes to a biller. The words
    name the error's kind and segment, never a value (X12Error's contract)."""
    try:
        kept = await render_batch(scope, deps.store, batch_id)
    except (X12Error, Conflict) as exc:
        where = f" at segment {exc.segment_id}" if isinstance(exc, X12Error) and exc.segment_id else ""
        await _bury(scope, batch_id, f"render: {type(exc).__name__}{where}: {exc}"[:_ERROR_LENGTH])
        return None
    return await interchanges.read(scope, deps.store, kept)


def _endpoint_key(config: ConnectorConfig) -> str:
    endpoint = config.endpoint
    port = f":{endpoint.port}" if endpoint.port else ""
    return f"{endpoint.scheme}://{endpoint.host}{port}{endpoint.path}"


async def _config(deps: Submitter, scope: TenantScope, batch: SubmissionBatch) -> ConnectorConfig:
    found = await scope.repo(EnrollmentRepository).for_payer(batch.payer_id)
    connector = batch.connector or "claims"
    if found is None:
        raise PermanentConnectorError(connector, "configure", "the practice is not enrolled with the payer")
    enrollment, payer = found
    if not payer.claims_connector or not payer.claims_endpoint:
        raise PermanentConnectorError(connector, "configure", "the directory names no claims endpoint")
    return build_config(
        connector=payer.claims_connector,
        endpoint=payer.claims_endpoint,
        submitter_id=enrollment.submitter_id,
        receiver_id=enrollment.receiver_id,
        credentials_reference=enrollment.credentials_reference,
        resolver=deps.secrets,
        timeout_seconds=deps.policy.timeout_seconds,
    )


async def _failed(
    deps: Submitter,
    scope: TenantScope,
    batch_id: uuid.UUID,
    exc: ConnectorError,
    *,
    attempts: int,
    probing: bool = False,
) -> Outcome:
    """Reschedule (open circuit: no attempt spent; transient: backoff) or bury (permanent, or out of
    attempts). ``probing``: the error came from ``delivered``, the batch stays ``sending``."""
    now = deps.clock()
    repo = scope.repo(OutboxRepository)
    if not probing:
        await repo.lock(batch_id, wait=True)
    words = error_words(exc)
    keep = BatchStatus.SENDING if probing else BatchStatus.PENDING
    if isinstance(exc, CircuitOpen):
        at = now + timedelta(seconds=max(exc.retry_after or 0.0, 1.0))
        await repo.reschedule(batch_id, at=at, error=words, status=keep, refund=not probing)
        _again(scope, batch_id, at - now)
        return Outcome.CIRCUIT_OPEN
    if isinstance(exc, TransientConnectorError) and attempts < deps.policy.max_attempts:
        delay = deps.policy.backoff(max(attempts, 1), exc.retry_after, deps.rng)
        await repo.reschedule(batch_id, at=now + delay, error=words, status=keep)
        _again(scope, batch_id, delay)
        return Outcome.RETRY
    await _bury(scope, batch_id, words)
    return Outcome.DEAD


def _again(scope: TenantScope, batch_id: uuid.UUID, delay: timedelta) -> None:
    """A delayed message for latency; the relay sends one anyway if this one is lost."""
    enqueue(
        scope.session,
        submit_batch_job,
        delay_ms=int(delay.total_seconds() * 1000),
        tenant_id=scope.tenant_id,
        batch_id=batch_id,
    )


async def _bury(scope: TenantScope, batch_id: uuid.UUID, error: str) -> None:
    """``dead``, with a ``dead_letter`` billing item about the batch (one live item at a time)."""
    await scope.repo(OutboxRepository).bury(batch_id, error=error)
    await open_billing_item(
        scope,
        batch_id,
        BillingReason.DEAD_LETTER,
        now=datetime.now(UTC),
        subject_type=SubjectType.SUBMISSION_BATCH,
    )
    scope.audit(
        "submission_batch.dead",
        Action.UPDATE,
        resource_type=BATCH,
        resource_ids=[batch_id],
        detail={"error": error},
    )


async def batch_practice(scope: StaffScope, batch_id: uuid.UUID) -> TenantScope:
    """The practice of a batch in the caller's practices (404 for any other batch)."""
    batch = await scope.repo(OutboxRepository).get(batch_id)
    if batch is None:
        raise NotFound
    return await one_practice(scope, batch.tenant_id)


async def replay(scope: TenantScope, batch_id: uuid.UUID, *, actor: str) -> SubmissionBatch:
    """A biller sends a dead batch again: back to ``pending`` with a fresh retry budget, its dead-letter
    item resolved, and its message asked for (the relay's record is the batch itself)."""
    repo = scope.repo(OutboxRepository)
    batch = await repo.lock(batch_id, wait=True)
    if batch is None:
        raise NotFound
    if not await repo.revive(batch_id, now=datetime.now(UTC)):
        raise Conflict("Only a dead batch is replayed.", errors=[FieldError("/status", f"is {batch.status}")])
    await scope.repo(BillingQueueRepository).complete_about(batch_id, actor=actor)
    enqueue(scope.session, submit_batch_job, tenant_id=scope.tenant_id, batch_id=batch_id)
    scope.audit("submission_batch.replay", Action.UPDATE, resource_type=BATCH, resource_ids=[batch_id])
    revived = await repo.lock(batch_id, wait=True)
    assert revived is not None
    return revived
