"""270, 271 and 276: pyx12 has no 5010 maps for them, so they are proved by our guide checks and by write then
read giving back the same request or response (hand-made and random), and the public 271s get a verdict."""

from __future__ import annotations

import random
import string
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcm.x12 import X12Error, transactions
from rcm.x12.benefits import (
    Answer,
    Benefit,
    EligibilityResponse,
    PlanDate,
    Rejection,
    read_271_response,
    write_271,
)
from rcm.x12.claim_status_request import (
    ClaimQuery,
    ClaimStatusRequest,
    Requester,
    StatusInquiry,
    read_276_request,
    write_276,
)
from rcm.x12.document import describe, validate
from rcm.x12.eligibility import EligibilityRequest, Inquiry, Member, Source, read_270_request, write_270
from rcm.x12.model import Envelope, PersonName, Provider, envelope_of
from tests.x12 import claimdata as data
from tests.x12.outcomes import findings_of, read_or_refused

PUBLIC = Path(__file__).parent / "fixtures" / "public" / "271"
ENVELOPE = Envelope(
    sender_id="PROVIDER1",
    receiver_id="PAYER1",
    interchange_control_number=7,
    group_control_number=7,
    created=data.WHEN,
    usage="T",
)
SOURCE = Source(name="AETNA", payer_id="60054")
CLINIC = Provider(npi=data.npi("145678901"), last="SPRINGFIELD FAMILY MEDICINE", organization=True)
JOHN = Member(
    name=PersonName(last="DOE", first="JOHN"), member_id="W123456789", birth_date=date(1980, 1, 2), sex="M"
)
JILL = Member(name=PersonName(last="DOE", first="JILL"), birth_date=date(2012, 5, 6), sex="F")


def _read(content: str, reader):  # type: ignore[no-untyped-def]
    results = [reader(transaction, envelope_of(transaction)) for transaction in transactions(content)]
    assert len(results) == 1
    return results[0]


REQUEST = EligibilityRequest(
    envelope=ENVELOPE,
    reference="ELIG1",
    trace_originator="9876543210",
    source=SOURCE,
    receiver=CLINIC,
    inquiries=(
        Inquiry(trace_number="T1", subscriber=JOHN, service_types=("30", "98"), service_date=data.DAY),
        Inquiry(trace_number="T2", subscriber=JOHN, dependent=JILL),
    ),
)
RESPONSE = EligibilityResponse(
    envelope=ENVELOPE,
    reference="ELIG1",
    trace_originator="9876543210",
    source=SOURCE,
    receiver=CLINIC,
    answers=(
        Answer(
            trace_number="T1",
            subscriber=JOHN,
            group_number="GRP100",
            dates=(
                PlanDate(qualifier="346", start=date(2026, 1, 1), end=date(2026, 1, 1)),
                PlanDate(qualifier="291", start=date(2026, 1, 1), end=date(2026, 12, 31)),
            ),
            benefits=(
                Benefit(code="1", coverage_level="IND", service_types=("30",), plan="GOLD PPO"),
                Benefit(
                    code="B",
                    service_types=("98",),
                    time_period="27",
                    amount=2500,
                    in_network="Y",
                    messages=("PRIMARY CARE VISIT",),
                ),
                Benefit(code="A", service_types=("98",), percent="0.2", in_network="N"),
                Benefit(
                    code="C",
                    coverage_level="IND",
                    service_types=("30",),
                    time_period="23",
                    amount=150000,
                    in_network="Y",
                ),
                Benefit(
                    code="G",
                    coverage_level="FAM",
                    service_types=("30",),
                    time_period="23",
                    amount=600000,
                    in_network="W",
                ),
            ),
        ),
        Answer(trace_number="T2", subscriber=JOHN, dependent=JILL, benefits=(Benefit(code="6"),)),
        Answer(
            trace_number="T3",
            subscriber=Member(name=PersonName(last="ROE"), member_id="X1"),
            rejections=(Rejection(reason="72", follow_up="C"),),
        ),
    ),
)
STATUS = ClaimStatusRequest(
    envelope=ENVELOPE,
    reference="STAT1",
    source=SOURCE,
    requester=Requester(name="RCM BILLING", identifier="SUB01"),
    provider=CLINIC,
    inquiries=(
        StatusInquiry(
            subscriber=JOHN,
            claims=(
                ClaimQuery(
                    trace_number="S1",
                    patient_control_number="PCN001",
                    payer_claim_control_number="ICN77",
                    total_charge=12550,
                    service_start=data.DAY,
                    service_end=data.DAY,
                ),
                ClaimQuery(trace_number="S2", patient_control_number="PCN002"),
            ),
        ),
        StatusInquiry(
            subscriber=Member(name=PersonName(last="DOE", first="JOHN"), member_id="W123456789"),
            dependent=JILL,
            claims=(
                ClaimQuery(
                    trace_number="S3",
                    total_charge=9900,
                    service_start=data.DAY,
                    service_end=data.DAY + timedelta(days=3),
                ),
            ),
        ),
    ),
)


def test_270_writes_the_guide_layout_and_reads_back() -> None:
    content = write_270(REQUEST)
    segments = [s for s in content.split("~") if s]
    assert segments[2].startswith("ST*270*0001*005010X279A1")
    assert {"HL*5*4*23*0", "NM1*03*1*DOE*JILL", "EQ*98"} <= set(segments)
    assert validate(content) == []
    assert _read(content, read_270_request) == REQUEST


def test_271_reads_coverage_benefits_and_rejections() -> None:
    content = write_271(RESPONSE)
    assert validate(content) == []
    back = _read(content, read_271_response)
    assert back == RESPONSE
    first, dependent, refused = back.answers
    assert (first.coverage, dependent.coverage, refused.coverage) == ("active", "inactive", "unknown")
    copay, coinsurance, deductible = first.benefits[1:4]
    assert (copay.amount, coinsurance.percent, deductible.amount, deductible.time_period) == (
        2500,
        "0.2",
        150000,
        "23",
    )
    assert refused.rejections == (Rejection(reason="72", follow_up="C"),)


def test_276_writes_and_reads_back() -> None:
    content = write_276(STATUS)
    segments = set(content.split("~"))
    assert {"AMT*T3*125.5", "REF*1K*ICN77", "DTP*472*RD8*20261102-20261105"} <= segments
    assert validate(content) == []
    assert _read(content, read_276_request) == STATUS


@pytest.mark.parametrize(
    ("content", "find", "replace", "expected"),
    [
        (write_270(REQUEST), "EQ*30~EQ*98~", "REF*EJ*1~REF*EJ*2~", "HL at position 9: the loop has no EQ"),
        (write_270(REQUEST), "HL*3*2*22*0", "HL*3*1*22*0", "HL02 at position 9: HL02 does not name a parent"),
        (
            write_271(RESPONSE),
            "AAA*N**72*C~",
            "REF*EJ*1~",
            "HL at position 30: the patient has neither benefits",
        ),
        (write_271(RESPONSE), f"*XX*{CLINIC.npi}~", "*XX*1234567890~", "NM109 at position 8: NPI fails"),
        (write_276(STATUS), "TRN*1*S3~", "REF*EJ*1~", "HL at position 23: the loop has no TRN"),
        (write_276(STATUS), "AMT*T3*99~", "AMT*T3*9.999~", "AMT02 at position 27: amount has more than two"),
    ],
)
def test_guide_checks(content: str, find: str, replace: str, expected: str) -> None:
    assert find in content
    findings = [str(finding) for finding in validate(content.replace(find, replace, 1))]
    assert any(expected in finding for finding in findings), findings


def test_public_271_files_are_refused_clearly_and_read_once_their_envelope_is_whole() -> None:
    truncated = (PUBLIC / "node-x12__271.edi").read_bytes()
    with pytest.raises(X12Error, match="truncated: the file ends without GE"):
        describe(truncated)
    with pytest.raises(X12Error, match=r"SE01.*declares 22 segments"):
        describe((PUBLIC / "x12-parser__x271.txt").read_bytes())  # a 4010 file whose SE01 is wrong too
    # The node-x12 file only lacks its GE and IEA: with them its content reads.
    repaired = truncated.rstrip() + b"\nGE*1*123456~\nIEA*1*000031033~\n"
    content = describe(repaired)["interchanges"][0]["groups"][0]["transactions"][0]["content"]
    (answer,) = content["answers"]
    assert answer["subscriber"]["member_id"] == "9UY4R33KV83"
    codes = [benefit["code"] for benefit in answer["benefits"]]
    assert codes[:3] == ["1", "1", "1"]
    assert "C" in codes
    assert content["receiver"]["npi"] == "1508165317"


def test_a_4010_271_is_refused_by_its_guide() -> None:
    content = write_271(RESPONSE).replace("005010X279A1", "004010X092A1")
    with pytest.raises(X12Error, match="only the 005010X279A1"):
        describe(content)


# --- random requests and responses

_WORD = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=10)
_ID = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=12)
_DATES = st.dates(date(1920, 1, 1), date(2090, 1, 1))
_NPIS = st.text(alphabet=string.digits, min_size=9, max_size=9).map(data.npi)
_names = st.builds(PersonName, last=_WORD, first=st.none() | _WORD, middle=st.none() | _WORD)


@st.composite
def _members(draw: st.DrawFn, member_id: bool) -> Member:
    born = draw(st.none() | _DATES)
    return Member(
        name=draw(_names),
        member_id=draw(_ID) if member_id else None,
        birth_date=born,
        sex=draw(st.sampled_from("FMU")) if born else None,
    )


_providers = st.builds(Provider, npi=_NPIS, last=_WORD, first=st.none() | _WORD) | st.builds(
    Provider, npi=_NPIS, last=_WORD, organization=st.just(True)
)
_envelopes = st.builds(
    Envelope,
    sender_id=_ID,
    receiver_id=_ID,
    interchange_control_number=st.integers(1, 10**8),
    group_control_number=st.integers(1, 10**6),
    created=st.datetimes(datetime(2000, 1, 1), datetime(2090, 1, 1)).map(
        lambda moment: moment.replace(second=0, microsecond=0)
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> EligibilityRequest:
    inquiries = tuple(
        Inquiry(
            trace_number=draw(_ID),
            subscriber=draw(_members(True)),
            dependent=draw(st.none() | _members(False)),
            service_types=tuple(
                draw(st.lists(st.sampled_from(["30", "98", "47", "UC", "AL"]), min_size=1, max_size=4))
            ),
            service_date=draw(st.none() | _DATES),
        )
        for _ in range(draw(st.integers(1, 4)))
    )
    return EligibilityRequest(
        envelope=draw(_envelopes),
        reference=draw(_ID),
        trace_originator="9" + "1" * 9,
        source=Source(name=draw(_WORD), payer_id=draw(_ID)),
        receiver=draw(_providers),
        inquiries=inquiries,
    )


_benefits = st.builds(
    Benefit,
    code=st.sampled_from(["1", "6", "A", "B", "C", "G"]),
    coverage_level=st.none() | st.sampled_from(["IND", "FAM"]),
    service_types=st.lists(st.sampled_from(["30", "98", "88", "AL"]), max_size=3).map(tuple),
    plan=st.none() | _WORD,
    time_period=st.none() | st.sampled_from(["23", "27", "29"]),
    amount=st.none() | st.integers(0, 10**7),
    percent=st.none() | st.sampled_from(["0.2", "0", "1", "0.35"]),
    in_network=st.none() | st.sampled_from("YNW"),
    messages=st.lists(_WORD, max_size=2).map(tuple),
)


@st.composite
def _plan_dates(draw: st.DrawFn) -> PlanDate:
    start = draw(_DATES)
    return PlanDate(
        qualifier=draw(st.sampled_from(["291", "346", "347", "356", "357"])),
        start=start,
        end=start + timedelta(days=draw(st.integers(0, 400))),
    )


@st.composite
def responses(draw: st.DrawFn) -> EligibilityResponse:
    answers = tuple(
        Answer(
            trace_number=draw(_ID),
            subscriber=draw(_members(True)),
            dependent=draw(st.none() | _members(False)),
            group_number=draw(st.none() | _ID),
            dates=tuple(draw(st.lists(_plan_dates(), max_size=3))),
            benefits=tuple(draw(st.lists(_benefits, max_size=5))),
            rejections=tuple(
                draw(
                    st.lists(
                        st.builds(
                            Rejection,
                            reason=st.sampled_from(["72", "75", "42"]),
                            follow_up=st.none() | st.just("C"),
                        ),
                        max_size=2,
                    )
                )
            ),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    return EligibilityResponse(
        envelope=draw(_envelopes),
        reference=draw(_ID),
        trace_originator="9" + "1" * 9,
        source=Source(name=draw(_WORD), payer_id=draw(_ID)),
        receiver=draw(_providers),
        answers=answers,
    )


@st.composite
def status_requests(draw: st.DrawFn) -> ClaimStatusRequest:
    def query() -> ClaimQuery:
        start = draw(st.none() | _DATES)
        return ClaimQuery(
            trace_number=draw(_ID),
            patient_control_number=draw(st.none() | _ID),
            payer_claim_control_number=draw(st.none() | _ID),
            total_charge=draw(st.none() | st.integers(0, 10**7)),
            service_start=start,
            service_end=start + timedelta(days=draw(st.integers(0, 9))) if start else None,
        )

    def inquiry() -> StatusInquiry:
        # The 276 carries the subscriber's DMG only when the subscriber is the patient.
        dependent = draw(st.none() | _members(False))
        subscriber = draw(_members(True))
        if dependent is not None:
            subscriber = Member(name=subscriber.name, member_id=subscriber.member_id)
        return StatusInquiry(
            subscriber=subscriber,
            dependent=dependent,
            claims=tuple(query() for _ in range(draw(st.integers(1, 3)))),
        )

    inquiries = tuple(inquiry() for _ in range(draw(st.integers(1, 3))))
    return ClaimStatusRequest(
        envelope=draw(_envelopes),
        reference=draw(_ID),
        source=Source(name=draw(_WORD), payer_id=draw(_ID)),
        requester=Requester(name=draw(_WORD), identifier=draw(_ID)),
        provider=draw(_providers),
        inquiries=inquiries,
    )


_QUICK = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_QUICK
@given(requests())
def test_random_270_round_trip(request: EligibilityRequest) -> None:
    content = write_270(request)
    assert _read(content, read_270_request) == request
    assert validate(content) == []


@_QUICK
@given(responses())
def test_random_271_round_trip(response: EligibilityResponse) -> None:
    content = write_271(response)
    assert _read(content, read_271_response) == response


@_QUICK
@given(status_requests())
def test_random_276_round_trip(request: ClaimStatusRequest) -> None:
    content = write_276(request)
    assert _read(content, read_276_request) == request
    assert validate(content) == []


_SOURCES = [write_270(REQUEST), write_271(RESPONSE), write_276(STATUS)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SOURCES), st.randoms(use_true_random=False), st.integers(1, 6))
def test_readers_never_crash_on_mangled_input(source: str, rng: random.Random, edits: int) -> None:
    content = list(source)
    for _ in range(edits):
        position = rng.randrange(len(content))
        if rng.random() < 0.5:
            del content[position]
        else:
            content[position] = rng.choice("*:~^0123456789ABCXYZ .-")
        if not content:
            content = ["~"]
    mangled = "".join(content)
    findings = findings_of(mangled)
    assert all(f.message for f in findings)
    described = read_or_refused(describe, mangled)
    if described is not None:
        assert "interchanges" in described
