"""The balance rules without a database: aging buckets, a visit awaiting a payer is not due, a plan in force
keeps an account from collections, payments spread oldest first and never lose a cent, plan schedules add
up to their total, the manifest's statement rules refuse contradictions by name."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rcm.kit.errors import InvalidInput
from rcm.patient_billing.repository import ClaimMoney
from rcm.patient_billing.service import allocate, balance_of, refund_parts, schedule
from rcm.patient_billing.statements import cycle_start
from rcm.tenancy.manifest import Statements, validate_manifest

AS_OF = date(2026, 6, 30)


def _claim(
    patient: int, *, days_ago: int, insurance: int = 0, encounter: uuid.UUID | None = None
) -> ClaimMoney:
    since = datetime.combine(AS_OF - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC)
    return ClaimMoney(
        claim_id=uuid.uuid4(),
        encounter_id=encounter or uuid.uuid4(),
        service_date=AS_OF - timedelta(days=days_ago + 20),
        patient=patient,
        insurance=insurance,
        charges=10_000,
        insurance_paid=6_000,
        adjustments=2_500,
        patient_paid=0,
        written_off=0,
        since=since,
    )


def test_aging_pending_and_collections() -> None:
    shared = uuid.uuid4()
    money = [
        _claim(1_000, days_ago=10),
        _claim(2_000, days_ago=45),
        _claim(3_000, days_ago=75),
        _claim(4_000, days_ago=100),
        _claim(5_000, days_ago=200),
        # A primary's patient share whose secondary (same encounter) is still owed: not due yet.
        _claim(700, days_ago=5, encounter=shared),
        _claim(0, days_ago=5, insurance=700, encounter=shared),
        # Another visit whose secondary claim is built but not decided (no ledger entries yet).
        _claim(900, days_ago=5),
    ]
    awaiting = {money[-1].encounter_id}
    rules = Statements(collections_after_days=150)
    found = balance_of(uuid.uuid4(), money, as_of=AS_OF, rules=rules, awaiting=awaiting)
    assert (found.balance_cents, found.due_cents, found.pending_insurance_cents) == (16_600, 15_000, 1_600)
    assert (found.aging.current, found.aging.days_31_60, found.aging.days_61_90) == (1_000, 2_000, 3_000)
    assert (found.aging.days_91_120, found.aging.over_120) == (4_000, 5_000)
    assert found.collections
    assert sum(v.balance_cents for v in found.visits) == found.balance_cents
    # A plan in force: not for collections; no limit in the manifest: never.
    assert not balance_of(uuid.uuid4(), money, as_of=AS_OF, rules=rules, plan_id=uuid.uuid4()).collections
    assert not balance_of(
        uuid.uuid4(), money, as_of=AS_OF, rules=Statements(collections_after_days=None)
    ).collections


@given(st.lists(st.integers(0, 50_000), min_size=1, max_size=6), st.integers(0, 400_000))
def test_allocation_takes_no_more_than_owed_and_loses_nothing(owed: list[int], amount: int) -> None:
    claims = [(uuid.uuid4(), cents) for cents in owed]
    amount = min(amount, sum(owed))
    parts = allocate(amount, claims)
    assert sum(cents for _, cents in parts) == amount
    limits = dict(claims)
    assert all(0 < cents <= limits[claim] for claim, cents in parts)
    # Oldest first: every claim before the last one paid is paid in full.
    paid = dict(parts)
    for claim, cents in claims[: max(0, len(parts) - 1)]:
        assert paid.get(claim, 0) == cents or cents == 0


@given(st.integers(1, 1_000_000), st.integers(1, 1_000_000))
def test_schedule_adds_up(total: int, installment: int) -> None:
    installment = max(installment, -(-total // 60))
    plan = schedule(total, installment, date(2026, 7, 1), 30)
    assert sum(cents for _, cents in plan) == total
    assert all(0 < cents <= installment for _, cents in plan)
    assert [due for due, _ in plan] == [date(2026, 7, 1) + timedelta(days=30 * n) for n in range(len(plan))]


def test_cycles() -> None:
    assert cycle_start(date(2026, 1, 30), 30) == date(2026, 1, 1)
    assert cycle_start(date(2026, 1, 31), 30) == date(2026, 1, 31)
    assert cycle_start(date(2025, 12, 31), 30) == date(2025, 12, 2)


def test_manifest_statement_rules_are_checked() -> None:
    base = {
        "slug": "stmt-rules",
        "name": "Rules practice",
        "billing_provider": {"npi": "1003000126", "name": "Group"},
    }
    assert validate_manifest(base).statements == Statements()
    with pytest.raises(InvalidInput) as caught:
        validate_manifest(
            {**base, "statements": {"minimum_balance_cents": 500, "small_balance_write_off_cents": 500}}
        )
    assert [e.pointer for e in caught.value.errors] == ["/statements"]
    with pytest.raises(InvalidInput) as caught:
        validate_manifest({**base, "statements": {"branding": {"color": "red"}, "cycle_days": "30"}})
    assert sorted(e.pointer for e in caught.value.errors) == [
        "/statements/branding/color",
        "/statements/cycle_days",
    ]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, int, int]]]:
    """What a patient owes per claim, then steps: ("pay", cents, _) or ("refund", cents, which payment)."""
    owed = draw(st.lists(st.integers(1, 20_000), min_size=1, max_size=4))
    steps = draw(
        st.lists(
            st.tuples(st.sampled_from(["pay", "refund"]), st.integers(1, 30_000), st.integers(0, 10)),
            max_size=12,
        )
    )
    return owed, steps


@given(histories())
def test_payments_and_refunds_keep_every_claim_between_zero_and_what_was_owed(
    history: tuple[list[int], list[tuple[str, int, int]]],
) -> None:
    """Whatever the sequence, run as the service runs it (a payment up to the balance, oldest first; a
    refund up to what is left of its payment, latest claim first): each claim's balance stays between 0 and
    its patient share, the total refunded of a payment never passes it, and the balance is the share less
    the payments plus the refunds, to the cent."""
    owed, steps = history
    claims = [uuid.uuid4() for _ in owed]
    share = dict(zip(claims, owed, strict=True))
    balance = dict(share)
    payments: list[tuple[int, list[tuple[uuid.UUID, int]], list[tuple[uuid.UUID, int]]]] = []
    paid_total = refunded_total = 0
    for kind, cents, which in steps:
        if kind == "pay":
            total = sum(balance.values())
            if cents > total:
                continue  # refused: more than the balance
            parts = allocate(cents, [(c, balance[c]) for c in claims if balance[c] > 0])
            for claim, amount in parts:
                balance[claim] -= amount
            payments.append((cents, parts, []))
            paid_total += cents
        elif payments:
            amount, applied, refunded = payments[which % len(payments)]
            if cents > amount - sum(c for _, c in refunded):
                continue  # refused: more than is left of the payment
            parts = refund_parts(cents, applied, refunded)
            assert sum(c for _, c in parts) == cents
            for claim, back in parts:
                balance[claim] += back
            refunded.extend(parts)
            refunded_total += cents
        assert all(0 <= balance[c] <= share[c] for c in claims)
    assert sum(balance.values()) == sum(owed) - paid_total + refunded_total
    for amount, _, refunded in payments:
        assert sum(c for _, c in refunded) <= amount
