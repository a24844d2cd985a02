"""The state an 835 claim (CLP) puts our claim in, and the reason its event records."""

from __future__ import annotations

import pytest

from rcm.claims.adjudication import adjudicated, reason
from rcm.claims.states import ClaimState
from rcm.x12.remittance_model import Adjustment, Claim, Person, ServiceLine


def _clp(
    status: str, charge: int, paid: int, *adjustments: Adjustment, line: tuple[Adjustment, ...] = ()
) -> Claim:
    return Claim(
        patient_control_number="PCN1",
        status=status,
        charge=charge,
        paid=paid,
        filing_indicator="CI",
        payer_claim_control_number="ICN1",
        patient=Person(last="DOE"),
        adjustments=adjustments,
        lines=(ServiceLine(qualifier="HC", code="99213", charge=charge, paid=paid, adjustments=line),),
    )


@pytest.mark.parametrize(
    ("status", "charge", "paid", "expected"),
    [
        ("1", 10000, 10000, ClaimState.PAID),
        ("19", 10000, 12000, ClaimState.PAID),  # paid more than charged (interest elsewhere): paid
        ("2", 10000, 4000, ClaimState.PARTIALLY_PAID),
        ("1", 10000, 0, ClaimState.DENIED),
        ("4", 10000, 0, ClaimState.DENIED),
        ("22", 10000, -10000, None),  # a reversal moves nothing: the corrected CLP beside it does
        ("23", 10000, 0, None),  # not our claim
        ("25", 10000, 0, None),  # predetermination only
    ],
)
def test_clp02_and_the_amounts_decide_the_state(
    status: str, charge: int, paid: int, expected: ClaimState | None
) -> None:
    assert adjudicated(_clp(status, charge, paid)) is expected


def test_the_reason_names_the_status_and_each_group_reason_once() -> None:
    clp = _clp(
        "1",
        10000,
        6000,
        Adjustment(group="PR", reason="2", amount=1000),
        line=(Adjustment(group="CO", reason="45", amount=3000), Adjustment(group="PR", reason="2", amount=0)),
    )
    assert reason(clp) == "835 CLP02 1; PR-2; CO-45"
