"""Revision 0007_break_glass on a database that already holds grants: every tenant's old grant is
backfilled (migrations run as the owner, on whom RLS is forced, so a careless backfill touches no row), and
the revision downgrades."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from rcm.config import async_url
from rcm.kit.migrations import alembic_config

BEFORE = "0005_intake"
FORCED = "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'break_glass_grant'"


@pytest.fixture(scope="module")
def scratch_url(admin_url: str) -> Iterator[str]:
    name = make_url(admin_url).database + "_bg"

    async def run(statement: str) -> None:
        engine = create_async_engine(async_url(admin_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _sql(url: str, *statements: str, **params: object) -> list[tuple[object, ...]]:
    """Run ``statements`` as the superuser (beneath RLS) in one transaction; the last one's rows."""

    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        rows: list[tuple[object, ...]] = []
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(text(statement), params)
                rows = [tuple(r) for r in result] if result.returns_rows else []
        await engine.dispose()
        return rows

    return asyncio.run(run())


def test_old_grants_of_every_tenant_are_backfilled_and_the_revision_downgrades(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, BEFORE)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    user = uuid.uuid4()
    _sql(
        scratch_url,
        "INSERT INTO rcm.app_user (id, issuer, subject, email, display_name, roles) "
        "VALUES (:user, 'i', 's', 'legacy@test.invalid', 'Legacy', '{coder}')",
        user=user,
    )
    for n, tenant in enumerate(tenants):
        _sql(
            scratch_url,
            "INSERT INTO rcm.tenant (id, slug, name) VALUES (:tenant, :slug, 'Legacy')",
            "INSERT INTO rcm.break_glass_grant (tenant_id, id, user_id, reason, expires_at)"
            " VALUES (:tenant, gen_random_uuid(), :user, 'x', now() + interval '90 minutes')",
            tenant=tenant,
            user=user,
            slug=f"legacy-{n}",
        )

    command.upgrade(config, "head")
    rows = _sql(scratch_url, "SELECT category, minutes, starts_at = created_at FROM rcm.break_glass_grant")
    assert rows == [("other", 90, True), ("other", 90, True)]
    assert _sql(scratch_url, FORCED) == [(True,)]

    command.downgrade(config, BEFORE)
    assert _sql(scratch_url, FORCED) == [(True,)]
    assert _sql(scratch_url, "SELECT count(*) FROM rcm.break_glass_grant") == [(2,)]
    command.upgrade(config, "head")
