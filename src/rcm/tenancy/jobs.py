"""A practice's unit of work for a background job acting on that practice's behalf.

A job (bulk intake, later statement runs) does what a caller asked of one practice, after the request has
ended. It opens the same ``TenantScope`` a request would, bound to that one practice, acting as the principal
recorded when the job was asked for: every audit event of the job names who asked, and ``access`` says it ran
as a job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal
from rcm.kit.db import apply_tenant_context
from rcm.kit.errors import NotFound
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.repository import tenant_by_id
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.vocabulary import TenantStatus


@asynccontextmanager
async def job_tenant_scope(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    tenant_id: TenantId,
    *,
    actor: Principal,
    request: RequestInfo,
    job: str,
) -> AsyncIterator[TenantScope]:
    """One transaction of ``job`` in practice ``tenant_id``; commits on success. A practice that is gone or
    not active (suspended, offboarded) is not found: the job stops instead of writing."""
    async with sessions() as session, session.begin():
        tenant = await tenant_by_id(session, tenant_id)
        if tenant is None or tenant.status != TenantStatus.ACTIVE:
            raise NotFound
        context = TenantContext.single(tenant_id)
        await apply_tenant_context(session, context)
        keyring = await keystore.keyring(session, tenant_id)
        yield TenantScope(
            session=session,
            context=context,
            principal=actor,
            keyring=keyring,
            request=request,
            manifest=tenant.manifest,
            access=f"job:{job}",
        )
