"""A held payment reviewed by a biller or supervisor: posted whole after its balance is checked again (one
that still does not balance only when the reviewer accepts the imbalance, BPR02's difference going to
unapplied), or discarded with a reason; once per payment (the same decision again posts nothing twice,
another is a 409), audited, and another practice's staff get 404."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.claims.conftest import rows
from tests.coding.conftest import MakeStaff
from tests.ledger.support import HoldPayment, apply_era, entry_count, era_file
from tests.support import Api, Cli


async def test_a_held_payment_posted_after_review(
    *,
    hold: HoldPayment,
    intake: Api,
    practice: Tenant,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    held = await hold(trace="EFT-REL1", off_by=7)
    paid = held.paid
    biller = await make_staff(Role.BILLER, practice)
    listed = (await biller.get("/billing/remittances", remittance_state="held")).json()["items"]
    assert [(r["id"], r["trace_number"], r["released"]) for r in listed] == [
        (str(held.remittance_id), "EFT-REL1", None)
    ]
    before = await entry_count(owner_engine, practice)

    # Still off by 7 cents: refused without accept_imbalance, naming the reason; nothing written.
    refused = await biller.post(held.url, {"action": "post", "reason": "checked the EOB"})
    assert refused.status_code == 409, refused.text
    assert "off by 7 cents" in refused.json()["detail"]
    assert await entry_count(owner_engine, practice) == before

    # Another practice's biller: the same 404 as an unknown payment.
    stranger = await make_staff(Role.BILLER)
    assert (await stranger.post(held.url, {"action": "discard", "reason": "not mine"})).status_code == 404

    body = {"action": "post", "reason": "payer confirmed 7 cents extra", "accept_imbalance": True}
    posted = await biller.post(held.url, body)
    assert posted.status_code == 200, posted.text
    answer = posted.json()
    assert (answer["action"], answer["imbalance_cents"], answer["claims_matched"]) == ("posted", 7, 1)
    assert (answer["posted_cents"], answer["unapplied_cents"]) == (paid.paid, 7)
    ledger = (await intake.get(f"/claims/{held.claim.id}/ledger")).json()
    patient = sum(a.amount for line in paid.lines for a in line.adjustments if a.group == "PR")
    assert (ledger["insurance_balance_cents"], ledger["patient_balance_cents"]) == (0, patient)
    # The set's payments are BPR02 to the cent: the claim's and the 7 cents unapplied.
    cash = await rows(
        owner_engine,
        "SELECT e.account, sum(e.amount_cents) AS n FROM rcm.ledger_entry e JOIN rcm.ledger_posting p"
        " ON (p.tenant_id, p.id) = (e.tenant_id, e.posting_id)"
        " WHERE e.tenant_id = :t AND p.remittance_id = :r"
        " AND e.account IN ('payments', 'unapplied') GROUP BY e.account ORDER BY e.account",
        t=practice.id,
        r=held.remittance_id,
    )
    assert [(c.account, c.n) for c in cash] == [("payments", paid.paid + 7), ("unapplied", -7)]
    after = await entry_count(owner_engine, practice)

    # The same decision again posts nothing; another decision is a 409.
    again = await biller.post(held.url, body)
    assert again.status_code == 200, again.text
    assert again.json()["action"] == "posted"
    assert await entry_count(owner_engine, practice) == after
    assert (await biller.post(held.url, {"action": "discard", "reason": "too late"})).status_code == 409
    listed = (await biller.get("/billing/remittances", remittance_state="held")).json()["items"]
    assert [r["released"] for r in listed] == ["posted"]
    audited = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'remittance.reviewed'",
        t=practice.id,
    )
    assert audited[0].n == 1


async def test_a_held_payment_discarded_is_never_posted(
    *,
    hold: HoldPayment,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    held = await hold(trace="EFT-REL2", off_by=-3)
    boss = await make_staff(Role.SUPERVISOR, practice)
    before = await entry_count(owner_engine, practice)
    discarded = await boss.post(held.url, {"action": "discard", "reason": "payer recalled the EFT"})
    assert discarded.status_code == 200, discarded.text
    assert (discarded.json()["action"], discarded.json()["reason"]) == ("discarded", "payer recalled the EFT")
    refused = await boss.post(
        held.url, {"action": "post", "reason": "changed my mind", "accept_imbalance": True}
    )
    assert refused.status_code == 409
    assert await entry_count(owner_engine, practice) == before
    assert (await intake.get(f"/claims/{held.claim.id}/ledger")).json()["insurance_balance_cents"] == sum(
        line.charge_cents for line in held.lines
    )
    # A payment posted on arrival is not reviewed.
    posted_on_arrival = await apply_era(sessions, settings, practice, era_file(held.paid, trace="EFT-REL3"))
    assert posted_on_arrival.posted == 1
    posted = (await boss.get("/billing/remittances", remittance_state="posted")).json()["items"][0]["id"]
    answer = await boss.post(
        f"/billing/remittances/{posted}/release", {"action": "discard", "reason": "x" * 5}
    )
    assert answer.status_code == 409


async def test_rcm_remit_release_discards_a_held_payment(
    *, hold: HoldPayment, practice: Tenant, cli: Cli
) -> None:
    held = await hold(trace="EFT-CLI", off_by=2)
    command = ["remit", "release", practice.slug, str(held.remittance_id)]
    discarded = await cli(*command, "--discard", "--reason", "payer recalled it")
    refused = await cli(*command, "--post", "--reason", "retry")
    assert discarded.exit_code == 0, discarded.output
    assert json.loads(discarded.stdout)["action"] == "discarded"
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "refused: This payment was discarded after review already."
