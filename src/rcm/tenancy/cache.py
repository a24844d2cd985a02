"""Per-process cache of the tenant registry row a request resolves from its URL's slug.

A tenant's id and slug never change; its manifest and status change rarely (a manifest apply, a suspension,
an offboarding). So a request reads the row once per ``RCM_TENANT_CACHE_TTL_SECONDS`` (default 5 s) per
process, like the live principal status: a suspension or offboarding applies within seconds in every API
process, at once in the process that made it (``tenants_changed``).

On a miss, the lookup also binds the transaction to the tenant in the same statement (one round trip for
"which tenant" and "act as it"); the access decision that follows clears the binding again on refusal.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.repository import lookup_and_bind, lookup_and_bind_by_id
from rcm.tenancy.vocabulary import TenantStatus

# Entries beyond this are dropped wholesale: a flood of distinct slugs costs a reload, never memory.
MAX_ENTRIES = 10_000

_generation = 0  # bumped by every in-process change of a tenant's status or manifest


def tenants_changed() -> None:
    """Call after changing a tenant's status or manifest: this process's cache reloads at once."""
    global _generation  # noqa: PLW0603 - one process-wide counter is the point
    _generation += 1


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """What a request needs of its tenant (the registry row, without the ORM)."""

    id: uuid.UUID
    slug: str
    name: str
    status: TenantStatus
    manifest: TenantManifest


@dataclass(frozen=True, slots=True)
class Lookup:
    tenant: TenantRecord | None
    bound: bool  # the transaction is already bound to ``tenant`` (the lookup did it)


class TenantCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, int, TenantRecord]] = {}
        self._slugs: dict[uuid.UUID, str] = {}  # id -> slug, learnt from lookups (ids and slugs never change)

    async def by_id(self, session: AsyncSession, tenant_id: uuid.UUID) -> Lookup:
        """The same lookup by the practice's id (a practice system's token names its practice by id)."""
        slug = self._slugs.get(tenant_id)
        if slug is not None:
            found = await self.by_slug(session, slug)
            if found.tenant is not None and found.tenant.id == tenant_id:
                return found
        row = await lookup_and_bind_by_id(session, tenant_id)
        if row is None:
            return Lookup(None, bound=False)
        record = TenantRecord(
            id=row.id, slug=row.slug, name=row.name, status=row.status, manifest=row.manifest
        )
        if self.ttl > 0:
            if len(self._slugs) >= MAX_ENTRIES:
                self._slugs.clear()
            self._slugs[tenant_id] = row.slug
        return Lookup(record, bound=True)

    def cached(self, slug: str) -> TenantRecord | None:
        """The tenant of ``slug`` if this process read it within the TTL and nothing changed it since; None
        otherwise (``by_slug`` reads it)."""
        cached = self._cache.get(slug)
        if cached is not None and cached[0] > self._clock() and cached[1] == _generation:
            return cached[2]
        return None

    async def by_slug(self, session: AsyncSession, slug: str) -> Lookup:
        if "\x00" in slug:
            # PostgreSQL text cannot hold NUL, so no tenant has this slug; the driver would refuse the query.
            return Lookup(None, bound=False)
        cached = self.cached(slug)
        if cached is not None:
            return Lookup(cached, bound=False)
        now = self._clock()
        generation = _generation
        row = await lookup_and_bind(session, slug)
        if row is None:
            # Unknown slugs are not cached: a tenant created a moment ago must be reachable at once.
            return Lookup(None, bound=False)
        record = TenantRecord(
            id=row.id, slug=row.slug, name=row.name, status=row.status, manifest=row.manifest
        )
        if self.ttl > 0:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[slug] = (now + self.ttl, generation, record)
        return Lookup(record, bound=True)
