"""Crypto fixtures: a KeyStore over a test KEK directory, and a PHI table that exists only for these tests.

No PHI table exists on this branch yet, so ``PhiSample`` stands in: a TenantOwned model declaring
``__phi_columns__``, created as the owner with the same RLS DDL migrations use, and dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from rcm.config import OWNER_ROLE
from rcm.crypto import KeyStore, LocalFileKeyProvider
from rcm.kit.models import Base, TenantOwned
from rcm.kit.rls import tenant_table_ddl

PHI_TABLE = "test_phi_sample"


class PhiSample(TenantOwned, Base):
    __tablename__ = PHI_TABLE
    __phi_columns__ = ("name_enc", "note_enc")

    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@pytest.fixture
def kek_dir(tmp_path: Path) -> Path:
    return tmp_path / "keks"


@pytest.fixture
def provider(kek_dir: Path) -> LocalFileKeyProvider:
    return LocalFileKeyProvider(kek_dir)


@pytest.fixture
def store(provider: LocalFileKeyProvider) -> KeyStore:
    return KeyStore(provider)


@pytest.fixture(scope="session")
async def phi_table(owner_engine: AsyncEngine) -> AsyncIterator[str]:
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL ROLE {OWNER_ROLE}"))
        await conn.run_sync(PhiSample.__table__.create)
        for statement in tenant_table_ddl(PHI_TABLE):
            await conn.execute(text(statement))
    yield PHI_TABLE
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE rcm.{PHI_TABLE}"))
