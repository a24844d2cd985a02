"""The request boundary for tenant routes: resolve the tenant, decide access, open the transaction.

Not found and not yours are the same 404 with the same body. Every refusal is audited in its own
transaction (the request's own transaction rolls back), so a probe for another tenant's ids leaves a trace.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo, request_info_from
from rcm.audit.trail import record_now
from rcm.identity import audit_hooks
from rcm.identity.access import decide_without_rows, resolve_tenant_access
from rcm.identity.principal import Principal
from rcm.kit.db import driver_transaction
from rcm.kit.errors import NotFound, RCMError
from rcm.kit.tenant import PLATFORM_TENANT, TenantId
from rcm.tenancy.cache import Lookup, TenantCache
from rcm.tenancy.scope import OnePractice, TenantRead, TenantScope

STATE_KEY = "tenant_cache"


def tenant_cache(state: State) -> TenantCache:
    """The process's tenant cache (made by the app's lifespan; a zero-TTL one where there is none)."""
    cache = state.get(STATE_KEY)
    if cache is None:
        cache = state[STATE_KEY] = TenantCache(0)
    assert isinstance(cache, TenantCache)
    return cache


async def provide_tenant_scope(
    request: Request[Principal, Any, Any], state: State, tenant_slug: FromPath[str]
) -> AsyncGenerator[TenantScope, None]:
    async with _tenant_scope(request, state, _by_slug(state, tenant_slug)) as scope:
        yield scope


def _by_slug(state: State, slug: str) -> Callable[[AsyncSession], Awaitable[Lookup]]:
    async def lookup(session: AsyncSession) -> Lookup:
        return await tenant_cache(state).by_slug(session, slug)

    return lookup


async def provide_tenant_read(
    request: Request[Principal, Any, Any], state: State, tenant_slug: FromPath[str]
) -> AsyncGenerator[OnePractice, None]:
    """``provide_tenant_scope`` for a hot read made of driver statements only (the patient list).

    When this process holds the tenant's row and keys (within their TTLs, as ``provide_tenant_scope`` uses
    them) and the caller alone settles the access decision (``decide_without_rows``: a practice's system or
    person in its own practice, an auditor in scope), the unit of work runs on the driver without a
    session (``driver_transaction``): BEGIN with the same transaction-local binding, the read with its audit
    event, COMMIT. A failure inside it is audited as ``provide_tenant_scope`` audits it. Anything else (a
    refusal, staff whose access turns on assignment or break-glass rows, a cold cache) is
    ``provide_tenant_scope`` itself: every refusal is its refusal, audited alike.
    """
    principal: Principal = request.user
    tenant = tenant_cache(state).cached(tenant_slug)
    decision = decide_without_rows(principal, tenant) if tenant is not None else None
    keyring = state.keystore.cached(TenantId(tenant.id)) if tenant is not None else None
    if tenant is None or decision is None or decision.context is None or keyring is None:
        async with _tenant_scope(request, state, _by_slug(state, tenant_slug)) as scope:
            yield scope
        return
    info = request_info_from(request)
    context = decision.context
    try:
        async with driver_transaction(state.sessions, context) as unit:
            yield TenantRead(
                unit=unit,
                context=context,
                principal=principal,
                keyring=keyring,
                request=info,
                manifest=tenant.manifest,
                access=str(decision.basis),
            )
    except RCMError as exc:
        await record_now(state.sessions, _refusal(request, info, context.tenant_id, exc))
        raise


async def provide_home_tenant_scope(
    request: Request[Principal, Any, Any], state: State
) -> AsyncGenerator[TenantScope, None]:
    """The scope of the caller's own practice, for routes whose URL names none (the FHIR base ``/fhir/r4``):
    a practice's system acts in its token's practice. A caller without one (staff) is refused, audited."""
    home = request.user.home_tenant

    async def lookup(session: AsyncSession) -> Lookup:
        if home is None:
            return Lookup(None, bound=False)
        return await tenant_cache(state).by_id(session, home)

    async with _tenant_scope(request, state, lookup) as scope:
        yield scope


@asynccontextmanager
async def _tenant_scope(
    request: Request[Principal, Any, Any],
    state: State,
    find: Callable[[AsyncSession], Awaitable[Lookup]],
) -> AsyncIterator[TenantScope]:
    principal: Principal = request.user
    info = request_info_from(request)
    sessions = state.sessions
    route = f"{request.method} {request.scope.get('path_template', request.url.path)}"
    denied_tenant: TenantId | None = None
    failure: RCMError | None = None
    async with sessions() as session:
        try:
            async with session.begin():
                # One round trip on a cache miss (lookup and binding in one statement), one on a hit (the
                # binding alone, after the decision).
                lookup = await find(session)
                tenant = lookup.tenant
                decision = (
                    await resolve_tenant_access(session, principal, tenant, bound=lookup.bound)
                    if tenant
                    else None
                )
                if tenant is None or decision is None or not decision.allowed or decision.context is None:
                    denied_tenant = TenantId(tenant.id) if tenant is not None else PLATFORM_TENANT
                    raise NotFound
                # The access decision has bound this transaction to the tenant (set_config, local).
                context = decision.context
                assert context.tenant_ids == (TenantId(tenant.id),)
                keyring = await state.keystore.keyring(session, context.tenant_id)
                scope = TenantScope(
                    session=session,
                    context=context,
                    principal=principal,
                    keyring=keyring,
                    request=info,
                    manifest=tenant.manifest,
                    access=str(decision.basis),
                    break_glass_grant_id=decision.break_glass_grant_id,
                )
                if decision.break_glass_grant_id is not None:
                    # Every use of emergency access is on record, committed even if the request then fails.
                    await audit_hooks.break_glass_used(
                        sessions,
                        request=info,
                        principal=principal,
                        tenant_id=context.tenant_id,
                        grant_id=decision.break_glass_grant_id,
                        route=route,
                    )
                try:
                    yield scope
                except RCMError as exc:
                    denied_tenant = context.tenant_id
                    failure = exc
                    raise
        except RCMError as exc:
            await record_now(
                sessions, _refusal(request, info, denied_tenant or PLATFORM_TENANT, failure or exc)
            )
            raise


def _refusal(
    request: Request[Principal, Any, Any], info: RequestInfo, tenant_id: TenantId, failure: RCMError
) -> AuditEvent:
    """The audit event of a request refused in (or before) its tenant's unit of work."""
    route = f"{request.method} {request.scope.get('path_template', request.url.path)}"
    return AuditEvent(
        tenant_id=tenant_id,
        event_type="access.denied" if isinstance(failure, NotFound) else "request.refused",
        action=_action(request.method),
        outcome=Outcome.MINOR_FAILURE,
        request=info,
        actor=request.user,
        detail={"route": route, "status": failure.status_code},
    )


def _action(method: str) -> Action:
    return {"POST": Action.CREATE, "PUT": Action.UPDATE, "PATCH": Action.UPDATE, "DELETE": Action.DELETE}.get(
        method, Action.READ
    )
