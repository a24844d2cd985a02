"""Each importer on small files written in the published layout, malformed lines named file:line:column,
and what the loaded edits answer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.codes.importers import hcpcs, icd10cm, mue, ncci, operator, sex_age
from rcm.codes.importers.base import CodeFileError
from rcm.codes.models import CodeSet, Sex
from rcm.codes.service import (
    check_codes,
    load_release,
    mue_limits,
    ncci_pairs,
    sex_age_edits,
)
from rcm.codes.sources import SourceKind, releases_for
from tests.codes.conftest import write

# --- HCPCS ----------------------------------------------------------------------------------------------


def anweb(code: str, recid: str, long: str, *, add: str = "", term: str = "", short: str = "") -> str:
    record = [" "] * 320

    def put(position: int, value: str) -> None:
        record[position - 1 : position - 1 + len(value)] = list(value)

    put(1, code.rjust(5) if len(code) == 2 else code.ljust(5))
    put(6, "00100")
    put(11, recid)
    put(12, long[:80])
    put(92, short[:28])
    put(269, add)
    put(285, term)
    put(293, "N")
    return "".join(record) + "\r\n"


async def test_hcpcs_anweb_dates_continuations_and_modifiers(codes_db: AsyncSession, tmp_path: Path) -> None:
    path = write(
        tmp_path / "HCPC2026_JAN_ANWEB_01122026.txt",
        anweb("G2211", "3", "Visit complexity inherent to evaluation and management", add="20210101")
        + anweb("G2211", "4", "associated with medical care services")
        + anweb("G0999", "3", "A code ended in March", add="20200101", term="20260331")
        + anweb("XS", "7", "Separate structure", add="20150101"),
        encoding="latin-1",
    )
    assert hcpcs.guess_anweb_window(path) == ("2026 JAN", date(2026, 1, 1))
    parsed = releases_for(SourceKind.HCPCS, [path])
    assert [p.code_set for p in parsed] == [CodeSet.HCPCS, CodeSet.MODIFIER]
    for release in parsed:
        await load_release(codes_db, release, as_owner=False)
    checks = await check_codes(
        codes_db,
        [("hcpcs", "G2211"), ("hcpcs", "G0999"), ("hcpcs", "G0999"), ("modifier", "XS")],
        date(2026, 4, 2),
    )
    assert checks[0].valid
    assert checks[0].description == (
        "Visit complexity inherent to evaluation and management associated with medical care services"
    )
    assert not checks[1].valid
    assert checks[1].reason == "not valid on 2026-04-02: terminated 2026-03-31"
    assert (await check_codes(codes_db, [("hcpcs", "G0999")], date(2026, 3, 31)))[0].valid
    # Valid from its add date, not only from the quarter loaded.
    assert (await check_codes(codes_db, [("hcpcs", "G2211")], date(2021, 6, 1)))[0].valid
    assert checks[3].valid

    short = write(tmp_path / "HCPC2026_APR_ANWEB_x.txt", anweb("G2211", "3", "x")[:200] + "\n")
    with pytest.raises(CodeFileError, match=r"HCPC2026_APR_ANWEB_x.txt:1:201: record shorter"):
        releases_for(SourceKind.HCPCS, [short])
    bad_date = write(tmp_path / "HCPC2026_JUL_ANWEB_x.txt", anweb("G2211", "3", "x", add="2026-1-1"))
    with pytest.raises(CodeFileError, match=r"HCPC2026_JUL_ANWEB_x.txt:1:269: ADD DT is not a date"):
        releases_for(SourceKind.HCPCS, [bad_date])


async def test_hcpcs_shipped_copy(codes_db: AsyncSession, tmp_path: Path) -> None:
    parsed = releases_for(SourceKind.HCPCS, [])
    reports = [await load_release(codes_db, release, as_owner=False) for release in parsed]
    assert reports[0].added > 7000
    assert reports[1].added > 300
    checks = await check_codes(
        codes_db,
        [("hcpcs", "G2211"), ("modifier", "GT"), ("hcpcs", "G0503"), ("modifier", "25")],
        date(2023, 3, 1),
    )
    assert [c.valid for c in checks] == [True, True, True, False]
    # A two-digit modifier is CPT's: it comes with the operator's CPT file, not loaded here.
    assert checks[3].reason == "no CPT code set loaded"
    assert checks[2].description is not None
    assert checks[2].description.endswith("prepared for discharge from active treatment")  # continuation
    bad = write(
        tmp_path / "hcpcs.csv",
        "hcpcs,seqnum,recid,long_description,short_description\nG2211,0010,5,Visit,Visit\n",
    )
    with pytest.raises(CodeFileError, match=r"hcpcs.csv:2:3: record id is not 3, 4, 7 or 8"):
        hcpcs.from_csv(bad)


# --- NCCI PTP -------------------------------------------------------------------------------------------

PTP_HEADER = (
    "CPT codes and descriptions only are copyright 2025 American Medical Association.\t\t\t\t\t\t\r\n"
    "Column1/Column2 Edits\t\t\t\t\t\t\r\n"
    "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n"
    "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n"
    "\t\t\t\t*=no data\t1=allowed\t\r\n"
    "\t\t\t\t\t9=not applicable\t\r\n"
)


def ptp(*rows: str) -> str:
    return PTP_HEADER + "".join(row + "\r\n" for row in rows)


async def test_ncci_ptp_pairs_by_date_and_quarter(codes_db: AsyncSession, tmp_path: Path) -> None:
    q3 = write(
        tmp_path / "ccipra-v322r0-f1.TXT",
        ptp(
            "99213\t36415\t\t20260101\t*\t1\tMisuse of column two code with column one code",
            "99214\t99213\t*\t19960101\t*\t0\tMutually exclusive procedures",
            "11042\t97597\t\t20250101\t20250101\t9\tStandards of medical / surgical practice",
        ),
        encoding="latin-1",
    )
    assert ncci.guess_quarter(q3) == ("2026Q3 v322r0 f1", date(2026, 7, 1))
    first = await load_release(codes_db, releases_for(SourceKind.NCCI, [q3])[0], as_owner=False)
    assert first.added == 3
    pairs = await ncci_pairs(codes_db, ["99213", "36415", "99214", "11042", "97597"], date(2026, 8, 1))
    assert {(p.column1, p.column2, p.modifier_indicator) for p in pairs} == {
        ("99213", "36415", 1),
        ("99214", "99213", 0),
    }
    # Next quarter deletes one edit from October 1: it no longer applies from that day.
    q4 = write(
        tmp_path / "ccipra-v323r0-f1.TXT",
        ptp(
            "99213\t36415\t\t20260101\t20261001\t1\tMisuse of column two code with column one code",
            "99214\t99213\t*\t19960101\t*\t0\tMutually exclusive procedures",
            "11042\t97597\t\t20250101\t20250101\t9\tStandards of medical / surgical practice",
        ),
        encoding="latin-1",
    )
    second = await load_release(codes_db, releases_for(SourceKind.NCCI, [q4])[0], as_owner=False)
    assert (second.added, second.terminated, second.unchanged) == (0, 1, 2)
    assert len(await ncci_pairs(codes_db, ["99213", "36415"], date(2026, 9, 30))) == 1
    assert await ncci_pairs(codes_db, ["99213", "36415"], date(2026, 10, 1)) == []

    bad = write(
        tmp_path / "ccipra-v323r0-f2.TXT", ptp("99213\t36415\t\t20260101\t*\t2\tx"), encoding="latin-1"
    )
    with pytest.raises(
        CodeFileError, match=r"ccipra-v323r0-f2.TXT:7:25: modifier indicator is not 0, 1 or 9"
    ):
        releases_for(SourceKind.NCCI, [bad])
    bad_date = write(
        tmp_path / "ccipra-v323r0-f3.TXT", ptp("99213\t36415\t\t2026011\t*\t1\tx"), encoding="latin-1"
    )
    with pytest.raises(CodeFileError, match=r"f3.TXT:7:14: effective date is not a date YYYYMMDD"):
        releases_for(SourceKind.NCCI, [bad_date])


# --- MUE ------------------------------------------------------------------------------------------------

MUE_HEAD = (
    '"CPT codes and descriptions only are copyright 2025 American Medical Association.\r\n'
    'All Rights Reserved.",,,\r\n'
    '"HCPCS/\r\nCPT Code",Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\r\n'
)


async def test_mue_limits_by_quarter(codes_db: AsyncSession, tmp_path: Path) -> None:
    jan = write(
        tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv",
        MUE_HEAD + "36415,2,3 Date of Service Edit: Clinical,Nature of Service/Procedure\r\n"
        "99213,1,2 Date of Service Edit: Policy,Code Descriptor / CPT Instruction\r\n"
        "J1100,10,1 Line Edit,Nature of Analyte\r\n",
        encoding="latin-1",
    )
    apr = write(
        tmp_path / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
        MUE_HEAD + "36415,3,3 Date of Service Edit: Clinical,Nature of Service/Procedure\r\n"
        "99213,1,2 Date of Service Edit: Policy,Code Descriptor / CPT Instruction\r\n",
        encoding="latin-1",
    )
    r1 = await load_release(codes_db, releases_for(SourceKind.MUE, [jan])[0], as_owner=False)
    r2 = await load_release(codes_db, releases_for(SourceKind.MUE, [apr])[0], as_owner=False)
    assert (r1.added, r2.changed, r2.terminated, r2.unchanged) == (3, 1, 1, 1)
    march = await mue_limits(codes_db, ["36415", "99213", "J1100", "99499"], date(2026, 3, 31))
    april = await mue_limits(codes_db, ["36415", "99213", "J1100"], date(2026, 4, 1))
    assert march["36415"].units == 2
    assert march["36415"].adjudication_indicator == 3
    assert march["J1100"].adjudication_indicator == 1
    assert "99499" not in march
    assert april["36415"].units == 3
    assert "J1100" not in april

    bad = write(
        tmp_path / "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
        MUE_HEAD + "36415,two,3 Date of Service Edit: Clinical,x\r\n",
        encoding="latin-1",
    )
    with pytest.raises(CodeFileError, match=r"Eff_07-01-2026.csv:5:2: MUE value is not a whole number"):
        releases_for(SourceKind.MUE, [bad])


# --- Sex/age edits, operator files ----------------------------------------------------------------------


async def test_sex_age_edits(codes_db: AsyncSession, tmp_path: Path) -> None:
    path = write(
        tmp_path / "sex-age-2026.csv",
        "system,code,sex,min_age,max_age\nicd10cm,O80,F,12,55\nicd10cm,N40.0,M,,\ncpt,99381,,0,0\n",
    )
    await load_release(
        codes_db,
        releases_for(SourceKind.SEX_AGE, [path], effective_from=date(2026, 1, 1))[0],
        as_owner=False,
    )
    edits = await sex_age_edits(
        codes_db,
        [("icd10cm", "O80"), ("icd10cm", "N40.0"), ("cpt", "99381"), ("icd10cm", "E11.9")],
        date(2026, 6, 1),
    )
    by_code = {e.code: e for e in edits}
    assert set(by_code) == {"O80", "N400", "99381"}
    assert by_code["O80"].sex is Sex.FEMALE
    assert by_code["O80"].conflict(sex="male", age_years=30) == "O80 applies to female patients only"
    assert by_code["O80"].conflict(sex="female", age_years=60) == "O80 applies up to age 55"
    assert by_code["99381"].conflict(sex=None, age_years=2) == "99381 applies up to age 0"
    assert by_code["N400"].conflict(sex="male", age_years=70) is None

    bad = write(tmp_path / "sex-age-bad.csv", "system,code,sex,min_age,max_age\nicd10cm,O80,X,12,55\n")
    with pytest.raises(CodeFileError, match=r"sex-age-bad.csv:2:3: sex is not F, M or empty"):
        sex_age.from_file(bad, label="x", effective_from=date(2026, 1, 1))


async def test_pos_rarc_carc(codes_db: AsyncSession, tmp_path: Path) -> None:
    for release in releases_for(SourceKind.POS, []) + releases_for(SourceKind.RARC, []):
        await load_release(codes_db, release, as_owner=False)
    carc = write(
        tmp_path / "carc.csv", 'code,description\n45,"Charge exceeds fee schedule (operator wording)"\n'
    )
    await load_release(
        codes_db, releases_for(SourceKind.CARC, [carc], effective_from=date(2024, 1, 1))[0], as_owner=False
    )
    checks = await check_codes(
        codes_db, [("pos", "11"), ("pos", "98"), ("rarc", "N130"), ("carc", "45")], date(2026, 6, 1)
    )
    assert checks[0].description == "Office"
    assert checks[1].reason == "unknown code"
    assert checks[2].valid
    assert checks[2].description is None  # pyx12 ships bare values; descriptions come from the operator
    assert checks[3].description == "Charge exceeds fee schedule (operator wording)"

    rarc = write(
        tmp_path / "rarc.csv", 'code,description\nN130,"Consult plan benefit documents (operator wording)"\n'
    )
    report = await load_release(
        codes_db, releases_for(SourceKind.RARC, [rarc], effective_from=date(2026, 1, 1))[0], as_owner=False
    )
    assert (report.changed, report.added) == (1, 0)
    assert (await check_codes(codes_db, [("rarc", "N130")], date(2026, 6, 1)))[0].description == (
        "Consult plan benefit documents (operator wording)"
    )


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("code,description\n99213,Office visit, established\n", "cpt.csv:2:3: 3 fields, the header has 2"),
        ("code,description\n9921,Too short\n", "cpt.csv:2:1: not a cpt code: '9921'"),
        ("code,description\n99213,Visit\n99213,Again\n", "cpt.csv:3:1: code 99213 listed twice"),
        (
            "code,description,effective_from\n99213,Visit,2026-02-30\n",
            "cpt.csv:2:3: effective_from is not a date",
        ),
        ("cpt,description\n99213,Visit\n", "cpt.csv:1:1: the header row names no 'code' column"),
    ],
)
def test_operator_file_errors_name_line_and_column(tmp_path: Path, content: str, where: str) -> None:
    path = write(tmp_path / "cpt.csv", content)
    with pytest.raises(CodeFileError) as caught:
        operator.from_operator_file(path, CodeSet.CPT, label="x", effective_from=date(2026, 1, 1))
    assert str(caught.value).startswith(where)


def test_icd_order_file_errors(tmp_path: Path) -> None:
    good = (
        "00001 E119    1 " + "Type 2 diabetes mellitus without complications".ljust(60) + " Type 2 diabetes\n"
    )
    path = write(
        tmp_path / "icd10cm_order_2027.txt", good + good.replace(" 1 ", " 2 ", 1).replace("E119", "E118")
    )
    assert icd10cm.guess_window(path) == ("FY2027", date(2026, 10, 1), date(2027, 9, 30))
    with pytest.raises(CodeFileError, match=r"icd10cm_order_2027.txt:2:15: billable flag is neither 0 nor 1"):
        releases_for(SourceKind.ICD10CM, [path])


def test_loads_that_need_a_date_say_so(tmp_path: Path) -> None:
    from rcm.codes.sources import SourceError

    path = write(tmp_path / "cpt.csv", "code,description\n99213,Visit\n")
    with pytest.raises(SourceError, match="--effective-from"):
        releases_for(SourceKind.CPT, [path])
    with pytest.raises(SourceError, match="needs the operator's file"):
        releases_for(SourceKind.CARC, [])
    assert mue.guess_effective(Path("MCR_MUE_PractitionerServices_Eff_13-01-2026.csv")) is None
