"""837P and 837I: what the writer produces passes pyx12's 5010 validation with zero errors, reads back into
the same batch, and our own guide checks find what a payer's front end would reject."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcm.x12 import X12Error
from rcm.x12.claims import ClaimBatch, ServiceFacility, SubscriberLoop
from rcm.x12.claims837 import write_837
from rcm.x12.claims837_read import read_batch
from rcm.x12.cli import x12
from rcm.x12.document import describe, validate
from tests.x12 import claimdata as data
from tests.x12.outcomes import read_or_refused
from tests.x12.pyx12check import pyx12_errors

PUBLIC = Path(__file__).parent / "fixtures" / "public"


def _own(claims: tuple, patient: object = None, payer: object = data.AETNA) -> SubscriberLoop:  # type: ignore[type-arg]
    return SubscriberLoop(payer=payer, subscriber=data.SUBSCRIBER, claims=claims, patient=patient)  # type: ignore[arg-type]


MATRIX: dict[str, ClaimBatch] = {
    "patient is subscriber": data.batch(data.billing_provider((_own((data.claim(),)),))),
    "dependent patient": data.batch(data.billing_provider((_own((data.claim(),), patient=data.CHILD),))),
    "several lines with modifiers": data.batch(
        data.billing_provider(
            (
                _own(
                    (
                        data.claim(
                            lines=(
                                data.line(
                                    10000,
                                    "99214",
                                    modifiers=("25", "GT", "95", "59"),
                                    diagnosis_pointers=(1, 2),
                                ),
                                data.line(
                                    4500, "36415", units="2", place_of_service="22", control_number="LINE-2"
                                ),
                                data.line(
                                    2575,
                                    "81002",
                                    modifiers=("QW",),
                                    diagnosis_pointers=(2,),
                                    service_date_end=data.DAY.replace(day=5),
                                ),
                            )
                        ),
                    ),
                ),
            )
        )
    ),
    "replacement": data.batch(
        data.billing_provider((_own((data.claim(frequency="7", payer_claim_control_number="PAYER123"),)),))
    ),
    "void": data.batch(
        data.billing_provider((_own((data.claim(frequency="8", payer_claim_control_number="PAYER123"),)),))
    ),
    "several claims, prior auth, referring, rendering, facility": data.batch(
        data.billing_provider(
            (
                _own(
                    (
                        data.claim(
                            "PCN1",
                            prior_authorization="AUTH-77",
                            referring=data.REFERRING,
                            rendering=data.RENDERING,
                            service_facility=ServiceFacility(
                                name="NORTH CLINIC", address=data.HOME, npi=data.npi("167890123")
                            ),
                        ),
                        data.claim(
                            "PCN2",
                            lines=(data.line(9900, rendering=data.RENDERING, referring=data.REFERRING),),
                        ),
                        data.claim(
                            "PCN3",
                            diagnoses=("J02.9",),
                            service_facility=ServiceFacility(name="SCHOOL", address=data.HOME),
                        ),
                    )
                ),
            )
        )
    ),
    "several billing providers and payers of one practice": data.batch(
        data.billing_provider(
            (_own((data.claim("A1"),)), _own((data.claim("A2"),), payer=data.MEDICARE)), pay_to=data.HOME
        ),
        data.billing_provider(
            (_own((data.claim("B1"),), patient=data.CHILD, payer=data.MEDICARE),),
            stem="176543210",
            taxonomy=None,
        ),
    ),
    "837I": data.batch(
        data.billing_provider(
            (
                _own((data.institutional_claim(),)),
                _own(
                    (data.institutional_claim("INST2", rendering=data.RENDERING, referring=data.REFERRING),),
                    patient=data.CHILD,
                ),
            )
        )
    ),
    "837I outpatient replacement": data.batch(
        data.billing_provider(
            (
                _own(
                    (
                        data.institutional_claim(
                            "INST3",
                            frequency="7",
                            payer_claim_control_number="ICN9",
                            prior_authorization="AUTH2",
                            place_of_service="13",
                            service_facility=ServiceFacility(
                                name="OUTPATIENT", address=data.HOME, npi=data.npi("134567890")
                            ),
                        ),
                    )
                ),
            )
        )
    ),
    "837P and 837I in one batch": data.batch(
        data.billing_provider((_own((data.claim("P1"),)),)),
        data.billing_provider((_own((data.institutional_claim("I1"),)),), stem="176543210"),
    ),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_written_837_passes_pyx12_with_zero_errors(name: str) -> None:
    content = write_837(MATRIX[name])
    assert pyx12_errors(content) == []
    assert validate(content) == []


@pytest.mark.parametrize("name", list(MATRIX))
def test_written_837_reads_back(name: str) -> None:
    batch = MATRIX[name]
    back = read_batch(write_837(batch))
    # The writer drops the dot of ICD-10 codes; everything else comes back as given.
    assert write_837(back) == write_837(batch)
    assert back.envelope == batch.envelope
    assert [p.npi for p in back.billing_providers] == [p.npi for p in batch.billing_providers]


def test_several_billing_providers_share_one_transaction_set_with_numbered_hl() -> None:
    content = write_837(MATRIX["several billing providers and payers of one practice"])
    segments = [s for s in content.split("~") if s]
    assert sum(s.startswith("ST*") for s in segments) == 1
    hl = [s.split("*")[1:] for s in segments if s.startswith("HL*")]
    assert hl == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],
        ["3", "1", "22", "0"],
        ["4", "", "20", "1"],
        ["5", "4", "22", "1"],
        ["6", "5", "23", "0"],
    ]


def test_mixed_batch_puts_each_guide_in_its_own_group() -> None:
    content = write_837(MATRIX["837P and 837I in one batch"])
    groups = [s.split("*")[8] for s in content.split("~") if s.startswith("GS*")]
    assert groups == ["005010X222A1", "005010X223A2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total_charge": 1}, "sum of its line charges"),
        ({"frequency": "7"}, "payer's claim control number"),
        ({"frequency": "5"}, "frequency"),
        ({"diagnoses": ()}, "diagnoses"),
        ({"lines": ()}, "service line"),
        ({"patient_control_number": "A*B"}, "delimiter"),
        ({"referring": data.CLINIC_AS_PROVIDER}, "names a person"),
    ],
)
def test_writer_refuses_claims_a_payer_would_reject(change: dict[str, object], message: str) -> None:
    base = data.claim()
    broken = msgspec.structs.replace(base, **change)
    with pytest.raises(X12Error, match=message):
        write_837(data.batch(data.billing_provider((_own((broken,)),))))


def test_writer_refuses_batches_a_payer_would_reject() -> None:
    base = MATRIX["patient is subscriber"]
    provider = base.billing_providers[0]
    loop = provider.subscribers[0]
    undated = msgspec.structs.replace(loop.subscriber, birth_date=None)
    cases = {
        "address, birth date and sex": msgspec.structs.replace(
            base,
            billing_providers=(
                msgspec.structs.replace(
                    provider, subscribers=(msgspec.structs.replace(loop, subscriber=undated),)
                ),
            ),
        ),
        "nine digits": msgspec.structs.replace(
            base,
            billing_providers=(
                msgspec.structs.replace(
                    provider, address=msgspec.structs.replace(data.HOME, postal_code="62629")
                ),
            ),
        ),
        "phone number or an email": msgspec.structs.replace(
            base, submitter=msgspec.structs.replace(base.submitter, phone=None, email=None)
        ),
    }
    for message, batch in cases.items():
        with pytest.raises(X12Error, match=message):
            write_837(batch)


def _mangle(content: str, find: str, replace: str) -> str:
    assert find in content
    return content.replace(find, replace, 1)


@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("*XX*1456789019~", "*XX*1456789010~", "NM109 at position 10: NPI fails its check digit"),
        ("*1:2~", "*1:7~", "SV107 at position 24: diagnosis pointer outside the claim's diagnoses"),
        ("CLM*PCN001*125.5*", "CLM*PCN001*125.6*", "CLM02 at position 21: line charges do not sum"),
        ("11:B:1*", "11:B:7*", "CLM05 at position 21: a replacement or void claim needs"),
        ("HL*2*1*22*0~", "HL*2*9*22*0~", "HL02 at position 14: HL02 does not name a parent"),
        ("DTP*472*D8*20261102~", "DTP*999*D8*20261102~", "LX at position 23: the professional service line"),
        ("REF*EI*371234567~", "REF*SY*371234567~", "HL at position 8: the billing provider has no tax id"),
        (
            "DMG*D8*19800102*M~",
            "REF*SY*1~",
            "HL at position 14: the subscriber is the patient: address and DMG",
        ),
    ],
)
def test_guide_checks_find_what_a_payer_rejects(find: str, replace: str, expected: str) -> None:
    content = write_837(
        data.batch(
            data.billing_provider((_own((data.claim(lines=(data.line(diagnosis_pointers=(1, 2)),)),)),))
        )
    )
    assert validate(content) == []
    assert data.billing_provider(()).npi == "1456789019"
    findings = [str(finding) for finding in validate(_mangle(content, find, replace))]
    assert any(expected in finding for finding in findings), findings
    assert not any("PAYER" in finding or "DOE" in finding for finding in findings)


def test_institutional_checks_need_statement_dates_and_attending() -> None:
    content = write_837(MATRIX["837I"])
    content = content.replace("NM1*71*", "NM1*72*").replace("DTP*434*", "DTP*999*")
    findings = [str(finding) for finding in validate(content)]
    assert sum("no attending provider" in f for f in findings) == 2
    assert sum("no statement dates" in f for f in findings) == 2


# Public files: how each one fares (SOURCES.md has where they come from and pyx12's verdicts).
PUBLIC_VERDICTS = {
    "837P/UHIN-x12-parser-library__837.edi": ["1606"],
    "837I/x12-parser__x223-test.txt": "SE01 at position 50: declares 25 segments",
    "837P/x12-parser__x12_complex.txt": "NM108 at position 33: a provider is named by NPI",
    "837P/x12-parser__x12_many_claims.txt": "SE01 at position 11488: declares 25 segments",
    "837P/x12-parser__x12_multiple_gs.txt": "SE01 at position 36: declares 25 segments",
    "837P/x12-parser__x12_multiple_isa.txt": "SE01 at position 36: declares 25 segments",
    "837P/x12-parser__x12_multiple_st.txt": "SE01 at position 36: declares 25 segments",
    "837P/x12-parser__x12_no_errors.txt": "SE01 at position 43: declares 25 segments",
    "837P/x12-parser__x12_valid.txt": "SE01 at position 36: declares 25 segments",
    "837P/x12-parser__x12_valid_different_separators.txt": "SE01 at position 36: declares 25 segments",
    "837P/x12-parser__x12_writer_test.txt": "SE01 at position 33: declares 25 segments",
}


@pytest.mark.parametrize("name", list(PUBLIC_VERDICTS))
def test_public_837_files_parse_or_are_refused_clearly(name: str) -> None:
    verdict = PUBLIC_VERDICTS[name]
    content = (PUBLIC / name).read_bytes()
    if isinstance(verdict, list):
        document = describe(content)
        claims = [
            claim["patient_control_number"]
            for interchange in document["interchanges"]
            for group in interchange["groups"]
            for transaction in group["transactions"]
            for provider in transaction["content"]["billing_providers"]
            for loop in provider["subscribers"]
            for claim in loop["claims"]
        ]
        assert claims == verdict
    else:
        with pytest.raises(X12Error) as caught:
            describe(content)
        error = caught.value
        plain = X12Error(
            error.message, segment_id=error.segment_id, position=error.position, element=error.element
        )
        assert verdict in str(plain)


def test_cli_parse_prints_every_claim_number_and_amount_in_its_loops(tmp_path: Path) -> None:
    batch = MATRIX["several billing providers and payers of one practice"]
    path = tmp_path / "batch.837"
    path.write_text(write_837(batch))
    result = CliRunner().invoke(x12, ["parse", str(path)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    transaction = document["interchanges"][0]["groups"][0]["transactions"][0]
    providers = transaction["content"]["billing_providers"]
    seen = [
        (claim["patient_control_number"], claim["total_charge"], [line["charge"] for line in claim["lines"]])
        for provider in providers
        for loop in provider["subscribers"]
        for claim in loop["claims"]
    ]
    assert seen == [("A1", 12550, [12550]), ("A2", 12550, [12550]), ("B1", 12550, [12550])]
    assert [loop["payer"]["payer_id"] for p in providers for loop in p["subscribers"]] == [
        "60054",
        "00952",
        "00952",
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data.batches())
def test_random_batches_round_trip(batch: ClaimBatch) -> None:
    assert read_batch(write_837(batch)) == batch


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data.batches())
def test_random_batches_pass_pyx12_and_our_guide_checks(batch: ClaimBatch) -> None:
    content = write_837(batch)
    assert pyx12_errors(content) == []
    assert validate(content) == []


_SOURCE = write_837(MATRIX["several claims, prior auth, referring, rendering, facility"])


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 8))
def test_reader_never_crashes_on_mangled_input(rng: random.Random, edits: int) -> None:
    content = list(_SOURCE)
    for _ in range(edits):
        position = rng.randrange(len(content))
        action = rng.choice(["delete", "replace", "duplicate", "truncate"])
        if action == "delete":
            del content[position]
        elif action == "replace":
            content[position] = rng.choice("*:~^0123456789ABCXYZ .-\n")
        elif action == "duplicate":
            content.insert(position, content[position])
        else:
            del content[position:]
        if not content:
            content = ["~"]
    mangled = "".join(content)
    batch = read_or_refused(read_batch, mangled)
    if batch is not None:
        assert isinstance(batch, ClaimBatch)
    validate(mangled)
    with contextlib.suppress(X12Error):
        describe(mangled)
