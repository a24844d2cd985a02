"""What an 835 denies and how each denial is classified: CARC table, RARC refinement, routine reductions
and patient responsibility left out, the appeal deadline from the payer's days."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from rcm.claims.models import Claim
from rcm.denials.categories import CARC_CATEGORIES, DenialCategory, classify, is_denial
from rcm.denials.recording import DEFAULT_APPEAL_DAYS, appeal_deadline, denials_of, due_at
from rcm.x12.remittance_model import Adjustment, Person, ServiceLine
from rcm.x12.remittance_model import Claim as Paid

C = DenialCategory


@pytest.mark.parametrize(
    ("carc", "rarcs", "expected"),
    [
        ("27", [], C.ELIGIBILITY),
        ("197", [], C.AUTHORIZATION),
        ("11", [], C.CODING),
        ("50", [], C.MEDICAL_NECESSITY),
        ("29", [], C.TIMELY_FILING),
        ("18", [], C.DUPLICATE),
        ("97", [], C.BUNDLING),
        ("16", [], C.MISSING_INFORMATION),
        ("16", ["M51"], C.CODING),  # a generic reason refined by its remark
        ("96", ["N130"], C.ELIGIBILITY),
        ("A1", ["N54"], C.AUTHORIZATION),  # an unmapped reason refined
        ("50", ["M51"], C.MEDICAL_NECESSITY),  # a specific reason is not overridden
        ("96", [], C.OTHER),
        (None, [], C.OTHER),
        ("ZZ9", ["XX1"], C.OTHER),
    ],
)
def test_carc_and_rarc_decide_the_category(
    carc: str | None, rarcs: list[str], expected: DenialCategory
) -> None:
    assert classify(carc, rarcs) is expected


def test_every_category_but_other_has_reason_codes() -> None:
    assert set(CARC_CATEGORIES.values()) == set(DenialCategory) - {C.OTHER}


def test_routine_reductions_and_patient_responsibility_are_no_denials() -> None:
    assert is_denial("CO", "50")
    assert is_denial("PI", "197")
    assert is_denial("OA", "18")
    assert not is_denial("CO", "45")  # over the fee schedule: priced, not denied
    assert not is_denial("CO", "253")  # sequestration
    assert not is_denial("PR", "2")  # coinsurance: the patient owes it
    assert not is_denial("PR", "204")


def _claim() -> Claim:
    return Claim(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        payer_id="DEMO-MCR",
        patient_control_number="PCN1",
        total_charge_cents=30000,
    )


def _paid(
    charge: int, paid: int, *lines: ServiceLine, adjustments: tuple[Adjustment, ...] = (), **kw: object
) -> Paid:
    return Paid(
        patient_control_number="PCN1",
        status=str(kw.pop("status", "1")),
        charge=charge,
        paid=paid,
        filing_indicator="MB",
        payer_claim_control_number="ICN1",
        patient=Person(last="DOE"),
        adjustments=adjustments,
        lines=lines,
        **kw,  # type: ignore[arg-type]
    )


def _line(
    code: str, charge: int, paid: int, *adjustments: Adjustment, remarks: tuple[str, ...] = ()
) -> ServiceLine:
    return ServiceLine(
        qualifier="HC", code=code, charge=charge, paid=paid, adjustments=adjustments, remarks=remarks
    )


WHEN = date(2026, 11, 2)
DEADLINE = date(2027, 3, 2)


def test_lines_paid_nothing_and_partly_denied_are_line_denials() -> None:
    paid = _paid(
        30000,
        8000,
        _line("99213", 10000, 8000, Adjustment(group="CO", reason="45", amount=2000)),  # priced only
        _line("93000", 12000, 0, Adjustment(group="CO", reason="97", amount=12000), remarks=("N20",)),
        _line("36415", 8000, 0, Adjustment(group="CO", reason="16", amount=8000), remarks=("M51",)),
    )
    rows = denials_of(_claim(), paid, remitted_on=WHEN, deadline=DEADLINE, file_id=None)
    assert [(r.line_number, r.procedure_code, r.carc, r.category, r.denied_cents) for r in rows] == [
        (2, "93000", "97", C.BUNDLING, 12000),
        (3, "36415", "16", C.CODING, 8000),
    ]
    assert rows[1].adjustments == ["CO-16"]
    assert rows[1].rarcs == ["M51"]
    assert {r.appeal_deadline for r in rows} == {DEADLINE}


def test_a_claim_denied_at_claim_level_or_without_any_reason() -> None:
    claim_level = _paid(
        30000,
        0,
        adjustments=(
            Adjustment(group="CO", reason="29", amount=29000),
            Adjustment(group="PR", reason="1", amount=1000),
        ),
        status="4",
    )
    (row,) = denials_of(_claim(), claim_level, remitted_on=WHEN, deadline=DEADLINE, file_id=None)
    assert (row.line_number, row.group_code, row.carc, row.category, row.denied_cents) == (
        None,
        "CO",
        "29",
        C.TIMELY_FILING,
        29000,
    )
    bare = _paid(30000, 0, status="4")
    (row,) = denials_of(_claim(), bare, remitted_on=WHEN, deadline=DEADLINE, file_id=None)
    assert (row.carc, row.category, row.denied_cents, row.adjustments) == (None, C.OTHER, 30000, [])


def test_the_main_reason_is_the_one_that_took_the_most() -> None:
    paid = _paid(
        10000,
        0,
        _line(
            "99214",
            10000,
            0,
            Adjustment(group="CO", reason="16", amount=1000),
            Adjustment(group="CO", reason="50", amount=9000),
        ),
    )
    (row,) = denials_of(_claim(), paid, remitted_on=WHEN, deadline=DEADLINE, file_id=None)
    assert (row.carc, row.category, row.adjustments) == ("50", C.MEDICAL_NECESSITY, ["CO-16", "CO-50"])


def test_the_appeal_deadline_counts_the_payers_days_from_the_remittance() -> None:
    assert appeal_deadline(WHEN, 120) == date(2027, 3, 2)
    assert appeal_deadline(WHEN, None) == date(2026, 11, 2).fromordinal(
        WHEN.toordinal() + DEFAULT_APPEAL_DAYS
    )
    assert due_at(date(2027, 3, 2)).isoformat() == "2027-03-02T00:00:00+00:00"
