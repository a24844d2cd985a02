"""Send jobs only after the transaction that asked for them commits.

A job enqueued inside a transaction that then rolls back must never run (it would act on rows that do not
exist), and a job must not start before the rows it reads are visible to other connections. Messages are
kept on the session (``session.info``) and handed to the broker from SQLAlchemy's ``after_commit`` event;
``after_soft_rollback`` of the outermost transaction drops them (Polar's JobQueueManager, Zulip's
``queue_event_on_commit``).
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from rcm.worker.actors import JobActor, current_broker, get_actor

_PENDING = "rcm.worker.pending"
_HOOKED = "rcm.worker.hooked"
logger = logging.getLogger(__name__)


def enqueue(
    session: AsyncSession | Session, job: JobActor | str, /, *, delay_ms: int | None = None, **kwargs: Any
) -> dramatiq.Message[Any]:
    """Queue ``job(**kwargs)`` to be sent when ``session``'s transaction commits; nothing on rollback.

    The message is built now, so it carries the trace context of the code that asked for it.
    """
    actor = get_actor(job) if isinstance(job, str) else job
    message = actor.message(**kwargs)
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    if not sync.info.get(_HOOKED):
        event.listen(sync, "after_commit", _send_pending)
        event.listen(sync, "after_soft_rollback", _drop_pending)
        sync.info[_HOOKED] = True
    sync.info.setdefault(_PENDING, []).append((message, delay_ms))
    return message


def pending_messages(session: AsyncSession | Session) -> list[dramatiq.Message[Any]]:
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    return [message for message, _ in sync.info.get(_PENDING, [])]


def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    broker = current_broker()
    for message, delay_ms in pending:
        # The transaction is already committed; a broker failure here cannot undo it. It is logged with the
        # job name and id and re-raised so the caller sees it; jobs are idempotent and can be re-sent.
        try:
            broker.enqueue(message, delay=delay_ms)
        except Exception:
            logger.exception("job not sent after commit", extra={"job": message.actor_name})
            raise


def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    # A rolled-back savepoint keeps the outer transaction's messages; only the outermost rollback drops them.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
