"""Code-set tests load into a transaction of the owner role that is rolled back afterwards: the code tables
are global, so a test must neither see nor leave another's releases. Each transaction starts empty."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

CODE_TABLES = ("code_version", "ncci_ptp_edit", "mue_limit", "sex_age_edit", "code_set_release")


@pytest.fixture
async def codes_db(owner_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session in one transaction, code tables emptied inside it, rolled back at the end."""
    async with owner_engine.connect() as conn:
        transaction = await conn.begin()
        session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=False)
        for table in CODE_TABLES:
            await session.execute(text(f"DELETE FROM rcm.{table}"))  # noqa: S608 - constant names
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding))
    return path
