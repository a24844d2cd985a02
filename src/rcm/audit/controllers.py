"""``/api/v1/audit``: auditors search and export the access log; auditors and MFA admins verify it.

The caller is the identity middleware's ``Principal``. Search and export need the auditor role and the
``audit:read`` scope; verify also admits an admin with the ``admin`` scope and MFA. An auditor sees the
tenants of ``auditor_tenants`` or, with ``all_tenants``, every tenant plus the platform's own chain: that is
the auditor's explicit cross-tenant path; an MFA admin verifies every chain. Searches, exports and
verifications record their own audit events (service layer); refusals record access.denied (identity guards).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import proofs, repository, service
from rcm.audit.anchors import anchor_store, read_anchors
from rcm.audit.events import Action, Outcome, RequestInfo, request_info_from
from rcm.audit.records import AuditRecord, format_instant
from rcm.audit.verification import ProblemKind
from rcm.identity import audit_hooks
from rcm.identity.guards import requires_mfa, requires_roles, requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.principal import Principal, Role
from rcm.identity.scopes import ADMIN, AUDIT_READ
from rcm.kit.db import apply_tenant_context, platform_transaction, tenant_transaction
from rcm.kit.errors import Forbidden, problem_responses
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId

# Instants only: a value without a UTC offset is answered 422 naming the parameter (see AuditQuery).
Since = Annotated[
    datetime | None,
    QueryParameter(
        description="Inclusive lower bound: an ISO 8601 instant with an offset, e.g. 2025-01-31T00:00:00Z"
    ),
]
Until = Annotated[
    datetime | None,
    QueryParameter(
        description="Exclusive upper bound: an ISO 8601 instant with an offset, e.g. 2025-02-01T00:00:00Z"
    ),
]


class AuditEventOut(msgspec.Struct):
    tenant_id: uuid.UUID
    # Position and hashes in the tenant's chain; null until the chainer seals the event (within seconds).
    seq: int | None
    id: uuid.UUID
    occurred_at: str
    event_type: str
    action: str
    outcome: str
    actor_kind: str | None
    actor_subject: str | None
    actor_roles: list[str]
    client_id: str | None
    actor_hint: str | None
    resource_type: str | None
    resource_ids: list[uuid.UUID]
    patient_ids: list[uuid.UUID]
    source_ip: str | None
    request_id: str
    trace_id: str
    detail: dict[str, str | int | bool | None]
    prev_hash: str | None
    hash: str | None
    sealed: bool


class AuditEventPage(msgspec.Struct):
    items: list[AuditEventOut]
    next_cursor: str | None


class ProofEventOut(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    seq: int
    prev_hash: str
    hash: str
    # The event's exact canonical JSON (base64): what the verifier re-hashes with prev_hash.
    record: str


class CheckpointOut(msgspec.Struct):
    tenant_id: uuid.UUID
    seq: int
    hash: str
    created_at: str
    key_id: str
    signature: str
    first_seq: int | None = None
    merkle_root: str | None = None


class ProofOut(msgspec.Struct):
    """An RFC 6962 inclusion proof of one event in a signed checkpoint (``audit/verify_export.py --proof``
    checks it offline with the checkpoint's public key)."""

    version: int
    event: ProofEventOut
    leaf_index: int
    tree_size: int
    audit_path: list[str]
    checkpoint: CheckpointOut


class VerifyProblemOut(msgspec.Struct):
    seq: int | None
    kind: ProblemKind
    detail: str


class TenantVerifyOut(msgspec.Struct):
    tenant_id: uuid.UUID
    ok: bool
    events: int
    unsealed: int
    head_seq: int | None
    checkpoints: int
    problems: list[VerifyProblemOut]


class VerifyOut(msgspec.Struct):
    ok: bool
    global_problems: list[str]
    tenants: list[TenantVerifyOut]


def event_out(rec: AuditRecord) -> AuditEventOut:
    return AuditEventOut(
        tenant_id=rec.tenant_id,
        seq=rec.seq,
        id=rec.id,
        occurred_at=format_instant(rec.occurred_at),
        event_type=rec.event_type,
        action=rec.action,
        outcome=rec.outcome,
        actor_kind=rec.actor_kind,
        actor_subject=rec.actor_subject,
        actor_roles=list(rec.actor_roles),
        client_id=rec.client_id,
        actor_hint=rec.actor_hint,
        resource_type=rec.resource_type,
        resource_ids=list(rec.resource_ids),
        patient_ids=list(rec.patient_ids),
        source_ip=rec.source_ip,
        request_id=rec.request_id,
        trace_id=rec.trace_id,
        detail=dict(rec.detail),
        prev_hash=rec.prev_hash.hex() if rec.prev_hash is not None else None,
        hash=rec.hash.hex() if rec.hash is not None else None,
        sealed=rec.sealed,
    )


AUDITOR_GUARDS = (requires_roles(Role.AUDITOR), requires_scopes(AUDIT_READ))
# Verifying every tenant's chain is platform administration: the admin scope and a second factor.
_ADMIN_GUARDS = (requires_roles(Role.ADMIN), requires_scopes(ADMIN), requires_mfa)


async def requires_auditor_or_mfa_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """An auditor with ``audit:read``, or an admin with the ``admin`` scope who logged in with MFA.

    Built from the identity guards, so every refusal is the same 403 document and leaves an access.denied
    event. Anyone who is not an auditor is judged as a would-be admin (a coder gets "Role required").
    """
    principal = current_principal(connection)
    for guard in AUDITOR_GUARDS if principal.has_role(Role.AUDITOR) else _ADMIN_GUARDS:
        await guard(connection, handler)


async def readable_tenants(
    connection: ASGIConnection[Any, Any, Any, Any], caller: Principal, *, admin_sees_all: bool
) -> TenantContext:
    """The tenants whose log the caller may read: an auditor's grant, or everything for an MFA admin
    verifying (the guard has checked that) and for an auditor with ``all_tenants``."""
    sessions: async_sessionmaker[AsyncSession] = connection.app.state.sessions
    tenants: tuple[TenantId, ...]
    if caller.has_role(Role.AUDITOR):
        everything = caller.all_tenants
        tenants = caller.auditor_tenants
    else:
        everything = admin_sees_all and caller.has_role(Role.ADMIN)
        tenants = ()
    if everything:
        async with platform_transaction(sessions) as session:
            ids = await repository.all_tenant_ids(session)
        tenants = (PLATFORM_TENANT, *(TenantId(t) for t in ids))
    if not tenants:
        await audit_hooks.access_denied(
            sessions, request=request_info_from(connection), principal=caller, reason="no_auditor_tenants"
        )
        raise Forbidden("No tenant is assigned to this auditor.")
    # The auditor's loudly named cross-tenant path: exactly the tenants the token grants.
    return TenantContext.system_cross_tenant(tenants)


@asynccontextmanager
async def auditor_session(
    request: Request[Any, Any, Any],
) -> AsyncIterator[tuple[AsyncSession, Principal, RequestInfo]]:
    """A transaction over the practices the calling auditor may read, with the caller and the request as
    the audit trail describes them: what every auditor read runs in."""
    caller = current_principal(request)
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    context = await readable_tenants(request, caller, admin_sees_all=False)
    async with tenant_transaction(sessions, context) as session:
        yield session, caller, request_info_from(request)


async def verify_readable(request: Request[Any, Any, Any]) -> service.VerifyReport:
    """Verify every chain the caller may read (an MFA admin: all of them) against the checkpoints and their
    external copy, and record the verification in each chain."""
    caller = current_principal(request)
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    context = await readable_tenants(request, caller, admin_sees_all=True)
    # The external copy of the checkpoints, where this process can read it (public material only).
    store = anchor_store(request.app.state.settings)
    anchors = read_anchors(store, context.tenant_ids) if store is not None else None
    async with tenant_transaction(sessions, context) as session:
        report = await service.verify(session, context.tenant_ids, anchors=anchors)
        service.record_verify(session, report, actor=caller, request=request_info_from(request))
    return report


TenantSlug = Annotated[
    str | None,
    QueryParameter(
        description="Events of this practice, by slug: one unknown, or outside your grant, finds nothing"
    ),
]
ActorEmail = Annotated[
    str | None,
    QueryParameter(
        max_length=320,
        description="Events by this person, by email (case-insensitive); an unknown email finds nothing",
    ),
]


async def provide_audit_query(
    *,
    actor: FromQuery[str | None] = None,
    actor_email: ActorEmail = None,
    tenant: TenantSlug = None,
    tenant_id: FromQuery[uuid.UUID | None] = None,
    patient_id: FromQuery[uuid.UUID | None] = None,
    resource_type: FromQuery[str | None] = None,
    resource_id: FromQuery[uuid.UUID | None] = None,
    event_type: FromQuery[str | None] = None,
    action: FromQuery[Action | None] = None,
    outcome: FromQuery[Outcome | None] = None,
    since: Since = None,
    until: Until = None,
) -> service.AuditQuery:
    """The search filters, shared by the list and both exports (query parameters)."""
    return service.AuditQuery(
        actor=actor,
        actor_email=actor_email,
        tenant=tenant,
        tenant_id=tenant_id,
        patient_id=patient_id,
        resource_type=resource_type,
        resource_id=resource_id,
        event_type=event_type,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]
    dependencies = {"audit_query": Provide(provide_audit_query)}

    @get("/events", guards=list(AUDITOR_GUARDS))
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        *,
        audit_query: NamedDependency[service.AuditQuery],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_LIMIT)] = 100,
    ) -> AuditEventPage:
        async with auditor_session(request) as (session, caller, info):
            page, next_cursor = await service.search(
                session,
                audit_query,
                limit=limit,
                cursor=cursor,
                actor=caller,
                request=info,
            )
        return AuditEventPage(items=[event_out(r) for r in page], next_cursor=next_cursor)

    @get("/events.csv", guards=list(AUDITOR_GUARDS), media_type="text/csv")
    async def export_csv(
        self,
        request: Request[Any, Any, Any],
        *,
        audit_query: NamedDependency[service.AuditQuery],
    ) -> Stream:
        return await self._stream(request, audit_query, "csv")

    @get("/events.ndjson", guards=list(AUDITOR_GUARDS), media_type="application/fhir+ndjson")
    async def export_ndjson(
        self,
        request: Request[Any, Any, Any],
        *,
        audit_query: NamedDependency[service.AuditQuery],
    ) -> Stream:
        return await self._stream(request, audit_query, "ndjson")

    async def _stream(self, request: Request[Any, Any, Any], query: service.AuditQuery, kind: str) -> Stream:
        caller = current_principal(request)
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        context = await readable_tenants(request, caller, admin_sees_all=False)
        info = request_info_from(request)
        exporter = service.export_csv if kind == "csv" else service.export_fhir_ndjson

        async def body() -> AsyncIterator[bytes]:
            async with sessions() as session:
                await session.begin()
                await apply_tenant_context(session, context)
                try:
                    async for chunk in exporter(session, query, actor=caller, request=info):
                        yield chunk
                finally:
                    # Commit even when the client went away: the transaction only read, and it holds the
                    # audit.export event, which must survive a partial download.
                    await session.commit()

        media = "text/csv" if kind == "csv" else "application/fhir+ndjson"
        filename = f"audit-events.{kind}"
        return Stream(
            body(), media_type=media, headers={"content-disposition": f'attachment; filename="{filename}"'}
        )

    @get(
        "/proofs/{event_id:uuid}",
        guards=list(AUDITOR_GUARDS),
        responses=problem_responses(401, 403, 404, 409, 429),
    )
    async def inclusion_proof(
        self, request: Request[Any, Any, Any], event_id: FromPath[uuid.UUID]
    ) -> ProofOut:
        """The event's inclusion proof: its leaf index and audit path in the Merkle tree of the signed
        checkpoint that covers it (409 until the chainer has sealed and checkpointed it)."""
        async with auditor_session(request) as (session, caller, info):
            proof = await proofs.inclusion_proof(session, event_id, actor=caller, request=info)
        return msgspec.convert(proof.document(), ProofOut)

    @post(
        "/verify",
        status_code=200,
        guards=[requires_auditor_or_mfa_admin],
        responses=problem_responses(401, 403, 429),
    )
    async def verify_chain(self, request: Request[Any, Any, Any]) -> VerifyOut:
        """Verify now: every chain the caller may read against its signed checkpoints and their external
        copy. A POST, as it reads every event (a link or an image on another site cannot start it; a
        browser session must send its CSRF token). Each verification is recorded in every chain it read
        as ``audit.verify``: the last results are ``GET /api/v1/audit/events?event_type=audit.verify``."""
        report = await verify_readable(request)
        return VerifyOut(
            ok=report.ok,
            global_problems=report.global_problems,
            tenants=[
                TenantVerifyOut(
                    tenant_id=t.tenant_id,
                    ok=t.ok,
                    events=t.events,
                    unsealed=t.unsealed,
                    head_seq=t.head_seq,
                    checkpoints=t.checkpoints,
                    problems=[VerifyProblemOut(p.seq, p.kind, p.detail) for p in t.problems],
                )
                for t in report.tenants
            ],
        )
