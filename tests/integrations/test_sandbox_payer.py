"""The sandbox payer (integrations/sandbox_payer): an 837 our writer made goes in; a 999, 277CAs and 835s
come out that our readers read, our guide check and pyx12 find valid, and whose claims end as the rules say.
Eligibility and status inquiries round-trip through our readers; the state lives in a directory, so a new
connector instance (a restarted worker) carries on where the last one stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest

from rcm.payers.connector import (
    ConnectorConfig,
    Endpoint,
    InboundFile,
    PermanentConnectorError,
    Submission,
    TransientConnectorError,
)
from rcm.payers.registry import open_connector
from rcm.x12 import Transaction, transactions
from rcm.x12.acknowledgment import read as read_999
from rcm.x12.benefits import read_271
from rcm.x12.claim_ack import read as read_277ca
from rcm.x12.claim_status import read as read_277
from rcm.x12.claim_status_request import ClaimQuery, ClaimStatusRequest, Requester, StatusInquiry, write_276
from rcm.x12.claims import ClaimBatch, SubscriberLoop
from rcm.x12.claims837 import write_837
from rcm.x12.document import validate
from rcm.x12.eligibility import EligibilityRequest, Inquiry, Member, Source, write_270
from rcm.x12.model import Envelope, PersonName
from rcm.x12.remittance import read as read_835
from rcm.x12.remittance_model import claim_imbalance
from sandbox_payer import SandboxPayer
from sandbox_payer.rules import Outcome, Rule, Rules, When, write_rules
from tests.x12 import claimdata as data
from tests.x12.pyx12_check import pyx12_errors

T = TypeVar("T")

# The default rules decide by CLM01's last character: 1 paid, 3 and 5 partially paid, 7 denied, 8 paid two
# fetches later, 9 denied one fetch later, 0 rejected at the 277CA.
IMMEDIATE = ("PCN0001", "PCN0003", "PCN0005", "PCN0007")


@pytest.fixture(autouse=True)
def _test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCM_ENV", "test")


def test_the_sandbox_payer_refuses_to_run_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It keeps the 837s it receives (PHI) as plain files: never outside development and tests."""
    for env in ("prod", None):
        if env is None:
            monkeypatch.delenv("RCM_ENV", raising=False)
        else:
            monkeypatch.setenv("RCM_ENV", env)
        with pytest.raises(PermanentConnectorError, match="only with RCM_ENV=dev or test"):
            SandboxPayer(_config(f"sandbox:{tmp_path}"))


def _config(endpoint: str) -> ConnectorConfig:
    return ConnectorConfig(
        connector="sandbox",
        endpoint=Endpoint.parse(endpoint),
        submitter_id="SUBMITTER01",
        receiver_id="CLEARINGHOUSE",
    )


def _payer(directory: Path) -> SandboxPayer:
    connector = open_connector(_config(f"sandbox:{directory}"))
    assert isinstance(connector, SandboxPayer)
    return connector


def _batch(*numbers: str, charge: int = 12550, control: int = 1) -> ClaimBatch:
    claims = tuple(
        data.claim(number, (data.line(charge), data.line(4000, "81002", control_number=f"L{number}")))
        for number in numbers
    )
    loop = SubscriberLoop(payer=data.AETNA, subscriber=data.SUBSCRIBER, claims=claims)
    child = SubscriberLoop(
        payer=data.AETNA,
        subscriber=data.SUBSCRIBER,
        patient=data.CHILD,
        claims=(data.institutional_claim("INST0002"),),
    )
    return data.batch(data.billing_provider((loop, child)), control=control)


def _submission(batch: ClaimBatch, name: str = "claims-000000001.x12") -> Submission:
    control = f"{batch.envelope.interchange_control_number:09d}"
    return Submission(file_name=name, interchange_control_number=control, x12=write_837(batch).encode())


def _kinds(files: list[InboundFile]) -> list[str]:
    return [file.name.split("-")[0] for file in files]


def _valid(file: InboundFile, directory: Path) -> str:
    content = file.content.decode()
    assert validate(content) == [], file.name
    assert pyx12_errors(content, directory) == [], file.name
    return content


def _one(content: str, reader: Callable[[Transaction], T]) -> T:
    """The only transaction set of ``content``, read by ``reader`` (a set is read while the file streams)."""
    found = [reader(transaction) for transaction in transactions(content)]
    assert len(found) == 1
    return found[0]


async def test_submission_answers_999_277ca_and_835s_by_the_rules(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    numbers = (*IMMEDIATE, "PCN0008", "PCN0009", "PCN0010")
    receipt = await payer.submit(_submission(_batch(*numbers)))
    assert receipt.reference.startswith("SBX")
    assert not receipt.duplicate

    page = await payer.fetch_responses(None)
    assert _kinds(page.files) == ["999", "277CA", "835"]
    ack, claim_ack, remittance = (_valid(file, tmp_path) for file in page.files)

    groups = [read_999(t) for t in transactions(ack)]
    # our writer puts the 837P claims in one functional group, the 837I claim in a second
    assert [(g.functional_id, g.status, [s.status for s in g.sets]) for g in groups] == [
        ("HC", "A", ["A"]),
        ("HC", "A", ["A"]),
    ]

    # one 277CA per accepted 837 set (the 837P and the 837I)
    acknowledgments = [read_277ca(t) for t in transactions(claim_ack)]
    assert len(acknowledgments) == 2
    verdicts = {c.tracking_number: c for a in acknowledgments for c in a.all_claims()}
    assert {n: c.accepted for n, c in verdicts.items()} == {
        **{n: True for n in numbers if n != "PCN0010"},
        "PCN0010": False,
        "INST0002": True,
    }
    assert verdicts["PCN0010"].payer_claim_control_number is None
    assert verdicts["PCN0010"].statuses[0].message == "SUBSCRIBER NOT FOUND"

    paid = _one(remittance, read_835)
    assert paid.findings == ()
    assert paid.balance is not None
    assert paid.balance.balanced
    assert paid.balance.unbalanced_claims == 0
    assert paid.header.total_paid == sum(c.paid for c in paid.claims)
    claims = {c.patient_control_number: c for c in paid.claims}
    assert set(claims) == {*IMMEDIATE, "INST0002"}
    for claim in paid.claims:
        assert claim_imbalance(claim) == 0
        # the 277CA's REF*1K and the 835's CLP07 are the same number for the same claim
        assert (
            claim.payer_claim_control_number
            == verdicts[claim.patient_control_number].payer_claim_control_number
        )
    # paid in full
    assert (claims["PCN0001"].status, claims["PCN0001"].paid) == ("1", 16550)
    # partially paid: CO-45 20% of the charge, PR-2 20% of the allowed amount, RARC N130
    first = claims["PCN0003"].lines[0]
    assert [(a.group, a.reason, a.amount) for a in first.adjustments] == [
        ("CO", "45", 2510),
        ("PR", "2", 2008),
    ]
    assert first.paid == 12550 - 2510 - 2008
    assert first.remarks == ("N130",)
    assert claims["PCN0003"].patient_responsibility == 2008 + 640
    # partially paid: the whole allowed amount to the deductible (PR-1), nothing paid
    assert {(a.group, a.reason) for line in claims["PCN0005"].lines for a in line.adjustments} == {
        ("CO", "45"),
        ("PR", "1"),
    }
    assert claims["PCN0005"].paid == 0
    # denied: CLP02 4, CO-16 with MA130
    denied = claims["PCN0007"]
    assert denied.status == "4"
    assert denied.paid == 0
    assert {(a.group, a.reason) for line in denied.lines for a in line.adjustments} == {("CO", "16")}
    assert denied.lines[0].remarks == ("MA130",)

    # delayed: PCN0009's denial one fetch later, PCN0008's payment the fetch after
    second = await payer.fetch_responses(page.cursor)
    assert _kinds(second.files) == ["835"]
    late = _one(_valid(second.files[0], tmp_path), read_835)
    assert [(c.patient_control_number, c.status, c.paid) for c in late.claims] == [("PCN0009", "4", 0)]
    assert late.header.payment_method == "NON"
    third = await payer.fetch_responses(second.cursor)
    assert _kinds(third.files) == ["835"]
    later = _one(_valid(third.files[0], tmp_path), read_835)
    assert [(c.patient_control_number, c.status, c.paid) for c in later.claims] == [("PCN0008", "1", 16550)]
    assert (await payer.fetch_responses(third.cursor)).files == []


async def test_a_rule_rejects_the_transaction_set_at_the_999(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    await payer.submit(_submission(_batch("PCN0001", "PCN0002", charge=5_000_000)))
    page = await payer.fetch_responses(None)
    # the 837P set (two claims over the threshold) is rejected; the 837I set goes on to the 277CA and 835
    assert _kinds(page.files) == ["999", "277CA", "835"]
    groups = [read_999(t) for t in transactions(_valid(page.files[0], tmp_path))]
    assert [g.status for g in groups] == ["R", "A"]
    assert [c.tracking_number for c in _one(page.files[1].content.decode(), read_277ca).all_claims()] == [
        "INST0002"
    ]
    rejected = groups[0].sets[0]
    assert rejected.status == "R"
    assert [(e.segment_id, e.loop) for e in rejected.segment_errors] == [("CLM", "2300"), ("CLM", "2300")]


async def test_a_file_our_reader_refuses_gets_a_999_rejecting_it(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    broken = write_837(_batch("PCN0001")).rsplit("SE*", 1)[0]  # no SE, GE, IEA: the envelope is broken
    await payer.submit(
        Submission(file_name="broken.x12", interchange_control_number="000000001", x12=broken.encode())
    )
    page = await payer.fetch_responses(None)
    assert _kinds(page.files) == ["999"]
    group = _one(_valid(page.files[0], tmp_path), read_999)
    assert (group.status, group.accepted, group.codes) == ("R", 0, ("3",))


async def test_each_submission_is_recorded_and_answered_never_deduplicated(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    submission = _submission(_batch("PCN0001"))
    first = await payer.submit(submission)
    second = await payer.submit(submission)
    assert first.reference != second.reference
    received = sorted((tmp_path / "payer" / "received").iterdir())
    assert len(received) == 2
    assert all(path.read_bytes() == submission.x12 for path in received)
    page = await payer.fetch_responses(None)
    assert _kinds(page.files) == ["999", "277CA", "835"] * 2


async def test_delivered_reads_the_received_records_and_test_faults_fail_submits(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    submission = _submission(_batch("PCN0001"))
    assert await payer.delivered(submission.file_name) is False
    # Faults a test asks for: failures before anything is recorded, each used once.
    (tmp_path / "payer" / "faults.json").write_bytes(msgspec.json.encode({"transient": 1, "permanent": 1}))
    with pytest.raises(PermanentConnectorError, match="test fault"):
        await payer.submit(submission)
    with pytest.raises(TransientConnectorError, match="test fault"):
        await payer.submit(submission)
    assert await payer.delivered(submission.file_name) is False
    await payer.submit(submission)
    assert await payer.delivered(submission.file_name) is True
    assert await payer.delivered("another-file.x12") is False


async def test_state_survives_a_new_connector_and_acknowledged_files_are_archived(tmp_path: Path) -> None:
    directory = tmp_path / "payer"
    await _payer(directory).submit(_submission(_batch("PCN0001", "PCN0008")))
    page = await _payer(directory).fetch_responses(None)
    assert _kinds(page.files) == ["999", "277CA", "835"]
    for file in page.files:
        await _payer(directory).acknowledge(file)
        await _payer(directory).acknowledge(file)  # twice is fine
    assert sorted(p.name for p in (directory / "archive").iterdir()) == sorted(f.id for f in page.files)
    # restarted: the delay counts on, the acknowledged files are gone, the held 835 comes out
    restarted = _payer(directory)
    assert (await restarted.fetch_responses(None)).files == []
    held = (await _payer(directory).fetch_responses(None)).files
    assert _kinds(held) == ["835"]
    assert [c.patient_control_number for c in _one(held[0].content.decode(), read_835).claims] == ["PCN0008"]


async def test_rules_file_decides_by_procedure_payer_and_amount(tmp_path: Path) -> None:
    directory = tmp_path / "payer"
    write_rules(
        directory,
        Rules(
            claims=(
                Rule(
                    outcome=Outcome.DENY,
                    when=When(procedure=["81002"], payer_id=["60054"]),
                    carc="97",
                    rarc="M15",
                ),
                Rule(outcome=Outcome.PAY),
            )
        ),
    )
    payer = _payer(directory)
    await payer.submit(_submission(_batch("PCN0001")))
    files = (await payer.fetch_responses(None)).files
    remittance = _one(_valid(files[2], tmp_path), read_835)
    by_number = {c.patient_control_number: c for c in remittance.claims}
    assert by_number["PCN0001"].status == "4"
    assert by_number["PCN0001"].lines[0].adjustments[0].reason == "97"
    assert by_number["INST0002"].status == "1"
    (directory / "rules.yaml").write_text("claims:\n  - outcome: maybe\n")
    with pytest.raises(PermanentConnectorError, match="rules file"):
        await payer.submit(_submission(_batch("PCN0001")))


ENVELOPE = Envelope(
    sender_id="SUBMITTER01",
    receiver_id="SANDBOX",
    interchange_control_number=7,
    group_control_number=7,
    created=data.WHEN,
    usage="T",
)
SOURCE = Source(name="AETNA", payer_id="60054")
JOHN = Member(
    name=PersonName(last="DOE", first="JOHN"), member_id="W123456789", birth_date=date(1980, 1, 2), sex="M"
)


async def test_eligibility_answers_active_and_inactive_members(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    request = EligibilityRequest(
        envelope=ENVELOPE,
        reference="ELIG1",
        trace_originator="9876543210",
        source=SOURCE,
        receiver=data.CLINIC_AS_PROVIDER,
        inquiries=(
            Inquiry(trace_number="T1", subscriber=JOHN, service_types=("30", "98")),
            Inquiry(
                trace_number="T2",
                subscriber=Member(name=PersonName(last="ROE", first="ANN"), member_id="INACT0001"),
            ),
        ),
    )
    content = (await payer.check_eligibility(write_270(request).encode())).decode()
    assert validate(content) == []  # pyx12 has no 271 map: our guide rules only
    answer = _one(content, read_271)
    assert answer.reference == "ELIG1"
    active, inactive = answer.answers
    assert (active.trace_number, active.coverage, inactive.coverage) == ("T1", "active", "inactive")
    copays = {b.service_types: b.amount for b in active.benefits if b.code == "B"}
    assert copays == {("30",): 3000, ("98",): 2500}
    assert {b.percent for b in active.benefits if b.code == "A"} == {"0.2"}
    assert [b.amount for b in active.benefits if b.code == "C"] == [150000]


async def test_eligibility_refused_by_our_reader_answers_a_999(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    content = (await payer.check_eligibility(b"ISA*not an interchange")).decode()
    group = _one(content, read_999)
    assert (group.functional_id, group.status) == ("HS", "R")


def _276(*queries: ClaimQuery) -> bytes:
    return write_276(
        ClaimStatusRequest(
            envelope=ENVELOPE,
            reference="STAT1",
            source=SOURCE,
            requester=Requester(name="RCM BILLING", identifier="SUBMITTER01"),
            provider=data.CLINIC_AS_PROVIDER,
            inquiries=(StatusInquiry(subscriber=JOHN, claims=queries),),
        )
    ).encode()


async def test_claim_status_says_what_the_payer_decided(tmp_path: Path) -> None:
    payer = _payer(tmp_path / "payer")
    await payer.submit(_submission(_batch("PCN0001", "PCN0008", "PCN0010")))
    files = (await payer.fetch_responses(None)).files
    paid = _one(files[2].content.decode(), read_835).claims[0]
    queries = (
        ClaimQuery(trace_number="Q1", payer_claim_control_number=paid.payer_claim_control_number),
        ClaimQuery(trace_number="Q2", patient_control_number="PCN0008"),
        ClaimQuery(trace_number="Q3", patient_control_number="PCN0010"),
        ClaimQuery(trace_number="Q4", patient_control_number="NEVERSENT"),
    )
    content = (await payer.claim_status(_276(*queries))).decode()
    assert validate(content) == []
    claims = {c.tracking_number: c for c in _one(content, read_277).all_claims()}
    categories = {trace: claim.statuses[0].codes[0].category for trace, claim in claims.items()}
    assert categories == {"Q1": "F1", "Q2": "P1", "Q3": "A7", "Q4": "A4"}
    assert claims["Q1"].statuses[0].paid == paid.paid
    assert claims["Q1"].payer_claim_control_number == paid.payer_claim_control_number
    # two fetches later PCN0008 is paid, and a new connector instance knows it
    await payer.fetch_responses(None)
    await payer.fetch_responses(None)
    again = (await _payer(tmp_path / "payer").claim_status(_276(queries[1]))).decode()
    (finalized,) = _one(again, read_277).all_claims()
    assert finalized.statuses[0].codes[0].category == "F1"
    assert finalized.statuses[0].paid == 16550


def test_the_endpoint_names_the_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCM_DATA_DIR", str(tmp_path))
    assert SandboxPayer(_config("sandbox:")).directory == tmp_path / "sandbox-payer"
    assert SandboxPayer(_config("sandbox:demo")).directory == tmp_path / "sandbox-payer" / "demo"
    assert SandboxPayer(_config(f"sandbox:{tmp_path}/elsewhere")).directory == tmp_path / "elsewhere"
    with pytest.raises(PermanentConnectorError, match="outside"):
        SandboxPayer(_config("sandbox:../up"))


async def test_concurrent_connectors_share_one_payer(tmp_path: Path) -> None:
    """Several instances (as several workers would open) submitting at once: every submission is kept and
    answered, each answer under its own interchange control number (the lock serialises the counters)."""
    directory = tmp_path / "payer"
    payers = [_payer(directory) for _ in range(4)]
    submission = _submission(_batch("PCN0001"))
    await asyncio.gather(*(payers[n % 4].submit(submission) for n in range(8)))
    assert len(list((directory / "received").iterdir())) == 8
    files = (await payers[0].fetch_responses(None)).files
    assert _kinds(files) == ["999", "277CA", "835"] * 8
    controls = [next(transactions(f.content)).interchange.control_number for f in files]
    assert len(set(controls)) == len(files)
