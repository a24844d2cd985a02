"""Denials end to end: an 835 applied to a practice's claims records its denials (classified, with the
payer's appeal deadline) and opens denial items ordered by that deadline; a biller appeals (letter PDF,
attachment, submission, outcome); the practice's template is sandboxed; the analytics count and sum.
Another practice never sees any of it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import msgspec
import pypdfium2 as pdfium
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.repository import ClaimRepository
from rcm.claims.responses import Practice, apply_one
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Role, system_principal
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.x12.remittance_model import Adjustment
from tests.claims.conftest import DEMO_CODED, Claims, enrolled_practice, practice_scope, rows
from tests.coding.conftest import MakeStaff
from tests.conftest import practice_api_for
from tests.x12 import remittances as r


async def _submitted(claims: Claims, api: Any, tenant: Tenant, payer_id: str) -> tuple[uuid.UUID, str]:
    claim_id = await claims.new(api, tenant, payer_id=payer_id)
    await claims.walk(tenant, claim_id, ClaimState.SUBMITTED)
    async with practice_scope(claims.sessions, claims.settings, tenant) as scope:
        claim = await scope.repo(ClaimRepository).get(claim_id)
    assert claim is not None
    return claim_id, claim.patient_control_number


async def _apply(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    *claims: Any,
    control_number: int = 1,
) -> None:
    """The 835 kept as received and applied as the fetch job applies it."""
    data = r.write(r.remittance(tuple(claims)), control_number=control_number).encode()
    async with practice_scope(sessions, settings, tenant) as scope:
        row, _ = await files.keep(scope, BlobStore(), data, direction=Direction.INBOUND, connector="sandbox")
    practice = Practice(
        sessions=sessions,
        keystore=KeyStore(key_provider(settings)),
        tenant_id=TenantId(tenant.id),
        actor=system_principal("claims.fetch_responses"),
        request=RequestInfo(request_id="denials-test", trace_id=""),
    )
    outcome = await apply_one(practice, BlobStore(), row.id)
    assert outcome.error is None


def _pcn(claim: Any, pcn: str) -> Any:
    return msgspec.structs.replace(claim, patient_control_number=pcn, payer_claim_control_number=f"ICN{pcn}")


def _pdf_text(data: bytes) -> str:
    page = pdfium.PdfDocument(data)[0]
    assert page.render(scale=1).to_pil().size[0] > 500
    return " ".join(page.get_textpage().get_text_range().split())


async def test_denials_are_recorded_queued_appealed_and_counted_per_practice(
    *,
    claims: Claims,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    payers = [
        {"payer_id": "DEMO-MCR", "name": "Demo Medicare"},  # appeal_days 120 in the shipped directory
        {"payer_id": "DEMO-BCX", "name": "Demo Blue Cross"},  # 180
    ]
    a = await enrolled_practice(control_sessions, "den-a", payers=payers)
    b = await enrolled_practice(control_sessions, "den-b", payers=payers)
    api_a = await practice_api_for(client, a, sessions, settings)
    api_b = await practice_api_for(client, b, sessions, settings)
    bcx_claim, bcx_pcn = await _submitted(claims, api_a, a, "DEMO-BCX")
    mcr_claim, mcr_pcn = await _submitted(claims, api_a, a, "DEMO-MCR")
    theirs, theirs_pcn = await _submitted(claims, api_b, b, "DEMO-MCR")

    partial = r.claim(
        1,
        (
            r.line(15000, 9600, (Adjustment(group="CO", reason="45", amount=5400),), number=1),
            r.line(8000, 0, (Adjustment(group="CO", reason="97", amount=8000),), code="93000", number=2),
        ),
    )
    await _apply(sessions, settings, a, _pcn(r.denied_claim(2), mcr_pcn), _pcn(partial, bcx_pcn))
    await _apply(sessions, settings, b, _pcn(r.denied_claim(3), theirs_pcn))

    found = await rows(
        owner_engine,
        "SELECT claim_id, line_number, procedure_code, carc, category, denied_cents, remitted_on,"
        " appeal_deadline, status FROM rcm.denial WHERE tenant_id = :t ORDER BY appeal_deadline",
        t=a.id,
    )
    remitted = date(2026, 12, 1)  # BPR16
    assert [tuple(f) for f in found] == [
        (mcr_claim, 1, "97110", "50", "medical_necessity", 20000, remitted, date(2027, 3, 31), "open"),
        (bcx_claim, 2, "93000", "97", "bundling", 8000, remitted, date(2027, 5, 30), "open"),
    ]
    items = await rows(
        owner_engine,
        "SELECT subject_id, reason, due_at FROM rcm.work_item WHERE tenant_id = :t AND kind = 'billing'"
        " ORDER BY due_at",
        t=a.id,
    )
    assert [(i.subject_id, i.reason, i.due_at.date()) for i in items] == [
        (mcr_claim, "denial", date(2027, 3, 31)),
        (bcx_claim, "denial", date(2027, 5, 30)),
    ]

    biller = await make_staff(Role.BILLER, a)
    # The queue hands out the denial whose appeal window closes first.
    leased = await biller.post("/billing/next")
    assert leased.status_code == 200, leased.text
    assert (leased.json()["item"]["subject_id"], leased.json()["item"]["reason"]) == (
        str(mcr_claim),
        "denial",
    )

    listed = await biller.get(f"/tenants/{a.slug}/denials")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [d["claim_id"] for d in body] == [str(mcr_claim), str(bcx_claim)]
    assert body[0]["days_left"] == (date(2027, 3, 31) - date.today()).days
    # Practice B's denial is never A's, and A's biller cannot reach B's list.
    assert str(theirs) not in {d["claim_id"] for d in body}
    assert (await biller.get(f"/tenants/{b.slug}/denials")).status_code == 404

    # A template that tries to escape the sandbox is refused by line; a good one is saved.
    bad = await biller.put(
        f"/tenants/{a.slug}/appeal-templates/firm", {"body": "Dear payer,\n{{ claim.__class__.__mro__ }}"}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["pointer"] == "/body"
    assert bad.json()["errors"][0]["detail"].startswith("line 2: ")
    good = await biller.put(
        f"/tenants/{a.slug}/appeal-templates/firm",
        {
            "body": "FIRM APPEAL for {{ claim.payer_claim_control_number }}\n"
            "{% for d in denials %}{{ d.adjustments|join(',') }} {{ d.category }}\n{% endfor %}{{ argument }}"
        },
    )
    assert good.status_code == 200, good.text

    created = await biller.post(
        f"/tenants/{a.slug}/appeals",
        {
            "claim_id": str(mcr_claim),
            "argument": "Physical therapy was ordered after surgery.",
            "template": "firm",
        },
    )
    assert created.status_code == 201, created.text
    appeal = created.json()
    letter = await client.get(
        f"/api/v1/tenants/{a.slug}/appeals/{appeal['id']}/letter", headers=biller.headers()
    )
    assert letter.status_code == 200
    assert letter.headers["content-type"].startswith("application/pdf")
    assert str(mcr_pcn) not in letter.headers.get("content-disposition", "")
    text = _pdf_text(letter.content)
    assert f"FIRM APPEAL for ICN{mcr_pcn}" in text
    assert "CO-50 medical necessity" in text
    assert "Physical therapy was ordered after surgery." in text
    read_audited = await rows(
        owner_engine,
        "SELECT count(*) AS n FROM rcm.audit_event"
        " WHERE tenant_id = :t AND event_type = 'appeal.letter.read'",
        t=a.id,
    )
    assert read_audited[0].n == 1

    attached = await client.post(
        f"/api/v1/tenants/{a.slug}/appeals/{appeal['id']}/attachments",
        content=b"%PDF-1.4\n% operative note\n",
        headers={**biller.headers(key=True), "Content-Type": "application/pdf"},
    )
    assert attached.status_code == 201, attached.text
    submitted = await biller.post(
        f"/tenants/{a.slug}/appeals/{appeal['id']}/submission",
        {"submitted_on": "2026-12-02", "method": "fax"},
    )
    assert submitted.status_code == 200, submitted.text
    assert len(submitted.json()["attachments"]) == 1
    decided = await biller.post(
        f"/tenants/{a.slug}/appeals/{appeal['id']}/outcome",
        {"outcome": "overturned", "decided_on": "2027-01-15", "recovered_cents": 20000},
    )
    assert decided.status_code == 200, decided.text
    states = await rows(
        owner_engine,
        "SELECT c.state, d.status FROM rcm.claim c"
        " JOIN rcm.denial d ON (d.tenant_id, d.claim_id) = (c.tenant_id, c.id)"
        " WHERE c.tenant_id = :t AND c.id = :c",
        t=a.id,
        c=mcr_claim,
    )
    assert [tuple(s) for s in states] == [("appealed", "overturned")]

    # B's biller sees none of A's appeal; A's default template still renders for the other claim.
    other_biller = await make_staff(Role.BILLER, b)
    assert (await other_biller.get(f"/tenants/{a.slug}/appeals/{appeal['id']}")).status_code == 404
    assert (await other_biller.get(f"/tenants/{b.slug}/appeals/{appeal['id']}")).status_code == 404
    default = await biller.post(
        f"/tenants/{a.slug}/appeals",
        {"claim_id": str(bcx_claim), "argument": "Separate session, modifier 59."},
    )
    assert default.status_code == 201, default.text

    supervisor = await make_staff(Role.SUPERVISOR, a)
    report = await supervisor.get(
        f"/tenants/{a.slug}/reports/denials", group_by="payer,cpt,carc,category", period="month"
    )
    assert report.status_code == 200, report.text
    assert report.json()["rows"] == [
        {
            "period": "2026-12-01",
            "count": 1,
            "denied_cents": 8000,
            "payer": "DEMO-BCX",
            "cpt": "93000",
            "carc": "97",
            "category": "bundling",
        },
        {
            "period": "2026-12-01",
            "count": 1,
            "denied_cents": 20000,
            "payer": "DEMO-MCR",
            "cpt": "97110",
            "carc": "50",
            "category": "medical_necessity",
        },
    ]
    total = await supervisor.get(f"/tenants/{a.slug}/reports/denials")
    assert total.json()["rows"] == [
        {
            "period": "2026-12-01",
            "count": 2,
            "denied_cents": 28000,
            "payer": None,
            "cpt": None,
            "carc": None,
            "category": None,
        }
    ]
    assert (await supervisor.get(f"/tenants/{a.slug}/reports/denials", group_by="ssn")).status_code == 422


async def test_a_corrected_claim_resubmitted_as_frequency_7_corrects_its_denials(
    *,
    claims: Claims,
    clean_intake: Any,
    clean_practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    make_staff: MakeStaff,
) -> None:
    claim_id = await claims.new(clean_intake, clean_practice, **DEMO_CODED)
    await claims.walk(
        clean_practice, claim_id, ClaimState.SUBMITTED, ClaimState.ACCEPTED, icn="ICN2026000777"
    )
    async with practice_scope(sessions, settings, clean_practice) as scope:
        claim = await scope.repo(ClaimRepository).get(claim_id)
    assert claim is not None
    line = r.line(12500, 0, (Adjustment(group="CO", reason="16", amount=12500),), code="99213")
    line = msgspec.structs.replace(line, remarks=("M76",))  # missing/invalid diagnosis: a coding denial
    coding = msgspec.structs.replace(r.claim(4, (line,), status="4"), remarks=("MA130",))
    await _apply(sessions, settings, clean_practice, _pcn(coding, claim.patient_control_number))

    biller = await make_staff(Role.BILLER, clean_practice)
    task = await biller.post("/billing/next")
    assert task.status_code == 200, task.text
    (shown,) = task.json()["denials"]  # the item opens with the denial's reasons and its clock
    assert (shown["carc"], shown["rarcs"], shown["category"]) == ("16", ["M76", "MA130"], "coding")
    assert shown["days_left"] == (date(2027, 3, 31) - date.today()).days
    done = await biller.post(
        f"/billing/items/{task.json()['item']['id']}/complete",
        {"action": "replace", "reason": "diagnosis pointer corrected"},
    )
    assert done.status_code == 200, done.text
    replacement = done.json()["claim"]
    assert replacement["frequency"] == 7
    found = await rows(
        owner_engine,
        "SELECT status, replacement_claim_id FROM rcm.denial WHERE tenant_id = :t AND claim_id = :c",
        t=clean_practice.id,
        c=claim_id,
    )
    assert [tuple(f) for f in found] == [("corrected", uuid.UUID(replacement["id"]))]
    # Nothing is left open to appeal.
    refused = await biller.post(
        f"/tenants/{clean_practice.slug}/appeals", {"claim_id": str(claim_id), "argument": "late"}
    )
    assert refused.status_code == 409


async def test_a_denied_claim_the_payer_later_pays_in_full_closes_its_denials_and_item(
    *,
    claims: Claims,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    practice = await enrolled_practice(control_sessions, "den-paid")
    api = await practice_api_for(client, practice, sessions, settings)
    claim_id, pcn = await _submitted(claims, api, practice, "DEMO-MCR")
    await _apply(sessions, settings, practice, _pcn(r.denied_claim(5), pcn))
    await _apply(sessions, settings, practice, _pcn(r.paid_claim(5), pcn), control_number=2)
    denials = await rows(
        owner_engine,
        "SELECT status FROM rcm.denial WHERE tenant_id = :t AND claim_id = :c",
        t=practice.id,
        c=claim_id,
    )
    assert [d.status for d in denials] == ["closed"]
    items = await rows(
        owner_engine,
        "SELECT reason, status FROM rcm.work_item WHERE tenant_id = :t AND kind = 'billing'",
        t=practice.id,
    )
    assert [tuple(i) for i in items] == [("denial", "done")]
