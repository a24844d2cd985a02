"""837P and 837I with the other payers' loops (2320/2330A/2330B and 2430): what a secondary or tertiary claim
says of the payers before it passes pyx12 with zero errors and reads back; what a payer rejects is refused."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from rcm.x12 import X12Error
from rcm.x12.claims import ClaimBatch, LineAdjudication, OtherSubscriber, Subscriber, SubscriberLoop
from rcm.x12.claims837 import write_837
from rcm.x12.claims837_read import read_batch
from rcm.x12.document import validate
from rcm.x12.model import PersonName
from rcm.x12.remittance_model import Adjustment
from tests.x12 import claimdata as data
from tests.x12.pyx12check import pyx12_errors

PAID_ON = date(2026, 11, 20)
SECONDARY = msgspec.structs.replace(data.SUBSCRIBER, member_id="SEC998877", responsibility="S")
TERTIARY = msgspec.structs.replace(data.SUBSCRIBER, member_id="TER1", responsibility="T")


def _primary(paid: int, adjustments: tuple[Adjustment, ...] = (), **fields: object) -> OtherSubscriber:
    values: dict[str, object] = {
        "payer": data.MEDICARE,
        "member_id": "1EG4TE5MK73",
        "name": PersonName(last="DOE", first="JOHN"),
        "claim_filing_indicator": "MB",
        "paid": paid,
        "adjustments": adjustments,
        "adjudicated": PAID_ON,
        "payer_claim_control_number": "ICN0001",
        **fields,
    }
    return OtherSubscriber(**values)  # type: ignore[arg-type]


def _adjudicated(
    paid: int, *adjustments: Adjustment, payer: str = data.MEDICARE.payer_id
) -> LineAdjudication:
    return LineAdjudication(payer_id=payer, paid=paid, adjustments=adjustments, adjudicated=PAID_ON)


CO45 = Adjustment(group="CO", reason="45", amount=2550)
PR2 = Adjustment(group="PR", reason="2", amount=2000)
PR1 = Adjustment(group="PR", reason="1", amount=4500)
CO97 = Adjustment(group="CO", reason="97", amount=4500)


def _batch(subscriber: Subscriber, claim: object, patient: object = None) -> ClaimBatch:
    loop = SubscriberLoop(payer=data.AETNA, subscriber=subscriber, claims=(claim,), patient=patient)  # type: ignore[arg-type]
    return data.batch(data.billing_provider((loop,)))


# A secondary claim: the primary allowed 100.00 of 125.50 (CO-45), paid 80.00, 20.00 coinsurance (PR-2).
ONE_LINE = data.claim(
    "SEC1",
    lines=(data.line(12550, adjudications=(_adjudicated(8000, CO45, PR2),)),),
    other_subscribers=(_primary(8000, remaining_patient_liability=2000),),
)
# Several lines, the second denied by the primary (CO-97, bundled), a claim-level deductible (PR-1).
SEVERAL_LINES = data.claim(
    "SEC2",
    lines=(
        data.line(12550, adjudications=(_adjudicated(8000, CO45, PR2),)),
        data.line(4500, "36415", adjudications=(_adjudicated(0, CO97),), control_number="2"),
        data.line(9000, "81002", modifiers=("QW",), adjudications=(_adjudicated(9000),)),
    ),
    other_subscribers=(_primary(17000, (PR1,), remaining_patient_liability=6500),),
)
# A tertiary claim: the primary's and the secondary's adjudication, the patient a dependent.
TERTIARY_CLAIM = data.claim(
    "TER1",
    lines=(
        data.line(
            12550,
            adjudications=(
                _adjudicated(8000, CO45, PR2),
                _adjudicated(1500, Adjustment(group="PR", reason="2", amount=500), payer=data.AETNA.payer_id),
            ),
        ),
    ),
    other_subscribers=(
        _primary(8000, relationship="19", name=PersonName(last="DOE", first="JANE"), address=data.HOME),
        OtherSubscriber(
            payer=data.AETNA,
            member_id="SEC998877",
            name=PersonName(last="DOE", first="JOHN"),
            responsibility="S",
            relationship="19",
            group_number="GRP100",
            paid=1500,
            adjudicated=PAID_ON,
        ),
    ),
)

MATRIX: dict[str, ClaimBatch] = {
    "secondary, patient is subscriber": _batch(SECONDARY, ONE_LINE),
    "secondary, dependent patient": _batch(SECONDARY, ONE_LINE, patient=data.CHILD),
    "secondary, several lines, one denied by the primary": _batch(SECONDARY, SEVERAL_LINES),
    "secondary without line detail": _batch(
        SECONDARY,
        data.claim(
            "SEC3", other_subscribers=(_primary(0, (Adjustment(group="PR", reason="1", amount=12550),)),)
        ),
    ),
    "tertiary, dependent patient": _batch(TERTIARY, TERTIARY_CLAIM, patient=data.CHILD),
    "837I secondary": _batch(
        SECONDARY,
        msgspec.structs.replace(
            data.institutional_claim(),
            lines=tuple(
                msgspec.structs.replace(
                    line,
                    adjudications=(
                        _adjudicated(
                            line.charge // 2,
                            Adjustment(group="CO", reason="45", amount=line.charge - line.charge // 2),
                        ),
                    ),
                )
                for line in data.institutional_claim().lines
            ),
            other_subscribers=(_primary(47500, claim_filing_indicator="MA"),),
        ),
    ),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_other_payer_loops_pass_pyx12_with_zero_errors(name: str) -> None:
    content = write_837(MATRIX[name])
    assert pyx12_errors(content) == []
    assert validate(content) == []


@pytest.mark.parametrize("name", list(MATRIX))
def test_other_payer_loops_read_back(name: str) -> None:
    batch = MATRIX[name]
    back = read_batch(write_837(batch))
    assert write_837(back) == write_837(batch)
    # The writer drops the dot of ICD-10 codes; the other payers' loops come back as given.
    claim = batch.billing_providers[0].subscribers[0].claims[0]
    read = back.billing_providers[0].subscribers[0].claims[0]
    assert read.other_subscribers == claim.other_subscribers
    assert [line.adjudications for line in read.lines] == [line.adjudications for line in claim.lines]
    assert (
        back.billing_providers[0].subscribers[0].subscriber
        == batch.billing_providers[0].subscribers[0].subscriber
    )


def test_secondary_claim_segments_carry_the_primary_adjudication() -> None:
    content = write_837(MATRIX["secondary, several lines, one denied by the primary"])
    segments = content.split("~")
    assert "SBR*S*18*GRP100******CI" in segments  # the claim's own payer is secondary
    assert "SBR*P*18*******MB" in segments  # 2320: Medicare was primary
    assert "CAS*PR*1*45" in segments
    assert "AMT*D*170" in segments
    assert "AMT*EAF*65" in segments
    assert f"NM1*PR*2*MEDICARE PART B*****PI*{data.MEDICARE.payer_id}" in segments
    assert "DTP*573*D8*20261120" in segments
    assert "REF*F8*ICN0001" in segments
    assert "SVD*00952*80*HC:99213**1" in segments
    assert "CAS*CO*45*25.5**PR*2*20" not in segments  # one CAS per group
    assert "SVD*00952*0*HC:36415**1" in segments
    assert "CAS*CO*97*45" in segments
    # 2320 comes after the claim's provider loops and before the first line.
    assert segments.index("SBR*P*18*******MB") < segments.index("LX*1")


@pytest.mark.parametrize(
    ("claim", "segment"),
    [
        (msgspec.structs.replace(ONE_LINE, other_subscribers=(_primary(7000),)), "AMT"),
        (
            msgspec.structs.replace(
                ONE_LINE, lines=(data.line(12550, adjudications=(_adjudicated(8000, payer="X"),)),)
            ),
            "SVD",
        ),
        (
            msgspec.structs.replace(
                ONE_LINE,
                other_subscribers=(
                    _primary(
                        8000,
                        tuple(Adjustment(group=g, reason="45", amount=1) for g in ("CO", "PR") * 3),
                    ),
                ),
            ),
            "CAS",
        ),
    ],
)
def test_writer_refuses_other_payer_loops_a_payer_rejects(claim: object, segment: str) -> None:
    with pytest.raises(X12Error) as raised:
        write_837(_batch(SECONDARY, claim))
    assert raised.value.segment_id == segment
