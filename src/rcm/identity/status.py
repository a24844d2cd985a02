"""Live status of a token's caller: revocation and role changes take effect within seconds, not at expiry.

An access token is self-contained and lives up to ``RCM_ACCESS_TOKEN_TTL_SECONDS``. On every request the
caller's row is checked too, through a short per-process cache (``RCM_PRINCIPAL_STATUS_TTL_SECONDS``,
default 5 s; the process that makes a change forgets its cache at once):

- an API client must still exist, be ``active`` and belong to the token's tenant;
- a person must still exist and be ``active``, keep the token's home tenant, and the token's roles are
  intersected with the person's live roles (and its scopes with what those roles allow), so a removed role
  is gone on the next request while a role added later needs a new token; an auditor's practices are
  likewise intersected with their live assignments.

Reads go through the app role: checking needs no control-plane rights.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.clients import lookup_client_for_token_endpoint
from rcm.identity.models import ApiClientStatus
from rcm.identity.principal import Principal, PrincipalKind, Role, parse_roles
from rcm.identity.scopes import scopes_for_roles
from rcm.identity.tokens import InvalidToken
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.repository import person_status, system_assigned_tenants

# Entries beyond this are dropped wholesale: a flood of distinct callers costs a reload, never memory.
MAX_ENTRIES = 10_000

_generation = 0  # bumped by every in-process change of a client's or person's status or roles


def status_changed() -> None:
    """Call after changing an API client's status or a person's roles or activity: this process's caches
    reload at once (other processes within their TTL)."""
    global _generation  # noqa: PLW0603 - one process-wide counter is the point
    _generation += 1


class RevokedToken(InvalidToken):
    """The token is genuine but its client was revoked or its person deactivated (or removed)."""


@dataclass(frozen=True, slots=True)
class _Live:
    active: bool
    roles: frozenset[Role] | None = None  # people only
    tenant: uuid.UUID | None = None  # a client's tenant, a person's home tenant
    subject: str | None = None  # a client's row id, to match the token's sub
    audited: frozenset[TenantId] = frozenset()  # an auditor's home and assigned practices, now


class PrincipalStatus:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[PrincipalKind, str], tuple[float, int, _Live]] = {}

    async def check(self, sessions: async_sessionmaker[AsyncSession], principal: Principal) -> Principal:
        """The principal as it may act now (roles narrowed to live ones); ``RevokedToken`` if it may not."""
        live = await self._live(sessions, principal)
        if not live.active:
            raise RevokedToken("caller revoked")
        if principal.kind is PrincipalKind.CLIENT:
            if live.subject != principal.subject or live.tenant != principal.home_tenant:
                raise RevokedToken("client changed")
            return principal
        if principal.home_tenant is not None and live.tenant != principal.home_tenant:
            raise RevokedToken("home tenant changed")
        roles = principal.roles & (live.roles or frozenset())
        narrowed = principal
        if roles != principal.roles:
            narrowed = dataclasses.replace(
                principal, roles=roles, scopes=principal.scopes & scopes_for_roles(roles)
            )
        if Role.AUDITOR in roles:
            narrowed = _auditor_scope_now(narrowed, live.audited)
        return narrowed

    async def _live(self, sessions: async_sessionmaker[AsyncSession], principal: Principal) -> _Live:
        key = (principal.kind, principal.client_id or str(principal.user_id))
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now and cached[1] == _generation:
            return cached[2]
        generation = _generation
        async with platform_transaction(sessions) as session:
            live = await (
                _client(session, principal)
                if principal.kind is PrincipalKind.CLIENT
                else _user(session, principal)
            )
        if self.ttl > 0:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now + self.ttl, generation, live)
        return live


def _auditor_scope_now(principal: Principal, audited: frozenset[TenantId]) -> Principal:
    """An auditor reads at most the practices they are assigned to now: a removed assignment ends at once,
    and a company-wide auditor who has since been given practices is scoped to them."""
    if principal.all_tenants:
        if not audited:
            return principal
        return dataclasses.replace(principal, all_tenants=False, auditor_tenants=tuple(sorted(audited)))
    kept = tuple(t for t in principal.auditor_tenants if t in audited)
    return (
        principal
        if kept == principal.auditor_tenants
        else dataclasses.replace(principal, auditor_tenants=kept)
    )


async def _client(session: AsyncSession, principal: Principal) -> _Live:
    row = await lookup_client_for_token_endpoint(session, principal.client_id or "")
    if row is None:
        return _Live(active=False)
    return _Live(active=row.status == ApiClientStatus.ACTIVE, tenant=row.tenant_id, subject=str(row.id))


async def _user(session: AsyncSession, principal: Principal) -> _Live:
    if principal.user_id is None:
        return _Live(active=False)
    row = await person_status(session, principal.user_id)
    if row is None:
        return _Live(active=False)
    roles = parse_roles(row.roles)
    audited: frozenset[TenantId] = frozenset()
    if Role.AUDITOR in roles:
        home = [TenantId(row.home_tenant_id)] if row.home_tenant_id else []
        audited = frozenset([*await system_assigned_tenants(session, principal.user_id), *home])
    return _Live(active=bool(row.active), roles=roles, tenant=row.home_tenant_id, audited=audited)
