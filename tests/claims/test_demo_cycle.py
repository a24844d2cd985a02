"""`make run`'s demo takes a share of each practice's encounters through scrub, claim, submission (a real
837P, or 837I for the hospital outpatient practice, to the sandbox payer), acknowledgment and adjudication,
and running it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm.cli import DEMO_SECRETS
from rcm.config import Settings
from rcm.demo import seed_demo
from tests.claims.conftest import rows
from tests.claims.submitting import sandbox_env  # noqa: F401 - the fixture


async def test_the_demo_runs_the_cycle_on_the_sandbox_payer(
    sandbox_env: Path,  # noqa: F811
    settings: Settings,
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in DEMO_SECRETS.items():
        monkeypatch.setenv(name, value)
    summary = await seed_demo(settings)
    assert "revenue cycle on the sandbox payer:" in summary, summary
    states = await rows(
        owner_engine,
        "SELECT c.state, count(*) FROM rcm.claim c JOIN rcm.tenant t ON t.id = c.tenant_id"
        " WHERE t.slug = 'sunrise-family-medicine' GROUP BY c.state",
    )
    by_state = dict(states)
    # Claims went out and came back answered: none is left ready or unsent.
    assert sum(by_state.values()) >= 4
    assert not set(by_state) & {"created", "ready"}
    assert set(by_state) & {"accepted", "rejected", "paid", "partially_paid", "denied"}
    batches = await rows(
        owner_engine,
        "SELECT b.status FROM rcm.submission_batch b JOIN rcm.tenant t ON t.id = b.tenant_id"
        " WHERE t.slug = 'sunrise-family-medicine'",
    )
    assert batches
    assert {status for (status,) in batches} == {"sent"}
    inbound = await rows(
        owner_engine,
        "SELECT f.kind, f.status FROM rcm.x12_file f JOIN rcm.tenant t ON t.id = f.tenant_id"
        " WHERE t.slug = 'sunrise-family-medicine' AND f.direction = 'inbound'",
    )
    assert {kind for kind, _ in inbound} >= {"999", "277CA"}
    assert {status for _, status in inbound} == {"processed"}
    # The hospital outpatient practice bills on the 837I, through the same cycle.
    hospital = await rows(
        owner_engine,
        "SELECT c.claim_type, c.state, b.claim_type AS batch_type, f.kind FROM rcm.claim c"
        " JOIN rcm.tenant t ON t.id = c.tenant_id"
        " JOIN rcm.submission_batch b ON b.tenant_id = c.tenant_id AND b.id = c.submission_batch_id"
        " JOIN rcm.x12_file f ON f.tenant_id = b.tenant_id AND f.submission_batch_id = b.id"
        " AND f.direction = 'outbound'"
        " WHERE t.slug = 'riverside-community-hospital'",
    )
    assert hospital
    assert {(r.claim_type, r.batch_type, r.kind) for r in hospital} == {
        ("institutional", "institutional", "837I")
    }
    assert {r.state for r in hospital} <= {"accepted", "paid", "partially_paid", "denied"}
    # The cycle ends with the payer's payments on the ledger, each remittance reconciled to the cent.
    assert "payments posted:" in summary, summary
    posted = await rows(
        owner_engine,
        "SELECT r.total_paid_cents, (SELECT sum(e.amount_cents) FROM rcm.ledger_posting p"
        "  JOIN rcm.ledger_entry e ON (e.tenant_id, e.posting_id) = (p.tenant_id, p.id)"
        "  WHERE (p.tenant_id, p.remittance_id) = (r.tenant_id, r.id) AND e.account = 'payments') AS cash"
        " FROM rcm.remittance r JOIN rcm.tenant t ON t.id = r.tenant_id"
        " WHERE t.slug = 'sunrise-family-medicine' AND r.state = 'posted'",
    )
    assert posted
    assert all(r.cash == r.total_paid_cents for r in posted)

    # Again: nothing new is scrubbed, batched or sent.
    again = await seed_demo(settings)
    assert "batch sent" not in again
    assert (
        dict(
            await rows(
                owner_engine,
                "SELECT c.state, count(*) FROM rcm.claim c JOIN rcm.tenant t ON t.id = c.tenant_id"
                " WHERE t.slug = 'sunrise-family-medicine' GROUP BY c.state",
            )
        )
        == by_state
    )


def test_make_runs_sandbox_rules_pay_partially_pay_and_deny_by_procedure(tmp_path: Path) -> None:
    import msgspec

    from rcm.demo_cycle import DEMO_PAYER_RULES, demo_payer_rules
    from sandbox_payer.rules import Outcome, Rules, load_rules

    settings = Settings(data_dir=tmp_path)
    path = demo_payer_rules(settings)
    assert path == tmp_path / "sandbox-payer" / "claims" / "rules.yaml"
    rules = load_rules(path.parent)  # what the sandbox payer reads
    assert rules == msgspec.yaml.decode(DEMO_PAYER_RULES.encode(), type=Rules)
    by_procedure = {p: r.outcome for r in rules.claims for p in (r.when.procedure or ())}
    assert by_procedure == {"99214": Outcome.DENY, "99203": Outcome.PARTIAL, "G0378": Outcome.PARTIAL}
    assert rules.claims[-1].outcome is Outcome.PAY  # everything else (the demo's 99213) is paid
    path.write_text("claims: []\n")  # an operator's own file is kept
    demo_payer_rules(settings)
    assert path.read_text() == "claims: []\n"
