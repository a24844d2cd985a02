"""The access log is append-only in the database: privileges for the app role, triggers for everyone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.checkpoints import load_signer, write_checkpoints
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events

STATEMENTS = [
    "UPDATE rcm.audit_event SET event_type = 'x'",
    "DELETE FROM rcm.audit_event",
    "TRUNCATE rcm.audit_event",
    "UPDATE rcm.audit_seal SET seq = seq + 1",
    "DELETE FROM rcm.audit_seal",
    "TRUNCATE rcm.audit_seal",
    "UPDATE rcm.audit_checkpoint SET key_id = 'x'",
    "DELETE FROM rcm.audit_checkpoint",
    "TRUNCATE rcm.audit_checkpoint",
]

# What only the chainer (rcm_audit) may write: the app role, which every request holds, is refused each.
_ZERO = "decode(repeat('00', 32), 'hex')"
CHAINER_ONLY = [
    "UPDATE rcm.audit_chain_head SET seq = 0",
    f"INSERT INTO rcm.audit_chain_head (tenant_id, seq, hash) VALUES (:t, 99, {_ZERO})",  # noqa: S608
    "DELETE FROM rcm.audit_chain_head",
    "INSERT INTO rcm.audit_seal (tenant_id, seq, event_id, occurred_at, prev_hash, hash) "  # noqa: S608
    f"SELECT tenant_id, 1000, id, occurred_at, {_ZERO}, {_ZERO} "
    "FROM rcm.audit_event LIMIT 1",
    "INSERT INTO rcm.audit_checkpoint (tenant_id, seq, hash, created_at, key_id, signature) "
    "VALUES (:t, 1, decode(repeat('00', 32), 'hex'), now(), 'forged', decode(repeat('00', 64), 'hex'))",
    "UPDATE rcm.audit_chainer_state SET sealed_below = '1'",
]


async def _seed(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    keys: Path,
) -> None:
    """A sealed event and a checkpoint, so row triggers have a row to refuse."""
    await write_events(sessions, [make_event(tenant.id)])
    await seal_all(audit_sessions)
    async with tenant_transaction(audit_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        assert await write_checkpoints(session, [tenant.id], load_signer(keys, create=True))


async def _run(sessions: async_sessionmaker[AsyncSession], tenant: Tenant, statement: str) -> None:
    async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
        await session.execute(text(statement), {"t": tenant.id} if ":t" in statement else {})


@pytest.mark.parametrize("statement", STATEMENTS + CHAINER_ONLY)
async def test_app_role_lacks_the_privilege(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    statement: str,
    key_dir: Path,
) -> None:
    """rcm_app (what a leaked app credential or an SQL injection gets) can neither change the log nor
    write the chain: no seal, no chain head, no checkpoint, no watermark."""
    await _seed(sessions, audit_sessions, tenant, make_event, key_dir)
    with pytest.raises(DBAPIError, match="permission denied"):
        await _run(sessions, tenant, statement)


@pytest.mark.parametrize("statement", [s for s in STATEMENTS if "audit_event" in s])
async def test_chainer_role_cannot_change_events(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    make_event: MakeEvent,
    statement: str,
    key_dir: Path,
) -> None:
    await _seed(sessions, audit_sessions, tenant, make_event, key_dir)
    with pytest.raises(DBAPIError, match="permission denied"):
        await _run(audit_sessions, tenant, statement)


async def test_chainer_role_is_unprivileged(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        role = (
            await conn.execute(
                text(
                    "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
                    "WHERE rolname = 'rcm_audit'"
                )
            )
        ).one()
        owned = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = 'rcm_audit'"
                )
            )
        ).scalar_one()
    assert tuple(role) == (True, False, False, False, False)
    assert owned == 0


async def _as_owner(owner_engine: AsyncEngine, tenant: Tenant, statement: str, *, role: str = "") -> None:
    async with owner_engine.begin() as conn:
        if role:
            await conn.execute(text(f"SET LOCAL ROLE {role}"))
        await conn.execute(text("SELECT set_config('rcm.tenant_id', :t, true)"), {"t": str(tenant.id)})
        await conn.execute(text(statement))


@pytest.mark.parametrize("role", ["superuser", "rcm_owner"])
@pytest.mark.parametrize("statement", STATEMENTS)
async def test_owner_and_superuser_are_refused_by_triggers(  # noqa: PLR0917 - pytest fixtures
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
    statement: str,
    role: str,
    key_dir: Path,
    audit_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _seed(sessions, audit_sessions, tenant, make_event, key_dir)
    with pytest.raises(DBAPIError, match="append-only"):
        await _as_owner(owner_engine, tenant, statement, role="rcm_owner" if role == "rcm_owner" else "")


async def test_partitions_cannot_be_reached_directly(
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    await write_events(sessions, [make_event(tenant.id)])
    async with owner_engine.connect() as conn:
        partitions = (
            await conn.execute(
                text(
                    "SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity, "
                    "(SELECT count(*) FROM pg_trigger t "
                    " WHERE t.tgrelid = c.oid AND t.tgname = 'audit_no_truncate') "
                    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'rcm.audit_event'::regclass"
                )
            )
        ).all()
    names = {p[0] for p in partitions}
    assert "rcm.audit_event_default" in names
    assert len(names) >= 5  # last month, this month, three ahead, default
    assert all(p[1] and p[2] and p[3] == 1 for p in partitions), partitions
    for name in names:
        with pytest.raises(DBAPIError, match="permission denied"):
            await _run(sessions, tenant, f"SELECT count(*) FROM {name}")  # noqa: S608 - catalog names
    # TRUNCATE of one partition bypasses the parent's statement trigger; the partition has its own.
    this_month = sorted(n for n in names if n != "rcm.audit_event_default")[1]
    with pytest.raises(DBAPIError, match="append-only"):
        await _as_owner(owner_engine, tenant, f"TRUNCATE {this_month}")


async def test_an_event_without_a_monthly_partition_lands_in_default(
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    from datetime import UTC, datetime

    far = make_event(tenant.id, occurred_at=datetime(2099, 1, 1, 12, tzinfo=UTC))
    await write_events(sessions, [far])
    async with owner_engine.connect() as conn:
        await conn.execute(text("SELECT set_config('rcm.tenant_id', :t, false)"), {"t": str(tenant.id)})
        where = (
            await conn.execute(
                text("SELECT tableoid::regclass::text FROM rcm.audit_event WHERE id = :id"), {"id": far.id}
            )
        ).scalar_one()
        # Carving the month out of DEFAULT is refused while it holds rows of it: nothing is lost.
        made = (await conn.execute(text("SELECT rcm.audit_ensure_partition('2099-01-15Z')"))).scalar_one()
        ahead = (await conn.execute(text("SELECT rcm.audit_ensure_partition('2098-06-15Z')"))).scalar_one()
        await conn.rollback()
    assert where == "rcm.audit_event_default"
    assert made is None
    assert ahead == "audit_event_p209806"
