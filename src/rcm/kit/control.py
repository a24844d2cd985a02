"""The control-plane connection: the one door to the writes that decide who may do what.

The API and workers serve tenant requests as ``rcm_app``, which may only READ the control plane: signing
keys, people's roles and activity, staff assignments, API clients. Writing them takes ``rcm_control``, a
separate login role, so a leaked app credential or an SQL injection in a tenant request cannot publish a
signing key, widen a role, assign itself to a practice or mint an API client.

Who connects as ``rcm_control`` (and nobody else):
- the MFA-guarded admin routes (API clients, people's roles and activity, staff assignments);
- the first login of a person, which links the issuer's subject to their row;
- the key ring when no signing key exists yet (first start);
- operator commands (``rcm identity ...``, ``rcm tenants ...``, ``rcm demo``).

In a request handler, take the factory from the app state with ``control_sessions(state)`` and open
``control_transaction(state)``; in a command, ``open_control_sessions(settings)``. Ordinary tenant routes
use ``state.sessions`` (the app role) and never these.

Moving another table's writes to the control role (break-glass grants are next) takes two steps:
1. the routes that write it open ``control_transaction(state)`` instead of
   ``platform_transaction(state.sessions)`` (the transaction still records its audit event and idempotency
   record: the control role inherits the app role's rights);
2. a migration revokes the app role's writes and grants them here, e.g.
   ``REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON rcm.break_glass_grant FROM rcm_app`` and
   ``GRANT INSERT, UPDATE ON rcm.break_glass_grant TO rcm_control``.
Reads (the access decision reading a grant) stay on the app role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings, control_database_url
from rcm.kit.db import create_engine, platform_transaction, session_factory

ControlSessions = async_sessionmaker[AsyncSession]
STATE_KEY = "control_sessions"


def control_sessions(state: Any) -> ControlSessions:
    """The process's control-role session factory (set by the app's lifespan)."""
    sessions: ControlSessions | None = getattr(state, STATE_KEY, None)
    if sessions is None:
        raise RuntimeError("this process has no control-plane connection (RCM_CONTROL_DATABASE_URL)")
    return sessions


@asynccontextmanager
async def control_transaction(state: Any) -> AsyncIterator[AsyncSession]:
    """One control-role transaction with no tenant context; commits on success, rolls back on error.

    Tenant-owned control rows (assignments, clients) still need the tenant bound with
    ``apply_tenant_context``: the control role is under RLS like the app.
    """
    async with platform_transaction(control_sessions(state)) as session:
        yield session


@asynccontextmanager
async def open_control_sessions(
    settings: Settings, *, application_name: str
) -> AsyncIterator[ControlSessions]:
    """A small control-role pool for an operator command or a test, disposed on exit."""
    engine = create_engine(control_database_url(settings), pool_size=2, application_name=application_name)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
