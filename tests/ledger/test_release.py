"""A held payment reviewed by a biller or supervisor: posted whole after its balance is checked again (one
that still does not balance only when the reviewer accepts the imbalance, BPR02's difference going to
unapplied), discarded with a reason, or routed to the practice it belongs to (one of the reviewer's) or to
the unassigned-ERA queue, and received there as an incoming payment is; once per payment (the same decision
again posts nothing twice, another is a 409), audited, and another practice's staff get 404."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, rows
from tests.coding.conftest import MakeStaff
from tests.ledger.support import (
    HoldPayment,
    apply_era,
    entry_count,
    era_file,
    paid_in_part,
    submitted_claim,
)
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


async def _events(owner_engine: AsyncEngine, tenant_id: uuid.UUID, event_type: str) -> list[Any]:
    return list(
        await rows(
            owner_engine,
            "SELECT detail FROM rcm.audit_event WHERE tenant_id = :t AND event_type = :e",
            t=tenant_id,
            e=event_type,
        )
    )


async def test_a_held_payment_routed_to_the_practice_it_belongs_to(
    *,
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    other_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    """B's claim paid in a payment the payer sent to A (wrong payee), held in A (BPR02 off by 5): routed to
    B, it is received there as an incoming payment is (held again, for its own review), nothing posted in A;
    once; audited in both trails. B's reviewer then posts it on B's claim."""
    claim, lines = await submitted_claim(claims, other_intake, other_practice)
    paid = paid_in_part(claim, lines)
    held = await apply_era(sessions, settings, practice, era_file(paid, trace="EFT-ROUTE1", off_by=5))
    assert held.held == 1
    [remittance] = await rows(
        owner_engine, "SELECT id FROM rcm.remittance WHERE tenant_id = :t", t=practice.id
    )
    url = f"/billing/remittances/{remittance.id}/release"
    body = {"action": "route", "reason": "payee is the other practice", "tenant": other_practice.slug}
    before = await entry_count(owner_engine, practice)

    # A biller of A alone: B is not a practice of theirs, the same 422 as an unknown slug; a route names one
    # destination, and only a route names one.
    only_a = await make_staff(Role.BILLER, practice)
    refused = await only_a.post(url, body)
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/tenant"]
    unknown = await only_a.post(url, {**body, "tenant": "no-such-practice"})
    assert (unknown.status_code, unknown.json()["detail"]) == (422, refused.json()["detail"])
    for wrong, pointer in (
        ({"action": "route", "reason": "nowhere"}, "/tenant"),
        ({**body, "unassigned": True}, "/unassigned"),
        ({"action": "discard", "reason": "gone", "tenant": other_practice.slug}, "/tenant"),
    ):
        answer = await only_a.post(url, wrong)
        assert answer.status_code == 422, answer.text
        assert [e["pointer"] for e in answer.json()["errors"]] == [pointer]
    mine = await only_a.post(url, {**body, "tenant": practice.slug})  # its own practice: post or discard it
    assert mine.status_code == 422, mine.text
    assert (
        await rows(owner_engine, "SELECT id FROM rcm.remittance WHERE tenant_id = :t", t=other_practice.id)
        == []
    )

    both = await make_staff(Role.BILLER, practice, other_practice)
    routed = await both.post(url, body)
    assert routed.status_code == 200, routed.text
    answer = routed.json()
    assert (answer["action"], answer["routed_to"], answer["queued_id"]) == (
        "routed",
        other_practice.slug,
        None,
    )
    result = answer["routed_result"]
    assert (result["posted"], [h["trace_number"] for h in result["held"]]) == (0, ["EFT-ROUTE1"])
    assert result["practices"] == {other_practice.slug: 1}
    assert await entry_count(owner_engine, practice) == before  # nothing posted in A
    received = await rows(
        owner_engine,
        "SELECT r.id, r.state, f.connector FROM rcm.remittance r JOIN rcm.x12_file f"
        " ON (f.tenant_id, f.id) = (r.tenant_id, r.x12_file_id) WHERE r.tenant_id = :t",
        t=other_practice.id,
    )
    assert [(r.state, r.connector) for r in received] == [("held", "upload")]

    # The same decision again answers it and sends nothing twice; any other is a 409.
    again = await both.post(url, body)
    assert again.status_code == 200, again.text
    assert (again.json()["action"], again.json()["routed_to"]) == ("routed", other_practice.slug)
    for other in (
        {"action": "route", "reason": "the queue then", "unassigned": True},
        {"action": "discard", "reason": "changed my mind"},
        {"action": "post", "reason": "changed my mind", "accept_imbalance": True},
    ):
        assert (await both.post(url, other)).status_code == 409
    assert (
        len(
            await rows(
                owner_engine, "SELECT id FROM rcm.remittance WHERE tenant_id = :t", t=other_practice.id
            )
        )
        == 1
    )
    listed = (await both.get("/billing/remittances", remittance_state="held")).json()["items"]
    assert {(r["tenant_id"], r["released"]) for r in listed} == {
        (str(practice.id), "routed"),
        (str(other_practice.id), None),
    }
    # Audited in both practices' trails: the decision in A's, the payment received in B's.
    [decided] = await _events(owner_engine, practice.id, "remittance.reviewed")
    assert (decided.detail["action"], decided.detail["routed_to"]) == ("routed", other_practice.slug)
    [arrived] = await _events(owner_engine, other_practice.id, "remittance.routed_by_hand")
    assert (arrived.detail["posted"], arrived.detail["held"]) == (0, 1)

    # B's own review posts it on B's claim.
    boss = await make_staff(Role.SUPERVISOR, other_practice)
    posted = await boss.post(
        f"/billing/remittances/{received[0].id}/release",
        {"action": "post", "reason": "payer confirmed", "accept_imbalance": True},
    )
    assert posted.status_code == 200, posted.text
    assert (posted.json()["claims_matched"], posted.json()["imbalance_cents"]) == (1, 5)
    ledger = (await other_intake.get(f"/claims/{claim.id}/ledger")).json()
    assert ledger["insurance_balance_cents"] == 0


async def test_a_held_payment_routed_to_the_unassigned_queue(
    *,
    hold: HoldPayment,
    practice: Tenant,
    other_practice: Tenant,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
    cli: Cli,
) -> None:
    """No practice of the reviewer's: routed to the unassigned-ERA queue, where the supervisors of the
    reviewer's other practices see it (not A's: A decided it is not theirs); by the operator's command too."""
    held = await hold(trace="EFT-ROUTE2", off_by=3)
    biller = await make_staff(Role.BILLER, practice, other_practice)
    before = await entry_count(owner_engine, practice)
    body = {"action": "route", "reason": "payee is no practice of ours", "unassigned": True}
    routed = await biller.post(held.url, body)
    assert routed.status_code == 200, routed.text
    answer = routed.json()
    assert (answer["action"], answer["routed_to"], answer["routed_result"]) == ("routed", None, None)
    queued_id = answer["queued_id"]
    assert queued_id is not None
    assert await entry_count(owner_engine, practice) == before
    theirs = await make_staff(Role.SUPERVISOR, other_practice)
    queue = (await theirs.get("/billing/unassigned-remittances")).json()
    assert [(q["id"], q["trace_number"]) for q in queue] == [(queued_id, "EFT-ROUTE2")]
    ours = await make_staff(Role.SUPERVISOR, practice)
    assert (await ours.get("/billing/unassigned-remittances")).json() == []
    assert (await biller.post(held.url, body)).json()["action"] == "routed"
    assert (
        await biller.post(held.url, {**body, "unassigned": False, "tenant": other_practice.slug})
    ).status_code == 409

    # The operator routes another held payment to a practice by slug, in one transaction.
    second = await hold(trace="EFT-ROUTE3", off_by=4)
    command = ["remit", "release", practice.slug, str(second.remittance_id), "--reason", "payee is B"]
    both = await cli(*command, "--route", other_practice.slug, "--unassigned")
    unknown = await cli(*command, "--route", "no-such-practice")
    done = await cli(*command, "--route", other_practice.slug)
    assert both.exit_code == 2
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, "refused: No active practice has this slug.")
    assert done.exit_code == 0, done.output
    decided = json.loads(done.stdout)
    assert (decided["routed_to"], decided["routed_result"]["held"][0]["trace_number"]) == (
        other_practice.slug,
        "EFT-ROUTE3",
    )
