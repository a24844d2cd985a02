"""What `make run` loads: every code the demo's encounters use is valid, and a re-run reads nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.codes.loading import load_demo_code_sets
from rcm.codes.service import check_codes
from rcm.demo import CODES
from rcm.kit.db import platform_transaction
from tests.codes.test_routes import _clear


@pytest.fixture
async def cleared(owner_engine: AsyncEngine) -> AsyncIterator[None]:
    await _clear(owner_engine)
    yield
    await _clear(owner_engine)


async def test_demo_code_sets_cover_the_demo_and_reload_by_checksum(
    cleared: None, admin_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await load_demo_code_sets(admin_url)
    assert [r.code_set.value for r in first] == [
        "icd10cm",
        "hcpcs",
        "modifier",
        "pos",
        "rarc",
        "cpt",
        "ncci_ptp",
        "mue",
        "sex_age",
    ]
    assert not any(r.already_loaded for r in first)
    again = await load_demo_code_sets(admin_url)
    # Checksums only: every set is known by its checksum, none is parsed or loaded again.
    assert [(r.code_set, r.already_loaded) for r in again] == [(r.code_set, True) for r in first]

    items = [("pos", "11")]
    for procedure, _, diagnoses in CODES:
        items += [("cpt", procedure), *(("icd10cm", d) for d in diagnoses)]
    # The app role reads what the operator loaded.
    async with platform_transaction(sessions) as session:
        checks = await check_codes(session, items, date(2026, 5, 1))
    assert [c.message for c in checks if not c.valid] == []
