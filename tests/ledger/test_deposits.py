"""Deposits and the EFT reassociation report: 835 payments paired with the deposits a practice reports, by
trace number (any case) and else by amount with a date within 3 days; what is left on either side and the
totals; another practice's deposits and payments never appear, and its callers cannot read the report."""

from __future__ import annotations

from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims
from tests.coding.conftest import MakeStaff
from tests.ledger.support import era_file, paid_in_part, submitted_claim
from tests.support import Api

REPORT = "/reports/eft-reassociation"
WINDOW = {"since": "2026-11-25", "until": "2026-12-10"}


async def test_payments_are_paired_with_deposits(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    make_staff: MakeStaff,
) -> None:
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    npi = practice.manifest.billing_provider.npi
    biller = await make_staff(Role.BILLER, practice)
    headers = biller.headers() | {"Content-Type": "application/edi-x12"}
    for trace, control, off in (("EFT-D1", 51, 0), ("EFT-D2", 52, 0), ("EFT-D3", 53, 5)):
        data = era_file(paid, trace=trace, control=control, npi=npi, off_by=off)  # BPR16 2026-12-01
        sent = await biller.client.post("/api/v1/billing/remittances", content=data, headers=headers)
        assert sent.status_code == 200, sent.text
    deposits = [
        {"deposited_on": "2026-12-12", "amount_cents": 1, "trace_number": " eft-d1 "},  # by trace, late
        {"deposited_on": "2026-12-03", "amount_cents": paid.paid},  # by amount and date
        {"deposited_on": "2026-12-02", "amount_cents": 999, "trace_number": "NOPE"},  # no 835
        {"deposited_on": "2026-12-06", "amount_cents": paid.paid + 5},  # 5 days after EFT-D3: too far
    ]
    ours, theirs = f"/tenants/{practice.slug}", f"/tenants/{other_practice.slug}"
    for deposit in [*deposits, {"deposited_on": "2026-12-09", "amount_cents": 7}]:
        made = await biller.post(f"{ours}/deposits", deposit)
        assert made.status_code == 201, made.text
    # Another practice's deposit never shows here.
    other = await make_staff(Role.BILLER, other_practice)
    mine = await other.post(f"{theirs}/deposits", {"deposited_on": "2026-12-01", "amount_cents": paid.paid})
    assert mine.status_code == 201, mine.text

    report = await biller.get(f"{ours}{REPORT}", **WINDOW)
    assert report.status_code == 200, report.text
    body = report.json()
    assert sorted(
        (m["payment"]["trace_number"], m["deposit"]["amount_cents"], m["matched_by"]) for m in body["matched"]
    ) == [
        ("EFT-D1", 1, "trace_number"),
        ("EFT-D2", paid.paid, "amount_and_date"),
    ]
    assert [(p["trace_number"], p["amount_cents"], p["state"]) for p in body["payments_without_deposit"]] == [
        ("EFT-D3", paid.paid + 5, "held")
    ]
    assert sorted(d["amount_cents"] for d in body["deposits_without_payment"]) == sorted(
        [999, paid.paid + 5, 7]
    )
    totals = body["totals"]
    assert (totals["payments"], totals["payments_cents"]) == (3, 3 * paid.paid + 5)
    assert (totals["matched"], totals["matched_cents"]) == (2, 2 * paid.paid)
    assert totals["payments_without_deposit_cents"] == paid.paid + 5
    assert totals["deposits"] == 4  # the late one (12-12) is outside the window, though it pairs
    assert totals["deposits_without_payment_cents"] == 999 + paid.paid + 5 + 7

    # The other practice sees only its own deposit, and none of these payments; nor this practice's report.
    seen = (await other.get(f"{theirs}{REPORT}", **WINDOW)).json()
    assert (seen["matched"], seen["payments_without_deposit"]) == ([], [])
    assert [d["amount_cents"] for d in seen["deposits_without_payment"]] == [paid.paid]
    assert (await other.get(f"{ours}{REPORT}", **WINDOW)).status_code in {403, 404}
    assert (await other.post(f"{ours}/deposits", deposits[1])).status_code in {403, 404}
    # The practice's own system (no payments scope) may not read it.
    assert (await intake.get(REPORT, WINDOW)).status_code == 403


async def test_a_bad_deposit_is_refused_naming_the_field(practice: Tenant, make_staff: MakeStaff) -> None:
    biller = await make_staff(Role.BILLER, practice)
    ours = f"/tenants/{practice.slug}"
    zero = await biller.post(f"{ours}/deposits", {"deposited_on": "2026-12-01", "amount_cents": 0})
    assert zero.status_code in {400, 422}, zero.text
    assert "amount_cents" in zero.text
    no_key = await biller.client.post(
        f"/api/v1{ours}/deposits",
        json={"deposited_on": "2026-12-01", "amount_cents": 5},
        headers=biller.headers(),
    )
    assert no_key.status_code == 422, no_key.text
    backwards = await biller.get(f"{ours}{REPORT}", since="2026-12-10", until="2026-12-01")
    assert backwards.status_code in {400, 422}, backwards.text
    assert "since" in backwards.text
