"""835: the writer's files pass pyx12's 5010 validation; the streamed reader gives typed claims, PLB and the
balance; reversals, public files, random models and mangled input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from rcm.x12 import X12Error, transactions
from rcm.x12.cli import x12
from rcm.x12.document import describe, validate
from rcm.x12.remittance import RemittanceStream, read
from rcm.x12.remittance_model import (
    Adjustment,
    Claim,
    ProviderAdjustment,
    Remittance,
    balance_of,
    claim_imbalance,
)
from tests.x12 import remittances as r
from tests.x12.pyx12_check import pyx12_errors

PUBLIC = Path(__file__).parent / "fixtures" / "public" / "835"

SHAPES = {
    "paid": r.remittance((r.paid_claim(1),)),
    "partially paid, CO/PR adjustments and RARC": r.remittance((r.partially_paid_claim(1),)),
    "denied": r.remittance((r.denied_claim(1),)),
    "reversal and correction": r.remittance((r.reversal_of(r.partially_paid_claim(1)), r.paid_claim(2))),
    "several claims, several lines, PLB": r.remittance(
        tuple(r.mixed_claims(7)), (r.recoupment(2500), r.recoupment(-130, "INTEREST"))
    ),
    "notification only, nothing paid": r.remittance((r.denied_claim(1), r.denied_claim(2))),
    "check": msgspec.structs.replace(r.remittance((r.paid_claim(1),)), header=r.header(15000, method="CHK")),
}


def _only(remittance: Remittance) -> Remittance:
    """What the writer takes: the reader's balance and findings left aside."""
    return msgspec.structs.replace(remittance, balance=None, findings=())


@pytest.mark.parametrize("shape", SHAPES)
def test_written_835_passes_pyx12_and_reads_back(shape: str, tmp_path: Path) -> None:
    model = SHAPES[shape]
    content = r.write(model)
    assert pyx12_errors(content, tmp_path) == []
    result = read(next(transactions(content)))
    assert _only(result) == model
    assert result.findings == ()
    assert result.balance == balance_of(model)
    assert result.balance is not None
    assert result.balance.balanced
    assert validate(content) == []


def test_several_835_in_one_interchange_pass_pyx12(tmp_path: Path) -> None:
    models = (SHAPES["paid"], SHAPES["denied"], SHAPES["several claims, several lines, PLB"])
    content = r.write(*models)
    assert pyx12_errors(content, tmp_path) == []
    assert tuple(_only(read(t)) for t in transactions(content)) == models


def test_reversal_reads_negative_amounts_and_balances() -> None:
    original = r.partially_paid_claim(5)
    model = r.remittance((r.reversal_of(original),))
    claim = read(next(transactions(r.write(model)))).claims[0]
    assert claim.reversal
    assert (claim.charge, claim.paid, claim.patient_responsibility) == (-23000, -9600, -10400)
    assert [a.amount for line in claim.lines for a in line.adjustments] == [-3000, -2400, -8000]
    assert claim_imbalance(claim) == 0
    assert model.header.total_paid == -9600


def test_stream_yields_header_then_claims_one_at_a_time_then_plb() -> None:
    model = SHAPES["several claims, several lines, PLB"]
    stream = RemittanceStream(next(transactions(r.write(model))))
    assert stream.header == model.header
    claims = stream.claims()
    first = next(claims)
    assert first.patient_control_number == "PCN000001"
    assert stream.provider_adjustments == []  # PLB follows the claims: not read yet
    rest = list(claims)
    assert len(rest) == 6
    assert [a.amount for a in stream.provider_adjustments] == [2500, -130]
    balance = stream.balance()
    assert balance.balanced
    assert balance.total_paid == balance.claims_paid - balance.provider_adjustments
    with pytest.raises(RuntimeError, match="read once"):
        next(stream.claims())


def test_unbalanced_claim_and_payment_are_findings_not_errors() -> None:
    good = r.partially_paid_claim(1)
    # The payer forgot the CO 45 write-off: charge - paid no longer equals the adjustments.
    first_line = msgspec.structs.replace(good.lines[0], adjustments=good.lines[0].adjustments[1:])
    broken = msgspec.structs.replace(good, lines=(first_line, *good.lines[1:]))
    model = msgspec.structs.replace(r.remittance((broken,), (r.recoupment(100),)), header=r.header(999_999))
    content = r.write(model)
    result = read(next(transactions(content)))
    assert result.claims == (broken,)  # read all the same: the posting holds it for review
    assert result.balance is not None
    assert not result.balance.balanced
    assert result.balance.unbalanced_claims == 1
    messages = [finding.message for finding in result.findings]
    assert any("claim does not balance" in m and "by 3000 cents" in m for m in messages)
    assert any("service line does not balance" in m for m in messages)
    assert any("total payment is not the sum" in m for m in messages)
    findings = [str(f) for f in validate(content)]
    assert any(f.startswith("segment CLP at position") and "does not balance" in f for f in findings)
    assert any(f.startswith("element BPR02") for f in findings)
    # No patient data in what validate prints: names, member ids, claim numbers stay out.
    assert not any(re.search(r"DOE|JANE|M0000001|PCN000001", f) for f in findings)


def test_guide_code_values_are_findings() -> None:
    content = r.write(SHAPES["partially paid, CO/PR adjustments and RARC"])
    mangled = content.replace("CLP*PCN000001*1*", "CLP*PCN000001*9*").replace("CAS*CO*45", "CAS*CR*45")
    messages = {(f.segment_id, f.element, f.message) for f in validate(mangled)}
    assert ("CLP", 2, "code value not in the implementation guide") in messages
    assert ("CAS", 1, "adjustment group code not valid in 5010") in messages


# -- public files: each read into typed results, or refused with the segment and element named
PUBLIC_VERDICTS = {
    "pyx12__835_mult_loops.txt": (1, []),
    "tastypackets-x12-parser__multi-line-not-delimited.edi": (3, []),
    "tastypackets-x12-parser__profee-multiple.edi": (468, []),
}
# (segment, element, position, message start): where each file breaks, as X12Error names it.
_AFFECT = "affect-therapeutics-edi-835-parser__"
PUBLIC_REFUSED = {
    "CHS-CDS-AIML-edi-835-parser__test.835": ("SE", 1, 18, "declares 17 segments"),
    f"{_AFFECT}exhaustive_sample.txt": ("ST", None, 1, "not X12: expected an ISA"),
    f"{_AFFECT}nevada_medicaid.txt": ("IEA", 2, 67, "control number does not match"),
    f"{_AFFECT}sample_835.txt": ("CAS", 3, 23, "not a decimal amount"),
    f"{_AFFECT}sample_835_with_interests.txt": ("CAS", 3, 23, "not a decimal amount"),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_VERDICTS))
def test_public_835_reads_into_typed_claims(name: str) -> None:
    claims, findings = PUBLIC_VERDICTS[name]
    content = (PUBLIC / name).read_bytes()
    results = [read(t) for t in transactions(content)]
    assert sum(len(result.claims) for result in results) == claims
    assert [str(f) for result in results for f in result.findings] == findings
    assert all(result.balance is not None and result.balance.balanced for result in results)
    assert all(claim_imbalance(c) == 0 for result in results for c in result.claims)


def test_public_835_typed_values() -> None:
    result = read(next(transactions((PUBLIC / "pyx12__835_mult_loops.txt").read_bytes())))
    assert (result.header.payment_method, result.header.total_paid) == ("NON", 0)
    claim = result.claims[0]
    assert (claim.patient_control_number, claim.status, claim.charge, claim.paid) == (
        "2005555A",
        "4",
        91539,
        0,
    )
    assert [(a.group, a.reason, a.amount) for line in claim.lines for a in line.adjustments] == [
        ("CO", "16", 50004),
        ("OA", "A7", 12780),
        ("OA", "A7", 28755),
    ]
    assert [line.remarks for line in claim.lines] == [("N14",)] * 3
    assert result.header.payee.tin == "444313000"


@pytest.mark.parametrize("name", sorted(PUBLIC_REFUSED))
def test_public_835_refused_clearly(name: str) -> None:
    content = (PUBLIC / name).read_bytes()
    with pytest.raises(X12Error) as caught:
        describe(content)
    error = caught.value
    segment_id, element, position, message = PUBLIC_REFUSED[name]
    assert (error.segment_id, error.element, error.position) == (segment_id, element, position)
    assert error.message.startswith(message)


def test_public_835_with_unknown_codes_reads_up_to_the_bad_amount() -> None:
    """sample_835 carries a template row (CAS*grp_code*...): the claims before it are read."""
    content = (PUBLIC / "affect-therapeutics-edi-835-parser__sample_835.txt").read_bytes()
    stream = RemittanceStream(next(transactions(content)))
    read_claims: list[Claim] = []
    with pytest.raises(X12Error, match="CAS03"):
        read_claims.extend(stream.claims())
    assert [f.message for f in stream.findings] == ["adjustment group code not valid in 5010"]


# -- the CLI
def test_cli_parse_prints_every_claim_and_amount(tmp_path: Path) -> None:
    model = SHAPES["several claims, several lines, PLB"]
    path = tmp_path / "remit.835"
    path.write_text(r.write(model))
    result = CliRunner().invoke(x12, ["parse", str(path), "--compact"])
    assert result.exit_code == 0, result.output
    content = json.loads(result.output)["interchanges"][0]["groups"][0]["transactions"][0]["content"]
    assert [c["patient_control_number"] for c in content["claims"]] == [
        c.patient_control_number for c in model.claims
    ]
    assert content["header"]["total_paid"] == model.header.total_paid
    assert [(c["charge"], c["paid"]) for c in content["claims"]] == [(c.charge, c.paid) for c in model.claims]
    assert [a["amount"] for a in content["provider_adjustments"]] == [2500, -130]
    assert content["balance"]["balanced"] is True


def test_cli_validate_reports_balance_findings(tmp_path: Path) -> None:
    model = msgspec.structs.replace(SHAPES["paid"], header=r.header(100))
    path = tmp_path / "remit.835"
    path.write_text(r.write(model))
    result = CliRunner().invoke(x12, ["validate", str(path)])
    assert result.exit_code == 1
    assert "element BPR02 at position 4: total payment is not the sum" in result.output
    assert "(off by -14900 cents)" in result.output


# -- properties
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r.remittances())
def test_random_835_round_trips(model: Remittance) -> None:
    result = read(next(transactions(r.write(model))))
    # Dates the writer writes as one DTM*472 read back as a start and an end.
    expected = msgspec.structs.replace(
        model,
        claims=tuple(
            msgspec.structs.replace(
                c,
                lines=tuple(
                    msgspec.structs.replace(line, service_end=line.service_start)
                    if line.service_start is not None and line.service_end == line.service_start
                    else line
                    for line in c.lines
                ),
            )
            for c in model.claims
        ),
    )
    assert _only(result) == expected
    assert result.balance == balance_of(model)
    assert (result.balance is not None and result.balance.balanced) == (
        not any(f.segment_id == "BPR" for f in result.findings)
    )


def test_adjustments_of_a_group_share_a_cas_six_to_a_segment() -> None:
    many = tuple(Adjustment(group="CO", reason=str(n), amount=100) for n in range(1, 9))
    line = r.line(15000, 14200, many)
    model = r.remittance((r.claim(1, (line,)),))
    content = r.write(model)
    assert content.count("CAS*CO*") == 2
    assert _only(read(next(transactions(content)))) == model


def test_plb_pairs_of_one_provider_and_period_share_a_segment() -> None:
    interest = ProviderAdjustment(
        provider_id="1098765432", fiscal_period_end=r.DAY, reason="L6", reference=None, amount=-5
    )
    plb = (*(r.recoupment(n) for n in range(1, 8)), interest)
    model = r.remittance((r.paid_claim(1),), plb)
    content = r.write(model)
    assert content.count("PLB*") == 3
    assert _only(read(next(transactions(content)))) == model
