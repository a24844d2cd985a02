"""999: acknowledgments we write pass pyx12's 5010 validation and read back; public 999s read."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from rcm.x12 import Party, X12Error, transactions
from rcm.x12.acknowledgment import (
    ElementError,
    GroupResponse,
    SegmentError,
    acknowledge,
    acknowledgment_interchange,
    group_response,
    read,
    segment_errors_from,
    set_response,
)
from rcm.x12.document import Finding, validate
from rcm.x12.envelope import GroupHeader
from tests.x12 import remittances as r
from tests.x12.pyx12_check import pyx12_errors
from tests.x12.remittances import WHEN

PUBLIC = Path(__file__).parent / "fixtures" / "public" / "999"
GROUP = GroupHeader(
    functional_id="HC",
    sender="MAPLECLINIC",
    receiver="SANDBOXPAYER",
    date="20261201",
    time="0930",
    control_number="77",
    version="005010X222A1",
)
BAD_NM1 = SegmentError(
    segment_id="NM1",
    position=17,
    loop="2010",
    code="8",
    elements=(ElementError(position=9, reference="67", code="1"),),
)
MISSING_REF = SegmentError(segment_id="REF", position=22, loop="2300", code="3")
COMPONENT = SegmentError(
    segment_id="SV1",
    position=30,
    loop="2400",
    code="8",
    elements=(ElementError(position=1, component=2, reference="234", code="7"),),
)


def _write(*responses: GroupResponse) -> str:
    return acknowledgment_interchange(
        responses,
        sender=Party("ZZ", "SANDBOXPAYER"),
        receiver=Party("ZZ", "MAPLECLINIC"),
        control_number=5,
        when=WHEN,
        usage="T",
    )


SHAPES = {
    "accepted": group_response(GROUP, [set_response("837", "0001", "005010X222A1")]),
    "rejected with segment and element errors": group_response(
        GROUP, [set_response("837", "0001", "005010X222A1", [BAD_NM1, MISSING_REF, COMPONENT])]
    ),
    "partially accepted": group_response(
        GROUP,
        [
            set_response("837", "0001", "005010X222A1"),
            set_response("837", "0002", "005010X222A1", [BAD_NM1]),
            set_response("837", "0003", "005010X222A1"),
        ],
    ),
    "accepted with errors": group_response(
        GROUP, [set_response("837", "0001", "005010X222A1", [MISSING_REF], reject=False)]
    ),
    "all rejected": group_response(
        GROUP,
        [
            set_response("837", "0001", "005010X222A1", [MISSING_REF]),
            set_response("837", "0002", "005010X222A1", [COMPONENT]),
        ],
    ),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_written_999_passes_pyx12_and_reads_back(shape: str, tmp_path: Path) -> None:
    response = SHAPES[shape]
    content = _write(response)
    assert pyx12_errors(content, tmp_path) == []
    assert read(next(transactions(content))) == response
    assert validate(content) == []


def test_verdicts_and_counts() -> None:
    assert [(s, SHAPES[s].status, SHAPES[s].accepted) for s in SHAPES] == [
        ("accepted", "A", 1),
        ("rejected with segment and element errors", "R", 0),
        ("partially accepted", "P", 2),
        ("accepted with errors", "E", 1),
        ("all rejected", "R", 0),
    ]
    content = _write(SHAPES["rejected with segment and element errors"])
    assert "IK3*NM1*17*2010*8~IK4*9*67*1~" in content
    assert "IK4*1:2*234*7~" in content
    assert "IK5*R*5~AK9*R*1*1*0~" in content


def test_several_groups_acknowledged_in_one_interchange(tmp_path: Path) -> None:
    content = _write(SHAPES["accepted"], SHAPES["partially accepted"])
    assert pyx12_errors(content, tmp_path) == []
    assert [read(t) for t in transactions(content)] == [SHAPES["accepted"], SHAPES["partially accepted"]]


def test_findings_become_segment_errors_relative_to_st() -> None:
    findings = [
        Finding("CLM", 120, 2, "not a decimal amount"),
        Finding("NM1", 105, None, "required segment missing"),
        Finding(None, None, None, "envelope"),
    ]
    errors = segment_errors_from(findings, st_position=100)
    assert [(e.segment_id, e.position, e.code, [x.position for x in e.elements]) for e in errors] == [
        ("CLM", 21, "8", [2]),
        ("NM1", 6, "I6", []),
    ]


def test_public_999_read() -> None:
    rejected = read(next(transactions((PUBLIC / "x12-parser__x12_999_rejected.txt").read_bytes())))
    assert (rejected.functional_id, rejected.status, rejected.received, rejected.accepted) == (
        "HC",
        "R",
        1,
        0,
    )
    assert rejected.sets[0].status == "R"
    assert rejected.sets[0].segment_errors == (SegmentError(segment_id="NM", position=17, code="1"),)
    many = [read(t) for t in transactions((PUBLIC / "pyx12__834_lui_id_5010.999.txt").read_bytes())]
    assert len(many) == 4
    assert all(response.sets for response in many)
    for name in ("pyx12__834_ls_le_ls_5010.999.txt", "pyx12__834_lui_id_5010.999.txt"):
        assert validate((PUBLIC / name).read_bytes()) == []


def test_public_999_with_broken_envelope_reads_its_set_then_is_refused() -> None:
    content = (PUBLIC / "x12-parser__x12_999_accepted.txt").read_bytes()
    response = read(next(transactions(content)))
    assert (response.status, response.accepted) == ("A", 1)
    assert [str(f) for f in validate(content)] == [
        "element IEA02 at position 10: control number does not match ISA13"
    ]


def test_acknowledge_checks_each_set_and_the_999_passes_pyx12(tmp_path: Path) -> None:
    good = r.remittance((r.paid_claim(1),))
    unbalanced = msgspec.structs.replace(r.remittance((r.denied_claim(2),)), header=r.header(100))
    received = r.write(good, unbalanced, good)
    responses = acknowledge(received)
    assert len(responses) == 1
    response = responses[0]
    assert (response.functional_id, response.status, response.included, response.accepted) == (
        "HP",
        "P",
        3,
        2,
    )
    assert [s.status for s in response.sets] == ["A", "R", "A"]
    # BPR02 does not balance: reported at BPR (position 2 of the set, ST being 1), element 2.
    assert response.sets[1].segment_errors == (
        SegmentError(
            segment_id="BPR", position=2, code="8", elements=(ElementError(position=2, code="I12"),)
        ),
    )
    content = _write(*responses)
    assert pyx12_errors(content, tmp_path) == []
    assert [read(t) for t in transactions(content)] == responses


def test_acknowledge_rejects_a_set_its_reader_cannot_read_and_goes_on() -> None:
    good = r.write(r.remittance((r.paid_claim(1),)), r.remittance((r.paid_claim(2),)))
    first_clp = good.index("CLP*PCN000001*1*150*")
    broken = good[:first_clp] + good[first_clp:].replace("*150*150*", "*150*1.505*", 1)
    (response,) = acknowledge(broken)
    assert [s.status for s in response.sets] == ["R", "A"]
    error = response.sets[0].segment_errors[0]
    assert (error.segment_id, error.code, error.elements[0].position) == ("CLP", "8", 4)


def test_acknowledge_refuses_a_broken_envelope() -> None:
    content = r.write(r.remittance((r.paid_claim(1),)))
    with pytest.raises(X12Error, match="no SE"):
        acknowledge(content.replace("SE*", "XX*"))
