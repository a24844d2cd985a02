"""What auditors do with the access log: search, export, verify.

The session handed in carries the tenant context of the tenants the auditor may see (one or many); RLS
limits every read to them. Searches and exports are themselves accesses to the log and are recorded
(``audit.search`` / ``audit.export``), one event per tenant of the context, in the caller's transaction.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import repository
from rcm.audit.checkpoints import key_directory, public_keys_in, signature_valid
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.fhir import to_fhir
from rcm.audit.records import GENESIS_HASH, AuditRecord, canonical_bytes, format_instant, parse_instant
from rcm.audit.trail import record
from rcm.identity.principal import Principal
from rcm.kit.errors import FieldError, InvalidInput
from rcm.kit.tenant import TenantId

__all__ = [
    "CSV_COLUMNS",
    "MAX_LIMIT",
    "AuditQuery",
    "AuditRecord",
    "Problem",
    "TenantReport",
    "VerifyReport",
    "export_csv",
    "export_fhir_ndjson",
    "record_verify",
    "search",
    "verify",
]

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None  # principal subject (user id / api client id) or OAuth2 client_id
    actor_email: str | None = None  # a person, by email: resolved to their id server-side
    tenant: str | None = None  # a practice, by slug: resolved to its id server-side
    tenant_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    resource_type: str | None = None
    resource_id: uuid.UUID | None = None
    event_type: str | None = None
    action: Action | None = None
    outcome: Outcome | None = None
    since: datetime | None = None  # inclusive; must carry a UTC offset
    until: datetime | None = None  # exclusive; must carry a UTC offset

    def __post_init__(self) -> None:
        # A time without an offset is refused rather than guessed: "09:00" means another instant in every
        # practice's time zone, and an access report over the wrong window looks complete but is not.
        errors = [
            FieldError(
                f"query:{name}", "must be an ISO 8601 instant with a UTC offset, e.g. 2025-01-31T00:00:00Z"
            )
            for name in ("since", "until")
            if not _is_instant(getattr(self, name))
        ]
        # PostgreSQL text cannot hold NUL; the driver would fail the query with a 500.
        errors.extend(
            FieldError(f"query:{name}", "must not contain NUL characters")
            for name in ("actor", "actor_email", "tenant", "resource_type", "event_type")
            if "\x00" in (getattr(self, name) or "")
        )
        if errors:
            raise InvalidInput("A filter is not valid.", errors=errors)

    async def filters(self, session: AsyncSession) -> repository.Filters:
        """The filters as ids: a slug or an email that names nothing matches nothing (never an error, which
        would tell a caller whether a practice or a person exists)."""
        tenant_id, nothing, subject = self.tenant_id, False, None
        if self.tenant is not None:
            by_slug = await repository.tenant_id_for_slug(session, self.tenant)
            nothing = by_slug is None or (tenant_id is not None and tenant_id != by_slug)
            tenant_id = by_slug
        if self.actor_email is not None:
            user_id = await repository.user_id_for_email(session, self.actor_email)
            nothing = nothing or user_id is None
            subject = str(user_id) if user_id else None
        return repository.Filters(
            match_nothing=nothing,
            tenant_id=tenant_id,
            actor_subject=subject,
            actor=self.actor,
            patient_id=self.patient_id,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            event_type=self.event_type,
            action=self.action.value if self.action else None,
            outcome=self.outcome.value if self.outcome else None,
            since=self.since,
            until=self.until,
        )

    def audit_detail(self) -> dict[str, str | int | bool | None]:
        """The query's parameters as audit detail: ids and codes only (patient/resource ids go in their
        own columns of the recorded event)."""
        detail: dict[str, str | int | bool | None] = {}
        # The email itself stays out of the trail (a name, not an id); that it was a filter is recorded.
        if self.actor_email is not None:
            detail["filter.actor_email"] = True
        if self.tenant_id is not None:
            detail["filter.tenant_id"] = str(self.tenant_id)
        for name in ("actor", "tenant", "resource_type", "event_type"):
            value = getattr(self, name)
            if value is not None:
                detail[f"filter.{name}"] = value
        if self.action is not None:
            detail["filter.action"] = self.action.value
        if self.outcome is not None:
            detail["filter.outcome"] = self.outcome.value
        if self.since is not None:
            detail["filter.since"] = format_instant(self.since)
        if self.until is not None:
            detail["filter.until"] = format_instant(self.until)
        return detail


def _is_instant(value: datetime | None) -> bool:
    if value is None:
        return True
    try:
        format_instant(value)  # refuses naive values; converting an extreme offset can overflow
    except (ValueError, OverflowError):
        return False
    return True


# --- search --------------------------------------------------------------------------------------------


def encode_cursor(record: AuditRecord) -> str:
    raw = json.dumps([format_instant(record.occurred_at), str(record.tenant_id), record.seq])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_MAX_SEQ = 2**63 - 1  # bigint


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID, int]:
    invalid = InvalidInput(
        "The cursor is not valid.", errors=[FieldError("query:cursor", "is not a cursor from this API")]
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        occurred, tenant, seq = json.loads(base64.urlsafe_b64decode(padded))
        if not (isinstance(occurred, str) and isinstance(tenant, str) and type(seq) is int):
            raise invalid
        decoded = parse_instant(occurred), uuid.UUID(tenant), seq
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid from exc
    if not 0 < seq <= _MAX_SEQ:
        raise invalid
    return decoded


async def search(
    session: AsyncSession,
    query: AuditQuery,
    *,
    limit: int,
    cursor: str | None,
    actor: Principal,
    request: RequestInfo,
) -> tuple[list[AuditRecord], str | None]:
    """One page, newest first; returns the page and the cursor of the next one (None at the end)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            "limit out of range", errors=[FieldError("query:limit", f"must be 1..{MAX_LIMIT}")]
        )
    after = decode_cursor(cursor) if cursor else None
    filters = await query.filters(session)
    rows = await repository.search_page(session, filters, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    await _record_access(
        session,
        "audit.search",
        query,
        actor=actor,
        request=request,
        extra={"limit": limit, "paged": cursor is not None, "returned": len(page), **_resolved(filters)},
    )
    return page, (encode_cursor(page[-1]) if more and page else None)


# --- export --------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "tenant_id",
    "seq",
    "occurred_at",
    "id",
    "event_type",
    "action",
    "outcome",
    "actor_kind",
    "actor_subject",
    "actor_roles",
    "client_id",
    "actor_hint",
    "resource_type",
    "resource_ids",
    "patient_ids",
    "source_ip",
    "request_id",
    "trace_id",
    "detail",
    "prev_hash",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _csv_cell(value: str | None) -> str:
    # Spreadsheet formula injection (OWASP): a cell that could start a formula gets a leading apostrophe.
    # The apostrophe is also escaped, so the offline verifier strips exactly one and gets the value back.
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_row(rec: AuditRecord) -> list[str]:
    fields = rec.canonical_fields()
    out: list[str] = []
    for column in CSV_COLUMNS:
        if column == "prev_hash":
            out.append(rec.prev_hash.hex())
        elif column == "hash":
            out.append(rec.hash.hex())
        elif column in ("actor_roles", "resource_ids", "patient_ids", "detail"):
            out.append(canonical_bytes(fields[column]).decode())
        elif column == "seq":
            out.append(str(rec.seq))
        else:
            out.append(_csv_cell(fields[column]))
    return out


async def export_csv(
    session: AsyncSession, query: AuditQuery, *, actor: Principal, request: RequestInfo
) -> AsyncIterator[bytes]:
    """Every matching record in chain order (tenant, seq), streamed as CSV with a header row.

    The ``audit.export`` event is buffered before the first byte; the caller's transaction must commit
    (also when the client goes away mid-download) for it to be written.
    """
    filters = await query.filters(session)
    await _record_access(
        session,
        "audit.export",
        query,
        actor=actor,
        request=request,
        extra={"format": "csv", **_resolved(filters)},
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    async for batch in _batches(repository.stream_records(session, filters), 200):
        writer.writerows(csv_row(rec) for rec in batch)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def export_fhir_ndjson(
    session: AsyncSession, query: AuditQuery, *, actor: Principal, request: RequestInfo
) -> AsyncIterator[bytes]:
    """Every matching record as a FHIR R4 AuditEvent, one JSON document per line, in chain order."""
    filters = await query.filters(session)
    await _record_access(
        session,
        "audit.export",
        query,
        actor=actor,
        request=request,
        extra={"format": "fhir-ndjson", **_resolved(filters)},
    )
    async for batch in _batches(repository.stream_records(session, filters), 200):
        yield b"".join(
            json.dumps(to_fhir(rec), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
            for rec in batch
        )


async def _batches(source: AsyncIterator[AuditRecord], size: int) -> AsyncIterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    async for item in source:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _resolved(filters: repository.Filters) -> dict[str, str | int | bool | None]:
    """Whom an email filter named, as an id (the email itself is kept out of the trail)."""
    return {"filter.actor_email_user": filters.actor_subject} if filters.actor_subject else {}


async def _record_access(
    session: AsyncSession,
    event_type: str,
    query: AuditQuery,
    *,
    actor: Principal,
    request: RequestInfo,
    extra: Mapping[str, str | int | bool | None],
) -> None:
    detail = {**query.audit_detail(), **extra}
    for tenant_id in await repository.context_tenants(session):
        record(
            session,
            AuditEvent(
                tenant_id=TenantId(tenant_id),
                event_type=event_type,
                action=Action.EXECUTE,
                outcome=Outcome.SUCCESS,
                request=request,
                actor=actor,
                resource_type="audit_event",
                resource_ids=(query.resource_id,) if query.resource_id else (),
                patient_ids=(query.patient_id,) if query.patient_id else (),
                detail=detail,
            ),
        )


# --- verify --------------------------------------------------------------------------------------------

# Problem kinds, as reported per tenant:
EDITED = "edited"  # an event's content no longer matches its hash
DELETED = "deleted"  # a gap in seq
INSERTED = "inserted"  # a second event at one seq, or events beyond the chain head
REORDERED = "reordered"  # an intact event that sits at another position than the one it was chained at
BROKEN_LINK = "broken_link"  # prev_hash does not name the previous event: chain rewritten or spliced
TRUNCATED = "truncated"  # the chain ends before its head or before a signed checkpoint
HEAD_MISMATCH = "head_mismatch"  # the chain head names another hash than the last event's
CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # a signed checkpoint's hash is not the event's at that seq
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KEY = "unknown_key"

_REORDER_SEARCH_LIMIT = 256  # re-hash attempts per broken event when looking for where it came from


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    kind: str
    detail: str


@dataclass(slots=True)
class TenantReport:
    tenant_id: uuid.UUID
    events: int = 0
    head_seq: int | None = None
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}


@dataclass(slots=True)
class VerifyReport:
    tenants: list[TenantReport]
    # Database-wide findings, e.g. append-only triggers someone disabled.
    global_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.global_problems and all(t.ok for t in self.tenants)

    def for_tenant(self, tenant_id: uuid.UUID) -> TenantReport:
        return next(t for t in self.tenants if t.tenant_id == tenant_id)


@dataclass(slots=True)
class _Entry:
    seq: int
    prev_hash: bytes
    hash: bytes
    intact: bool  # content matches hash
    original_seq: int | None = None  # for moved events: where it was chained


async def verify(
    session: AsyncSession,
    tenant_ids: Iterable[uuid.UUID],
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | None = None,
) -> VerifyReport:
    """Check each tenant's chain, chain head and signed checkpoints. The session's context must cover
    ``tenant_ids``; checkpoint signatures are checked against ``public_keys`` (default: the public keys in
    ``<data_dir>/audit-keys``)."""
    if public_keys is None:
        from rcm.config import get_settings

        public_keys = public_keys_in(key_directory(get_settings()))
    ids = sorted(set(tenant_ids))
    report = VerifyReport(tenants=[])
    disabled = await repository.disabled_triggers(session)
    if disabled:
        report.global_problems.append("append-only triggers are disabled: " + ", ".join(disabled))
    all_checkpoints = await repository.checkpoints(session, ids)
    for tenant_id in ids:
        cps = [c for c in all_checkpoints if c["tenant_id"] == tenant_id]
        report.tenants.append(await _verify_tenant(session, tenant_id, cps, public_keys))
    return report


async def _verify_tenant(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    checkpoints: Sequence[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
) -> TenantReport:
    out = TenantReport(tenant_id=tenant_id, checkpoints=len(checkpoints))
    entries: list[_Entry] = []
    broken: list[tuple[_Entry, AuditRecord]] = []
    async for rec in repository.stream_chain(session, tenant_id):
        entry = _Entry(rec.seq, rec.prev_hash, rec.hash, rec.computed_hash() == rec.hash)
        entries.append(entry)
        if not entry.intact:
            broken.append((entry, rec))
    out.events = len(entries)
    _find_moves(broken)
    hash_at = _walk_chain(entries, out.problems)

    head = await repository.chain_head(session, tenant_id)
    out.head_seq = head[0] if head else None
    last_seq = max(hash_at, default=0)
    if head is None:
        if entries:
            out.problems.append(Problem(None, HEAD_MISMATCH, "events exist but the chain head is missing"))
    elif head[0] > last_seq:
        out.problems.append(Problem(last_seq + 1, TRUNCATED, f"chain ends at {last_seq}, head is {head[0]}"))
    elif head[0] < last_seq:
        out.problems.append(
            Problem(head[0] + 1, INSERTED, f"events after the head ({head[0]}) up to {last_seq}")
        )
    elif head[0] > 0 and hash_at.get(head[0]) != head[1]:
        out.problems.append(Problem(head[0], HEAD_MISMATCH, "the head's hash is not the last event's"))

    for cp in checkpoints:
        seq = int(cp["seq"])
        out.last_checkpoint_seq = max(out.last_checkpoint_seq or 0, seq)
        valid = signature_valid(cp, keys)
        if valid is None:
            out.problems.append(
                Problem(seq, UNKNOWN_KEY, f"checkpoint signed with unknown key {cp['key_id']}")
            )
        elif not valid:
            out.problems.append(Problem(seq, BAD_SIGNATURE, "checkpoint signature does not verify"))
        if seq > last_seq:
            out.problems.append(
                Problem(seq, TRUNCATED, f"signed checkpoint at {seq}, chain ends at {last_seq}")
            )
        elif hash_at.get(seq) != bytes(cp["hash"]):
            out.problems.append(
                Problem(seq, CHECKPOINT_MISMATCH, "event hash differs from the signed checkpoint")
            )
    return out


def _find_moves(broken: list[tuple[_Entry, AuditRecord]]) -> None:
    """A reordered event is intact at another position: a permutation of events only moves them among the
    positions that now fail, so those are the candidates (nearest first)."""
    positions = sorted({entry.seq for entry, _ in broken})
    for entry, rec in broken:
        candidates = sorted((s for s in positions if s != entry.seq), key=lambda s: abs(s - entry.seq))
        for seq in candidates[:_REORDER_SEARCH_LIMIT]:
            if rec.computed_hash(seq=seq) == rec.hash:
                entry.original_seq = seq
                break


def _walk_chain(entries: list[_Entry], problems: list[Problem]) -> dict[int, bytes]:
    """Walk positions in order; returns the hash kept at each position."""
    hash_at: dict[int, bytes] = {}
    expected, prev, prev_moved = 1, GENESIS_HASH, False
    for seq, group_iter in itertools.groupby(entries, key=lambda e: e.seq):
        group = list(group_iter)
        chosen = next((e for e in group if e.intact and e.prev_hash == prev), group[0])
        problems.extend(
            Problem(seq, INSERTED, "another event claims this position") for e in group if e is not chosen
        )
        after_gap = seq > expected
        if after_gap:
            problems.append(Problem(expected, DELETED, f"events {expected}..{seq - 1} are missing"))
        if chosen.original_seq is not None:
            problems.append(Problem(seq, REORDERED, f"event chained at {chosen.original_seq} now sits here"))
        elif not chosen.intact:
            problems.append(Problem(seq, EDITED, "content does not match its hash"))
        elif chosen.prev_hash != prev and not after_gap and not prev_moved:
            problems.append(Problem(seq, BROKEN_LINK, "does not follow the previous event"))
        hash_at[seq] = chosen.hash
        # The event after a moved one cannot link to it; the move is already reported.
        expected, prev, prev_moved = seq + 1, chosen.hash, chosen.original_seq is not None
    return hash_at


def record_verify(
    session: AsyncSession, report: VerifyReport, *, actor: Principal, request: RequestInfo
) -> None:
    """``audit.verify``: checking the log is itself an access to it, one event per tenant verified."""
    for tenant in report.tenants:
        record(
            session,
            AuditEvent(
                tenant_id=TenantId(tenant.tenant_id),
                event_type="audit.verify",
                action=Action.EXECUTE,
                outcome=Outcome.SUCCESS,
                request=request,
                actor=actor,
                resource_type="audit_event",
                detail={
                    "ok": tenant.ok,
                    "events": tenant.events,
                    "problems": len(tenant.problems),
                    "tenants": len(report.tenants),
                },
            ),
        )
