"""Patients' money end to end: an 835's patient responsibility becomes the patient's balance (the sum of the
ledger's entries, aged); payments and refunds post to the ledger, a refund never past what was paid; a
payment plan's missed installments default it at the practice's limit; a statement run (a job with
progress, idempotent per cycle) writes a PDF, JSON and CSV per patient owing, writes small balances off and
flags old accounts; the PDF renders (pypdfium2) with the practice, the amount due and the visits; no patient
name is in any file name, blob row, job message or run; another practice sees none of it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from datetime import date, timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.patient_billing import schemas, service
from rcm.patient_billing.models import PaymentMethod, StatementRunStatus
from rcm.patient_billing.statements import fail_run, run_job, start_cycles
from rcm.patient_billing.tasks import run_statements
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import apply_manifest
from rcm.worker import encode_payload_roundtrip
from tests.claims.conftest import Claims, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.ledger.support import apply_era, era_file, paid_in_part, submitted_claim
from tests.support import Api
from tests.webhooks.conftest import subscribe

STATEMENTS = {
    "minimum_balance_cents": 500,
    "small_balance_write_off_cents": 300,
    "collections_after_days": 60,
    "missed_installments_to_default": 2,
    "installment_grace_days": 5,
    "pay_url": "https://pay.example.test/acme",
    "pay_phone": "5550100200",
    "branding": {"name": "Acme Family Medicine", "color": "#AA2233"},
}


async def _with_rules(control: async_sessionmaker[AsyncSession], practice: Tenant) -> Tenant:
    """The practice's manifest with statement rules, applied as the platform applies manifests."""
    document = {**practice.manifest.document(), "statements": STATEMENTS}
    async with platform_transaction(control) as session:
        tenant, _ = await apply_manifest(session, validate_manifest(document))
    return tenant


async def _billed(
    claims: Claims, intake: Api, practice: Tenant, sessions: Any, settings: Settings, *, trace: str
) -> tuple[Any, int]:
    """A claim built, submitted and paid by an 835 (60% paid, 25% CO-45, the rest PR-2): (claim, PR)."""
    claim, lines = await submitted_claim(claims, intake, practice)
    paid = paid_in_part(claim, lines)
    outcome = await apply_era(
        sessions, settings, practice, era_file(paid, trace=trace, control=int(trace[-3:]))
    )
    assert outcome.posted == 1
    patient = sum(a.amount for line in paid.lines for a in line.adjustments if a.group == "PR")
    return claim, patient


async def _biller(client: AsyncTestClient[Litestar], make_staff: MakeStaff, practice: Tenant) -> Api:
    staff = await make_staff(Role.BILLER, practice)
    return Api(client, staff.token, practice.slug, tenant_id=str(practice.id))


async def _entries_sum(owner_engine: AsyncEngine, tenant_id: uuid.UUID, patient_id: uuid.UUID) -> int:
    found = await rows(
        owner_engine,
        "SELECT coalesce(sum(e.amount_cents), 0) AS n FROM rcm.ledger_entry e JOIN rcm.claim c"
        " ON (c.tenant_id, c.id) = (e.tenant_id, e.claim_id)"
        " WHERE e.tenant_id = :t AND c.patient_id = :p AND e.account = 'patient_receivable'",
        t=tenant_id,
        p=patient_id,
    )
    return int(found[0].n)


async def _dated_responsibility(
    owner_engine: AsyncEngine, tenant_id: uuid.UUID, claim_id: uuid.UUID, *, days_ago: int
) -> None:
    """A balanced posting on the claim's patient receivable (+1 and -1 cent) dated ``days_ago``: the
    balance is unchanged, and the patient's share on the claim dates from then."""
    posting = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO rcm.ledger_posting (tenant_id, id, created_at, source, claim_id)"
                " VALUES (:t, :p, now() - make_interval(days => :d), 'remittance_claim', :c)"
            ),
            {"t": tenant_id, "p": posting, "d": days_ago, "c": claim_id},
        )
        # Both entries in one statement, as the app posts: each statement's postings must balance.
        await conn.execute(
            text(
                "INSERT INTO rcm.ledger_entry (tenant_id, id, created_at, posting_id, account,"
                " amount_cents, claim_id, remark_codes) SELECT :t, gen_random_uuid(),"
                " now() - make_interval(days => :d), :p, 'patient_receivable', amount, :c, '{}'"
                " FROM unnest(ARRAY[1, -1]) AS amount"
            ),
            {"t": tenant_id, "d": days_ago, "p": posting, "c": claim_id},
        )


async def test_balance_payments_and_refunds(
    *,
    client: AsyncTestClient[Litestar],
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    claim, patient = await _billed(claims, intake, practice, sessions, settings, trace="EFT9001")
    patient_id = claim.patient_id
    biller = await _biller(client, make_staff, practice)

    balance = (await intake.get(f"/patients/{patient_id}/balance")).json()
    assert balance["balance_cents"] == balance["due_cents"] == patient > 0
    assert balance["balance_cents"] == await _entries_sum(owner_engine, practice.id, patient_id)
    assert balance["aging"]["current"] == patient
    [visit] = balance["visits"]
    assert (visit["claim_id"], visit["balance_cents"], visit["insurance_pending"]) == (
        str(claim.id),
        patient,
        False,
    )
    audited = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event WHERE tenant_id = :t"
        " AND event_type = 'patient.balance_read'",
        t=practice.id,
    )
    assert audited[0].n == 1

    # The practice's system may read, and post what its front desk collects, but never refund.
    denied = await intake.post(
        f"/patients/{patient_id}/refunds", {"payment_id": str(uuid.uuid4()), "amount_cents": 1}
    )
    assert denied.status_code == 403
    # Bad input names the field; more than owed is refused; nothing is posted.
    bad = await biller.post(f"/patients/{patient_id}/payments", {"amount_cents": 0, "method": "card"})
    assert bad.status_code in (400, 422)
    assert "/amount_cents" in bad.text
    too_much = await biller.post(
        f"/patients/{patient_id}/payments", {"amount_cents": patient + 1, "method": "card"}
    )
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["errors"][0]["pointer"] == "/amount_cents"

    key = uuid.uuid4().hex
    body = {"amount_cents": patient - 200, "method": "card", "reference": "R-1"}
    paid = await biller.post(f"/patients/{patient_id}/payments", body, key=key)
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance_cents"] == 200
    assert paid.json()["allocations"][0]["claim_id"] == str(claim.id)
    again = await biller.post(f"/patients/{patient_id}/payments", body, key=key)
    assert again.json()["id"] == paid.json()["id"]
    assert await _entries_sum(owner_engine, practice.id, patient_id) == 200

    # Refunds: never more than what is left of the payment.
    payment_id = paid.json()["id"]
    over = await biller.post(
        f"/patients/{patient_id}/refunds", {"payment_id": payment_id, "amount_cents": patient - 199}
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["pointer"] == "/amount_cents"
    first = await biller.post(
        f"/patients/{patient_id}/refunds", {"payment_id": payment_id, "amount_cents": 100}
    )
    assert first.status_code == 201, first.text
    assert first.json()["balance_cents"] == 300
    left = patient - 300
    over_after = await biller.post(
        f"/patients/{patient_id}/refunds", {"payment_id": payment_id, "amount_cents": left + 1}
    )
    assert over_after.status_code == 422
    rest = await biller.post(
        f"/patients/{patient_id}/refunds", {"payment_id": payment_id, "amount_cents": left}
    )
    assert rest.status_code == 201
    assert rest.json()["balance_cents"] == patient
    not_a_payment = await biller.post(
        f"/patients/{patient_id}/refunds", {"payment_id": rest.json()["id"], "amount_cents": 1}
    )
    assert not_a_payment.status_code == 422
    assert not_a_payment.json()["errors"][0]["pointer"] == "/payment_id"

    after = (await biller.get(f"/patients/{patient_id}/balance")).json()
    assert after["balance_cents"] == patient == await _entries_sum(owner_engine, practice.id, patient_id)
    history = (await biller.get(f"/patients/{patient_id}/payments")).json()
    assert [p["kind"] for p in history] == ["payment", "refund", "refund"]
    front_desk = await intake.post(
        f"/patients/{patient_id}/payments", {"amount_cents": 100, "method": "cash", "reference": "desk-1"}
    )
    assert front_desk.status_code == 201, front_desk.text
    assert front_desk.json()["balance_cents"] == patient - 100
    assert await _entries_sum(owner_engine, practice.id, patient_id) == patient - 100
    # Every posting balances and the ledger refuses to be rewritten (its own tests); the payment rows too.
    postings = await rows(
        owner_engine,
        "SELECT p.source, sum(e.amount_cents) AS total FROM rcm.ledger_posting p JOIN rcm.ledger_entry e"
        " ON (e.tenant_id, e.posting_id) = (p.tenant_id, p.id) WHERE p.tenant_id = :t"
        " AND p.source IN ('patient_payment', 'patient_refund') GROUP BY p.id, p.source",
        t=practice.id,
    )
    assert sorted(p.source for p in postings) == [
        "patient_payment",
        "patient_payment",
        "patient_refund",
        "patient_refund",
    ]
    assert all(p.total == 0 for p in postings)

    # Another practice: the same 404 for the patient's balance, payments and refunds.
    assert (await other_intake.get(f"/patients/{patient_id}/balance")).status_code == 404
    stranger = await make_staff(Role.BILLER)
    outsider = Api(client, stranger.token, practice.slug)
    assert (await outsider.get(f"/patients/{patient_id}/balance")).status_code == 404
    assert (
        await outsider.post(f"/patients/{patient_id}/payments", {"amount_cents": 1, "method": "cash"})
    ).status_code == 404


async def _time_passes(owner_engine: AsyncEngine, tenant_id: uuid.UUID, plan_id: str, *, days: int) -> None:
    """The plan's installments fall due ``days`` earlier: as if that many days had passed."""
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE rcm.payment_plan_installment SET due_on = due_on - CAST(:d AS integer)"
                " WHERE tenant_id = :t AND plan_id = :p"
            ),
            {"d": days, "t": tenant_id, "p": uuid.UUID(plan_id)},
        )


async def test_payment_plan_missed_installments_default_it(
    *,
    client: AsyncTestClient[Litestar],
    claims: Claims,
    intake: Api,
    practice: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    practice = await _with_rules(control_sessions, practice)
    claim, patient = await _billed(claims, intake, practice, sessions, settings, trace="EFT9002")
    biller = await _biller(client, make_staff, practice)
    url = f"/patients/{claim.patient_id}/payment-plans"
    first_due = date.today() + timedelta(days=1)
    installment = -(-patient // 4)
    bad = await biller.post(url, {"installment_cents": patient + 1, "first_due_on": first_due.isoformat()})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/installment_cents"
    for far in ("9999-12-01", (first_due - timedelta(days=2)).isoformat()):
        refused = await biller.post(url, {"installment_cents": installment, "first_due_on": far})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["pointer"] == "/first_due_on"
    made = await biller.post(url, {"installment_cents": installment, "first_due_on": first_due.isoformat()})
    assert made.status_code == 201, made.text
    plan = made.json()
    assert plan["total_cents"] == patient
    assert sum(i["amount_cents"] for i in plan["installments"]) == patient
    assert len(plan["installments"]) == 4
    assert (
        await biller.post(url, {"installment_cents": 100, "first_due_on": first_due.isoformat()})
    ).status_code == 409

    # The first installment paid on time.
    paid = await biller.post(
        f"/patients/{claim.patient_id}/payments", {"amount_cents": installment, "method": "cash"}
    )
    assert paid.status_code == 201
    assert paid.json()["plan_id"] == plan["id"]
    # Weeks pass (the schedule moved back, as the calendar would move forward): the second installment is
    # past due and grace, so missed; the plan stands (the practice's limit is 2).
    await _time_passes(owner_engine, practice.id, plan["id"], days=31 + 6)
    future = await biller.post(
        "/payment-plans/review", {"as_of": (date.today() + timedelta(days=5)).isoformat()}
    )
    assert future.status_code == 422
    assert future.json()["errors"][0]["pointer"] == "/as_of"
    review = await biller.post("/payment-plans/review", {})
    assert review.json() == {"installments_missed": 1, "plans_defaulted": 0}
    [seen] = (await biller.get(url)).json()
    assert [i["state"] for i in seen["installments"]] == ["paid", "missed", "due", "due"]
    assert (seen["state"], seen["missed_count"]) == ("active", 1)
    # Reviewing the same day again changes nothing; a month on, the third missed too defaults the plan.
    again = await biller.post("/payment-plans/review", {})
    assert again.json() == {"installments_missed": 0, "plans_defaulted": 0}
    await _time_passes(owner_engine, practice.id, plan["id"], days=30)
    review = await biller.post("/payment-plans/review", {})
    assert review.json() == {"installments_missed": 1, "plans_defaulted": 1}
    [seen] = (await biller.get(url)).json()
    assert (seen["state"], seen["missed_count"]) == ("defaulted", 2)
    # A defaulted plan is not cancelled; a new plan may be made, and cancelled.
    refused = await biller.post(f"{url}/{plan['id']}/cancel")
    assert refused.status_code == 409, refused.text
    again_plan = await biller.post(
        url, {"installment_cents": installment, "first_due_on": first_due.isoformat()}
    )
    assert again_plan.status_code == 201, again_plan.text
    assert again_plan.json()["total_cents"] == patient - installment
    cancelled = await biller.post(f"{url}/{again_plan.json()['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    assert (await biller.post(f"{url}/{uuid.uuid4()}/cancel")).status_code == 404


async def test_statement_run(
    *,
    client: AsyncTestClient[Litestar],
    claims: Claims,
    intake: Api,
    other_intake: Api,
    practice: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    practice = await _with_rules(control_sessions, practice)
    staff = await make_staff(Role.BILLER, practice)
    biller, biller_subject = Api(client, staff.token, practice.slug), str(staff.user.id)
    # Three patients: one owing a statement, one owing a small balance, one owing under the minimum.
    owing, owed = await _billed(claims, intake, practice, sessions, settings, trace="EFT9101")
    small, small_owed = await _billed(claims, intake, practice, sessions, settings, trace="EFT9102")
    paid = await biller.post(
        f"/patients/{small.patient_id}/payments", {"amount_cents": small_owed - 250, "method": "card"}
    )
    assert paid.status_code == 201
    names = []
    for claim in (owing, small):
        names.append((await intake.get(f"/patients/{claim.patient_id}")).json()["family_name"])

    # The first patient became responsible 90 days ago (the practice sends accounts to collections after
    # 60): a posting dated then, written beneath the app as history would have left it.
    await _dated_responsibility(owner_engine, practice.id, owing.id, days_ago=90)
    as_of = date.today()
    for wrong in (as_of - timedelta(days=200), as_of + timedelta(days=5)):
        refused = await biller.post("/statement-runs", {"as_of": wrong.isoformat()})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["pointer"] == "/as_of"
    # The practice's portal is told of each statement and of the run's end.
    await subscribe(intake, "https://portal.example.test/hooks", "statement.ready", "statement_run.completed")
    started = await biller.post("/statement-runs", {"as_of": as_of.isoformat()})
    assert started.status_code == 202, started.text
    run = started.json()
    assert (run["status"], run["patients_done"]) == ("queued", 0)
    # Asking again in the same cycle answers the same run.
    same = await biller.post("/statement-runs", {"as_of": as_of.isoformat()})
    assert (same.status_code, same.json()["id"]) == (200, run["id"])

    # The job, as the worker runs it (its payload round-tripped through JSON): it dies after one patient...
    payload = encode_payload_roundtrip(run_statements.message(tenant_id=practice.id, run_id=run["id"]))
    assert set(payload) == {"tenant_id", "run_id"}
    keystore, store = KeyStore(key_provider(settings)), BlobStore()

    async def go(stop: int | None) -> StatementRunStatus:
        return await run_job(
            sessions,
            keystore,
            store,
            TenantId(uuid.UUID(payload["tenant_id"])),
            uuid.UUID(payload["run_id"]),
            stop_after=stop,
        )

    assert await go(1) == StatementRunStatus.RUNNING
    partial = (await biller.get(f"/statement-runs/{run['id']}")).json()
    assert (partial["status"], partial["patients_total"], partial["patients_done"]) == ("running", 2, 1)
    # ... and is redelivered: it resumes, and a third delivery does nothing more.
    assert await go(None) == StatementRunStatus.DONE
    assert await go(None) == StatementRunStatus.DONE
    done = (await intake.get(f"/statement-runs/{run['id']}")).json()
    assert (done["status"], done["patients_total"], done["patients_done"]) == ("done", 2, 2)
    assert (done["statements"], done["written_off"], done["written_off_cents"], done["collections"]) == (
        1,
        1,
        250,
        1,
    )
    # The job acted as the biller who asked: its events name them.
    actors = await rows(
        owner_engine,
        "SELECT DISTINCT actor_subject FROM rcm.audit_event WHERE tenant_id = :t"
        " AND event_type IN ('statement.create', 'statement.write_off')",
        t=practice.id,
    )
    assert [a.actor_subject for a in actors] == [biller_subject]
    listed = (await intake.get("/statement-runs")).json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]

    statements = (await intake.get(f"/statement-runs/{run['id']}/statements")).json()
    by_patient = {s["patient_id"]: s for s in statements}
    sent = by_patient[str(owing.patient_id)]
    assert (sent["outcome"], sent["amount_due_cents"], sent["collections"]) == ("sent", owed, True)
    assert by_patient[str(small.patient_id)]["outcome"] == "written_off"
    history = (await intake.get(f"/patients/{owing.patient_id}/statements")).json()
    assert [h["id"] for h in history] == [sent["id"]]
    events = await rows(
        owner_engine,
        "SELECT event_type, payload FROM rcm.webhook_delivery WHERE tenant_id = :t"
        " AND event_type LIKE 'statement%' ORDER BY created_at",
        t=practice.id,
    )
    assert [e.event_type for e in events] == ["statement.ready", "statement_run.completed"]
    ready, completed = (json.loads(e.payload)["data"] for e in events)
    assert ready == {
        "statement_id": sent["id"],
        "run_id": run["id"],
        "patient_id": str(owing.patient_id),
        "files": f"/api/v1/tenants/{practice.slug}/statements/{sent['id']}",
    }
    assert completed == {"run_id": run["id"], "statements": 1, "written_off": 1, "collections": 1}
    assert sent["files"] == ["pdf", "json", "csv"]
    # The small balance was written off on the ledger: the patient owes nothing now.
    assert (await intake.get(f"/patients/{small.patient_id}/balance")).json()["balance_cents"] == 0

    # The PDF: a file named by the statement's id, rendered to an image, its text read back.
    pdf = await intake.get(f"/statements/{sent['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"].startswith("application/pdf")
    assert pdf.headers["content-disposition"] == f'attachment; filename="statement-{sent["id"]}.pdf"'
    document = pdfium.PdfDocument(pdf.content)
    page = document[0]
    image = page.render(scale=1).to_pil()
    assert image.size[0] > 500
    assert image.convert("RGB").getpixel((10, 10)) == (0xAA, 0x22, 0x33)  # the practice's colour band
    text = page.get_textpage().get_text_range()
    dollars = f"${owed // 100:,}.{owed % 100:02d}"
    assert "Acme Family Medicine" in text
    assert f"Amount due: {dollars}" in text
    assert f"{owing.service_date.isoformat()}" in text
    assert "Dr Example Fake: 99213" in text  # the visit's rendering provider and its lines
    assert names[0] in text
    assert "https://pay.example.test/acme" in text
    document.close()
    data = (await intake.get(f"/statements/{sent['id']}/json")).json()
    assert data["amount_due_cents"] == owed
    assert data["practice"]["name"] == "Acme Family Medicine"
    assert [v["claim_id"] for v in data["visits"]] == [str(owing.id)]
    table = (await intake.get(f"/statements/{sent['id']}/csv")).text
    assert table.splitlines()[0].startswith("statement_id,statement_date,service_date,claim_id,provider")
    assert str(owing.id) in table
    assert (await intake.get(f"/statements/{sent['id']}/xml")).status_code == 404
    downloads = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event WHERE tenant_id = :t"
        " AND event_type = 'statement.download'",
        t=practice.id,
    )
    assert downloads[0].n == 3

    # No PHI anywhere a name could leak: log records, blob rows, the run, statement rows, audit events.
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert logs, "no log records: the check would prove nothing"
    for name in names:
        assert name not in logs
        for table_name in ("blob", "statement_run", "statement", "audit_event", "webhook_delivery"):
            leaked = await rows(
                owner_engine,
                f"SELECT count(*) AS n FROM rcm.{table_name} t WHERE t.tenant_id = :t"  # noqa: S608
                " AND t::text ILIKE :name",
                t=practice.id,
                name=f"%{name}%",
            )
            assert leaked[0].n == 0, table_name
        assert name not in started.text + done.__repr__() + str(statements)

    # Another practice: 404 for the run, its statements and their files.
    assert (await other_intake.get(f"/statement-runs/{run['id']}")).status_code == 404
    assert (await other_intake.get(f"/statement-runs/{run['id']}/statements")).status_code == 404
    assert (await other_intake.get(f"/statements/{sent['id']}/pdf")).status_code == 404
    assert (await other_intake.get("/statement-runs")).json()["items"] == []


def test_pdf_renders_without_a_database() -> None:
    """The renderer alone: a statement with two visits renders one page whose text has every visit line."""
    from rcm.patient_billing import render

    visits = [
        render.Visit(
            service_date=date(2026, 3, day),
            claim_id=uuid.uuid4(),
            provider="Dr Example Fake" if day == 2 else None,
            lines=[render.Line(procedure_code=code, modifiers=["25"], units=1, charge_cents=12500)],
            charges_cents=12500,
            insurance_paid_cents=7500,
            adjustments_cents=3125,
            patient_paid_cents=0,
            written_off_cents=0,
            balance_cents=1875,
            insurance_pending=False,
        )
        for day, code in ((2, "99213"), (9, "99214"))
    ]
    doc = render.StatementDoc(
        statement_id=uuid.uuid4(),
        statement_date=date(2026, 4, 1),
        account="ABC123",
        practice=render.Party(name="Zoë Clinic", address=["1 Main St", "Springfield, IL 62701"]),
        brand_color="#1F4E79",
        patient=render.Party(name="Pat Example", address=["2 Side St"]),
        amount_due_cents=3750,
        balance_cents=3750,
        pending_insurance_cents=0,
        aging=schemas.BalanceAging(current=1875, days_31_60=1875),
        visits=visits,
        how_to_pay=render.HowToPay(text="Mail a check to 1 Main St."),
    )
    document = pdfium.PdfDocument(io.BytesIO(render.to_pdf(doc)))
    assert len(document) == 1
    text = document[0].get_textpage().get_text_range()
    for expected in (
        "Zoë Clinic",
        "Amount due: $37.50",
        "2026-03-02",
        "Dr Example Fake: 99213-25",
        "2026-03-09",
        "Visit: 99214-25",
    ):
        assert expected in text, expected
    document.close()


async def test_two_payments_at_once_never_exceed_the_balance(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """Two clerks post the whole balance at the same moment: the patient's row lock orders them, the second
    finds nothing owed and is refused; one payment reaches the ledger."""
    claim, patient = await _billed(claims, intake, practice, sessions, settings, trace="EFT9201")

    async def pay() -> object:
        async with practice_scope(sessions, settings, practice) as scope:
            return await service.post_payment(
                scope,
                claim.patient_id,
                schemas.PatientPaymentCreate(amount_cents=patient, method=PaymentMethod.CASH),
            )

    results = await asyncio.gather(pay(), pay(), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["InvalidInput", "tuple"]
    assert await _entries_sum(owner_engine, practice.id, claim.patient_id) == 0
    payments = await rows(
        owner_engine, "SELECT count(*) AS n FROM rcm.patient_payment WHERE tenant_id = :t", t=practice.id
    )
    assert payments[0].n == 1
    # The payment rows are append-only like the ledger.
    with pytest.raises(DBAPIError, match="append-only"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text("UPDATE rcm.patient_payment SET amount_cents = 1 WHERE tenant_id = :t"),
                {"t": practice.id},
            )


async def test_automatic_cycles_start_one_run_per_cycle(
    *,
    practice: Tenant,
    other_practice: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """The scheduler's pass: a practice asking for automatic runs gets this cycle's run, once; a practice
    that does not gets none."""
    document = {**practice.manifest.document(), "statements": {**STATEMENTS, "automatic": True}}
    async with platform_transaction(control_sessions) as session:
        await apply_manifest(session, validate_manifest(document))
    keystore = KeyStore(key_provider(settings))
    tenants = [TenantId(practice.id), TenantId(other_practice.id)]
    assert await start_cycles(sessions, keystore, tenants) == 1
    assert await start_cycles(sessions, keystore, tenants) == 0
    runs = await rows(
        owner_engine,
        "SELECT tenant_id, status FROM rcm.statement_run WHERE tenant_id IN (:a, :b)",
        a=practice.id,
        b=other_practice.id,
    )
    assert [(r.tenant_id, r.status) for r in runs] == [(practice.id, "queued")]


async def test_a_failed_run_is_restarted_by_asking_again(
    *,
    client: AsyncTestClient[Litestar],
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    make_staff: MakeStaff,
) -> None:
    biller = await _biller(client, make_staff, practice)
    run = (await biller.post("/statement-runs", {})).json()
    keystore, tenant_id = KeyStore(key_provider(settings)), TenantId(practice.id)
    # The worker gave up on it: the run says so, with a fixed reason.
    await fail_run(sessions, keystore, tenant_id, uuid.UUID(run["id"]))
    failed = (await biller.get(f"/statement-runs/{run['id']}")).json()
    assert (failed["status"], failed["failure"]) == ("failed", "the run failed after its retries; ask again")
    # Asking again for the cycle sends the same run to the worker once more.
    again = await biller.post("/statement-runs", {})
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (202, run["id"], "queued")
    assert (
        await run_job(sessions, keystore, BlobStore(), tenant_id, uuid.UUID(run["id"]))
        == StatementRunStatus.DONE
    )
    done = await biller.post("/statement-runs", {})
    assert (done.status_code, done.json()["status"], done.json()["failure"]) == (200, "done", None)


async def test_bad_bodies_are_4xx_naming_the_field(
    *,
    client: AsyncTestClient[Litestar],
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    claim, _ = await _billed(claims, intake, practice, sessions, settings, trace="EFT9301")
    biller = await _biller(client, make_staff, practice)
    base = f"/patients/{claim.patient_id}"
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"{base}/payments", {"amount_cents": "100", "method": "card"}, "/amount_cents"),
        (f"{base}/payments", {"amount_cents": -5, "method": "card"}, "/amount_cents"),
        (f"{base}/payments", {"amount_cents": 10**12, "method": "card"}, "/amount_cents"),
        (f"{base}/payments", {"amount_cents": 100, "method": "bitcoin"}, "/method"),
        (f"{base}/payments", {"amount_cents": 100}, "/method"),
        (f"{base}/payments", {"amount_cents": 100, "method": "card", "ssn": "x"}, "/ssn"),
        (f"{base}/payments", {"amount_cents": 100, "method": "card", "reference": "<script>"}, "/reference"),
        (f"{base}/refunds", {"payment_id": "nope", "amount_cents": 1}, "/payment_id"),
        (f"{base}/refunds", {"payment_id": str(uuid.uuid4()), "amount_cents": 1}, "/payment_id"),
        (f"{base}/payment-plans", {"installment_cents": 100, "first_due_on": "soon"}, "/first_due_on"),
        (
            f"{base}/payment-plans",
            {"installment_cents": 100, "first_due_on": date.today().isoformat(), "interval_days": 1},
            "/interval_days",
        ),
        ("/statement-runs", {"as_of": "yesterday"}, "/as_of"),
        ("/payment-plans/review", {"as_of": "1850-01-01"}, "/as_of"),
    ]
    for path, body, pointer in cases:
        response = await biller.post(path, body)
        assert 400 <= response.status_code < 500, (path, body, response.text)
        assert pointer in [e["pointer"] for e in response.json().get("errors", [])], (
            path,
            body,
            response.text,
        )
    # Nothing was written by any of them.
    written = await rows(
        owner_engine,
        "SELECT (SELECT count(*) FROM rcm.patient_payment WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM rcm.payment_plan WHERE tenant_id = :t)"
        " + (SELECT count(*) FROM rcm.statement_run WHERE tenant_id = :t) AS n",
        t=practice.id,
    )
    assert written[0].n == 0
