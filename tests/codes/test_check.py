"""check_codes: validity on a date of service, headers, out-of-date warnings, missing code sets."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes.importers.icd10cm import from_order_file
from rcm.codes.importers.operator import from_operator_file
from rcm.codes.models import CodeSet
from rcm.codes.service import check_codes, load_release
from rcm.kit.db import RoundTrips
from tests.codes.conftest import write

ORDER_2027 = (
    "00001 A00     0 Cholera                                                      Cholera\n"
    "00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae           "
    "Cholera due to Vibrio cholerae 01, biovar cholerae\n"
    "00003 E119    1 Type 2 diabetes mellitus without complications               "
    "Type 2 diabetes mellitus without complications\n"
)


def order_line(number: int, code: str, flag: str, description: str) -> str:
    return f"{number:05d} {code:<7} {flag} {description[:60]:<60} {description}\n"


async def load_cpt(session: AsyncSession, tmp_path: Path, content: str, *, start: date, label: str) -> None:
    path = write(tmp_path / f"cpt-{label}.csv", content)
    await load_release(
        session, from_operator_file(path, CodeSet.CPT, label=label, effective_from=start), as_owner=False
    )


async def test_missing_cpt_set_is_reported_never_passed(codes_db: AsyncSession) -> None:
    checks = await check_codes(codes_db, [("cpt", "99213"), ("icd10cm", "E11.9")], date(2026, 5, 1))
    assert [c.valid for c in checks] == [False, False]
    assert checks[0].reason == "no CPT code set loaded"
    assert checks[1].reason == "no ICD-10-CM code set loaded"


async def test_icd_leaf_header_unknown_and_dates(codes_db: AsyncSession, tmp_path: Path) -> None:
    path = write(tmp_path / "icd10cm_order_2027.txt", ORDER_2027)
    parsed = from_order_file(
        path, label="FY2027", effective_from=date(2026, 10, 1), effective_through=date(2027, 9, 30)
    )
    report = await load_release(codes_db, parsed, as_owner=False)
    assert (report.added, report.changed, report.terminated) == (3, 0, 0)

    checks = await check_codes(
        codes_db,
        [("icd10cm", "E11.9"), ("icd10cm", "a00"), ("icd10cm", "Z99.999"), ("nope", "X")],
        date(2027, 1, 15),
    )
    leaf, header, unknown, system = checks
    assert leaf.valid
    assert leaf.description == "Type 2 diabetes mellitus without complications"
    assert leaf.code == "E11.9"
    assert leaf.warning is None
    assert not header.valid
    assert header.reason == "header code, not billable"
    assert not unknown.valid
    assert unknown.reason == "unknown code"
    assert not system.valid
    assert system.reason == "unknown code system 'nope'"
    assert "Z99.999" in unknown.message
    assert "2027-01-15" in unknown.message

    # After the newest release: checked against it, with a warning naming it.
    late = (await check_codes(codes_db, [("icd10cm", "E119")], date(2027, 10, 3)))[0]
    assert late.valid
    assert late.warning == (
        "code set may be out of date: newest ICD-10-CM release loaded is FY2027 (through 2027-09-30)"
    )
    # Before the oldest release: judged by it, and said so.
    early = (await check_codes(codes_db, [("icd10cm", "E119")], date(2026, 1, 3)))[0]
    assert early.valid
    assert early.warning is not None
    assert "oldest ICD-10-CM release loaded is FY2027" in early.warning


async def test_new_release_beside_old_terminates_and_adds(codes_db: AsyncSession, tmp_path: Path) -> None:
    first = write(
        tmp_path / "icd10cm_order_2026.txt",
        order_line(1, "E119", "1", "Type 2 diabetes mellitus without complications")
        + order_line(2, "U070", "1", "Vaping-related disorder")
        + order_line(3, "R051", "1", "Acute cough"),
    )
    second = write(
        tmp_path / "icd10cm_order_2027.txt",
        order_line(1, "E119", "1", "Type 2 diabetes mellitus without complications")
        + order_line(2, "R051", "1", "Acute cough, reworded")
        + order_line(3, "Z000", "1", "Encounter for general adult medical examination"),
    )
    r1 = await load_release(
        codes_db,
        from_order_file(
            first, label="FY2026", effective_from=date(2025, 10, 1), effective_through=date(2026, 9, 30)
        ),
        as_owner=False,
    )
    r2 = await load_release(
        codes_db,
        from_order_file(
            second, label="FY2027", effective_from=date(2026, 10, 1), effective_through=date(2027, 9, 30)
        ),
        as_owner=False,
    )
    assert (r1.added, r1.changed, r1.terminated, r1.unchanged) == (3, 0, 0, 0)
    assert (r2.added, r2.changed, r2.terminated, r2.unchanged) == (1, 1, 1, 1)

    items = [("icd10cm", "U07.0"), ("icd10cm", "Z00.0"), ("icd10cm", "R05.1")]
    old = await check_codes(codes_db, items, date(2026, 9, 30))
    new = await check_codes(codes_db, items, date(2026, 10, 3))
    assert [c.valid for c in old] == [True, False, True]
    assert old[1].reason == "not valid on 2026-09-30: effective from 2026-10-01"
    assert old[2].description == "Acute cough"
    assert [c.valid for c in new] == [False, True, True]
    assert new[0].reason == "not valid on 2026-10-03: terminated 2026-09-30"
    assert new[2].description == "Acute cough, reworded"

    # The same file again: a no-op. An older release after a newer one: refused.
    again = await load_release(
        codes_db,
        from_order_file(
            second, label="FY2027", effective_from=date(2026, 10, 1), effective_through=date(2027, 9, 30)
        ),
        as_owner=False,
    )
    assert again.already_loaded
    assert "already loaded" in again.line()


async def test_cpt_operator_file_and_one_round_trip(
    codes_db: AsyncSession, tmp_path: Path, owner_engine: object
) -> None:
    await load_cpt(
        codes_db,
        tmp_path,
        'code,description\n99213,"Office visit, established patient (demo wording)"\n'
        '99214,"Office visit, established, moderate (demo wording)"\n'
        '25,"Separate evaluation and management on the same day (test wording)"\n',
        start=date(2026, 1, 1),
        label="CPT 2026",
    )
    items = [("cpt", "99213"), ("cpt", "99999"), ("icd10cm", "E119"), ("cpt", "99214")]
    with RoundTrips(codes_db.bind.engine) as counter:  # type: ignore[union-attr]
        checks = await check_codes(codes_db, items, date(2026, 3, 1))
    assert len(counter.statements) == 1
    assert [c.valid for c in checks] == [True, False, False, True]
    assert checks[1].reason == "unknown code"
    assert checks[2].reason == "no ICD-10-CM code set loaded"
    assert checks[0].description == "Office visit, established patient (demo wording)"
    modifier = (await check_codes(codes_db, [("modifier", "25")], date(2026, 3, 1)))[0]
    assert modifier.valid
    assert modifier.system == "modifier"
