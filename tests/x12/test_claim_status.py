"""277CA and 277: what we write passes pyx12 (277CA) or our guide rules (277, no pyx12 map) and reads back;
the public files read into typed results."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rcm.x12 import Party, transactions
from rcm.x12.claim_ack import (
    ClaimAcknowledgment,
    PatientAck,
    ProviderAck,
    ReceiverAck,
    SourceAck,
    Totals,
    claim_acknowledgment_interchange,
)
from rcm.x12.claim_ack import read as read_277ca
from rcm.x12.claim_status import (
    ClaimStatusResponse,
    Dependent,
    StatusProvider,
    StatusReceiver,
    StatusSource,
    Subscriber,
    claim_status_interchange,
)
from rcm.x12.claim_status import read as read_277
from rcm.x12.document import validate
from rcm.x12.remittance_model import Person, Reference
from rcm.x12.statuses import ClaimStatus, LineStatus, Status, StatusCode
from tests.x12.pyx12_check import pyx12_errors
from tests.x12.remittances import NPI, WHEN

PUBLIC = Path(__file__).parent / "fixtures" / "public"
DAY = date(2026, 12, 1)
SERVED = date(2026, 11, 2)
PAYER = Person(entity_type="2", last="SANDBOX HEALTH PLAN", identifier_qualifier="PI", identifier="99999")
SUBMITTER = Person(entity_type="2", last="MAPLE BILLING", identifier_qualifier="46", identifier="SUBMIT01")
BILLING = Person(entity_type="2", last="MAPLE CLINIC", identifier_qualifier="XX", identifier=NPI)


def _accepted(charge: int) -> Status:
    return Status(codes=(StatusCode(category="A2", code="20"),), effective=DAY, action="WQ", charge=charge)


def _rejected(charge: int) -> Status:
    return Status(
        codes=(StatusCode(category="A7", code="562", entity="85"), StatusCode(category="A7", code="21")),
        effective=DAY,
        action="U",
        charge=charge,
        message="BILLING PROVIDER NPI NOT ON FILE",
    )


def _claim(number: int, status: Status) -> ClaimStatus:
    accepted = status.action == "WQ"
    return ClaimStatus(
        tracking_number=f"PCN{number:06d}",
        statuses=(status,),
        payer_claim_control_number=f"ICN{number:08d}" if accepted else None,
        references=(Reference("D9", f"CH{number}"), Reference("BLT", "131")) if accepted else (),
        service_start=SERVED,
        service_end=SERVED if number % 2 else date(2026, 11, 5),
    )


def _patient(number: int, *claims: ClaimStatus) -> PatientAck:
    patient = Person(last="DOE", first="JANE", identifier_qualifier="MI", identifier=f"M{number:07d}")
    return PatientAck(patient=patient, claims=claims)


def _acknowledgment(*patients: PatientAck) -> ClaimAcknowledgment:
    claims = [claim for patient in patients for claim in patient.claims]
    accepted = [c for c in claims if c.statuses[0].action == "WQ"]
    rejected = [c for c in claims if c.statuses[0].action == "U"]

    def total(found: list[ClaimStatus]) -> int:
        return sum(c.statuses[0].charge or 0 for c in found)

    totals = Totals(
        accepted_count=len(accepted),
        rejected_count=len(rejected),
        accepted_amount=total(accepted),
        rejected_amount=total(rejected),
    )
    batch = Status(
        codes=(StatusCode(category="A1", code="19"),), effective=DAY, action="WQ", charge=total(claims)
    )
    provider = ProviderAck(
        provider=BILLING,
        trace="0",
        statuses=(Status(codes=(StatusCode(category="A1", code="19"),), action="WQ", charge=total(claims)),),
        reference=Reference("TJ", "123456789"),
        totals=Totals(
            accepted_count=len(accepted),
            rejected_count=len(rejected),
            accepted_amount=total(accepted),
            rejected_amount=total(rejected),
        ),
        patients=patients,
    )
    receiver = ReceiverAck(
        receiver=SUBMITTER, trace="BATCH0001", statuses=(batch,), totals=totals, providers=(provider,)
    )
    source = SourceAck(source=PAYER, trace="RCPT0001", received=DAY, processed=DAY, receivers=(receiver,))
    return ClaimAcknowledgment(reference="ACK0001", created=DAY, time="0930", sources=(source,))


ACKS = {
    "all accepted": _acknowledgment(
        _patient(1, _claim(1, _accepted(15000))), _patient(2, _claim(2, _accepted(800)))
    ),
    "all rejected": _acknowledgment(_patient(1, _claim(1, _rejected(15000)))),
    "mixed, several claims of a patient": _acknowledgment(
        _patient(1, _claim(1, _accepted(15000)), _claim(2, _rejected(2550))),
        _patient(2, _claim(3, _rejected(100))),
        _patient(3, _claim(4, _accepted(99999))),
    ),
}


def _write_277ca(*acknowledgments: ClaimAcknowledgment) -> str:
    return claim_acknowledgment_interchange(
        acknowledgments,
        sender=Party("ZZ", "SANDBOXPAYER"),
        receiver=Party("ZZ", "MAPLECLINIC"),
        control_number=9,
        when=WHEN,
        usage="T",
    )


@pytest.mark.parametrize("shape", ACKS)
def test_written_277ca_passes_pyx12_and_reads_back(shape: str, tmp_path: Path) -> None:
    acknowledgment = ACKS[shape]
    content = _write_277ca(acknowledgment)
    assert pyx12_errors(content, tmp_path) == []
    assert read_277ca(next(transactions(content))) == acknowledgment
    assert validate(content) == []


def test_277ca_verdict_per_claim() -> None:
    acknowledgment = read_277ca(next(transactions(_write_277ca(ACKS["mixed, several claims of a patient"]))))
    assert [
        (c.tracking_number, c.accepted, c.payer_claim_control_number) for c in acknowledgment.all_claims()
    ] == [
        ("PCN000001", True, "ICN00000001"),
        ("PCN000002", False, None),
        ("PCN000003", False, None),
        ("PCN000004", True, "ICN00000004"),
    ]
    rejected = next(c for c in acknowledgment.all_claims() if not c.accepted)
    assert rejected.statuses[0].codes[0] == StatusCode(category="A7", code="562", entity="85")
    assert rejected.statuses[0].message == "BILLING PROVIDER NPI NOT ON FILE"
    assert rejected.statuses[0].charge == 2550


@pytest.mark.parametrize(
    ("name", "accepted", "charge"),
    [
        ("x12-parser__x12_277CA_accepted.txt", True, 12500),
        ("x12-parser__x12_277CA_rejected.txt", False, 19914),
    ],
)
def test_public_277ca_read(name: str, accepted: bool, charge: int) -> None:
    content = (PUBLIC / "277CA" / name).read_bytes()
    acknowledgment = read_277ca(next(transactions(content)))
    claims = list(acknowledgment.all_claims())
    assert len(claims) == 1
    assert claims[0].accepted is accepted
    assert claims[0].statuses[0].charge == charge
    # These files leave out the billing provider's STC, which X214 requires: a finding, not a crash.
    assert [f.message for f in validate(content)] == ["the billing provider level has no STC"]


# -- 277 (X212): no pyx12 map; our guide rules and round trips
def _line(number: int, category: str) -> LineStatus:
    return LineStatus(
        qualifier="HC",
        code="99213",
        modifiers=("25",),
        charge=15000,
        paid=12000 if category == "F1" else 0,
        units="1",
        statuses=(Status(codes=(StatusCode(category=category, code="65"),), effective=DAY),),
        control_number=f"L{number}",
        service_start=SERVED,
        service_end=SERVED,
    )


def _status_claim(number: int, category: str, *, lines: bool = True) -> ClaimStatus:
    finalized = category == "F1"
    return ClaimStatus(
        tracking_number=f"TRACE{number}",
        statuses=(
            Status(
                codes=(StatusCode(category=category, code="65"),),
                effective=DAY,
                charge=15000,
                paid=12000 if finalized else None,
                adjudicated=date(2026, 11, 20) if finalized else None,
                check_date=date(2026, 11, 22) if finalized else None,
                check_number="EFT0001" if finalized else None,
            ),
        ),
        payer_claim_control_number=f"ICN{number}",
        references=(Reference("EJ", f"PCN{number:06d}"),),
        service_start=SERVED,
        service_end=date(2026, 11, 3),
        lines=(_line(number, category),) if lines else (),
    )


RESPONSE = ClaimStatusResponse(
    reference="INQ0001",
    created=DAY,
    time="0930",
    sources=(
        StatusSource(
            payer=PAYER,
            receivers=(
                StatusReceiver(
                    receiver=SUBMITTER,
                    providers=(
                        StatusProvider(
                            provider=Person(
                                entity_type="2",
                                last="MAPLE CLINIC",
                                identifier_qualifier="XX",
                                identifier=NPI,
                            ),
                            subscribers=(
                                Subscriber(
                                    subscriber=Person(
                                        last="DOE", first="JOHN", identifier_qualifier="MI", identifier="M1"
                                    ),
                                    claims=(_status_claim(1, "F1"), _status_claim(2, "P1", lines=False)),
                                    dependents=(
                                        Dependent(
                                            patient=Person(last="DOE", first="JANE"),
                                            claims=(_status_claim(3, "F2"),),
                                        ),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    ),
)


def _write_277(*responses: ClaimStatusResponse) -> str:
    return claim_status_interchange(
        responses,
        sender=Party("ZZ", "SANDBOXPAYER"),
        receiver=Party("ZZ", "MAPLECLINIC"),
        control_number=11,
        when=WHEN,
        usage="T",
    )


def test_written_277_follows_the_guide_and_reads_back() -> None:
    content = _write_277(RESPONSE)
    assert validate(content) == []
    transaction = next(transactions(content))
    assert transaction.kind == "277"
    assert read_277(transaction) == RESPONSE
    assert "HL*1**20*1~NM1*PR*2*SANDBOX HEALTH PLAN*****PI*99999~HL*2*1*21*1~" in content
    assert "HL*5*4*23~NM1*QC*1*DOE*JANE~TRN*2*TRACE3~STC*F2:65*20261201**150~" in content
    assert "STC*F1:65*20261201**150*120*20261120**20261122*EFT0001~" in content
    assert "SVC*HC:99213:25*150*120****1~" in content


def test_277_guide_rules_are_findings() -> None:
    content = _write_277(RESPONSE).replace("STC*F2:65*20261201**150~", "STC*F2:65***150~")
    assert [(f.segment_id, f.element, f.message) for f in validate(content)] == [
        ("STC", 2, "the claim status has no status date")
    ]


def test_public_277_reads_per_claim() -> None:
    content = (PUBLIC / "277" / "x12-parser__x12_277_x212.txt").read_bytes()
    response = read_277(next(transactions(content)))
    claims = list(response.all_claims())
    assert len(claims) == 8
    assert [c.tracking_number for c in claims] == [f"000000{n}" for n in range(1, 9)]
    assert {(s.codes[0].category, s.codes[0].code) for c in claims for s in c.statuses} == {("A1", "704")}
    assert [c.statuses[0].charge for c in claims] == [60000, 40000, 10000, 18000, 10000, 45000, 10000, 10000]
    assert claims[0].references == (Reference("EJ", "12345"), Reference("D9", "12345"))
    # The file's IEA02 is not its ISA13: the envelope check refuses it once the sets are read.
    assert [str(f) for f in validate(content)] == [
        "element IEA02 at position 111: control number does not match ISA13"
    ]
