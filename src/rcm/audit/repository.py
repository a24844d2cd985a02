"""All SQL of the audit trail. Tables are created by migrations 0003_audit (partitioning, triggers, RLS)
and 0008_audit_anchoring (seals, the chainer's watermark, the rcm_audit role's grants).

Every statement runs under the transaction's tenant context: row-level security limits reads and appends to
the tenants the context names.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Index,
    Insert,
    Integer,
    LargeBinary,
    Select,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    and_,
    any_,
    bindparam,
    cast,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, aggregate_order_by, array
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from rcm.audit.records import AuditRecord
from rcm.kit.models import Base


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (asyncpg reads and writes it as an int)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


audit_event = Table(
    "audit_event",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("occurred_at", DateTime(timezone=True), primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor_kind", Text),
    Column("actor_subject", Text),
    Column("actor_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("client_id", Text),
    Column("actor_hint", Text),
    Column("resource_type", Text),
    Column("resource_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("patient_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default="{}"),
    Column("source_ip", Text),
    Column("request_id", Text, nullable=False),
    Column("trace_id", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default="{}"),
    # The inserting transaction: what lets the chainer know when no earlier event can still appear.
    Column("xid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
    # Auditors' searches: newest first (keyset), by patient, by resource, by actor; the chainer's scan by xid.
    Index("ix_audit_event_recent", "occurred_at", "tenant_id", "id"),
    Index("ix_audit_event_patient_ids", "patient_ids", postgresql_using="gin"),
    Index("ix_audit_event_resource_ids", "resource_ids", postgresql_using="gin"),
    Index("ix_audit_event_actor", "tenant_id", "actor_subject", "occurred_at"),
    Index("ix_audit_event_xid", "xid"),
    # Monthly partitions (and the DEFAULT one) are made by rcm.audit_ensure_partition, not modelled here.
    postgresql_partition_by="RANGE (occurred_at)",
)

audit_seal = Table(
    "audit_seal",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("sealed_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    UniqueConstraint("tenant_id", "event_id", name="uq_audit_seal_event"),
)

audit_chain_head = Table(
    "audit_chain_head",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
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
    # Version 2 (migration 0042_audit_proofs): the RFC 6962 root over the chain hashes of first_seq..seq,
    # signed with the rest. Null on checkpoints written before.
    Column("first_seq", BigInteger),
    Column("merkle_root", LargeBinary),
)

audit_chainer_state = Table(
    "audit_chainer_state",
    Base.metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("sealed_below", Xid8(), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

logger = logging.getLogger(__name__)
_EVENT_COLUMNS = [c for c in audit_event.c if c.name != "xid"]
# ``detail`` is read as text and parsed here, one row at a time: a row planted beneath the API with JSON
# nested thousands deep must fail neither a whole batch in the driver nor an auditor's page.
_READ_COLUMNS = [col if col.name != "detail" else cast(col, Text).label("detail") for col in _EVENT_COLUMNS]
# What an auditor sees in place of a detail no parser can read: the row is shown (it is evidence), its detail
# is not, and verification reports the row in any case (the chainer never seals it).
UNREADABLE_DETAIL = {"unreadable": "this event's detail cannot be parsed; it was not written by RCM"}


def _detail(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (RecursionError, ValueError):
        return dict(UNREADABLE_DETAIL)
    return value if isinstance(value, dict) else dict(UNREADABLE_DETAIL)


def _record(row: Mapping[Any, Any]) -> AuditRecord:
    return AuditRecord.from_row({**row, "detail": _detail(row["detail"])})


_SEAL_JOIN = and_(
    audit_seal.c.tenant_id == audit_event.c.tenant_id,
    audit_seal.c.event_id == audit_event.c.id,
    audit_seal.c.occurred_at == audit_event.c.occurred_at,
)


# --- appends: synchronous, called from the before_commit hook through SQLAlchemy's greenlet bridge ---------


def append_records(session: Session, records: Sequence[AuditRecord]) -> None:
    """One multi-row INSERT of the events; no lock, no chain (the chainer seals them later)."""
    session.execute(insert(audit_event), [r.as_row() for r in records])


def read_with_event(
    page: Select[Any], *, order: Sequence[str], shown: int, record: AuditRecord
) -> tuple[Select[Any], dict[str, Any]]:
    """``page`` with the INSERT of its read's audit ``record`` in the same statement (one round trip fewer
    than the event written at commit, and in the same transaction all the same).

    ``page`` selects an ``id`` column, ordered by the ``order`` columns. The event's resource and patient
    ids are the ids of the first ``shown`` rows in that order (what the caller shows; one more row only says
    that another page exists), read by PostgreSQL from the rows it returns, and its detail gets their
    ``count``. Returns the statement (its rows in ``order``) and the event's parameters to execute it with.
    """
    return read_with_event_statement(page, order=order), read_with_event_params(record, shown=shown)


def read_with_event_statement(page: Select[Any], *, order: Sequence[str]) -> Select[Any]:
    """The statement of ``read_with_event`` alone, for a statement built once (its event comes as the
    parameters ``read_with_event_params`` gives, with every execution)."""
    rows = page.cte("page")
    keys = [rows.c[name] for name in order]
    first = select(rows).order_by(*keys).limit(bindparam("ae_shown", type_=Integer)).subquery("first")
    shown_ids = select(
        func.coalesce(
            func.array_agg(aggregate_order_by(first.c.id, *(first.c[name] for name in order))),
            cast(literal_column("'{}'"), ARRAY(UUID(as_uuid=True))),
        ).label("ids")
    ).cte("shown_ids")
    ids = shown_ids.c.ids
    values: list[Any] = []
    for column in _EVENT_COLUMNS:
        if column.name in ("resource_ids", "patient_ids"):
            values.append(ids)
        elif column.name == "detail":
            detail = bindparam("ae_detail", type_=JSONB)
            values.append(
                detail.op("||", return_type=JSONB)(func.jsonb_build_object("count", func.cardinality(ids)))
            )
        else:
            values.append(bindparam(f"ae_{column.name}", type_=column.type))
    logged = insert(audit_event).from_select(
        [c.name for c in _EVENT_COLUMNS], select(*values).select_from(shown_ids)
    )
    return select(rows).order_by(*keys).add_cte(logged.cte("logged"))


def read_with_event_params(record: AuditRecord, *, shown: int) -> dict[str, Any]:
    """The event's parameters of ``read_with_event_statement``: ``record`` but for its ids (the statement
    takes them from the first ``shown`` rows it reads)."""
    params = {
        f"ae_{key}": value
        for key, value in record.as_row().items()
        if key not in ("resource_ids", "patient_ids")
    }
    params["ae_shown"] = shown
    return params


# An event recorded by the very statement that touches its row (the next item of a queue: which row, and so
# which practice, only that statement knows). Its practice and resource come from the row; every other column
# is a bound parameter ``audit_<column>``, so the statement around it stays one cached statement.
_FROM_ROW = ("tenant_id", "resource_ids")


def event_of_row(tenant_id: ColumnElement[uuid.UUID], resource_id: ColumnElement[uuid.UUID]) -> Insert:
    """``INSERT ... SELECT`` one audit event per row of another CTE of the same statement (``tenant_id``
    and ``resource_id`` are that CTE's columns): no row touched, no event; the rest of the event is
    ``event_of_row_params``. The row's practice must be bound (RLS refuses an event of any other)."""
    values = [
        tenant_id
        if column.name == "tenant_id"
        else array([resource_id])
        if column.name == "resource_ids"
        else bindparam(f"audit_{column.name}", type_=column.type)
        for column in _EVENT_COLUMNS
    ]
    return insert(audit_event).from_select([column.name for column in _EVENT_COLUMNS], select(*values))


def event_of_row_params(record: AuditRecord) -> dict[str, Any]:
    """The parameters of ``event_of_row``: ``record`` but for its practice and resource (the row's)."""
    return {f"audit_{name}": value for name, value in record.as_row().items() if name not in _FROM_ROW}


# --- the chainer (role rcm_audit) ------------------------------------------------------------------------

# One chainer at a time, whoever runs it (the worker's job or the CLI): a transaction-level advisory lock.
CHAINER_LOCK = 0x7263_6D61_7564  # "rcmaud"


async def lock_chainer(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAINER_LOCK})


# The oldest transaction still running IN THIS DATABASE (else the snapshot's xmax: none is). xids are
# cluster-wide, but only a transaction connected to this database can insert an audit event, so one left
# idle in another database (a neighbour's test run, an operator's psql) must not stall sealing here. A
# running xid is skipped only when pg_locks and pg_stat_activity (datname is visible to every role) place
# its backend in another database; whatever cannot be placed (a prepared transaction, a backend that ended
# between the snapshot and this read) is waited for. One statement, so one snapshot.
_HORIZON = text(
    "WITH snap AS (SELECT pg_current_snapshot() AS s) "
    "SELECT COALESCE("
    " (SELECT min(x) FROM pg_snapshot_xip(snap.s) AS x WHERE NOT EXISTS ("
    "   SELECT 1 FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
    "   WHERE l.locktype = 'transactionid' AND l.granted AND l.transactionid = x::xid"
    "     AND a.datname IS NOT NULL AND a.datname <> current_database())),"
    " pg_snapshot_xmax(snap.s)) FROM snap"
)


async def watermark_and_horizon(session: AsyncSession) -> tuple[int, int]:
    """``(watermark, horizon)``: every event with xid below the watermark is sealed; every transaction of
    this database with an xid below the horizon has ended, so no event with a smaller xid can still appear.
    The watermark row stays locked until commit."""
    low = (
        await session.execute(
            text("SELECT sealed_below FROM rcm.audit_chainer_state WHERE id = 1 FOR UPDATE")
        )
    ).scalar_one()
    horizon = (await session.execute(_HORIZON)).scalar_one()
    return int(low), int(horizon)


async def window_end(session: AsyncSession, low: int, horizon: int, *, batch: int) -> int:
    """The horizon, lowered to the xid of the ``batch``-th waiting event, so a backlog is sealed in bounded
    transactions without splitting one transaction's events."""
    cut = (
        await session.execute(
            text(
                "SELECT xid FROM rcm.audit_event "
                "WHERE xid >= CAST(:low AS xid8) AND xid < CAST(:high AS xid8) ORDER BY xid OFFSET :n LIMIT 1"
            ),
            {"low": low, "high": horizon, "n": batch},
        )
    ).scalar_one_or_none()
    return horizon if cut is None or int(cut) <= low else int(cut)


async def events_to_seal(session: AsyncSession, low: int, high: int) -> list[AuditRecord]:
    """The window's events in seal order: by tenant, then time, transaction and id (stable).

    An event that already has a seal is left out: the watermark moves with the seals, so that only happens
    if someone set the watermark back, and then re-sealing must not fail (nor seal anything twice).
    """
    c = audit_event.c
    already = select(audit_seal.c.event_id).where(_SEAL_JOIN).exists()
    statement = (
        select(*_READ_COLUMNS)
        .where(c.xid >= literal(low, Xid8()), c.xid < literal(high, Xid8()), ~already)
        .order_by(c.tenant_id, c.occurred_at, c.xid, c.id)
    )
    records = []
    for row in (await session.execute(statement)).mappings():
        detail = _detail(row["detail"])
        if detail == UNREADABLE_DETAIL:
            logger.warning("audit chainer left an event it cannot read unsealed")
            continue
        records.append(AuditRecord.from_row({**row, "detail": detail}))
    return records


async def sealed_event_ids(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, event id) of those ids that already carry a seal, whatever their time."""
    if not event_ids:
        return set()
    rows = await session.execute(
        select(audit_seal.c.tenant_id, audit_seal.c.event_id).where(
            audit_seal.c.event_id == any_(literal(list(set(event_ids)), ARRAY(UUID(as_uuid=True))))
        )
    )
    return {(row[0], row[1]) for row in rows}


async def lock_head(session: AsyncSession, tenant_id: uuid.UUID, genesis: bytes) -> tuple[int, bytes]:
    seq, head = (
        await session.execute(
            text(
                "INSERT INTO rcm.audit_chain_head (tenant_id, seq, hash) VALUES (:t, 0, :g) "
                "ON CONFLICT (tenant_id) DO UPDATE SET seq = rcm.audit_chain_head.seq RETURNING seq, hash"
            ),
            {"t": tenant_id, "g": genesis},
        )
    ).one()
    return int(seq), bytes(head)


async def insert_seals(session: AsyncSession, seals: Sequence[dict[str, Any]]) -> None:
    await session.execute(insert(audit_seal), list(seals))


async def move_head(session: AsyncSession, tenant_id: uuid.UUID, seq: int, head: bytes) -> None:
    await session.execute(
        text("UPDATE rcm.audit_chain_head SET seq = :s, hash = :h, updated_at = now() WHERE tenant_id = :t"),
        {"t": tenant_id, "s": seq, "h": head},
    )


async def set_watermark(session: AsyncSession, high: int) -> None:
    await session.execute(
        text(
            "UPDATE rcm.audit_chainer_state SET sealed_below = CAST(:h AS xid8), updated_at = now() "
            "WHERE id = 1"
        ),
        {"h": high},
    )


async def watermark(session: AsyncSession) -> int:
    value = (
        await session.execute(text("SELECT sealed_below FROM rcm.audit_chainer_state WHERE id = 1"))
    ).scalar_one()
    return int(value)


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
    """Events with their seal, if any (an unsealed event has NULL seq and hashes)."""
    c = audit_event.c
    statement = select(
        *_READ_COLUMNS, audit_seal.c.seq, audit_seal.c.prev_hash, audit_seal.c.hash
    ).select_from(audit_event.outerjoin(audit_seal, _SEAL_JOIN))
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
    after: tuple[datetime, uuid.UUID, uuid.UUID] | None,
) -> list[AuditRecord]:
    """Newest first by (occurred_at, tenant_id, id), strictly after the keyset ``after``."""
    c = audit_event.c
    statement = _filtered(filters)
    if after is not None:
        statement = statement.where(
            tuple_(c.occurred_at, c.tenant_id, c.id) < tuple_(*(literal(v) for v in after))
        )
    statement = statement.order_by(c.occurred_at.desc(), c.tenant_id.desc(), c.id.desc()).limit(limit)
    rows = (await session.execute(statement)).mappings().all()
    return [_record(row) for row in rows]


async def stream_records(
    session: AsyncSession, filters: Filters, *, batch: int = 500
) -> AsyncIterator[AuditRecord]:
    """Chain order (tenant, seq), unsealed events after the sealed ones, through a server-side cursor so
    exports hold little memory."""
    c = audit_event.c
    statement = _filtered(filters).order_by(
        c.tenant_id, audit_seal.c.seq.asc().nulls_last(), c.occurred_at, c.id
    )
    result = await session.stream(statement.execution_options(yield_per=batch))
    async for row in result.mappings():
        yield _record(row)


async def stream_chain(session: AsyncSession, tenant_id: uuid.UUID) -> AsyncIterator[AuditRecord | Seal]:
    """The tenant's seals in chain order, each with its event; a seal whose event is gone comes as a bare
    ``Seal``."""
    s = audit_seal.c
    statement = (
        select(
            *(c.label(f"e_{c.name}") for c in _READ_COLUMNS),
            s.seq,
            s.prev_hash,
            s.hash,
            s.event_id.label("seal_event_id"),
        )
        .select_from(audit_seal.outerjoin(audit_event, _SEAL_JOIN))
        .where(s.tenant_id == tenant_id)
        .order_by(s.seq, s.hash)
    )
    result = await session.stream(statement.execution_options(yield_per=1000))
    async for row in result.mappings():
        if row["e_id"] is None:
            yield Seal(int(row["seq"]), row["seal_event_id"], bytes(row["prev_hash"]), bytes(row["hash"]))
            continue
        values = {name[2:]: value for name, value in row.items() if name.startswith("e_")}
        values.update(seq=row["seq"], prev_hash=row["prev_hash"], hash=row["hash"])
        yield _record(values)


@dataclass(frozen=True, slots=True)
class Seal:
    """A chain position whose event row no longer exists."""

    seq: int
    event_id: uuid.UUID
    prev_hash: bytes
    hash: bytes


async def unsealed_counts(session: AsyncSession, tenant_id: uuid.UUID, below: int) -> tuple[int, int]:
    """(events waiting for the chainer, events the chainer should have sealed but did not)."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE e.xid >= CAST(:w AS xid8)), "
                "       count(*) FILTER (WHERE e.xid < CAST(:w AS xid8)) "
                "FROM rcm.audit_event e WHERE e.tenant_id = :t AND NOT EXISTS ("
                "  SELECT 1 FROM rcm.audit_seal s WHERE s.tenant_id = e.tenant_id AND s.event_id = e.id"
                "  AND s.occurred_at = e.occurred_at)"
            ),
            {"t": tenant_id, "w": below},
        )
    ).one()
    return int(row[0]), int(row[1])


async def chain_head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, bytes] | None:
    row = (
        await session.execute(
            select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(
                audit_chain_head.c.tenant_id == tenant_id
            )
        )
    ).one_or_none()
    return None if row is None else (int(row[0]), bytes(row[1]))


async def chain_heads(session: AsyncSession) -> dict[uuid.UUID, tuple[int, bytes]]:
    """Every chain head the session's tenant context can see."""
    rows = await session.execute(
        select(audit_chain_head.c.tenant_id, audit_chain_head.c.seq, audit_chain_head.c.hash)
    )
    return {row[0]: (int(row[1]), bytes(row[2])) for row in rows}


async def checkpoints(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    c = audit_checkpoint.c
    rows = (
        await session.execute(
            select(audit_checkpoint).where(c.tenant_id.in_(tenant_ids)).order_by(c.tenant_id, c.seq, c.key_id)
        )
    ).mappings()
    return [dict(row) for row in rows]


async def latest_checkpoints(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """Each tenant's newest checkpoint."""
    c = audit_checkpoint.c
    rows = await session.execute(
        select(audit_checkpoint)
        .where(c.tenant_id.in_(tenant_ids))
        .order_by(c.tenant_id, c.seq.desc(), c.created_at.desc())
        .distinct(c.tenant_id)
    )
    return [dict(row) for row in rows.mappings()]


async def seal_hashes(
    session: AsyncSession, tenant_id: uuid.UUID, first_seq: int, last_seq: int
) -> list[bytes]:
    """The chain hashes of positions ``first_seq..last_seq`` of a tenant, in seq order (a Merkle tree's
    leaves)."""
    s = audit_seal.c
    rows = await session.execute(
        select(s.hash).where(s.tenant_id == tenant_id, s.seq >= first_seq, s.seq <= last_seq).order_by(s.seq)
    )
    return [bytes(h) for h in rows.scalars()]


async def sealed_event(session: AsyncSession, event_id: uuid.UUID) -> AuditRecord | None:
    """One event with its seal, by id, among the tenants of the context (None: unknown or not visible)."""
    statement = _filtered(Filters()).where(audit_event.c.id == event_id).limit(1)
    row = (await session.execute(statement)).mappings().first()
    return None if row is None else _record(row)


async def covering_checkpoint(session: AsyncSession, tenant_id: uuid.UUID, seq: int) -> dict[str, Any] | None:
    """The earliest checkpoint with a Merkle root whose range holds position ``seq``."""
    c = audit_checkpoint.c
    row = (
        (
            await session.execute(
                select(audit_checkpoint)
                .where(
                    c.tenant_id == tenant_id,
                    c.merkle_root.is_not(None),
                    c.first_seq <= seq,
                    c.seq >= seq,
                )
                .order_by(c.seq, c.created_at, c.key_id)
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


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


def keyset_of(record: AuditRecord) -> tuple[datetime, uuid.UUID, uuid.UUID]:
    return (record.occurred_at, record.tenant_id, record.id)
