"""The models and the migrated schema agree, so ``alembic revision --autogenerate`` proposes nothing.

The comparison is alembic's own, with the options env.py uses (``rcm.kit.migrations.autogenerate_options``:
every model, schema ``rcm`` only, partitions left out, types and server defaults compared). It runs in a
fresh interpreter against a database migrated for it alone, as a developer's autogenerate would: this
process's metadata and the shared test database both hold a table tests make (``tests/crypto/conftest.py``)
that no migration creates.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from rcm.config import async_url
from rcm.kit.migrations import pending_changes, upgrade_to_head

CHECK = "from alembic import command; from rcm.kit.migrations import alembic_config; import sys; " + (
    "command.check(alembic_config(sys.argv[1]))"
)


@pytest.fixture
def migrated_url(admin_url: str) -> Iterator[str]:
    """A database of its own, migrated to head, dropped afterwards."""
    url = make_url(admin_url)
    name = f"{url.database}_drift"
    admin = url.render_as_string(hide_password=False)
    asyncio.run(_recreate(admin, name, create=True))
    scratch = url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(scratch)
        yield scratch
    finally:
        asyncio.run(_recreate(admin, name, create=False))


async def _recreate(admin_url: str, name: str, *, create: bool) -> None:
    engine = create_async_engine(async_url(admin_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


def test_autogenerate_finds_nothing_to_do(migrated_url: str) -> None:
    result = subprocess.run(  # noqa: S603 - our interpreter, our code, the test database's URL
        [sys.executable, "-c", CHECK, migrated_url], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "No new upgrade operations detected" in result.stdout


async def test_the_comparison_catches_drift(owner_engine: AsyncEngine) -> None:
    """A column, an index and a nullability the models do not know, made and rolled back, are all found."""

    def changes(connection: Connection) -> list[Any]:
        # Column changes come grouped in a list per table; flatten to one entry per operation.
        return [
            entry
            for change in pending_changes(connection)
            for entry in (change if isinstance(change, list) else [change])
        ]

    async with owner_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text("ALTER TABLE rcm.provider ADD COLUMN drift_probe text"))
            await conn.execute(text("CREATE INDEX ix_drift_probe ON rcm.encounter (tenant_id, status)"))
            await conn.execute(text("ALTER TABLE rcm.patient ALTER COLUMN sex DROP NOT NULL"))
            found = await conn.run_sync(changes)
        finally:
            await transaction.rollback()
    assert any(e[0] == "remove_column" and e[2] == "provider" and e[3].name == "drift_probe" for e in found)
    assert any(e[0] == "remove_index" and e[1].name == "ix_drift_probe" for e in found)
    assert any(e[0] == "modify_nullable" and tuple(e[2:4]) == ("patient", "sex") for e in found)
