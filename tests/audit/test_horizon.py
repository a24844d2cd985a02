"""The chainer's horizon: transactions of this database hold sealing back; other databases' do not.

xids are shared by the whole server, so the snapshot's xmin would let a session idle in a transaction in any
database (another application, an operator's psql) stall sealing here. Only this database's transactions
can write our events, so only they are waited for.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit import repository
from rcm.audit.chainer import seal_pending
from rcm.tenancy.models import Tenant
from tests.audit.conftest import MakeEvent, seal_all, write_events


def _dsn(admin_url: str, database: str | None = None) -> str:
    url = make_url(admin_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def _holding_an_xid(dsn: str) -> tuple[asyncpg.Connection, int]:
    """A session left idle inside a transaction that has an xid (it wrote, or asked for one)."""
    connection = await asyncpg.connect(dsn)
    transaction = connection.transaction()
    await transaction.start()
    xid = int(await connection.fetchval("SELECT pg_current_xact_id()::text"))
    return connection, xid


async def _watermark(audit_sessions: async_sessionmaker[AsyncSession]) -> int:
    async with audit_sessions() as session, session.begin():
        return await repository.watermark(session)


async def test_an_idle_transaction_in_another_database_does_not_stall_sealing(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    admin_url: str,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    neighbour, held = await _holding_an_xid(_dsn(admin_url, "postgres"))
    try:
        await write_events(sessions, [make_event(tenant.id) for _ in range(3)])
        await seal_all(audit_sessions, within=10.0)  # would time out if the neighbour's xid were waited for
        assert await _watermark(audit_sessions) > held
    finally:
        await neighbour.close()


async def test_an_idle_transaction_in_this_database_holds_sealing_back_until_it_ends(
    sessions: async_sessionmaker[AsyncSession],
    audit_sessions: async_sessionmaker[AsyncSession],
    admin_url: str,
    tenant: Tenant,
    make_event: MakeEvent,
) -> None:
    ours, held = await _holding_an_xid(_dsn(admin_url))
    try:
        await write_events(sessions, [make_event(tenant.id)])
        await seal_pending(audit_sessions)
        # Its transaction could still insert an event with xid `held`: nothing from it on may be sealed.
        assert await _watermark(audit_sessions) <= held
    finally:
        await ours.close()
    await seal_all(audit_sessions, within=10.0)
    assert await _watermark(audit_sessions) > held


async def test_the_horizon_is_computed_by_the_chainer_role_without_extra_privileges(
    audit_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with audit_sessions() as session, session.begin():
        low, horizon = await repository.watermark_and_horizon(session)
        current_role = (await session.execute(text("SELECT current_user"))).scalar_one()
    assert current_role == "rcm_audit"
    assert horizon >= low
