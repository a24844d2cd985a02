"""Code tables are the operator's: the app role reads them and cannot change a row."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.codes.sources import shipped
from rcm.kit.db import platform_transaction
from tests.codes.conftest import CODE_TABLES

WRITES = {
    "code_set_release": "INSERT INTO rcm.code_set_release"
    " (id, code_set, label, effective_from, source, checksum)"
    " VALUES (gen_random_uuid(), 'cpt', 'x', '2026-01-01', 'x', 'x')",
    "code_version": "UPDATE rcm.code_version SET description = 'x'",
    "ncci_ptp_edit": "DELETE FROM rcm.ncci_ptp_edit",
    "mue_limit": "UPDATE rcm.mue_limit SET units = 99",
    "sex_age_edit": "TRUNCATE rcm.sex_age_edit",
}


@pytest.mark.parametrize("table", CODE_TABLES)
async def test_app_role_reads_but_cannot_write(
    sessions: async_sessionmaker[AsyncSession], table: str
) -> None:
    async with platform_transaction(sessions) as session:
        await session.execute(text(f"SELECT count(*) FROM rcm.{table}"))  # noqa: S608 - constant names
    with pytest.raises(DBAPIError, match="permission denied"):
        async with platform_transaction(sessions) as session:
            await session.execute(text(WRITES[table]))


def test_shipped_code_files_are_package_data() -> None:
    """What the wheel must carry (package data of ``rcm.codes``), found the way an install finds it."""
    for parts in (
        ("hcpcs", "hcpcs_level_2.csv"),
        ("hcpcs", "README.md"),
        ("pos", "pos_descriptions.csv"),
        ("demo", "cpt_demo.csv"),
    ):
        assert shipped(*parts).is_file()
