"""The ICD-10-CM release inside simple-icd-10-cm: every code, leaves billable, headers not."""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes.importers.icd10cm import from_package
from rcm.codes.service import check_codes, load_release


async def test_package_release_loads_fast_and_once(codes_db: AsyncSession) -> None:
    started = time.perf_counter()
    parsed = from_package()
    parsed_at = time.perf_counter()
    report = await load_release(codes_db, parsed, as_owner=False)
    loaded_at = time.perf_counter()
    print(f"ICD-10-CM package: parse {parsed_at - started:.2f} s, load {loaded_at - parsed_at:.2f} s")
    assert report.added == len(parsed.rows)
    assert report.added > 90_000
    billable = (
        await codes_db.execute(
            text("SELECT count(*) FROM rcm.code_version WHERE system = 'icd10cm' AND billable")
        )
    ).scalar_one()
    assert 74_000 < billable < 76_000
    # Well under the time a quarterly refresh may take (about 3 s on a 2-core machine).
    assert loaded_at - parsed_at < 30

    checks = await check_codes(
        codes_db, [("icd10cm", "E11.9"), ("icd10cm", "E11"), ("icd10cm", "S72.001A")], date(2026, 5, 4)
    )
    assert [c.valid for c in checks] == [True, False, True]
    assert checks[1].reason == "header code, not billable"
    assert checks[0].warning is None

    again = await load_release(codes_db, from_package(), as_owner=False)
    assert again.already_loaded
