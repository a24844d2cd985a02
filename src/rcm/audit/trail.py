"""Recording audit events in the caller's transaction.

``record`` only buffers the event on the session. Just before the session's (outermost) commit, a
``before_commit`` hook on the sync session INSERTs the buffered events in one statement, in the same
transaction: the access and its audit record commit together or not at all (45 CFR 164.312(b)). The hook
runs synchronous SQL on an ``AsyncSession``'s connection, which SQLAlchemy's greenlet bridge allows because
``AsyncSession.commit`` runs the sync commit inside a greenlet.

No lock and no hashing here: each row carries its transaction id, and the chainer (``rcm.audit.chainer``,
role rcm_audit) seals committed events into their tenant's hash chain within seconds. Concurrent requests
of one tenant never wait for each other on the audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from rcm.audit import repository
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.records import AuditRecord, format_instant
from rcm.identity.principal import Principal, system_principal
from rcm.kit.db import tenant_transaction
from rcm.kit.jsonwrite import json_value, populate
from rcm.kit.tenant import TenantContext, TenantId

_PENDING = "rcm.audit.pending"


def record(session: AsyncSession, event: AuditEvent) -> None:
    """Buffer ``event``; it is inserted in this session's transaction just before commit.

    The transaction's tenant context must include ``event.tenant_id`` (RLS refuses the insert otherwise,
    and the commit fails). If the audit write fails for any reason, the commit fails.
    """
    _check(event)
    pending: list[AuditEvent] = session.sync_session.info.setdefault(_PENDING, [])
    pending.append(event)


def written_by_caller(event: AuditEvent) -> AuditRecord:
    """``event`` as the row a repository writes in its own statement of this transaction (a list read
    writes its event with its SELECT: ``repository.read_with_event``). Nothing is buffered: the caller's
    statement is the record, and the transaction commits it with the access or not at all."""
    _check(event)
    return to_record(event)


async def record_now(sessions: async_sessionmaker[AsyncSession], event: AuditEvent) -> None:
    """Record ``event`` in a transaction of its own: for denials whose request transaction rolls back."""
    async with tenant_transaction(sessions, TenantContext.single(event.tenant_id)) as session:
        record(session, event)


def take_pending(session: AsyncSession, *, since: int = 0) -> list[AuditRecord]:
    """The events buffered so far (from the ``pending_mark`` ``since``), as stored rows, taken off the
    buffer: for a repository that inserts them with its own rows (one round trip for the rows and their
    audit events, in the same transaction). Events before ``since`` stay buffered: a batch inside a
    savepoint takes only its own, so a rolled-back batch loses none of the others.

    The caller must insert them in this transaction; if that statement fails, the transaction fails, and
    the events go with it as they would have at commit.
    """
    pending: list[AuditEvent] | None = session.sync_session.info.get(_PENDING)
    if not pending:
        return []
    taken = pending[since:]
    del pending[since:]
    return [to_record(event) for event in taken]


def pending_rows(session: AsyncSession, *, since: int = 0) -> list[dict[str, Any]]:
    """``take_pending`` (from the mark ``since``) as the JSON rows of ``with_audit``'s ``audit_event``
    parameter."""
    return [
        {key: json_value(value) for key, value in record.as_row().items()}
        for record in take_pending(session, since=since)
    ]


# What ``AuditRecord.as_row`` holds: every column but the inserting transaction's id (its default).
_AUDIT_COLUMNS = tuple(column.name for column in repository.audit_event.columns if column.name != "xid")


def with_audit(parts: Sequence[str]) -> str:
    """One statement of the data-modifying ``parts`` (``rcm.kit.jsonwrite``), ending with the INSERT of
    the audit events given as its ``audit_event`` parameter (``pending_rows``): the rows and the events
    that record them in one round trip, in the same transaction."""
    ctes = ",\n".join(f"w{index} AS ({part})" for index, part in enumerate(parts))
    return f"WITH {ctes}\n{populate(repository.audit_event, _AUDIT_COLUMNS)}"


def of_row(event: AuditEvent) -> dict[str, Any]:
    """``event`` as the parameters of ``repository.event_of_row``: recorded by the statement that touches
    its row, in the same transaction, with no round trip of its own. The statement takes the event's
    practice and resource from that row; ``event.tenant_id`` and ``event.resource_ids`` are not written."""
    _check(event)
    return repository.event_of_row_params(to_record(event))


def pending_events(session: AsyncSession) -> tuple[AuditEvent, ...]:
    """Events buffered on the session and not yet written (for tests and diagnostics)."""
    return tuple(session.sync_session.info.get(_PENDING, ()))


def pending_mark(session: AsyncSession) -> int:
    """How many events are buffered now: pass it to ``discard_pending_since`` when a savepoint rolls back."""
    return len(session.sync_session.info.get(_PENDING, ()))


def discard_pending_since(session: AsyncSession, mark: int) -> None:
    """Forget events buffered since ``mark``: the savepoint holding what they describe was rolled back, so
    they would record accesses that never took effect (a bulk line rejected half-way)."""
    pending: list[AuditEvent] | None = session.sync_session.info.get(_PENDING)
    if pending is not None:
        del pending[mark:]


def _check(event: AuditEvent) -> None:
    # Programming errors, caught at the call site rather than at commit. Messages carry no values.
    if not event.event_type:
        raise ValueError("audit event_type is required")
    format_instant(event.occurred_at)  # refuses naive timestamps
    for key, value in event.detail.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int | bool)):
            # Floats are excluded too: their text form would not round-trip through jsonb byte for byte.
            raise TypeError("audit detail holds str keys and str/int/bool/None values only")


def _blank_to_none(value: str | None) -> str | None:
    # Empty and absent are the same fact; one spelling keeps exports (CSV has no NULL) verifiable.
    return value or None


def to_record(event: AuditEvent) -> AuditRecord:
    """The stored form of ``event``, unsealed (the chainer gives it its position and hashes)."""
    actor = event.actor
    return AuditRecord(
        tenant_id=event.tenant_id,
        seq=None,
        occurred_at=event.occurred_at,
        id=event.id,
        event_type=event.event_type,
        action=event.action.value,
        outcome=event.outcome.value,
        actor_kind=actor.kind.value if actor else None,
        actor_subject=_blank_to_none(actor.subject) if actor else None,
        actor_roles=tuple(sorted(role.value for role in actor.roles)) if actor else (),
        client_id=_blank_to_none(actor.client_id) if actor else None,
        actor_hint=_blank_to_none(event.actor_hint),
        resource_type=_blank_to_none(event.resource_type),
        resource_ids=tuple(event.resource_ids),
        patient_ids=tuple(event.patient_ids),
        source_ip=_blank_to_none(event.request.source_ip),
        request_id=event.request.request_id,
        trace_id=event.request.trace_id,
        detail=dict(event.detail),
        prev_hash=None,
        hash=None,
    )


@sa_event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    # A savepoint release also fires before_commit: the events wait for the outermost commit.
    if session.in_nested_transaction():
        return
    pending: list[AuditEvent] | None = session.info.pop(_PENDING, None)
    if pending:
        repository.append_records(session, [to_record(event) for event in pending])


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction: SessionTransaction) -> None:
    # A rolled-back transaction leaves nothing behind, its buffered events included.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def reencryption_witness(actor: Principal, request: RequestInfo) -> Callable[..., None]:
    """The audit trail's ``rcm.crypto.reencrypt.Witness``: one ``phi.reseal`` event per batch re-encrypted
    (rows of a PHI table, or a blob), in the transaction that rewrote them, naming every id."""

    def witness(session: AsyncSession, tenant_id: TenantId, *, kind: str, ids: Sequence[uuid.UUID]) -> None:
        record(
            session,
            AuditEvent(
                tenant_id=tenant_id,
                event_type="phi.reseal",
                action=Action.UPDATE,
                outcome=Outcome.SUCCESS,
                request=request,
                actor=actor,
                resource_type=kind,
                resource_ids=tuple(ids),
                detail={"count": len(ids)},
            ),
        )

    return witness


def system_actor(job: str) -> Principal:
    """The actor a job with no requester is recorded as (``system:<job>``)."""
    return system_principal(job)
