"""Opening the cross-tenant units of work: ``StaffScope`` from a staff caller's own assignments, and
``SystemScope`` for operator jobs. This is where their ``TenantId``s come from, and nowhere else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo, request_info_from
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import Forbidden, NotFound
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.repository import bind_live_assignments, tenant_by_id
from rcm.tenancy.scope import StaffScope, SystemScope, TenantScope


def staff_member(principal: Principal) -> uuid.UUID:
    """The person a staff unit of work is for (whose own live assignments it binds); 403 for anyone else."""
    if not principal.is_staff or principal.user_id is None:
        raise Forbidden("Only staff members work across the practices they are assigned to.")
    return principal.user_id


@asynccontextmanager
async def staff_scope(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    principal: Principal,
    request: RequestInfo,
) -> AsyncIterator[StaffScope]:
    """A transaction over exactly the practices ``principal`` (a staff member) is assigned to.

    Only the person's own live assignments count: break-glass grants and auditor scopes open one practice at
    a time (``TenantScope``), never a queue across practices. Commits on success.
    """
    user_id = staff_member(principal)
    async with sessions() as session, session.begin():
        # Read and bound in one statement, afresh in every unit of work (nothing cached: a revoked
        # assignment is gone from the next one). An empty set binds to no tenant at all: no rows, no inserts.
        context = TenantContext.system_cross_tenant(await bind_live_assignments(session, user_id))
        yield StaffScope(
            session=session, context=context, principal=principal, request=request, keystore=keystore
        )


@asynccontextmanager
async def system_scope(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    *,
    job: str,
    tenant_ids: tuple[TenantId, ...],
    actor: Principal,
    request: RequestInfo,
) -> AsyncIterator[SystemScope]:
    """A transaction over ``tenant_ids`` for the operator job ``job`` (named on every event it records)."""
    context = TenantContext.system_cross_tenant(tenant_ids)
    async with sessions() as session, session.begin():
        await apply_tenant_context(session, context)
        yield SystemScope(
            session=session,
            context=context,
            principal=actor,
            request=request,
            keystore=keystore,
            job=job,
        )


async def provide_staff_scope(
    request: Request[Principal, Any, Any], state: State
) -> AsyncGenerator[StaffScope, None]:
    """Litestar dependency for staff routes that span practices (the coding and billing queues)."""
    async with staff_scope(state.sessions, state.keystore, request.user, request_info_from(request)) as scope:
        yield scope


async def one_practice(scope: StaffScope | SystemScope, tenant_id: uuid.UUID) -> TenantScope:
    """One of ``scope``'s practices as a ``TenantScope`` on the same transaction: for the work on one item
    (its practice's PHI keyring, manifest and idempotency records). Any other practice is a 404. An operator
    job's (``SystemScope``) acts as that job, as ``rcm.tenancy.jobs`` scopes do."""
    tenant = (
        await tenant_by_id(scope.session, scope.tenant(tenant_id)) if tenant_id in scope.tenant_ids else None
    )
    if tenant is None:
        raise NotFound
    return TenantScope(
        session=scope.session,
        context=TenantContext.single(TenantId(tenant.id)),
        principal=scope.principal,
        keyring=await scope.keyring(tenant.id),
        request=scope.request,
        manifest=tenant.manifest,
        access=f"job:{scope.job}" if isinstance(scope, SystemScope) else "staff_scope",
    )
