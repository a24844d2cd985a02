"""The 271 read into stored rows: coinsurance exactly in basis points, deductible and what remains of it,
networks kept apart, plan dates, AAA at the source level."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rcm.eligibility.models import CheckStatus, Network
from rcm.eligibility.reading import basis_points, read_answer
from rcm.x12 import X12Error
from rcm.x12.benefits import Answer, Benefit, EligibilityResponse, PlanDate, Rejection, write_271
from rcm.x12.eligibility import Member, Source
from rcm.x12.model import Envelope, PersonName, Provider


def _271(answer: Answer | None, *, rejections: tuple[Rejection, ...] = ()) -> bytes:
    response = EligibilityResponse(
        envelope=Envelope(
            sender_id="PAYER",
            receiver_id="PRACTICE",
            interchange_control_number=5,
            group_control_number=5,
            created=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        ),
        reference="R1",
        trace_originator="9000000005",
        source=Source(name="DEMO PAYER", payer_id="DEMO-MCR"),
        receiver=Provider(npi="1003000126", last="Test Group Practice", organization=True),
        answers=(answer,) if answer else (),
        rejections=rejections,
    )
    return write_271(response).encode()


def _answer(*benefits: Benefit, dates: tuple[PlanDate, ...] = ()) -> Answer:
    return Answer(
        trace_number="T1",
        subscriber=Member(name=PersonName(last="FAKE", first="TEST"), member_id="M1"),
        benefits=benefits,
        dates=dates,
    )


def test_benefits_per_service_type_and_network_in_cents_and_basis_points() -> None:
    data = _271(
        _answer(
            Benefit(code="1", service_types=("30",)),
            Benefit(code="A", service_types=("98", "UC"), percent="0.15", in_network="Y"),
            Benefit(code="A", service_types=("98",), percent="0.4", in_network="N"),
            Benefit(code="C", service_types=("30",), time_period="23", amount=200000, in_network="Y"),
            Benefit(code="C", service_types=("30",), time_period="29", amount=45050, in_network="Y"),
            Benefit(code="B", service_types=("98",), amount=2000),
            dates=(PlanDate(qualifier="291", start=date(2026, 1, 1), end=date(2026, 12, 31)),),
        )
    )
    result = read_answer(data)
    assert result.status is CheckStatus.ACTIVE
    assert (result.plan_begin, result.plan_end) == (date(2026, 1, 1), date(2026, 12, 31))
    rows = {(r.service_type, r.network): r for r in result.benefits}
    assert rows[("98", Network.IN)].coinsurance_basis_points == 1500
    assert rows[("UC", Network.IN)].coinsurance_basis_points == 1500
    assert rows[("98", Network.OUT)].coinsurance_basis_points == 4000
    assert rows[("30", Network.IN)].deductible_cents == 200000
    assert rows[("30", Network.IN)].deductible_remaining_cents == 45050
    assert rows[("98", Network.UNSPECIFIED)].copay_cents == 2000


def test_a_source_level_rejection_is_refused() -> None:
    result = read_answer(_271(None, rejections=(Rejection(reason="42", follow_up="R"),)))
    assert result.status is CheckStatus.REFUSED
    assert result.reject_reason == "42"
    assert result.reject_text == "Unable to respond at current time"


def test_basis_points_are_exact_or_refused() -> None:
    assert basis_points("0.2", "EB") == 2000
    assert basis_points("1", "EB") == 10000
    assert basis_points(".0525", "EB") == 525
    for bad in ("1.5", "0.00001", "x"):
        with pytest.raises(X12Error):
            basis_points(bad, "EB")
