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
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import repository
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.fhir import to_fhir
from rcm.audit.records import AuditRecord, canonical_bytes, format_instant, parse_instant
from rcm.audit.trail import record
from rcm.audit.verification import Problem, TenantReport, VerifyReport, record_verify, verify
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
    raw = json.dumps([format_instant(record.occurred_at), str(record.tenant_id), str(record.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID, uuid.UUID]:
    invalid = InvalidInput(
        "The cursor is not valid.", errors=[FieldError("query:cursor", "is not a cursor from this API")]
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        occurred, tenant, event_id = json.loads(base64.urlsafe_b64decode(padded))
        if not (isinstance(occurred, str) and isinstance(tenant, str) and isinstance(event_id, str)):
            raise invalid
        return parse_instant(occurred), uuid.UUID(tenant), uuid.UUID(event_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid from exc


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
        # An event the chainer has not sealed yet has no position or hashes: empty cells, not zeros.
        if column == "prev_hash":
            out.append(rec.prev_hash.hex() if rec.prev_hash is not None else "")
        elif column == "hash":
            out.append(rec.hash.hex() if rec.hash is not None else "")
        elif column in ("actor_roles", "resource_ids", "patient_ids", "detail"):
            out.append(canonical_bytes(fields[column]).decode())
        elif column == "seq":
            out.append(str(rec.seq) if rec.seq is not None else "")
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
