"""``/api/v1/audit``: auditors search and export the access log; admins and auditors verify it.

The caller is ``request.user`` (a ``Principal`` set by the identity middleware). An auditor sees the tenants
of ``auditor_tenants`` or, with ``all_tenants``, every tenant plus the platform's own chain: that is the
auditor's explicit cross-tenant path. Searches and exports record their own audit events (service layer).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import repository, service
from rcm.audit.events import Action, Outcome, RequestInfo
from rcm.audit.records import AuditRecord, format_instant
from rcm.identity.principal import Principal, Role
from rcm.kit.db import apply_tenant_context, platform_transaction, tenant_transaction
from rcm.kit.errors import Forbidden, NotAuthenticated
from rcm.kit.telemetry import current_trace_id
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId


class AuditEventOut(msgspec.Struct):
    tenant_id: uuid.UUID
    seq: int
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
    prev_hash: str
    hash: str


class AuditEventPage(msgspec.Struct):
    items: list[AuditEventOut]
    next_cursor: str | None


class VerifyProblemOut(msgspec.Struct):
    seq: int | None
    kind: str
    detail: str


class TenantVerifyOut(msgspec.Struct):
    tenant_id: uuid.UUID
    ok: bool
    events: int
    head_seq: int | None
    checkpoints: int
    problems: list[VerifyProblemOut]


class VerifyOut(msgspec.Struct):
    ok: bool
    global_problems: list[str]
    tenants: list[TenantVerifyOut]


def _out(rec: AuditRecord) -> AuditEventOut:
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
        prev_hash=rec.prev_hash.hex(),
        hash=rec.hash.hex(),
    )


def _caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthenticated()
    return user


def requires_auditor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not _caller(connection).has_role(Role.AUDITOR):
        raise Forbidden("The auditor role is required.")


def requires_auditor_or_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not _caller(connection).has_role(Role.AUDITOR, Role.ADMIN):
        raise Forbidden("The auditor or admin role is required.")


def _request_info(request: Request[Any, Any, Any]) -> RequestInfo:
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    return RequestInfo(
        request_id=request_id[:128],
        trace_id=current_trace_id() or "",
        source_ip=request.client.host if request.client else None,
    )


async def _auditor_context(sessions: async_sessionmaker[AsyncSession], caller: Principal) -> TenantContext:
    if caller.all_tenants or caller.has_role(Role.ADMIN):
        async with platform_transaction(sessions) as session:
            ids = await repository.all_tenant_ids(session)
        tenants = (PLATFORM_TENANT, *(TenantId(t) for t in ids))
    else:
        tenants = caller.auditor_tenants
    if not tenants:
        raise Forbidden("No tenant is assigned to this auditor.")
    # The auditor's loudly named cross-tenant path: exactly the tenants the token grants.
    return TenantContext.system_cross_tenant(tuple(tenants))


def _query(
    *,
    actor: str | None,
    patient_id: uuid.UUID | None,
    resource_type: str | None,
    resource_id: uuid.UUID | None,
    event_type: str | None,
    action: Action | None,
    outcome: Outcome | None,
    since: datetime | None,
    until: datetime | None,
) -> service.AuditQuery:
    return service.AuditQuery(
        actor=actor,
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

    @get("/events", guards=[requires_auditor])
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        *,
        actor: FromQuery[str | None] = None,
        patient_id: FromQuery[uuid.UUID | None] = None,
        resource_type: FromQuery[str | None] = None,
        resource_id: FromQuery[uuid.UUID | None] = None,
        event_type: FromQuery[str | None] = None,
        action: FromQuery[Action | None] = None,
        outcome: FromQuery[Outcome | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_LIMIT)] = 100,
    ) -> AuditEventPage:
        caller = _caller(request)
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        query = _query(
            actor=actor,
            patient_id=patient_id,
            resource_type=resource_type,
            resource_id=resource_id,
            event_type=event_type,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
        )
        context = await _auditor_context(sessions, caller)
        async with tenant_transaction(sessions, context) as session:
            page, next_cursor = await service.search(
                session, query, limit=limit, cursor=cursor, actor=caller, request=_request_info(request)
            )
        return AuditEventPage(items=[_out(r) for r in page], next_cursor=next_cursor)

    @get("/events.csv", guards=[requires_auditor], media_type="text/csv")
    async def export_csv(
        self,
        request: Request[Any, Any, Any],
        *,
        actor: FromQuery[str | None] = None,
        patient_id: FromQuery[uuid.UUID | None] = None,
        resource_type: FromQuery[str | None] = None,
        resource_id: FromQuery[uuid.UUID | None] = None,
        event_type: FromQuery[str | None] = None,
        action: FromQuery[Action | None] = None,
        outcome: FromQuery[Outcome | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Stream:
        query = _query(
            actor=actor,
            patient_id=patient_id,
            resource_type=resource_type,
            resource_id=resource_id,
            event_type=event_type,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
        )
        return await self._stream(request, query, "csv")

    @get("/events.ndjson", guards=[requires_auditor], media_type="application/fhir+ndjson")
    async def export_ndjson(
        self,
        request: Request[Any, Any, Any],
        *,
        actor: FromQuery[str | None] = None,
        patient_id: FromQuery[uuid.UUID | None] = None,
        resource_type: FromQuery[str | None] = None,
        resource_id: FromQuery[uuid.UUID | None] = None,
        event_type: FromQuery[str | None] = None,
        action: FromQuery[Action | None] = None,
        outcome: FromQuery[Outcome | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Stream:
        query = _query(
            actor=actor,
            patient_id=patient_id,
            resource_type=resource_type,
            resource_id=resource_id,
            event_type=event_type,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
        )
        return await self._stream(request, query, "ndjson")

    async def _stream(self, request: Request[Any, Any, Any], query: service.AuditQuery, kind: str) -> Stream:
        caller = _caller(request)
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        context = await _auditor_context(sessions, caller)
        info = _request_info(request)
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

    @get("/verify", guards=[requires_auditor_or_admin])
    async def verify_chain(self, request: Request[Any, Any, Any]) -> VerifyOut:
        caller = _caller(request)
        sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
        context = await _auditor_context(sessions, caller)
        async with tenant_transaction(sessions, context) as session:
            report = await service.verify(session, context.tenant_ids)
        return VerifyOut(
            ok=report.ok,
            global_problems=report.global_problems,
            tenants=[
                TenantVerifyOut(
                    tenant_id=t.tenant_id,
                    ok=t.ok,
                    events=t.events,
                    head_seq=t.head_seq,
                    checkpoints=t.checkpoints,
                    problems=[VerifyProblemOut(p.seq, p.kind, p.detail) for p in t.problems],
                )
                for t in report.tenants
            ],
        )
