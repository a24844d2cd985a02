"""All SQL of the audit trail. Tables are created by migration 0003_audit (partitioning, triggers, RLS).

Every statement runs under the transaction's tenant context: row-level security limits reads and appends to
the tenants the context names.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    Select,
    Table,
    Text,
    false,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from rcm.audit.records import AuditRecord
from rcm.kit.models import Base

audit_event = Table(
    "audit_event",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("occurred_at", DateTime(timezone=True), primary_key=True),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor_kind", Text),
    Column("actor_subject", Text),
    Column("actor_roles", ARRAY(Text), nullable=False),
    Column("client_id", Text),
    Column("actor_hint", Text),
    Column("resource_type", Text),
    Column("resource_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("patient_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("source_ip", Text),
    Column("request_id", Text, nullable=False),
    Column("trace_id", Text, nullable=False),
    Column("detail", JSONB, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)

audit_chain_head = Table(
    "audit_chain_head",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit_checkpoint = Table(
    "audit_checkpoint",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", Text, primary_key=True),
    Column("signature", LargeBinary, nullable=False),
)

# Take (creating if needed) the tenant's chain head and lock it until commit. The no-op DO UPDATE both
# locks an existing row and returns it in one round trip.
_LOCK_HEAD = text(
    """
    INSERT INTO rcm.audit_chain_head (tenant_id, seq, hash) VALUES (:tenant_id, 0, :genesis)
    ON CONFLICT (tenant_id) DO UPDATE SET seq = rcm.audit_chain_head.seq
    RETURNING seq, hash
    """
)
_MOVE_HEAD = text(
    "UPDATE rcm.audit_chain_head SET seq = :seq, hash = :hash, updated_at = now() "
    "WHERE tenant_id = :tenant_id"
)


# --- appends: synchronous, called from the before_commit hook through SQLAlchemy's greenlet bridge ---------


def lock_chain_head(session: Session, tenant_id: uuid.UUID, genesis: bytes) -> tuple[int, bytes]:
    seq, head = session.execute(_LOCK_HEAD, {"tenant_id": tenant_id, "genesis": genesis}).one()
    return int(seq), bytes(head)


def append_records(session: Session, records: Sequence[AuditRecord]) -> None:
    session.execute(insert(audit_event), [r.as_row() for r in records])


def move_chain_head(session: Session, tenant_id: uuid.UUID, seq: int, head: bytes) -> None:
    session.execute(_MOVE_HEAD, {"tenant_id": tenant_id, "seq": seq, "hash": head})


# --- reads ---------------------------------------------------------------------------------------------


async def context_tenants(session: AsyncSession) -> list[uuid.UUID]:
    """The tenants of the transaction's context (what RLS lets this transaction see)."""
    ids = (await session.execute(text("SELECT rcm.current_tenant_ids()"))).scalar_one()
    return sorted(ids or [])


async def all_tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every registered tenant (global registry table), for system-wide verification and auditors."""
    return list((await session.execute(text("SELECT id FROM rcm.tenant ORDER BY id"))).scalars())


async def tenant_id_for_slug(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """A practice's id from the global registry (a filter given by slug)."""
    found = await session.execute(text("SELECT id FROM rcm.tenant WHERE slug = :slug"), {"slug": slug})
    tenant_id: uuid.UUID | None = found.scalar_one_or_none()
    return tenant_id


async def user_id_for_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    """A person's id from the global directory, the email compared case-insensitively."""
    found = await session.execute(
        text("SELECT id FROM rcm.app_user WHERE lower(email) = lower(:email)"), {"email": email}
    )
    user_id: uuid.UUID | None = found.scalar_one_or_none()
    return user_id


@dataclass(frozen=True, slots=True)
class Filters:
    # A name that resolved to nothing (unknown slug or email): no record matches, and the answer is the same
    # empty page as any other search that finds nothing, so it does not tell whether the name exists.
    match_nothing: bool = False
    tenant_id: uuid.UUID | None = None
    actor_subject: str | None = None  # a person's principal subject (their app_user id), exactly
    actor: str | None = None
    patient_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    event_type: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(filters: Filters) -> Select[Any]:
    c = audit_event.c
    statement = select(audit_event)
    if filters.match_nothing:
        statement = statement.where(false())
    if filters.tenant_id is not None:
        statement = statement.where(c.tenant_id == filters.tenant_id)
    if filters.actor_subject is not None:
        statement = statement.where(c.actor_subject == filters.actor_subject)
    if filters.actor is not None:
        statement = statement.where(or_(c.actor_subject == filters.actor, c.client_id == filters.actor))
    if filters.patient_id is not None:
        statement = statement.where(c.patient_ids.contains([filters.patient_id]))
    if filters.resource_id is not None:
        statement = statement.where(c.resource_ids.contains([filters.resource_id]))
    if filters.resource_type is not None:
        statement = statement.where(c.resource_type == filters.resource_type)
    if filters.event_type is not None:
        statement = statement.where(c.event_type == filters.event_type)
    if filters.action is not None:
        statement = statement.where(c.action == filters.action)
    if filters.outcome is not None:
        statement = statement.where(c.outcome == filters.outcome)
    if filters.since is not None:
        statement = statement.where(c.occurred_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(c.occurred_at < filters.until)
    return statement


async def search_page(
    session: AsyncSession,
    filters: Filters,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID, int] | None,
) -> list[AuditRecord]:
    """Newest first by (occurred_at, tenant_id, seq), strictly after the keyset ``after``."""
    c = audit_event.c
    statement = _filtered(filters)
    if after is not None:
        statement = statement.where(
            tuple_(c.occurred_at, c.tenant_id, c.seq) < tuple_(*(literal(v) for v in after))
        )
    statement = statement.order_by(c.occurred_at.desc(), c.tenant_id.desc(), c.seq.desc()).limit(limit)
    rows = (await session.execute(statement)).mappings().all()
    return [AuditRecord.from_row(dict(row)) for row in rows]


async def stream_records(
    session: AsyncSession, filters: Filters, *, batch: int = 500
) -> AsyncIterator[AuditRecord]:
    """Chain order (tenant, seq), read through a server-side cursor so exports hold little memory."""
    statement = _filtered(filters).order_by(audit_event.c.tenant_id, audit_event.c.seq)
    result = await session.stream(statement.execution_options(yield_per=batch))
    async for row in result.mappings():
        yield AuditRecord.from_row(dict(row))


async def stream_chain(session: AsyncSession, tenant_id: uuid.UUID) -> AsyncIterator[AuditRecord]:
    c = audit_event.c
    statement = select(audit_event).where(c.tenant_id == tenant_id).order_by(c.seq, c.hash)
    result = await session.stream(statement.execution_options(yield_per=1000))
    async for row in result.mappings():
        yield AuditRecord.from_row(dict(row))


async def chain_head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, bytes] | None:
    row = (
        await session.execute(
            select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
                audit_chain_head.c.tenant_id == tenant_id
            )
        )
    ).one_or_none()
    return None if row is None else (int(row[0]), bytes(row[1]))


async def checkpoints(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    c = audit_checkpoint.c
    rows = (
        await session.execute(
            select(audit_checkpoint).where(c.tenant_id.in_(tenant_ids)).order_by(c.tenant_id, c.seq, c.key_id)
        )
    ).mappings()
    return [dict(row) for row in rows]


async def insert_checkpoint(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(audit_checkpoint).values(**row))


async def disabled_triggers(session: AsyncSession) -> list[str]:
    """Append-only triggers someone switched off (``ALTER TABLE ... DISABLE TRIGGER``)."""
    rows = await session.execute(
        text(
            "SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'rcm' AND t.tgname LIKE 'audit_no_%' AND t.tgenabled = 'D' ORDER BY 1"
        )
    )
    return list(rows.scalars())


async def ensure_partition(session: AsyncSession | AsyncConnection, at: datetime) -> str | None:
    name: str | None = (
        await session.execute(text("SELECT rcm.audit_ensure_partition(:at)"), {"at": at})
    ).scalar_one()
    return name


async def partitioning_installed(session: AsyncSession | AsyncConnection) -> bool:
    """Whether the audit migration has run (``rcm migrate`` may stop at an earlier revision)."""
    found = await session.execute(text("SELECT to_regprocedure('rcm.audit_ensure_partition(timestamptz)')"))
    return found.scalar_one() is not None


def keyset_of(record: AuditRecord) -> tuple[datetime, uuid.UUID, int]:
    return (record.occurred_at, record.tenant_id, record.seq)
