"""Properties of the postings, without a database: every posting sums to zero (double entry); after a claim's
charges and any sequence of payments, reversals and corrections the payer sends for it, the claim's balance
(its receivable entries) is what is left after the payer's adjustments, never a cent lost or made up."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcm.ledger import posting
from rcm.ledger.models import RECEIVABLES, Account
from rcm.x12.remittance_model import Adjustment, Claim, Person, ServiceLine

CLAIM = uuid.uuid4()
GROUPS = ("CO", "OA", "PI", "PR")


@st.composite
def adjudications(draw: st.DrawFn, charges: list[int]) -> Claim:
    """A balanced CLP for the lines ``charges``: per line, paid and adjusted by random groups."""
    lines = []
    for number, charge in enumerate(charges, start=1):
        paid = draw(st.integers(0, charge))
        rest, adjustments = charge - paid, []
        while rest:
            amount = draw(st.integers(1, rest))
            adjustments.append(Adjustment(group=draw(st.sampled_from(GROUPS)), reason="45", amount=amount))
            rest -= amount
        lines.append(
            ServiceLine(
                qualifier="HC",
                code="99213",
                charge=charge,
                paid=paid,
                adjustments=tuple(adjustments),
                control_number=str(number),
            )
        )
    return Claim(
        "PCN1",
        "1",
        sum(charges),
        sum(line.paid for line in lines),
        "12",
        "ICN1",
        Person(last="DOE"),
        lines=tuple(lines),
    )


def reversal(claim: Claim) -> Claim:
    lines = tuple(
        ServiceLine(
            qualifier=line.qualifier,
            code=line.code,
            charge=-line.charge,
            paid=-line.paid,
            adjustments=tuple(
                Adjustment(group=a.group, reason=a.reason, amount=-a.amount) for a in line.adjustments
            ),
            control_number=line.control_number,
        )
        for line in claim.lines
    )
    return Claim("PCN1", "22", -claim.charge, -claim.paid, "12", "ICN1", claim.patient, lines=lines)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[int], list[Claim]]:
    """Charges, then a payment, and any number of reversal + correction pairs after it."""
    charges = draw(st.lists(st.integers(1, 1_000_000), min_size=1, max_size=4))
    sent = [draw(adjudications(charges))]
    for _ in range(draw(st.integers(0, 3))):
        correction = draw(adjudications(charges))
        sent += [reversal(sent[-1]), correction]
    return charges, sent


# Drawing a history is pure data generation; on a loaded shared machine it can exceed Hypothesis's time
# budget for generating inputs, which says nothing about the ledger: that health check is not asked for.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_every_balance_is_the_sum_of_its_entries(history: tuple[list[int], list[Claim]]) -> None:
    charges, sent = history
    drafts = [posting.charges(CLAIM, list(enumerate(charges, start=1)))]
    for ordinal, paid in enumerate(sent, start=1):
        drafts.append(posting.claim_payment(paid, ordinal, CLAIM, [1 + i for i in range(len(paid.lines))]))
    entries = [entry for draft in drafts for entry in draft.entries]
    assert all(draft.total == 0 for draft in drafts)  # double entry
    final = sent[-1]  # what stands: the last correction (each earlier payment was reversed)
    patient = sum(a.amount for line in final.lines for a in line.adjustments if a.group == "PR")
    insurance = sum(e.amount for e in entries if e.account is Account.INSURANCE_RECEIVABLE)
    owed = sum(e.amount for e in entries if e.account is Account.PATIENT_RECEIVABLE)
    assert (insurance, owed) == (0, patient)
    balance = sum(e.amount for e in entries if e.account in RECEIVABLES)
    assert balance == patient >= 0
    # Cash: what the payer paid, net of what it took back, is the last payment, never below zero.
    cash = sum(e.amount for e in entries if e.account is Account.PAYMENTS)
    assert cash == final.paid >= 0
    assert posting.hold_reason(_header(sum(c.paid for c in sent)), sent, []) is None


def _header(total: int) -> object:
    from tests.x12 import remittances as rm

    h = rm.header(0)
    return type(h)(
        handling="I",
        total_paid=total,
        credit_debit="C",
        payment_method="CHK",
        payment_date=h.payment_date,
        trace_number="T1",
        trace_originator="1512345678",
        payer=h.payer,
        payee=h.payee,
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(("CO", "PR", "OA")), st.integers(-10_000, 10_000)), max_size=6),
    st.integers(-50_000, 50_000),
)
def test_an_unbalanced_claim_holds_the_set(adjustments: list[tuple[str, int]], off: int) -> None:
    charge = 100_000
    paid = charge - sum(amount for _, amount in adjustments) - off
    claim = Claim(
        "PCN1",
        "1",
        charge,
        paid,
        "12",
        "ICN1",
        Person(last="DOE"),
        adjustments=tuple(Adjustment(group=g, reason="45", amount=a) for g, a in adjustments),
    )
    reason = posting.hold_reason(_header(paid), [claim], [])
    assert (reason is None) == (off == 0)
    if off:
        assert reason == f"CLP 1: CLP03 - CLP04 is not the sum of its adjustments (CAS): off by {off} cents"
