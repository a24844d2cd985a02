"""Every SQL statement on API clients: a practice's own clients, the token endpoint's pre-tenant lookup, and
the single-use record of accepted client assertions.

A practice's clients are tenant-owned rows under RLS: ``ApiClientRepository`` is built from the context the
caller has bound the transaction to, and filters on it as well. The token endpoint runs before any tenant is
known: ``client_by_presented_id`` opens exactly one row to it through the ``client_lookup`` policy.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.models import ApiClient, ApiClientStatus, UsedClientAssertion
from rcm.kit.repository import TenantScopedRepository
from rcm.tenancy.models import Tenant

# Transaction-local, as the tenant binding: it dies with the transaction; a pooled connection keeps none.
_SET_CLIENT = text("SELECT set_config('rcm.client_id', :client_id, true)")


class ApiClientRepository(TenantScopedRepository[ApiClient]):
    """The clients of the context's practice; the caller binds the transaction to that practice first."""

    model = ApiClient

    async def add(self, client: ApiClient) -> ApiClient:
        self.session.add(client)
        await self.session.flush()
        return client

    async def by_client_id(self, client_id: str) -> ApiClient | None:
        return await self._first(self.base_statement().where(ApiClient.client_id == client_id))

    async def revoke_all(self, *, at: datetime) -> int:
        """Revoke every client not revoked yet; returns how many were."""
        result = await self._execute(
            update(ApiClient)
            .where(self.tenant_filter(ApiClient.tenant_id), ApiClient.status != ApiClientStatus.REVOKED)
            .values(status=ApiClientStatus.REVOKED, revoked_at=at)
            .returning(ApiClient.id)
        )
        return len(result.all())


async def client_by_presented_id(session: AsyncSession, client_id: str) -> ApiClient | None:
    """The client a caller named, before any tenant context exists.

    Sets ``rcm.client_id`` for this transaction only; the ``client_lookup`` RLS policy then shows that one
    row and nothing else. Both statements run on the caller's session, in its transaction.
    """
    await session.execute(_SET_CLIENT, {"client_id": client_id})
    return (
        await session.execute(select(ApiClient).where(ApiClient.client_id == client_id))
    ).scalar_one_or_none()


async def tenant_status(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    """Only the status column of the client's practice: the token endpoint reads it on every request."""
    status: str | None = (
        await session.execute(select(Tenant.status).where(Tenant.id == tenant_id))
    ).scalar_one_or_none()
    return status


async def remember_assertion(
    session: AsyncSession, *, client_id: str, jti: str, expires_at: datetime, keep_expired_for: timedelta
) -> bool:
    """Record an accepted client assertion's jti; False (nothing written) if it was recorded before.

    First, in the same transaction, forgets the rows expired more than ``keep_expired_for`` ago by the
    database's clock.
    """
    purge_before = func.now() - keep_expired_for
    await session.execute(delete(UsedClientAssertion).where(UsedClientAssertion.expires_at < purge_before))
    inserted = await session.execute(
        insert(UsedClientAssertion)
        .values(client_id=client_id, jti=jti, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(UsedClientAssertion.jti)
    )
    return inserted.first() is not None


async def assertion_recorded(session: AsyncSession, *, client_id: str, jti: str) -> bool:
    """Whether ``jti`` is on record for ``client_id`` (and not yet purged)."""
    found = await session.execute(
        select(UsedClientAssertion.jti).where(
            UsedClientAssertion.client_id == client_id, UsedClientAssertion.jti == jti
        )
    )
    return found.first() is not None
